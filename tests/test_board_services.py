"""The members' board services: who may read, post, edit, report and moderate, and what each viewer sees."""

from datetime import timedelta

import pytest
from sqlalchemy import func
from sqlmodel import select

from chiiki.models import BoardPost, BoardReport, BoardThread, Han, Membership, OfficerRole, utcnow
from chiiki.services import board
from chiiki.services.db import session
from chiiki.services.errors import ServiceError
from tests.conftest import DemoCity

MEMBER = "member@example.jp"
MEMBER2 = "member2@example.jp"
MOD = "fukukaicho@example.jp"


def counts() -> tuple[int, int, int]:
    with session() as s:
        return tuple(s.exec(select(func.count()).select_from(m)).one() for m in (BoardThread, BoardPost, BoardReport))


def snapshot() -> list:
    """Every board row as plain values, to prove a refused call changed nothing."""
    with session() as s:
        return [sorted((r.model_dump() for r in s.exec(select(m)).all()), key=lambda d: d["id"])
                for m in (BoardThread, BoardPost, BoardReport)]


def a1(demo) -> int:
    return demo.association_id(DemoCity.A1)


def start(demo, login=MEMBER, title="ゴミ出しの日", body="燃えるゴミは火曜です", minutes_ago=60) -> int:
    return board.create_thread(demo.actor(login), a1(demo), title, body, now=utcnow() - timedelta(minutes=minutes_ago))


def opening(thread_id: int) -> int:
    with session() as s:
        return s.exec(select(func.min(BoardPost.id)).where(BoardPost.thread_id == thread_id)).one()


# --------------------------------------------------------------------------- posting and reading


def test_member_starts_a_thread_and_another_member_replies(demo):
    tid = start(demo)
    board.reply(demo.actor(MEMBER2), tid, "了解です")
    view = board.get_thread(demo.actor(MEMBER), tid)
    assert view.title == "ゴミ出しの日"
    assert [p.state for p in view.posts] == ["visible", "visible"]
    assert view.posts[0].opening and view.posts[0].mine and view.posts[0].can_edit
    assert not view.posts[1].mine and view.posts[1].can_report and not view.posts[1].can_edit


def test_threads_are_listed_newest_activity_first(demo):
    old = start(demo, title="古い話題", minutes_ago=120)
    new = start(demo, login=MEMBER2, title="新しい話題", minutes_ago=60)
    listing = board.list_threads(demo.actor(MEMBER), a1(demo))
    ids = [t.id for t in listing.items]
    assert ids.index(new) < ids.index(old)
    board.reply(demo.actor(MOD), old, "返信で上に来ます")
    ids = [t.id for t in board.list_threads(demo.actor(MEMBER), a1(demo)).items]
    assert ids[0] == old
    summary = next(t for t in board.list_threads(demo.actor(MEMBER), a1(demo)).items if t.id == old)
    assert summary.replies == 1


def test_thread_list_is_paginated_on_the_server(demo):
    for i in range(5):
        start(demo, login=[MEMBER, MEMBER2, MOD, "kaicho@example.jp", "hancho@example.jp"][i], title=f"話題{i}")
    first = board.list_threads(demo.actor(MEMBER), a1(demo), page=1, per_page=2)
    second = board.list_threads(demo.actor(MEMBER), a1(demo), page=2, per_page=2)
    assert len(first.items) == 2 and len(second.items) == 2
    assert first.total >= 5 and first.pages == (first.total + 1) // 2
    assert not {t.id for t in first.items} & {t.id for t in second.items}
    beyond = board.list_threads(demo.actor(MEMBER), a1(demo), page=9999, per_page=2)
    assert beyond.page == beyond.pages


def test_thread_posts_are_paginated(demo):
    tid = start(demo, minutes_ago=200)
    for i, login in enumerate([MEMBER2, MOD, "kaicho@example.jp", "hancho@example.jp", "kaikei@example.jp"]):
        board.reply(demo.actor(login), tid, f"返信{i}", now=utcnow() - timedelta(minutes=100 - i))
    p1 = board.get_thread(demo.actor(MEMBER), tid, page=1, per_page=4)
    p2 = board.get_thread(demo.actor(MEMBER), tid, page=2, per_page=4)
    assert p1.total == 6 and p1.pages == 2
    assert [p.body for p in p2.posts] == ["返信3", "返信4"]


