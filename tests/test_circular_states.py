"""Circular pages through an rx.State tree: compose -> preview -> send, inbox, confirm, status; what a browser holds."""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path

import pytest
import reflex as rx
from sqlalchemy import func
from sqlmodel import select

from chiiki.models import Attachment, Circular, Delivery, Household
from chiiki.services.db import session
from tests.conftest import DemoCity, login_state, state_text

EVIL = ("<script>alert('x')</script> **太字** [押して](javascript:alert(1)) <img src=x onerror=alert(2)>\n"
        "https://example.jp/info")


@pytest.fixture
def root():
    import chiiki.pages.auth  # noqa: F401
    import chiiki.pages.circular_admin  # noqa: F401
    import chiiki.pages.circulars  # noqa: F401

    return rx.State()


def at(root, path: str) -> None:
    from reflex.istate.data import ReflexURL, URLData

    root.rx_router_url = URLData.from_url(ReflexURL(f"http://127.0.0.1:3000{path}"))


def circular_count() -> int:
    with session() as s:
        return s.exec(select(func.count()).select_from(Circular)).one()


async def compose_and_send(root, demo, login="kaicho@example.jp", body="今月の当番です", files=None):
    from chiiki.pages.circular_admin import ComposeState

    await login_state(root, login)
    cs = await root.get_state(ComposeState)
    await ComposeState.load.fn(cs)
    assert cs.allowed, cs.error
    if files:
        await ComposeState.upload.fn(cs, files)
    han1 = str(demo.han_ids(DemoCity.A1)[0])
    await ComposeState.check.fn(cs, {"title": "清掃のお知らせ", "body": body, "due_date": "", f"han_{han1}": "on"})
    assert cs.previewing, (cs.errors, cs.error)
    result = await ComposeState.send.fn(cs)
    with session() as s:
        cid = s.exec(select(func.max(Circular.id))).one()
    return cs, cid, result


def upload_file(name: str, data: bytes) -> rx.UploadFile:
    return rx.UploadFile(file=io.BytesIO(data), path=Path(name), size=len(data))


async def test_compose_shows_field_errors_and_writes_nothing(demo, root):
    from chiiki.pages.circular_admin import ComposeState

    await login_state(root, "hancho@example.jp")
    cs = await root.get_state(ComposeState)
    await ComposeState.load.fn(cs)
    assert [o[1] for o in cs.han_options] == ["1班"] and not cs.may_all
    before = circular_count()
    han2 = str(demo.han_ids(DemoCity.A1)[1])
    await ComposeState.check.fn(cs, {"title": " ", "body": "", "due_date": "2000-01-01", f"han_{han2}": "on"})
    assert not cs.previewing
    assert cs.errors["title"] and cs.errors["due_date"] and cs.errors["target"]
    # A han id that was not offered is dropped, not trusted.
    assert cs.han_selected == []
    await ComposeState.send.fn(cs)
    assert circular_count() == before
    # A crafted message far past the fields' limits: still "too long", and the state holds no more than that.
    from chiiki.services import circulars

    await ComposeState.check.fn(cs, {"title": "あ" * 100_000, "body": "い" * 1_000_000, "due_date": "x" * 1000})
    assert cs.errors["title"] and cs.errors["body"] and not cs.previewing
    assert (len(cs.title), len(cs.body), len(cs.due_date)) == (circulars.MAX_TITLE + 1, circulars.MAX_BODY + 1, 11)


async def test_officer_sends_and_is_taken_to_the_status_page(demo, root):
    from chiiki.pages.circular_admin import StatusState

    cs, cid, result = await compose_and_send(root, demo)
    assert f"/circulars/admin/status?id={cid}" in str(result)
    assert cs.title == "" and not cs.previewing
    at(root, f"/circulars/admin/status?id={cid}")
    ss = await root.get_state(StatusState)
    await StatusState.load.fn(ss)
    assert ss.found and ss.households > 0
    assert sum(ss.counts.values()) == ss.households
    assert ss.rows and any(r["name"] for r in ss.rows)


