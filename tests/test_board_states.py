"""The board pages through an rx.State tree: handlers, messages, and what a browser could hold."""

from datetime import timedelta

import pytest
import reflex as rx
from sqlalchemy import func
from sqlmodel import select

from chiiki.models import Account, BoardPost, BoardReport, BoardThread, Membership, utcnow
from chiiki.services import board
from chiiki.services.db import session
from tests.conftest import DemoCity, login_state, state_text


@pytest.fixture
def root():
    """A state tree holding the board pages (and login), independent of pages other engineers are writing."""
    import chiiki.pages.auth  # noqa: F401
    import chiiki.pages.board  # noqa: F401

    return rx.State()


def pages():
    from chiiki.pages.board import BoardState, ModerationState, ThreadState

    return BoardState, ThreadState, ModerationState


def sendable(result):
    """What a handler returns must be something Reflex can send: None or events (never True/False)."""
    from reflex.event import EventHandler, EventSpec

    items = result if isinstance(result, list) else [result]
    assert all(r is None or isinstance(r, (EventSpec, EventHandler)) for r in items), result
    return result


def rows() -> tuple[int, int, int]:
    with session() as s:
        return tuple(s.exec(select(func.count()).select_from(m)).one() for m in (BoardThread, BoardPost, BoardReport))


async def open_thread(root, thread_id):
    from reflex.istate.data import ReflexURL, URLData

    _, ThreadState, _ = pages()
    root.rx_router_url = URLData.from_url(ReflexURL(f"http://127.0.0.1:3000/board/{thread_id}"))
    ts = await root.get_state(ThreadState)
    await ThreadState.load.fn(ts)
    return ts


def seed_thread(demo, login="member@example.jp", title="公園の清掃", body="日曜9時に集合です", minutes_ago=60):
    return board.create_thread(demo.actor(login), demo.association_id(DemoCity.A1), title, body,
                               now=utcnow() - timedelta(minutes=minutes_ago))


async def test_member_creates_a_thread_and_is_sent_to_it(demo, root):
    BoardState, _, _ = pages()
    await login_state(root, "member@example.jp")
    bs = await root.get_state(BoardState)
    await BoardState.load.fn(bs)
    assert bs.loaded and bs.error == ""
    before = rows()
    result = sendable(await BoardState.create.fn(bs, {"title": "回覧の順番", "body": "2班の順番を\n教えてください"}))
    assert rows()[0] == before[0] + 1
    assert bs.errors == {} and "/board/" in str(result)


async def test_empty_and_oversized_posts_show_messages_next_to_fields(demo, root):
    BoardState, _, _ = pages()
    await login_state(root, "member@example.jp")
    bs = await root.get_state(BoardState)
    await BoardState.load.fn(bs)
    before = rows()
    sendable(await BoardState.create.fn(bs, {"title": "", "body": "x" * 100_000}))
    assert bs.errors == {"title": "入力してください", "body": "5000文字以内で入力してください"}
    sendable(await BoardState.create.fn(bs, "not a form"))
    assert bs.errors.get("title") == "入力してください"
    assert rows() == before


async def test_thread_page_shows_posts_and_takes_a_reply(demo, root):
    _, ThreadState, _ = pages()
    tid = seed_thread(demo)
    await login_state(root, "member2@example.jp")
    ts = await open_thread(root, tid)
    assert ts.loaded and ts.title == "公園の清掃"
    assert [p.paras[0][0].text for p in ts.posts] == ["日曜9時に集合です"]
    # Someone else's post: no source text for an edit form, only the rendered pieces.
    assert ts.posts[0].body == "" and not ts.posts[0].can_edit and ts.posts[0].can_report
    sendable(await ThreadState.send_reply.fn(ts, {"body": "参加します"}))
    assert ts.error == "" and ts.notice == "投稿しました"
    assert [p.state for p in ts.posts] == ["visible", "visible"] and ts.posts[1].mine


async def test_rate_limit_message_is_clear(demo, root):
    _, ThreadState, _ = pages()
    tid = seed_thread(demo, login="member2@example.jp")
    await login_state(root, "member@example.jp")
    ts = await open_thread(root, tid)
    sendable(await ThreadState.send_reply.fn(ts, {"body": "1件目"}))
    before = rows()
    sendable(await ThreadState.send_reply.fn(ts, {"body": "すぐ2件目"}))
    assert "待ってから" in ts.reply_errors["body"]  # under the reply form
    assert rows() == before


@pytest.mark.parametrize("path_id", ["abc", "-3", "0", "99999", "1;DROP"])
async def test_bad_thread_ids_in_the_url_show_not_found(demo, root, path_id):
    await login_state(root, "member@example.jp")
    ts = await open_thread(root, path_id)
    assert not ts.loaded and ts.posts == [] and ts.error == "見つかりませんでした"