# --------------------------------------------------------------------------- limits and bad input


@pytest.mark.parametrize("title,body,field", [
    ("題名", "", "body"), ("題名", "   \n  ", "body"), ("", "本文", "title"),
    ("題名", "あ" * 5001, "body"), ("題" * 101, "本文", "title"), ("題名", "x" * 100_000, "body"),
    ("題名", None, "body"), ("題名", ["a"], "body"), ({"$ne": 1}, "本文", "title"),
])
def test_bad_posts_are_refused_with_a_message_and_nothing_is_written(demo, title, body, field):
    before = snapshot()
    with pytest.raises(ServiceError) as e:
        board.create_thread(demo.actor(MEMBER), a1(demo), title, body)
    assert field in e.value.errors
    assert snapshot() == before


def test_a_100kb_reply_is_refused_and_nothing_is_written(demo):
    tid = start(demo)
    before = snapshot()
    with pytest.raises(ServiceError) as e:
        board.reply(demo.actor(MEMBER2), tid, "あ" * 100_000)
    assert e.value.key == "error.too_long" and e.value.params == {"max": 5000}
    assert snapshot() == before


def test_body_of_exactly_5000_characters_is_accepted(demo):
    tid = start(demo, body="あ" * 5000)
    assert board.get_thread(demo.actor(MEMBER), tid).posts[0].body == "あ" * 5000


@pytest.mark.parametrize("bad", ["abc", -1, 0, True, None, 1.5, "1 OR 1=1", [1], 10**30])
def test_malformed_ids_are_refused(demo, bad):
    before = snapshot()
    for call in (lambda: board.get_thread(demo.actor(MEMBER), bad),
                 lambda: board.reply(demo.actor(MEMBER), bad, "本文"),
                 lambda: board.edit_post(demo.actor(MEMBER), bad, "本文"),
                 lambda: board.delete_post(demo.actor(MEMBER), bad),
                 lambda: board.report_post(demo.actor(MEMBER), bad, "理由"),
                 lambda: board.hide_post(demo.actor(MOD), bad, "理由"),
                 lambda: board.list_threads(demo.actor(MEMBER), bad)):
        with pytest.raises(ServiceError):
            call()
    assert snapshot() == before


def test_unknown_thread_is_not_found(demo):
    with pytest.raises(ServiceError) as e:
        board.get_thread(demo.actor(MEMBER), 99_999)
    assert e.value.key == "error.not_found"


def test_rate_limit_refuses_a_sixth_post_in_ten_minutes(demo):
    actor = demo.actor(MEMBER)
    now = utcnow()
    tid = board.create_thread(actor, a1(demo), "連投", "1", now=now - timedelta(minutes=9))
    for i in range(4):
        board.reply(actor, tid, f"{i}", now=now - timedelta(minutes=8 - i))
    before = snapshot()
    with pytest.raises(ServiceError) as e:
        board.reply(actor, tid, "6件目", now=now)
    assert e.value.key == "board.error.rate_limit" and e.value.params == {"n": 5, "minutes": 10}
    assert snapshot() == before
    # Once the window has passed, posting works again.
    board.reply(actor, tid, "あとで", now=now + timedelta(minutes=2))


def test_minimum_interval_between_posts(demo):
    actor = demo.actor(MEMBER)
    now = utcnow()
    tid = board.create_thread(actor, a1(demo), "連投", "1", now=now)
    with pytest.raises(ServiceError) as e:
        board.reply(actor, tid, "すぐ", now=now + timedelta(seconds=5))
    assert e.value.key == "board.error.too_fast" and e.value.params["seconds"] == 15
    board.reply(actor, tid, "待ってから", now=now + timedelta(seconds=21))


def test_deleted_posts_still_count_for_the_rate_limit(demo):
    actor = demo.actor(MEMBER)
    now = utcnow()
    tid = board.create_thread(actor, a1(demo), "連投", "1", now=now - timedelta(minutes=9))
    for i in range(4):
        pid = board.reply(actor, tid, f"{i}", now=now - timedelta(minutes=8 - i))
        board.delete_post(actor, pid)
    with pytest.raises(ServiceError) as e:
        board.reply(actor, tid, "6件目", now=now)
    assert e.value.key == "board.error.rate_limit"


