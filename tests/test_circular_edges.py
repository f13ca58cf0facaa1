"""Circulars at their edges: a household whose last member goes while a circular travels gets it on paper."""

from __future__ import annotations

from datetime import timedelta

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