async def test_member_of_another_association_cannot_open_a_thread_by_id(demo, root):
    tid = seed_thread(demo, body="旭町だけの話")
    await login_state(root, "other@example.jp")
    ts = await open_thread(root, tid)
    assert not ts.loaded and ts.posts == []
    assert "旭町だけの話" not in state_text(root) and "公園の清掃" not in state_text(root)


@pytest.mark.parametrize("login", ["city@example.jp", "newcomer@example.jp"])
async def test_city_staff_and_non_members_see_no_board(demo, root, login):
    BoardState, _, _ = pages()
    seed_thread(demo, body="会員だけの話")
    await login_state(root, login)
    bs = await root.get_state(BoardState)
    await BoardState.load.fn(bs)
    assert bs.threads == [] and bs.error == "この操作はできません"
    before = rows()
    sendable(await BoardState.create.fn(bs, {"title": "市から", "body": "書き込み"}))
    assert rows() == before
    assert "会員だけの話" not in state_text(root) and "公園の清掃" not in state_text(root)


async def test_anonymous_is_sent_to_login(demo, root):
    BoardState, ThreadState, ModerationState = pages()
    tid = seed_thread(demo)
    bs = await root.get_state(BoardState)
    assert "/login" in str(await BoardState.load.fn(bs))
    ts = await root.get_state(ThreadState)
    before = rows()
    assert "/login" in str(sendable(await ThreadState.send_reply.fn(ts, {"body": "匿名"})))
    ts.thread_id = tid
    assert "/login" in str(sendable(await ThreadState.send_reply.fn(ts, {"body": "匿名"})))
    assert rows() == before


async def test_member_edits_and_deletes_own_post_and_others_see_deleted(demo, root):
    _, ThreadState, _ = pages()
    tid = seed_thread(demo)
    await login_state(root, "member@example.jp")
    ts = await open_thread(root, tid)
    pid = ts.posts[0].id
    assert ts.posts[0].body == "日曜9時に集合です"  # the author's own text, to prefill the edit form
    ThreadState.start.fn(ts, "edit", pid)
    sendable(await ThreadState.save_edit.fn(ts, {"title": "公園の清掃(雨天中止)", "body": "日曜9時\n\n雨なら中止"}))
    assert ts.title == "公園の清掃(雨天中止)" and len(ts.posts[0].paras) == 2 and ts.posts[0].edited
    ThreadState.start.fn(ts, "delete", pid)
    sendable(await ThreadState.confirm_delete.fn(ts))
    assert ts.posts[0].state == "deleted" and ts.notice == "削除しました"

    other = rx.State()
    await login_state(other, "member2@example.jp")
    ts2 = await open_thread(other, tid)
    assert ts2.posts[0].state == "deleted" and ts2.posts[0].paras == [] and ts2.title_state == "deleted"
    assert "雨なら中止" not in state_text(other)


async def test_member_cannot_edit_or_delete_anothers_post_through_crafted_events(demo, root):
    _, ThreadState, _ = pages()
    tid = seed_thread(demo)
    await login_state(root, "member2@example.jp")
    ts = await open_thread(root, tid)
    pid = ts.posts[0].id
    before = rows()
    ThreadState.start.fn(ts, "edit", pid)
    sendable(await ThreadState.save_edit.fn(ts, {"title": "乗っ取り", "body": "書き換え"}))
    assert ts.error == "この操作はできません"
    ThreadState.start.fn(ts, "delete", pid)
    sendable(await ThreadState.confirm_delete.fn(ts))
    assert ts.error == "この操作はできません"
    with session() as s:
        assert s.get(BoardPost, pid).body == "日曜9時に集合です" and s.get(BoardPost, pid).deleted_at is None
    assert rows() == before


@pytest.mark.parametrize("action,pid", [("drop", 1), ("edit", "1 OR 1=1"), ("edit", None), ("hide", -1)])
async def test_start_ignores_unknown_actions_and_foreign_ids(demo, root, action, pid):
    _, ThreadState, _ = pages()
    tid = seed_thread(demo)
    await login_state(root, "member@example.jp")
    ts = await open_thread(root, tid)
    ThreadState.start.fn(ts, action, pid)
    assert ts.action == "" and ts.action_id == 0