# --------------------------------------------------------------------------- who may do what


@pytest.mark.parametrize("login", ["other@example.jp", "newcomer@example.jp", "city@example.jp"])
def test_outsiders_cannot_read_or_post_on_a_board(demo, login):
    tid = start(demo)
    pid = opening(tid)
    actor = demo.actor(login)
    before = snapshot()
    for call in (lambda: board.list_threads(actor, a1(demo)),
                 lambda: board.get_thread(actor, tid),
                 lambda: board.create_thread(actor, a1(demo), "題名", "本文"),
                 lambda: board.reply(actor, tid, "本文"),
                 lambda: board.edit_post(actor, pid, "書き換え"),
                 lambda: board.delete_post(actor, pid),
                 lambda: board.report_post(actor, pid, "理由"),
                 lambda: board.hide_post(actor, pid, "理由"),
                 lambda: board.unhide_post(actor, pid),
                 lambda: board.resolve_reports(actor, pid, "dismiss"),
                 lambda: board.report_queue(actor, a1(demo))):
        with pytest.raises(ServiceError) as e:
            call()
        assert e.value.key in ("error.denied", "error.not_found")
    assert snapshot() == before


def test_anonymous_is_refused(demo):
    from chiiki.services.policy import ANONYMOUS

    tid = start(demo)
    before = snapshot()
    for call in (lambda: board.list_threads(ANONYMOUS, a1(demo)), lambda: board.get_thread(ANONYMOUS, tid),
                 lambda: board.create_thread(ANONYMOUS, a1(demo), "題名", "本文"),
                 lambda: board.reply(ANONYMOUS, tid, "本文"),
                 lambda: board.report_post(ANONYMOUS, opening(tid), "理由")):
        with pytest.raises(ServiceError) as e:
            call()
        assert e.value.key == "error.denied"
    assert snapshot() == before


def test_other_association_member_cannot_reach_a_thread_by_id(demo):
    tid = board.create_thread(demo.actor("other@example.jp"), demo.association_id(DemoCity.A3), "末広の話題", "本文")
    with pytest.raises(ServiceError) as e:
        board.get_thread(demo.actor(MEMBER), tid)
    assert e.value.key == "error.not_found"
    with pytest.raises(ServiceError):
        board.reply(demo.actor(MEMBER), tid, "横から")
    assert all(t.id != tid for t in board.list_threads(demo.actor(MEMBER), a1(demo)).items)


def test_member_cannot_edit_or_delete_another_members_post(demo):
    tid = start(demo)
    pid = opening(tid)
    before = snapshot()
    for call in (lambda: board.edit_post(demo.actor(MEMBER2), pid, "書き換え", "乗っ取り"),
                 lambda: board.delete_post(demo.actor(MEMBER2), pid),
                 # Not even the president may edit someone's words; officers hide instead.
                 lambda: board.edit_post(demo.actor("kaicho@example.jp"), pid, "書き換え")):
        with pytest.raises(ServiceError) as e:
            call()
        assert e.value.key == "error.denied"
    assert snapshot() == before


def test_author_edits_own_post_and_thread_title(demo):
    tid = start(demo)
    pid = opening(tid)
    board.edit_post(demo.actor(MEMBER), pid, "訂正:水曜です", "ゴミ出しの日(訂正)")
    view = board.get_thread(demo.actor(MEMBER2), tid)
    assert view.title == "ゴミ出しの日(訂正)"
    assert view.posts[0].body == "訂正:水曜です" and view.posts[0].edited_at is not None


def test_edit_with_empty_body_is_refused(demo):
    tid = start(demo)
    before = snapshot()
    with pytest.raises(ServiceError) as e:
        board.edit_post(demo.actor(MEMBER), opening(tid), "  ")
    assert e.value.key == "error.required"
    assert snapshot() == before


def test_deleted_post_shows_as_deleted_to_others_and_its_text_is_gone(demo):
    tid = start(demo)
    rid = board.reply(demo.actor(MEMBER2), tid, "消す予定の返信")
    board.delete_post(demo.actor(MEMBER2), rid)
    post = board.get_thread(demo.actor(MEMBER), tid).posts[1]
    assert post.state == "deleted" and post.body == "" and post.paragraphs == () and post.author == ""
    with session() as s:
        assert s.get(BoardPost, rid).body == ""
    with pytest.raises(ServiceError) as e:
        board.delete_post(demo.actor(MEMBER2), rid)
    assert e.value.key == "board.error.deleted"


