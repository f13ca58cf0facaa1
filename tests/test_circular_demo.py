"""The demo circulars seed cleanly into the demo city and keep the ledger consistent."""

from __future__ import annotations

from sqlmodel import select

from chiiki.demo_circular import seed_demo_content
from chiiki.models import Account, Association, Circular, Han
from chiiki.seed import DemoIds
from chiiki.services import circulars
from chiiki.services.db import session
from tests.conftest import DemoCity


def demo_ids() -> DemoIds:
    ids = DemoIds()
    with session() as s:
        ids.associations = list(s.exec(select(Association.id).order_by(Association.id)).all())
        for aid in ids.associations:
            ids.han[aid] = list(s.exec(select(Han.id).where(Han.association_id == aid).order_by(Han.route_order)))
        kaicho = s.exec(select(Account.id).where(Account.login_id == "kaicho@example.jp")).one()
        ids.officers["kaicho@example.jp"] = kaicho
    return ids


def test_demo_circulars_have_consistent_counts_and_an_unread_one_for_the_member(demo):
    with session() as s:
        before = len(s.exec(select(Circular.id)).all())
        seed_demo_content(s, demo_ids())
    a1 = demo.association_id(DemoCity.A1)
    kaicho = demo.actor("kaicho@example.jp")
    sent = circulars.sent_list(kaicho, a1, page_size=100)
    assert sent.total >= 4
    with session() as s:
        assert len(s.exec(select(Circular.id)).all()) == before + 4 + 2 + 2
    for item in sent.items:
        st = circulars.status(kaicho, item.id)
        assert st.households == item.households and sum(st.counts.values()) == st.households
    assert circulars.unread_count(demo.actor("member@example.jp"), a1) >= 1
    assert circulars.inbox(demo.actor("member2@example.jp"), a1).total >= 3