async def test_report_once_then_a_clear_message(demo, root):
    _, ThreadState, _ = pages()
    tid = seed_thread(demo)
    await login_state(root, "member2@example.jp")
    ts = await open_thread(root, tid)
    pid = ts.posts[0].id
    ThreadState.start.fn(ts, "report", pid)
    sendable(await ThreadState.send_report.fn(ts, {"reason": ""}))
    assert ts.errors == {"reason": "入力してください"}
    sendable(await ThreadState.send_report.fn(ts, {"reason": "不適切な表現"}))
    assert ts.notice.startswith("通報しました") and ts.posts[0].reported and not ts.posts[0].can_report
    before = rows()
    ts.action, ts.action_id = "report", pid  # as if a crafted client reopened the form
    sendable(await ThreadState.send_report.fn(ts, {"reason": "もう一度"}))
    assert ts.error == "この投稿はすでに通報しています"
    assert rows() == before


async def test_officer_hides_a_post_author_sees_reason_others_see_label(demo, root):
    _, ThreadState, _ = pages()
    tid = seed_thread(demo, body="電話番号は090-0000-0000です")
    await login_state(root, "fukukaicho@example.jp")
    ts = await open_thread(root, tid)
    pid = ts.posts[0].id
    assert ts.posts[0].can_hide
    ThreadState.start.fn(ts, "hide", pid)
    sendable(await ThreadState.send_hide.fn(ts, {"hide_reason": ""}))
    assert ts.errors == {"hide_reason": "入力してください"}
    sendable(await ThreadState.send_hide.fn(ts, {"hide_reason": "電話番号が書かれているため"}))
    assert ts.posts[0].state == "hidden" and ts.posts[0].can_unhide

    author = rx.State()
    await login_state(author, "member@example.jp")
    mine = await open_thread(author, tid)
    assert mine.posts[0].reason == "電話番号が書かれているため" and mine.posts[0].paras

    other = rx.State()
    await login_state(other, "member2@example.jp")
    theirs = await open_thread(other, tid)
    assert theirs.posts[0].state == "hidden" and theirs.posts[0].paras == [] and theirs.posts[0].reason == ""
    text = state_text(other)
    assert "090-0000-0000" not in text and "電話番号が書かれているため" not in text

    sendable(await ThreadState.unhide.fn(ts, pid))
    assert ts.posts[0].state == "visible" and ts.notice == "表示に戻しました"


@pytest.mark.parametrize("login", ["member2@example.jp", "hancho@example.jp", "kaikei@example.jp"])
async def test_hide_and_unhide_events_from_non_moderators_change_nothing(demo, root, login):
    _, ThreadState, ModerationState = pages()
    tid = seed_thread(demo)
    pid = board.get_thread(demo.actor("member@example.jp"), tid).posts[0].id
    await login_state(root, login)
    ts = await open_thread(root, tid)
    assert not ts.posts[0].can_hide
    ts.action, ts.action_id = "hide", pid  # crafted: the button was never shown
    sendable(await ThreadState.send_hide.fn(ts, {"hide_reason": "理由"}))
    assert ts.error == "この操作はできません"
    sendable(await ThreadState.unhide.fn(ts, pid))
    ms = await root.get_state(ModerationState)
    await ModerationState.load.fn(ms)
    assert ms.error == "この操作はできません" and ms.items == []
    sendable(await ModerationState.dismiss.fn(ms, pid))
    with session() as s:
        assert s.get(BoardPost, pid).hidden_at is None


async def test_reports_queue_hide_and_dismiss(demo, root):
    _, _, ModerationState = pages()
    t1 = seed_thread(demo, title="話題1", body="荒らし投稿", minutes_ago=90)
    t2 = seed_thread(demo, login="member2@example.jp", title="話題2", body="普通の投稿")
    p1 = board.get_thread(demo.actor("member@example.jp"), t1).posts[0].id
    p2 = board.get_thread(demo.actor("member@example.jp"), t2).posts[0].id
    board.report_post(demo.actor("member2@example.jp"), p1, "荒らしです")
    board.report_post(demo.actor("member@example.jp"), p2, "念のため")
    await login_state(root, "fukukaicho@example.jp")
    ms = await root.get_state(ModerationState)
    await ModerationState.load.fn(ms)
    assert {i.post_id for i in ms.items} >= {p1, p2}
    item = next(i for i in ms.items if i.post_id == p1)
    assert "荒らしです" in item.reports[0]["text"]
    ModerationState.start_hide.fn(ms, p1)
    sendable(await ModerationState.send_hide.fn(ms, {"hide_reason": "ルール違反"}))
    sendable(await ModerationState.dismiss.fn(ms, p2))
    assert ms.notice == "通報を閉じました"
    assert not {i.post_id for i in ms.items} & {p1, p2}
    with session() as s:
        assert s.get(BoardPost, p1).hidden_reason == "ルール違反" and s.get(BoardPost, p2).hidden_at is None