def test_deleting_the_opening_post_hides_the_title_in_the_list(demo):
    tid = start(demo, title="消える題名")
    board.delete_post(demo.actor(MEMBER), opening(tid))
    item = next(t for t in board.list_threads(demo.actor(MEMBER2), a1(demo)).items if t.id == tid)
    assert item.state == "deleted" and item.title == ""


# --------------------------------------------------------------------------- reports and moderation


def test_report_once_per_person_per_post(demo):
    tid = start(demo)
    pid = opening(tid)
    board.report_post(demo.actor(MEMBER2), pid, "不適切です")
    before = snapshot()
    with pytest.raises(ServiceError) as e:
        board.report_post(demo.actor(MEMBER2), pid, "もう一度")
    assert e.value.key == "board.error.reported_twice"
    assert snapshot() == before
    assert board.get_thread(demo.actor(MEMBER2), tid).posts[0].reported_by_me


@pytest.mark.parametrize("reason,key", [("", "error.required"), ("あ" * 501, "error.too_long"), (None, "error.required")])
def test_report_needs_a_reason(demo, reason, key):
    tid = start(demo)
    before = snapshot()
    with pytest.raises(ServiceError) as e:
        board.report_post(demo.actor(MEMBER2), opening(tid), reason)
    assert e.value.key == key
    assert snapshot() == before


def test_cannot_report_own_post(demo):
    tid = start(demo)
    with pytest.raises(ServiceError) as e:
        board.report_post(demo.actor(MEMBER), opening(tid), "自分")
    assert e.value.key == "board.error.own_post"


def test_hidden_post_shows_reason_to_author_and_label_to_others(demo):
    tid = start(demo, body="秘密の本文")
    pid = opening(tid)
    board.hide_post(demo.actor(MOD), pid, "個人情報が含まれています")
    other = board.get_thread(demo.actor(MEMBER2), tid)
    assert other.posts[0].state == "hidden"
    assert other.posts[0].body == "" and other.posts[0].paragraphs == () and other.posts[0].hidden_reason == ""
    assert other.title == ""
    mine = board.get_thread(demo.actor(MEMBER), tid)
    assert mine.posts[0].body == "秘密の本文" and mine.posts[0].hidden_reason == "個人情報が含まれています"
    assert not mine.posts[0].can_edit
    listed = next(t for t in board.list_threads(demo.actor(MEMBER2), a1(demo)).items if t.id == tid)
    assert listed.state == "hidden" and listed.title == ""
    mod = board.get_thread(demo.actor(MOD), tid)
    assert mod.posts[0].can_unhide and mod.posts[0].body == "秘密の本文"


def test_unhide_shows_the_post_again(demo):
    tid = start(demo, body="戻る本文")
    pid = opening(tid)
    board.hide_post(demo.actor(MOD), pid, "確認中")
    board.unhide_post(demo.actor(MOD), pid)
    post = board.get_thread(demo.actor(MEMBER2), tid).posts[0]
    assert post.state == "visible" and post.body == "戻る本文"
    with pytest.raises(ServiceError) as e:
        board.unhide_post(demo.actor(MOD), pid)
    assert e.value.key == "board.error.not_hidden"


def test_hide_needs_a_reason(demo):
    tid = start(demo)
    before = snapshot()
    with pytest.raises(ServiceError) as e:
        board.hide_post(demo.actor(MOD), opening(tid), "")
    assert e.value.field == "hide_reason"
    assert snapshot() == before


@pytest.mark.parametrize("login", [MEMBER2, "hancho@example.jp", "kaikei@example.jp"])
def test_officers_without_moderate_board_cannot_hide(demo, login):
    tid = start(demo)
    pid = opening(tid)
    board.report_post(demo.actor(MEMBER2 if login != MEMBER2 else "kaikei@example.jp"), pid, "理由")
    before = snapshot()
    for call in (lambda: board.hide_post(demo.actor(login), pid, "理由"),
                 lambda: board.unhide_post(demo.actor(login), pid),
                 lambda: board.resolve_reports(demo.actor(login), pid, "dismiss"),
                 lambda: board.report_queue(demo.actor(login), a1(demo))):
        with pytest.raises(ServiceError) as e:
            call()
        assert e.value.key == "error.denied"
    assert snapshot() == before