async def test_member_reads_confirms_and_confirming_twice_says_so(demo, root):
    from chiiki.pages.circulars import CircularState, InboxState
    from chiiki.state import AuthState

    _cs, cid, _ = await compose_and_send(root, demo)
    member_root = rx.State()
    await login_state(member_root, "member@example.jp")
    inbox = await member_root.get_state(InboxState)
    await InboxState.load.fn(inbox)
    item = next(i for i in inbox.items if i["id"] == str(cid))
    assert item["state"] == "unread"
    unread_before = (await member_root.get_state(AuthState)).unread_circulars
    at(member_root, f"/circulars/view?id={cid}")
    view = await member_root.get_state(CircularState)
    chained = await CircularState.load.fn(view)
    assert view.found and view.state == "read"
    # Opening marked it read and the unread badge follows within the same event.
    assert chained is None
    assert (await member_root.get_state(AuthState)).unread_circulars == unread_before - 1
    await CircularState.confirm.fn(view)
    assert view.state == "confirmed" and view.confirmed_text and view.error == ""
    # The page after confirming shows what opening the circular afresh shows.
    shown = {k: getattr(view, k) for k in ("state", "confirmed_text", "household_confirmed", "on_behalf", "title")}
    assert (await member_root.get_state(AuthState)).unread_circulars == unread_before - 1
    await CircularState.load.fn(view)
    assert shown == {k: getattr(view, k) for k in shown} and shown["household_confirmed"] is True
    # A second tap (queued before the button went) changes nothing and shows no error beside the thanks.
    notice = view.notice
    await CircularState.confirm.fn(view)
    assert (view.error, view.notice) == ("", notice)
    with session() as s:
        assert s.exec(select(func.count()).select_from(Delivery).where(
            Delivery.circular_id == cid, Delivery.state == "confirmed")).one() == 1


async def test_other_han_and_other_association_cannot_open_it_and_hold_nothing_of_it(demo, root):
    from chiiki.pages.circular_admin import StatusState
    from chiiki.pages.circulars import CircularState, InboxState

    _cs, cid, _ = await compose_and_send(root, demo)
    for login in ("member2@example.jp", "other@example.jp"):
        r = rx.State()
        await login_state(r, login)
        inbox = await r.get_state(InboxState)
        await InboxState.load.fn(inbox)
        assert str(cid) not in [i["id"] for i in inbox.items]
        at(r, f"/circulars/view?id={cid}")
        view = await r.get_state(CircularState)
        await CircularState.load.fn(view)
        assert not view.found and view.error
        at(r, f"/circulars/admin/status?id={cid}")
        ss = await r.get_state(StatusState)
        await StatusState.load.fn(ss)
        assert not ss.found and ss.rows == []
        assert "清掃のお知らせ" not in state_text(r)


async def test_markup_in_a_body_reaches_the_state_only_as_text(demo, root):
    from chiiki.pages.circulars import CircularState

    _cs, cid, _ = await compose_and_send(root, demo, body=EVIL)
    at(root, f"/circulars/view?id={cid}")
    view = await root.get_state(CircularState)
    await CircularState.load.fn(view)
    segs = [s for b in view.blocks for ln in b.lines for s in ln.segs]
    links = [s.href for s in segs if s.kind == "a"]
    assert links == ["https://example.jp/info"]
    assert any(s.kind == "b" and s.text == "太字" for s in segs)
    assert any("<script>" in s.text and s.kind == "text" for s in segs)
    assert "javascript:" not in "".join(links)


async def test_upload_refuses_disguised_and_oversized_files_with_a_message(demo, root):
    from chiiki.pages.circular_admin import ComposeState

    await login_state(root, "kaicho@example.jp")
    cs = await root.get_state(ComposeState)
    await ComposeState.load.fn(cs)
    with session() as s:
        before = s.exec(select(func.count()).select_from(Attachment)).one()
    await ComposeState.upload.fn(cs, [upload_file("setup.pdf", b"MZ\x90\x00" + b"\x00" * 100)])
    assert cs.files == [] and "PDF" in cs.file_error
    await ComposeState.upload.fn(cs, [upload_file("big.pdf", b"%PDF-" + b"0" * (20 * 1024 * 1024))])
    assert cs.files == [] and "10MB" in cs.file_error
    with session() as s:
        assert s.exec(select(func.count()).select_from(Attachment)).one() == before
    await ComposeState.upload.fn(cs, [upload_file("map.pdf", b"%PDF-1.4\n%%EOF\n")])
    assert [f["name"] for f in cs.files] == ["map.pdf"] and cs.file_error == ""


