"""Circulars at their edges: a household whose last member goes while a circular travels gets it on paper."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import select

from chiiki.models import Account, Circular, Delivery, Household, utcnow
from chiiki.services import circulars, membership
from chiiki.services.db import session
from chiiki.services.errors import ServiceError
from tests.conftest import DemoCity
from tests.test_circular_services import send_to


def _member_household(demo, login: str) -> int:
    return demo.actor(login).membership(demo.association_id(DemoCity.A1)).household_id


def _paper_rows(circular_id: int, household_id: int) -> list[Delivery]:
    with session() as s:
        return list(s.exec(select(Delivery).where(Delivery.circular_id == circular_id,
                                                  Delivery.household_id == household_id,
                                                  Delivery.channel == "paper")).all())


def _counters(circular_id: int) -> tuple[int, int, int]:
    with session() as s:
        c = s.get(Circular, circular_id)
        return c.household_count, c.read_households, c.confirmed_households


def _read_and_finished(demo) -> tuple[int, int]:
    """Two circulars sent to 1班 that no household should get on paper any more: one the member read, one sent
    longer ago than a circular travels."""
    read = send_to(demo, han_nos=(1,), title="読んだ回覧").circular_id
    circulars.open_circular(demo.actor("member@example.jp"), read)
    past = send_to(demo, han_nos=(1,), title="先月の回覧").circular_id
    with session() as s:
        c = s.get(Circular, past)
        c.sent_at = utcnow() - timedelta(days=circulars.TRAVELLING_DAYS + 1)
        s.add(c)
    return read, past


def test_a_household_left_without_members_gets_the_travelling_circular_on_paper(demo):
    """The member of 1班 moves away and leaves the association; their household stays on the roster (paper
    only). The circular sent yesterday still travels: 1班's print sheet must list that household."""
    res = send_to(demo, han_nos=(1,), due_date=(utcnow() + timedelta(days=7)).date().isoformat())
    hid = _member_household(demo, "member@example.jp")
    before = _counters(res.circular_id)
    kaicho = demo.actor("kaicho@example.jp")
    sheet = circulars.print_sheet(kaicho, res.circular_id)
    n_before = len(sheet.rows)
    membership.leave(demo.actor("member@example.jp"), demo.association_id(DemoCity.A1))
    with session() as s:
        hh = s.get(Household, hid)
    assert hh.paper_only
    assert len(_paper_rows(res.circular_id, hid)) == 1
    sheet = circulars.print_sheet(kaicho, res.circular_id)
    assert len(sheet.rows) == n_before + 1 and hh.address in {r.address for r in sheet.rows}
    # The household was counted already (its member's delivery): no household more, none read.
    assert _counters(res.circular_id) == before


def test_a_household_whose_member_read_it_or_a_finished_circular_gets_no_paper(demo):
    read, past = _read_and_finished(demo)
    other_han = send_to(demo, han_nos=(2,), title="2班だけ")
    hid = _member_household(demo, "member@example.jp")
    membership.leave(demo.actor("member@example.jp"), demo.association_id(DemoCity.A1))
    for cid in (read, past, other_han.circular_id):
        assert _paper_rows(cid, hid) == [], cid


def test_a_household_that_asks_for_paper_copies_gets_the_travelling_circulars_on_paper(demo):
    """The member's family wants the circulars on paper too (an elderly parent without a phone): the officer
    ticks 紙の回覧も届ける. The circular that still travels, which nobody of the household has opened, goes on 1班's
    paper round at once; one a member already read, and one long finished, do not."""
    from chiiki.services import roster

    travelling = send_to(demo, han_nos=(1,), due_date=(utcnow() + timedelta(days=7)).date().isoformat())
    read, past = _read_and_finished(demo)
    hid = _member_household(demo, "member@example.jp")
    with session() as s:
        hh = s.get(Household, hid)
    assert not hh.paper_only and not hh.paper_copy
    kaicho = demo.actor("kaicho@example.jp")
    n_before = len(circulars.print_sheet(kaicho, travelling.circular_id).rows)
    before = _counters(travelling.circular_id)
    edit = {"han_id": str(hh.han_id), "route_position": "", "address": hh.address, "note": hh.note}
    roster.save_household(kaicho, demo.association_id(DemoCity.A1), {**edit, "paper_copy": "on"}, hid)
    assert len(_paper_rows(travelling.circular_id, hid)) == 1
    sheet = circulars.print_sheet(kaicho, travelling.circular_id)
    assert len(sheet.rows) == n_before + 1 and hh.address in {r.address for r in sheet.rows}
    assert _counters(travelling.circular_id) == before  # the same household, reached no more than before
    assert _paper_rows(read, hid) == [] and _paper_rows(past, hid) == []
    # Saved again (or the tick taken off and put back): no second paper copy.
    roster.save_household(kaicho, demo.association_id(DemoCity.A1), {**edit, "paper_copy": "on"}, hid)
    roster.save_household(kaicho, demo.association_id(DemoCity.A1), edit, hid)
    roster.save_household(kaicho, demo.association_id(DemoCity.A1), {**edit, "paper_copy": "on"}, hid)
    assert len(_paper_rows(travelling.circular_id, hid)) == 1