def test_han_scoped_moderate_board_does_not_moderate_the_association_wide_board(demo):
    # The board is not divided by han, so a han-limited grant of moderate_board moderates nothing.
    hancho = demo.account_id("hancho@example.jp")
    with session() as s:
        m = s.exec(select(Membership).where(Membership.account_id == hancho)).one()
        han = s.exec(select(Han).where(Han.association_id == m.association_id).order_by(Han.route_order)).first()
        s.add(OfficerRole(association_id=m.association_id, membership_id=m.id, title="班長",
                          permissions="moderate_board", han_id=han.id))
    actor = demo.actor("hancho@example.jp")
    assert board.may_moderate(actor, a1(demo)) is False
    tid = start(demo)
    before = snapshot()
    with pytest.raises(ServiceError) as e:
        board.hide_post(actor, opening(tid), "理由")
    assert e.value.key == "error.denied"
    assert snapshot() == before


def test_moderator_of_another_association_cannot_hide(demo):
    tid = start(demo)
    a3_president = None
    with session() as s:
        role = s.exec(select(OfficerRole).where(OfficerRole.association_id == demo.association_id(DemoCity.A3))).first()
        m = s.get(Membership, role.membership_id)
        a3_president = m.account_id
    from chiiki.services.accounts import load_actor_in

    with session() as s:
        actor = load_actor_in(s, a3_president)
    before = snapshot()
    with pytest.raises(ServiceError) as e:
        board.hide_post(actor, opening(tid), "理由")
    assert e.value.key == "error.not_found"
    with pytest.raises(ServiceError):
        board.report_queue(actor, a1(demo))
    assert snapshot() == before


def test_reports_queue_hide_resolves_every_open_report(demo):
    tid = start(demo, body="問題の投稿")
    pid = opening(tid)
    board.report_post(demo.actor(MEMBER2), pid, "不快です")
    board.report_post(demo.actor("kaikei@example.jp"), pid, "荒らしです")
    queue = board.report_queue(demo.actor(MOD), a1(demo))
    item = next(i for i in queue.items if i.post_id == pid)
    assert [r.reason for r in item.reports] == ["不快です", "荒らしです"]
    assert board.open_report_count(demo.actor(MOD), a1(demo)) == queue.total
    board.resolve_reports(demo.actor(MOD), pid, "hide", "ルール違反")
    assert all(i.post_id != pid for i in board.report_queue(demo.actor(MOD), a1(demo)).items)
    with session() as s:
        rows = s.exec(select(BoardReport).where(BoardReport.post_id == pid)).all()
        assert {r.resolution for r in rows} == {"hide"} and all(r.resolved_by for r in rows)
    post = board.get_thread(demo.actor(MEMBER), tid).posts[0]
    assert post.state == "hidden" and post.hidden_reason == "ルール違反"


def test_reports_queue_dismiss_keeps_the_post(demo):
    tid = start(demo, body="問題ない投稿")
    pid = opening(tid)
    board.report_post(demo.actor(MEMBER2), pid, "念のため")
    board.resolve_reports(demo.actor(MOD), pid, "dismiss")
    assert all(i.post_id != pid for i in board.report_queue(demo.actor(MOD), a1(demo)).items)
    assert board.get_thread(demo.actor(MEMBER2), tid).posts[0].state == "visible"
    with pytest.raises(ServiceError) as e:
        board.resolve_reports(demo.actor(MOD), pid, "dismiss")
    assert e.value.key == "board.error.no_reports"


@pytest.mark.parametrize("action", ["delete", "", None, 1, "HIDE"])
def test_resolve_with_an_unknown_action_is_refused(demo, action):
    tid = start(demo)
    pid = opening(tid)
    board.report_post(demo.actor(MEMBER2), pid, "理由")
    before = snapshot()
    with pytest.raises(ServiceError) as e:
        board.resolve_reports(demo.actor(MOD), pid, action, "理由")
    assert e.value.key == "error.invalid"
    assert snapshot() == before


