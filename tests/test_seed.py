"""The demo city as the run command creates it: every feature's content seeds together, once."""

from sqlalchemy import func
from sqlmodel import select

from chiiki.models import BoardThread, Circular, Delivery, Household, Membership, Notice, Survey
from chiiki.seed import seed_demo
from chiiki.services import accounts, circulars
from chiiki.services.db import session


def count(model, *where) -> int:
    with session() as s:
        return s.exec(select(func.count()).select_from(model).where(*where)).one()


def test_full_demo_city_has_content_of_every_feature(demo_full):
    assert count(Household) == 200
    assert 0 < count(Household, Household.paper_only.is_(True)) < 200
    for model in (Circular, Delivery, Survey, BoardThread, Notice):
        assert count(model) > 0, model.__name__
    assert count(Membership, Membership.status == "pending") >= 1
    member = demo_full.actor("member@example.jp")
    assert circulars.unread_count(member, demo_full.association_id(demo_full.A1)) >= 1


def test_seeding_twice_adds_nothing(demo_full):
    before = count(Circular)
    assert seed_demo() is None
    assert count(Circular) == before


def test_every_demo_login_works(demo_full):
    from chiiki.seed import DEMO_LOGINS, DEMO_PASSWORD

    for login, _who in DEMO_LOGINS:
        assert accounts.login(login, DEMO_PASSWORD).token