async def test_sent_attachment_is_listed_for_the_member_with_its_private_path(demo, root):
    from chiiki.pages.circulars import CircularState

    files = [upload_file("案内.pdf", b"%PDF-1.4\n%%EOF\n")]
    _cs, cid, _ = await compose_and_send(root, demo, files=files)
    member_root = rx.State()
    await login_state(member_root, "member@example.jp")
    at(member_root, f"/circulars/view?id={cid}")
    view = await member_root.get_state(CircularState)
    await CircularState.load.fn(view)
    assert [f["name"] for f in view.files] == ["案内.pdf"]
    assert view.files[0]["path"].startswith("/files/circular/")


async def test_status_page_records_paper_and_on_behalf_and_exports(demo, root):
    from chiiki.pages.circular_admin import StatusState

    _cs, cid, _ = await compose_and_send(root, demo)
    at(root, f"/circulars/admin/status?id={cid}")
    ss = await root.get_state(StatusState)
    await StatusState.load.fn(ss)
    paper = next(r for r in ss.rows if r["channel"] == "paper")
    digital = next(r for r in ss.rows if r["channel"] == "digital")
    await StatusState.record.fn(ss, paper["id"], "confirmed")
    await StatusState.on_behalf.fn(ss, digital["id"])
    assert ss.counts["paper_confirmed"] == 1 and ss.counts["on_behalf"] == 1 and ss.error == ""
    # The same tap again at once (a double tap): done once, no error beside the notice.
    await StatusState.on_behalf.fn(ss, digital["id"])
    assert ss.error == "" and ss.counts["on_behalf"] == 1
    # Later (another officer's page, or this one after a while): said so.
    ss._last_act = [*ss._last_act[:-1], "0"]
    await StatusState.on_behalf.fn(ss, digital["id"])
    assert ss.error == "すでに確認済みです" and ss.counts["on_behalf"] == 1
    await StatusState.record.fn(ss, paper["id"], "drop table")
    assert ss.counts["paper_confirmed"] == 1
    download = await StatusState.export.fn(ss, "csv")
    assert "download" in str(download).lower()
    await StatusState.filter_rows.fn(ss, {"category": "paper_confirmed", "han": "", "days": ""})
    assert [r["id"] for r in ss.rows] == [paper["id"]]


async def test_member_state_never_holds_other_households_names(demo, root):
    from chiiki.pages.circulars import CircularState, InboxState

    _cs, cid, _ = await compose_and_send(root, demo)
    with session() as s:
        names = [h for h in s.exec(select(Household.head_name).where(
            Household.han_id == demo.han_ids(DemoCity.A1)[0])).all() if h]
    member_root = rx.State()
    await login_state(member_root, "member@example.jp")
    await InboxState.load.fn(await member_root.get_state(InboxState))
    at(member_root, f"/circulars/view?id={cid}")
    await CircularState.load.fn(await member_root.get_state(CircularState))
    text = state_text(member_root)
    own = (await member_root.get_state(CircularState)).title
    assert own == "清掃のお知らせ"
    # The member's own name may be in the tree (the login); nobody else's is.
    from chiiki.models import Account

    with session() as s:
        mine = s.get(Account, demo.account_id("member@example.jp")).name
    assert [n for n in names if n != mine and n in text] == []


async def test_confirming_after_the_session_was_revoked_sends_to_login_and_confirms_nothing(demo, root):
    from chiiki.pages.circulars import CircularState
    from chiiki.services import accounts
    from chiiki.state import AuthState

    _cs, cid, _ = await compose_and_send(root, demo)
    member_root = rx.State()
    await login_state(member_root, "member@example.jp")
    at(member_root, f"/circulars/view?id={cid}")
    view = await member_root.get_state(CircularState)
    await CircularState.load.fn(view)
    assert view.found and view.delivery_id
    accounts.logout((await member_root.get_state(AuthState))._session_token())  # e.g. signed out on another phone
    redirect = await CircularState.confirm.fn(view)
    assert redirect is not None and "/login" in str(redirect)
    with session() as s:
        assert s.exec(select(func.count()).select_from(Delivery).where(
            Delivery.circular_id == cid, Delivery.state == "confirmed")).one() == 0
    opened = await CircularState.load.fn(view)
    assert opened is not None and "/login" in str(opened) and not view.found