def test_resolve_hide_without_reason_is_refused(demo):
    tid = start(demo)
    pid = opening(tid)
    board.report_post(demo.actor(MEMBER2), pid, "理由")
    before = snapshot()
    with pytest.raises(ServiceError) as e:
        board.resolve_reports(demo.actor(MOD), pid, "hide", "")
    assert e.value.field == "hide_reason"
    assert snapshot() == before


def test_author_deleting_a_reported_post_closes_its_reports(demo):
    tid = start(demo)
    pid = opening(tid)
    board.report_post(demo.actor(MEMBER2), pid, "理由")
    board.delete_post(demo.actor(MEMBER), pid)
    assert all(i.post_id != pid for i in board.report_queue(demo.actor(MOD), a1(demo)).items)


def test_cannot_report_a_hidden_or_deleted_post(demo):
    tid = start(demo)
    pid = opening(tid)
    board.hide_post(demo.actor(MOD), pid, "理由")
    with pytest.raises(ServiceError) as e:
        board.report_post(demo.actor(MEMBER2), pid, "理由")
    assert e.value.key == "board.error.already_hidden"


def test_member_who_left_loses_access(demo):
    tid = start(demo)
    member2 = demo.account_id(MEMBER2)
    with session() as s:
        m = s.exec(select(Membership).where(Membership.account_id == member2)).one()
        m.status = "left"
        s.add(m)
    with pytest.raises(ServiceError):
        board.get_thread(demo.actor(MEMBER2), tid)
    with pytest.raises(ServiceError):
        board.reply(demo.actor(MEMBER2), tid, "まだ書ける?")


# --------------------------------------------------------------------------- the thread list in two statements


def _check_list(demo) -> None:
    """Each row of the list: the opening post's state and author decide the title, replies count the rest."""
    plain = start(demo, login=MEMBER2, title="普通の話題", minutes_ago=50)
    for i in range(3):
        board.reply(demo.actor([MEMBER, MOD, MEMBER][i]), plain, f"返信{i}", now=utcnow() - timedelta(minutes=40 - i))
    hidden = start(demo, title="隠される話題", minutes_ago=30)
    board.hide_post(demo.actor(MOD), opening(hidden), "個人情報")
    gone = start(demo, login=MEMBER2, title="消える話題", minutes_ago=20)
    board.reply(demo.actor(MEMBER), gone, "残る返信", now=utcnow() - timedelta(minutes=10))
    board.delete_post(demo.actor(MEMBER2), opening(gone))

    def listed(login: str) -> dict:
        return {t.id: (t.state, t.title, t.author, t.replies, t.mine)
                for t in board.list_threads(demo.actor(login), a1(demo), per_page=50).items}

    author = demo.actor(MEMBER).display_name
    other = demo.actor(MEMBER2).display_name
    assert listed(MEMBER2)[plain] == ("visible", "普通の話題", other, 3, True)
    assert listed(MEMBER2)[hidden] == ("hidden", "", author, 0, False)  # others: no title
    assert listed(MEMBER)[hidden] == ("hidden", "隠される話題", author, 0, True)  # its author reads it
    assert listed(MOD)[hidden][1] == "隠される話題"  # so does a moderator
    assert listed(MEMBER)[gone] == ("deleted", "", "", 1, False)
    ids = list(listed(MEMBER))
    assert ids.index(gone) < ids.index(hidden) < ids.index(plain)  # newest activity first


def test_thread_list_rows(demo):
    _check_list(demo)


@pytest.mark.postgres
def test_thread_list_rows_on_postgresql(pg_app_db):
    from chiiki.seed import seed_demo

    seed_demo()
    _check_list(DemoCity())


# --------------------------------------------------------------------------- edits racing deletes and hides