@pytest.mark.postgres
def test_a_send_and_the_last_member_leaving_at_once_still_reach_the_household_on_paper(pg_app_db, monkeypatch):
    """PostgreSQL: the send has written its deliveries (the member's digital one) but not committed when the
    member leaves. The household must end with a paper copy of that circular, whichever commits first."""
    import threading

    from chiiki.seed import seed_demo

    seed_demo()
    demo = DemoCity()
    aid = demo.association_id(DemoCity.A1)
    member = demo.actor("member@example.jp")
    hid = member.membership(aid).household_id
    fanned, go = threading.Event(), threading.Event()
    real = circulars._notify

    def notify(*a, **k):
        fanned.set()
        assert go.wait(20)
        return real(*a, **k)

    monkeypatch.setattr(circulars, "_notify", notify)
    out: dict = {}
    data = {"title": "回覧", "body": "本文", "due_date": (utcnow() + timedelta(days=7)).date().isoformat(),
            "target_all": True, "han_ids": []}
    send = threading.Thread(target=lambda: out.setdefault(
        "sent", circulars.send(demo.actor("kaicho@example.jp"), aid, data)))
    send.start()
    assert fanned.wait(20)
    leave = threading.Thread(target=lambda: out.setdefault("left", membership.leave(member, aid)))
    leave.start()
    leave.join(1.0)
    go.set()
    send.join(20)
    leave.join(20)
    cid = out["sent"].circular_id
    assert _paper_rows(cid, hid), "the household left without members got no paper copy"
    with session() as s:
        hh = s.get(Household, hid)
    sheet = circulars.print_sheet(demo.actor("kaicho@example.jp"), cid, hh.han_id)
    assert hh.paper_only and hh.address in {r.address for r in sheet.rows}


def test_a_household_moved_to_another_han_gets_its_paper_copy_in_the_han_it_was_sent_through(demo):
    """Sent to everyone; the roster then moves the member's household from 1班 to 2班 and the member leaves: the
    paper copy is 1班's to carry (the 1班 班長 records it), not split between two han."""
    from sqlalchemy import update

    a1 = demo.association_id(DemoCity.A1)
    h1, h2 = demo.han_ids(DemoCity.A1)[:2]
    kaicho = demo.actor("kaicho@example.jp")
    cid = circulars.send(kaicho, a1, {"title": "全体", "body": "x", "target_all": True}).circular_id
    hid = _member_household(demo, "member@example.jp")
    with session() as s:
        s.execute(update(Household).where(Household.id == hid).values(han_id=h2))
    membership.leave(demo.actor("member@example.jp"), a1)
    with session() as s:
        hans = set(s.exec(select(Delivery.han_id).where(Delivery.circular_id == cid,
                                                        Delivery.household_id == hid)).all())
    assert hans == {h1}
    assert circulars.record_paper(demo.actor("hancho@example.jp"), cid, hid, "delivered") == "paper_delivered"