async def test_the_status_page_forgets_its_rows_once_the_officer_may_no_longer_see_them(demo, root):
    """A role taken away while the page is open: the next action is refused, and the households shown (names
    and addresses) leave the tab with it, not only at the next page load."""
    from chiiki.models import OfficerRole
    from chiiki.pages.circular_admin import StatusState

    _cs, cid, _ = await compose_and_send(root, demo)
    at(root, f"/circulars/admin/status?id={cid}")
    ss = await root.get_state(StatusState)
    await StatusState.load.fn(ss)
    paper = next(r for r in ss.rows if r["channel"] == "paper")
    assert ss.rows and ss.by_han
    with session() as s:
        for role in s.exec(select(OfficerRole).where(OfficerRole.membership_id.in_(
                [m.membership_id for m in demo.actor("kaicho@example.jp").memberships]))).all():
            role.permissions = "moderate_board"
            s.add(role)
    await StatusState.record.fn(ss, paper["id"], "confirmed")
    assert ss.error and ss.rows == [] and ss.by_han == [] and not ss.found


async def _status_of_a_sent_circular(root, demo):
    """The status page of a circular the 会長 just sent, every member with an email taking circulars by mail."""
    from sqlalchemy import update

    from chiiki.models import Account
    from chiiki.pages.circular_admin import StatusState

    with session() as s:
        s.execute(update(Account).where(Account.email != "").values(email_circulars=True))
    _cs, cid, _ = await compose_and_send(root, demo)
    at(root, f"/circulars/admin/status?id={cid}")
    ss = await root.get_state(StatusState)
    await StatusState.load.fn(ss)
    return ss


def _corrections_and_mails() -> tuple[int, int]:
    from chiiki.models import CircularAmendment, OutboxMail

    with session() as s:
        return (s.exec(select(func.count()).select_from(CircularAmendment)).one(),
                s.exec(select(func.count()).select_from(OutboxMail)).one())


async def test_publishing_a_correction_says_how_many_were_mailed_and_a_second_one_soon_after_mails_nobody(demo, root):
    from chiiki.i18n import tr
    from chiiki.pages.circular_admin import StatusState

    ss = await _status_of_a_sent_circular(root, demo)
    assert ss.may_manage
    written = _corrections_and_mails

    amendments, mails = written()
    await StatusState.amend.fn(ss, {"amendment": "集合は9時です"})
    now_amendments, now_mails = written()
    assert now_amendments == amendments + 1 and now_mails > mails
    assert ss.notice == tr("ja", "circular.amended_done", mails=now_mails - mails) and ss.amend_error == ""
    assert len(ss.amendments) == 1
    # Ten minutes later another: published and shown, and the officer told why nobody was mailed this time.
    await StatusState.amend.fn(ss, {"amendment": "雨天中止"})
    assert written() == (now_amendments + 1, now_mails) and len(ss.amendments) == 2
    assert ss.notice == (tr("ja", "circular.amended_done", mails=0) + " "
                         + tr("ja", "circular.amend_held", n=now_mails - mails))
    # Nothing typed, or not a form: a message under the field, nothing written.
    ss.notice = ""
    await StatusState.amend.fn(ss, {"amendment": "  "})
    assert ss.amend_error and ss.notice == "" and written() == (now_amendments + 1, now_mails)
    await StatusState.amend.fn(ss, "not a form")
    assert ss.amend_error and written() == (now_amendments + 1, now_mails)


async def test_a_double_tap_on_publish_correction_publishes_one_and_keeps_the_first_message(demo, root):
    """The second tap of 訂正を出す, queued before the first one's answer came back, is the same correction: one
    is kept on record, its mails go once, and the page keeps saying how many were mailed."""
    from sqlalchemy import update

    from chiiki.models import CircularAmendment, utcnow
    from chiiki.pages.circular_admin import StatusState

    ss = await _status_of_a_sent_circular(root, demo)
    written = _corrections_and_mails

    before = written()
    await StatusState.amend.fn(ss, {"amendment": "集合は9時です"})
    first_notice, after_first = ss.notice, written()
    assert after_first[0] == before[0] + 1 and after_first[1] > before[1]
    await StatusState.amend.fn(ss, {"amendment": "集合は9時です"})
    assert written() == after_first and ss.notice == first_notice and ss.amend_error == ""
    assert len(ss.amendments) == 1
    # The same words a while later are a correction of their own (said again on purpose).
    with session() as s:
        s.execute(update(CircularAmendment).values(created_at=utcnow() - timedelta(minutes=5)))
    await StatusState.amend.fn(ss, {"amendment": "集合は9時です"})
    assert written()[0] == after_first[0] + 1 and len(ss.amendments) == 2