def _edit_held_up_while(demo, monkeypatch, other) -> tuple[int, list[str]]:
    """An edit of the opening post of a new thread, held up right after its checks passed, while `other(pid)`
    (a delete, a hide …) runs in a second thread; then the edit goes on. Returns the post id and the errors."""
    import threading
    import time

    tid = start(demo, body="元の本文")
    pid = opening(tid)
    checked, go = threading.Event(), threading.Event()
    real_body = board._body

    def held_up(value):
        if threading.current_thread() is editor:
            checked.set()
            go.wait(10)
        return real_body(value)

    errors: list[str] = []

    def run(fn, *args):
        try:
            fn(*args)
        except Exception as e:  # noqa: BLE001 - the test looks at what each side was told
            errors.append(f"{fn.__name__}: {getattr(e, 'key', repr(e))}")

    monkeypatch.setattr(board, "_body", held_up)
    editor = threading.Thread(target=run, args=(board.edit_post, demo.actor(MEMBER), pid, "編集した 090-0000-0000"))
    editor.start()
    assert checked.wait(10)
    second = threading.Thread(target=run, args=(other, pid))
    second.start()
    time.sleep(0.5)  # the other side has read the post (old code) or waits for the edit's lock (now)
    go.set()
    editor.join(20)
    second.join(20)
    return pid, errors


def _check_edit_racing_delete(demo, monkeypatch) -> None:
    pid, errors = _edit_held_up_while(demo, monkeypatch, lambda p: board.delete_post(demo.actor(MEMBER), p))
    with session() as s:
        post = s.get(BoardPost, pid)
        assert post.deleted_at is not None
        assert post.body == "", "an edit that overlapped the delete wrote its text back into the deleted post"
    assert errors == []


def _check_edit_racing_hide(demo, monkeypatch) -> None:
    pid, errors = _edit_held_up_while(demo, monkeypatch, lambda p: board.hide_post(demo.actor(MOD), p, "不適切"))
    with session() as s:
        post = s.get(BoardPost, pid)
        assert post.hidden_at is not None
        # The hide applies to the text there when it was hidden: nothing is written to a hidden post after.
        assert post.edited_at is not None and post.edited_at <= post.hidden_at, \
            "an edit that overlapped the hide put unreviewed text under the hidden post"
    assert errors == []


def test_an_edit_overlapping_a_delete_never_writes_the_text_back(demo, monkeypatch):
    _check_edit_racing_delete(demo, monkeypatch)


def test_an_edit_overlapping_a_hide_never_writes_to_the_hidden_post(demo, monkeypatch):
    _check_edit_racing_hide(demo, monkeypatch)


@pytest.mark.postgres
def test_an_edit_overlapping_a_delete_never_writes_the_text_back_on_postgresql(pg_app_db, monkeypatch):
    from chiiki.seed import seed_demo

    seed_demo()
    _check_edit_racing_delete(DemoCity(), monkeypatch)


@pytest.mark.postgres
def test_an_edit_overlapping_a_hide_never_writes_to_the_hidden_post_on_postgresql(pg_app_db, monkeypatch):
    from chiiki.seed import seed_demo

    seed_demo()
    _check_edit_racing_hide(DemoCity(), monkeypatch)


# --------------------------------------------------------------------------- moderation on the access logs


def _log(demo, login: str) -> list[str]:
    from chiiki.services import audit

    with session() as s:
        return [e.action for e in audit.accesses_to(s, demo.account_id(login))]


def test_hiding_and_showing_again_are_on_the_authors_access_log(demo):
    from chiiki.i18n import STRINGS
    from chiiki.models import AuditAccess

    tid = start(demo)
    pid = opening(tid)
    board.hide_post(demo.actor(MOD), pid, "個人情報が含まれています")
    board.unhide_post(demo.actor(MOD), pid)
    board.report_post(demo.actor(MEMBER2), pid, "やはり気になります")
    board.resolve_reports(demo.actor(MOD), pid, "hide", "ルール違反")
    assert _log(demo, MEMBER) == ["board.hide", "board.unhide", "board.hide"]
    with session() as s:
        trail = s.exec(select(AuditAccess).where(AuditAccess.action.like("board.%hide"))
                       .order_by(AuditAccess.id)).all()
    assert [(a.action, a.actor_account_id, a.association_id, a.detail) for a in trail] == [
        ("board.hide", demo.account_id(MOD), a1(demo), f"post {pid}"),
        ("board.unhide", demo.account_id(MOD), a1(demo), f"post {pid}"),
        ("board.hide", demo.account_id(MOD), a1(demo), f"post {pid}"),
    ]
    assert all(f"audit.action.{a}" in STRINGS for a in ("board.hide", "board.unhide", "board.dismiss"))