def test_the_read_list_names_only_members_and_no_household_taken_off_the_roster(demo):
    from chiiki.services import roster

    a1 = demo.association_id(DemoCity.A1)
    kaicho = demo.actor("kaicho@example.jp")
    cid = circulars.send(kaicho, a1, {"title": "全体", "body": "x", "target_all": True}).circular_id
    member = demo.actor("member@example.jp")
    hid = _member_household(demo, "member@example.jp")
    with session() as s:
        name = s.exec(select(Account.name).where(Account.id == member.account_id)).one()
        hh = s.get(Household, hid)
    membership.leave(member, a1)
    csv_text = circulars.export_readlist(kaicho, cid, "csv").data.decode("utf-8-sig")
    # Their own (digital) row is no longer named (it was); the household's paper row, added when they left,
    # carries the roster's representative (here still their name): once, not twice.
    mine = [line.split(",") for line in csv_text.splitlines() if line.startswith(f"1班,{hh.route_position + 1},")]
    assert sorted((cells[4], cells[2]) for cells in mine) == [("紙", name), ("電子", "")]
    roster.remove_household(kaicho, hid)
    csv_text = circulars.export_readlist(kaicho, cid, "csv").data.decode("utf-8-sig")
    assert hh.address not in csv_text
    page = circulars.households(kaicho, cid, page_size=100)
    (row,) = [r for r in page.rows if r.household_id == hid]
    assert (row.removed, row.name, row.address, row.route_position) == (True, "", "", 0)
    late = circulars.households(kaicho, cid, not_reached_days=0, page_size=100)
    assert hid not in {r.household_id for r in late.rows}
    with pytest.raises(ServiceError) as e:
        circulars.record_paper(kaicho, cid, hid, "delivered")
    assert e.value.key == "circular.error_household_removed"
    with session() as s:
        gone = s.get(Household, hid)
    assert (gone.head_name, gone.head_kana, gone.phone, gone.note) == ("", "", "", "")


async def test_an_officer_who_only_exports_reads_the_status_and_exports_its_read_list(demo, app_state):
    """The 会計 (view_members, export; no send_circulars) sees the sent list: its links open the status page,
    read only (no reminders, print or paper records), with the read list to download."""
    from chiiki.pages.circular_admin import StatusState
    from tests.conftest import login_state
    from tests.test_circular_states import at

    a1 = demo.association_id(DemoCity.A1)
    cid = circulars.send(demo.actor("kaicho@example.jp"), a1,
                         {"title": "全体", "body": "x", "target_all": True}).circular_id
    kaikei = demo.actor("kaikei@example.jp")
    st = circulars.status(kaikei, cid)
    assert (st.may_act, st.may_manage, st.may_export) == (False, False, True)
    assert circulars.households(kaikei, cid, page_size=10).rows
    await login_state(app_state, "kaikei@example.jp")
    at(app_state, f"/circulars/admin/status?id={cid}")
    page = await app_state.get_state(StatusState)
    await StatusState.load.fn(page)
    assert page.found and not page.may_act and page.rows
    with pytest.raises(Exception):
        circulars.renotify(kaikei, cid)


@pytest.mark.postgres
def test_linking_a_member_elsewhere_and_a_roster_change_at_once_do_not_deadlock(pg_app_db, monkeypatch):
    """PostgreSQL: an officer links a member to another household (their old one becomes paper-only, and gets
    paper copies under the association's lock) while another moves that old household on the route (the
    roster's lock, then the household's row). Each must wait for the other, not deadlock."""
    import threading
    import time

    from sqlalchemy import func

    from chiiki.models import Membership
    from chiiki.seed import seed_demo
    from chiiki.services import roster

    seed_demo(content=False)
    demo = DemoCity()
    a1, kaicho = demo.association_id(DemoCity.A1), demo.actor("kaicho@example.jp")
    with session() as s:
        for mid, hid in s.exec(select(Membership.id, Membership.household_id).where(
                Membership.association_id == a1, Membership.status == "active",
                Membership.household_id.is_not(None))).all():
            if s.exec(select(func.count()).select_from(Membership).where(
                    Membership.household_id == hid, Membership.status == "active")).one() == 1:
                break
        target = s.exec(select(Household.id).where(Household.association_id == a1, Household.paper_only.is_(True),
                                                   Household.removed_at.is_(None), Household.id != hid)).first()
    real, out = circulars.paper_for_new_paper_household, {}

    def mover():
        try:
            roster.move_household(kaicho, hid, "down")
            out["move"] = "ok"
        except Exception as e:  # noqa: BLE001 (the deadlock's error is the failure)
            out["move"] = repr(e)[:200]

    def paper_after_a_pause(s, household, now=None):
        s.flush()
        out["thread"] = threading.Thread(target=mover)
        out["thread"].start()
        time.sleep(1.0)
        return real(s, household, now)

    monkeypatch.setattr(circulars, "paper_for_new_paper_household", paper_after_a_pause)
    roster.link_household(kaicho, target, mid)
    out["thread"].join(30)
    assert out["move"] == "ok", out
