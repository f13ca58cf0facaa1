"""Circulars at their edges: a household whose last member goes while a circular travels gets it on paper."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import select

from chiiki.models import Circular, Delivery, Household, utcnow
from chiiki.services import circulars, membership
from chiiki.services.db import session
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
    read = send_to(demo, han_nos=(1,))
    circulars.open_circular(demo.actor("member@example.jp"), read.circular_id)
    past = send_to(demo, han_nos=(1,), title="先月の回覧")
    other_han = send_to(demo, han_nos=(2,), title="2班だけ")
    with session() as s:
        c = s.get(Circular, past.circular_id)
        c.sent_at = utcnow() - timedelta(days=circulars.TRAVELLING_DAYS + 1)
        s.add(c)
    hid = _member_household(demo, "member@example.jp")
    membership.leave(demo.actor("member@example.jp"), demo.association_id(DemoCity.A1))
    for cid in (read.circular_id, past.circular_id, other_han.circular_id):
        assert _paper_rows(cid, hid) == [], cid


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