def test_dismissing_reports_is_on_the_reporters_log_and_not_the_authors(demo):
    tid = start(demo)
    pid = opening(tid)
    board.report_post(demo.actor(MEMBER2), pid, "念のため")
    board.resolve_reports(demo.actor(MOD), pid, "dismiss")
    assert "board.dismiss" in _log(demo, MEMBER2)
    assert _log(demo, MEMBER) == []  # the author is never told the post was reported


def test_a_refused_moderation_writes_no_audit_event(demo):
    from chiiki.models import AuditAccess

    tid = start(demo)
    pid = opening(tid)
    with pytest.raises(ServiceError):
        board.hide_post(demo.actor(MOD), pid, "")
    with pytest.raises(ServiceError):
        board.unhide_post(demo.actor(MOD), pid)
    with pytest.raises(ServiceError):
        board.resolve_reports(demo.actor(MOD), pid, "dismiss")
    with session() as s:
        assert s.exec(select(AuditAccess).where(AuditAccess.action.like("board.%"))).all() == []


# --------------------------------------------------------------------------- reported posts and edits


def test_a_reported_post_cannot_be_edited_until_the_reports_are_closed(demo):
    tid = start(demo, body="元の本文")
    pid = opening(tid)
    board.report_post(demo.actor(MEMBER2), pid, "悪口が書かれています")
    post = board.get_thread(demo.actor(MEMBER), tid).posts[0]
    assert not post.can_edit and post.under_review and post.can_delete
    assert not board.get_thread(demo.actor(MEMBER2), tid).posts[0].under_review  # the author's only
    before = snapshot()
    with pytest.raises(ServiceError) as e:
        board.edit_post(demo.actor(MEMBER), pid, "何も問題ない文章", "ゴミ出しの日")
    assert e.value.key == "board.error.under_review"
    assert snapshot() == before
    item = next(i for i in board.report_queue(demo.actor(MOD), a1(demo)).items if i.post_id == pid)
    assert item.body == "元の本文"  # the moderators judge the text that was reported
    board.resolve_reports(demo.actor(MOD), pid, "dismiss")
    assert board.get_thread(demo.actor(MEMBER), tid).posts[0].can_edit
    board.edit_post(demo.actor(MEMBER), pid, "書き直した本文")


def test_after_a_dismissal_the_reporter_may_report_the_edited_post_again(demo):
    tid = start(demo)
    pid = opening(tid)
    board.report_post(demo.actor(MEMBER2), pid, "気になる表現")
    board.resolve_reports(demo.actor(MOD), pid, "dismiss")
    board.edit_post(demo.actor(MEMBER), pid, "もっとひどい書き直し")
    post = board.get_thread(demo.actor(MEMBER2), tid).posts[0]
    assert post.can_report and not post.reported_by_me
    board.report_post(demo.actor(MEMBER2), pid, "編集後さらにひどくなりました")
    assert board.open_report_count(demo.actor(MOD), a1(demo)) == 1
    item = next(i for i in board.report_queue(demo.actor(MOD), a1(demo)).items if i.post_id == pid)
    assert [r.reason for r in item.reports] == ["編集後さらにひどくなりました"]
    assert board.get_thread(demo.actor(MEMBER2), tid).posts[0].reported_by_me
    with pytest.raises(ServiceError) as e:
        board.report_post(demo.actor(MEMBER2), pid, "三度目")
    assert e.value.key == "board.error.reported_twice"


# --------------------------------------------------------------------------- replies to hidden or deleted threads


@pytest.mark.parametrize("close,key", [
    (lambda demo, pid: board.hide_post(demo.actor(MOD), pid, "不適切"), "board.error.thread_hidden"),
    (lambda demo, pid: board.delete_post(demo.actor(MEMBER), pid), "board.error.thread_deleted"),
])
def test_a_hidden_or_deleted_thread_takes_no_reply(demo, close, key):
    tid = start(demo)
    close(demo, opening(tid))
    before = snapshot()
    with pytest.raises(ServiceError) as e:
        board.reply(demo.actor(MEMBER2), tid, "まだ返信できますか")
    assert e.value.key == key
    assert snapshot() == before  # no post, and the thread did not move to the top