async def test_board_never_sends_other_members_names_kana_or_addresses(demo, root):
    BoardState, _, _ = pages()
    a1 = demo.association_id(DemoCity.A1)
    posters = ["member2@example.jp", "kaicho@example.jp", "hancho@example.jp", "kaikei@example.jp"]
    tids = [seed_thread(demo, login=login, title=f"話題{i}", body=f"本文{i}", minutes_ago=100 - i)
            for i, login in enumerate(posters)]
    for i, login in enumerate(posters):
        board.reply(demo.actor(login), tids[0], f"返信{i}", now=utcnow() - timedelta(minutes=50 - i))
    await login_state(root, "member@example.jp")
    bs = await root.get_state(BoardState)
    await BoardState.load.fn(bs)
    await open_thread(root, tids[0])
    text = state_text(root)
    me = demo.account_id("member@example.jp")
    with session() as s:
        others = s.exec(select(Account).join(Membership, Membership.account_id == Account.id)
                        .where(Membership.association_id == a1, Account.id != me)).all()
    assert len(others) > 10
    for acc in others:
        for personal in (acc.name, acc.kana, acc.address):
            assert personal and personal not in text, personal
    assert "本文0" in text and "返信3" in text  # the content itself did arrive


async def test_member_board_state_is_cleared_when_the_session_ends(demo, root):
    _, ThreadState, _ = pages()
    tid = seed_thread(demo, body="会員だけの本文")
    auth = await login_state(root, "member2@example.jp")
    ts = await open_thread(root, tid)
    assert ts.posts
    auth._use_session("")
    sendable(await ThreadState.next_page.fn(ts))
    assert ts.posts == [] and "会員だけの本文" not in state_text(root)


async def test_the_board_list_shows_a_moderator_the_open_reports_and_a_member_none(demo, root, monkeypatch):
    """Only a moderator has a reports queue: a member's board list does not ask for it (on a database server
    each such read is a trip to a thread and back)."""
    BoardState, _, _ = pages()
    asked: list[int] = []
    real = board.open_report_count

    def counting(actor, aid):
        asked.append(actor.account_id)
        return real(actor, aid)

    monkeypatch.setattr(board, "open_report_count", counting)
    tid = seed_thread(demo)
    pid = board.get_thread(demo.actor("member@example.jp"), tid).posts[0].id
    board.report_post(demo.actor("member2@example.jp"), pid, "不適切です")
    await login_state(root, "fukukaicho@example.jp")
    bs = await root.get_state(BoardState)
    sendable(await BoardState.load.fn(bs))
    assert bs.can_moderate and bs.open_reports == 1

    member = rx.State()
    await login_state(member, "member2@example.jp")
    ms = await member.get_state(BoardState)
    sendable(await BoardState.load.fn(ms))
    assert not ms.can_moderate and ms.open_reports == 0 and ms.threads
    assert asked == [demo.account_id("fukukaicho@example.jp")]


async def test_an_edit_error_shows_under_the_edit_form_only_and_a_reply_error_under_the_reply_form(demo, root):
    """Both forms have a "body" field: each shows its own message, not the other's."""
    _, ThreadState, _ = pages()
    tid = seed_thread(demo)
    await login_state(root, "member@example.jp")
    ts = await open_thread(root, tid)
    ThreadState.start.fn(ts, "edit", ts.posts[0].id)
    sendable(await ThreadState.save_edit.fn(ts, {"title": "公園の清掃", "body": ""}))
    assert ts.errors == {"body": "入力してください"} and ts.reply_errors == {}
    ThreadState.cancel.fn(ts)
    sendable(await ThreadState.send_reply.fn(ts, {"body": ""}))
    assert ts.reply_errors == {"body": "入力してください"} and ts.errors == {}


def test_the_reply_form_is_shown_only_under_a_visible_opening_post():
    """board.reply refuses a hidden or deleted thread, so the page offers no form there (a line instead)."""
    import chiiki.pages.board as page

    rendered = str(page._reply_area())
    assert 'title_state' in rendered and "replies-closed" in rendered and "f-reply-body" in rendered


async def test_a_double_tap_on_dismiss_shows_only_that_the_reports_were_closed(demo, root):
    _, _, ModerationState = pages()
    tid = seed_thread(demo)
    pid = board.get_thread(demo.actor("member@example.jp"), tid).posts[0].id
    board.report_post(demo.actor("member2@example.jp"), pid, "不適切です")
    await login_state(root, "fukukaicho@example.jp")
    ms = await root.get_state(ModerationState)
    await ModerationState.load.fn(ms)
    sendable(await ModerationState.dismiss.fn(ms, pid))
    sendable(await ModerationState.dismiss.fn(ms, pid))  # the second tap, after the first refreshed the queue
    assert ms.notice == "通報を閉じました" and ms.error == ""
