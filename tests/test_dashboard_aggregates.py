"""The city dashboard: correct aggregates from GROUP BY queries, a fixed number of queries, city staff only."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import event
from sqlmodel import select

from chiiki.models import (
    Account,
    Association,
    Circular,
    Delivery,
    Han,
    Household,
    Membership,
    Survey,
    SurveyParticipation,
    SurveyTarget,
    utcnow,
)
from chiiki.services import dashboard, db
from chiiki.services.db import session
from chiiki.services.errors import Denied, NotFound
from chiiki.services.policy import ANONYMOUS
from tests.conftest import DemoCity


@pytest.fixture
def exact_rates(monkeypatch):
    """Rates over the one or two households these tests build (the dashboard hides rates over fewer than five:
    test_a_rate_over_fewer_than_five_is_not_shown)."""
    monkeypatch.setattr(dashboard, "SMALL_GROUP", 1)


def _households(aid: int) -> list[Household]:
    with session() as s:
        return list(s.exec(select(Household).where(Household.association_id == aid).order_by(Household.id)).all())


def _members(aid: int) -> list[Membership]:
    with session() as s:
        return list(s.exec(select(Membership).where(Membership.association_id == aid,
                                                    Membership.status == "active")).all())


def circular(aid: int, states: list[tuple[int, str]], *, sent_days_ago: int = 1, extra_rows: int = 0) -> int:
    """A sent circular with one delivery per (household, state); extra rows add a second, unread member row."""
    with session() as s:
        c = Circular(association_id=aid, title="回覧", status="sent", sent_at=utcnow() - timedelta(days=sent_days_ago))
        s.add(c)
        s.flush()
        others = s.exec(select(Account.id).order_by(Account.id).limit(extra_rows)).all()
        for i, (hid, state) in enumerate(states):
            s.add(Delivery(circular_id=c.id, household_id=hid, account_id=None, state=state,
                           channel="paper" if i % 2 else "digital"))
            if i < extra_rows:
                # A second member of the same household who did not read: the household still counts as read.
                s.add(Delivery(circular_id=c.id, household_id=hid, account_id=others[i], state="unread"))
        return c.id


def test_rates_count_each_household_once_per_circular(demo, exact_rates):
    aid = demo.association_id(DemoCity.A1)
    hh = [h.id for h in _households(aid)]
    circular(aid, [(hh[0], "confirmed"), (hh[1], "read"), (hh[2], "unread"), (hh[3], "read")], extra_rows=2)
    circular(aid, [(hh[0], "unread"), (hh[1], "confirmed")])
    circular(aid, [(hh[0], "confirmed")], sent_days_ago=500)  # outside the 12 months
    d = dashboard.dashboard(demo.actor("city@example.jp"))
    row = next(r for r in d.associations if r.id == aid)
    # 6 household deliveries: read 4 (incl. confirmed), confirmed 2.
    assert (row.circulars, row.read_rate, row.confirm_rate) == (2, round(100 * 4 / 6, 1), round(100 * 2 / 6, 1))
    other = next(r for r in d.associations if r.id != aid)
    assert other.circulars == 0 and other.read_rate is None
    assert d.overview.read_rate == row.read_rate and d.overview.circulars == 2


def test_households_members_and_digital_share_match_the_rows(demo):
    d = dashboard.dashboard(demo.actor("city@example.jp"))
    with session() as s:
        assocs = s.exec(select(Association.id)).all()
        for aid in assocs:
            hh = s.exec(select(Household).where(Household.association_id == aid, Household.removed_at.is_(None))).all()
            members = {m.household_id for m in s.exec(select(Membership).where(Membership.association_id == aid,
                                                                                Membership.status == "active")).all()}
            row = next(r for r in d.associations if r.id == aid)
            assert row.households == len(hh)
            assert row.member_households == len({h.id for h in hh} & members)
            assert row.digital_share == dashboard.rate(sum(not h.paper_only for h in hh), len(hh))
    assert d.overview.associations == 3 and d.overview.households == 200
    assert d.overview.member_households == sum(r.member_households for r in d.associations)


def test_survey_participation_uses_the_target_han_and_per_household_surveys(demo):
    aid = demo.association_id(DemoCity.A1)
    han1 = demo.han_ids(DemoCity.A1)[0]
    now = utcnow()
    with session() as s:
        rows = s.exec(select(Membership, Household.han_id).join(Household, Household.id == Membership.household_id)
                      .where(Membership.association_id == aid, Membership.status == "active")).all()
        in_han1 = [m for m, h in rows if h == han1]
        sv = Survey(association_id=aid, title="出欠", deadline=now + timedelta(days=3), target_all=False,
                    created_at=now - timedelta(days=1))
        s.add(sv)
        s.flush()
        s.add(SurveyTarget(survey_id=sv.id, han_id=han1))
        for m in in_han1[:3]:
            s.add(SurveyParticipation(survey_id=sv.id, account_id=m.account_id, household_id=m.household_id,
                                      answered_on=now.date()))
    d = dashboard.dashboard(demo.actor("city@example.jp"))
    row = next(r for r in d.associations if r.id == aid)
    assert row.survey_rate == dashboard.rate(3, len({m.account_id for m in in_han1}))
    assert [m.survey_rate for m in d.months] == [row.survey_rate]


def test_monthly_series_for_the_city_and_for_one_association(demo, exact_rates):
    a1, a3 = demo.association_id(DemoCity.A1), demo.association_id(DemoCity.A3)
    h1, h3 = _households(a1)[0].id, _households(a3)[0].id
    circular(a1, [(h1, "read")], sent_days_ago=1)
    circular(a1, [(h1, "unread")], sent_days_ago=70)
    circular(a3, [(h3, "confirmed")], sent_days_ago=1)
    staff = demo.actor("city@example.jp")
    city = dashboard.dashboard(staff).months
    assert [m.circulars for m in city] == [1, 2] and city[-1].read_rate == 100.0 and city[0].read_rate == 0.0
    one = dashboard.dashboard(staff, association_id=str(a3)).months
    assert [(m.circulars, m.confirm_rate) for m in one] == [(1, 100.0)]
    with pytest.raises(NotFound):
        dashboard.dashboard(staff, association_id=999999)


def test_one_associations_series_is_what_the_whole_dashboard_gives_for_it(demo, exact_rates):
    """association_months reads one association's rows only; it must give what the city-wide computation gives
    for that association: circulars by month, and survey participation with han targets and per-household."""
    a1, a3 = demo.association_id(DemoCity.A1), demo.association_id(DemoCity.A3)
    h1, h3 = _households(a1), _households(a3)
    circular(a1, [(h1[0].id, "read"), (h1[1].id, "confirmed")], sent_days_ago=1, extra_rows=1)
    circular(a1, [(h1[0].id, "unread")], sent_days_ago=70)
    circular(a3, [(h3[0].id, "confirmed")], sent_days_ago=40)
    now = utcnow()
    with session() as s:
        for aid, han, per_household, answered in ((a1, demo.han_ids(DemoCity.A1)[0], False, 2),
                                                   (a1, None, True, 1), (a3, None, False, 1)):
            sv = Survey(association_id=aid, title="出欠", deadline=now + timedelta(days=3), target_all=han is None,
                        per_household=per_household, created_at=now - timedelta(days=2),
                        answered_accounts=answered, answered_households=answered)
            s.add(sv)
            s.flush()
            if han is not None:
                s.add(SurveyTarget(survey_id=sv.id, han_id=han))
    staff = demo.actor("city@example.jp")
    with session() as s:
        every = s.exec(select(Association.id)).all()
    assert len(every) > 2
    for aid in every:
        whole = dashboard.dashboard(staff, association_id=aid).months
        assert dashboard.association_months(staff, str(aid)) == whole
    assert [m.circulars for m in dashboard.association_months(staff, a1)] == [1, 1]
    assert dashboard.association_months(staff, a1)[-1].survey_rate is not None
    for missing in (None, "", 999999):
        with pytest.raises(NotFound):
            dashboard.association_months(staff, missing)
    with pytest.raises(Denied):
        dashboard.association_months(demo.actor("kaicho@example.jp"), a1)


def test_the_dashboard_runs_a_fixed_number_of_queries_however_many_associations(demo):
    staff = demo.actor("city@example.jp")

    def queries() -> int:
        seen = []
        listener = lambda *args: seen.append(1)  # noqa: E731
        event.listen(db.engine(), "before_cursor_execute", listener)
        try:
            dashboard.dashboard(staff)
        finally:
            event.remove(db.engine(), "before_cursor_execute", listener)
        return len(seen)

    before = queries()
    area = demo_area_id()
    with session() as s:
        for i in range(25):
            a = Association(name=f"追加町内会{i}", area_id=area)
            s.add(a)
            s.flush()
            han = Han(association_id=a.id, name="1班")
            s.add(han)
            s.flush()
            s.add(Household(association_id=a.id, han_id=han.id, address=f"住所{i}"))
    assert queries() == before


def demo_area_id() -> int:
    with session() as s:
        return s.exec(select(Association.area_id)).first()


@pytest.mark.parametrize("login", [None, "member@example.jp", "kaicho@example.jp", "kaikei@example.jp"])
def test_only_city_staff_see_the_dashboard(demo, login):
    actor = ANONYMOUS if login is None else demo.actor(login)
    with pytest.raises(Denied):
        dashboard.dashboard(actor)


def test_dashboard_results_carry_no_personal_field(demo):
    d = dashboard.dashboard(demo.actor("city@example.jp"))
    text = repr(d)
    with session() as s:
        people = s.exec(select(Household.head_name, Household.address)).all()
    assert people and not any(name in text or address in text for name, address in people)


def test_city_queries_run_on_postgresql(pg_url, exact_rates):
    """Month grouping, insert-or-ignore and the reach count use dialect-specific SQL: run them on PostgreSQL."""
    import os

    from sqlmodel import SQLModel

    from chiiki import settings as settings_module
    from chiiki.models import Area, Department, Inquiry
    from chiiki.services import inquiries, notices
    from chiiki.services.policy import Actor

    previous = os.environ["REFLEX_DB_URL"]
    os.environ["REFLEX_DB_URL"] = pg_url
    settings_module.reload()
    try:
        SQLModel.metadata.create_all(db.engine(pg_url))
        with session() as s:
            area = Area(name="市", level="city")
            s.add(area)
            s.flush()
            staff_acc = Account(login_id="staff@example.jp", is_city_staff=True, area_id=area.id, birth_year=1950,
                                email="staff@example.jp", email_notices=True)
            a = Association(name="町内会", area_id=area.id)
            s.add_all([staff_acc, a, Department(name="課", email="ka@example.jp")])
            s.flush()
            h = Household(association_id=a.id, address="住所")
            s.add(h)
            s.flush()
            c = Circular(association_id=a.id, title="回覧", status="sent", sent_at=utcnow())
            s.add(c)
            s.flush()
            s.add(Delivery(circular_id=c.id, household_id=h.id, state="confirmed"))
            staff_id, dept_id = staff_acc.id, s.exec(select(Department.id)).one()
        staff = Actor(account_id=staff_id, is_city_staff=True)
        d = dashboard.dashboard(staff)
        assert d.associations[0].confirm_rate == 100.0 and len(d.months) == 1
        _month_boundary(a.id, h.id, staff)
        assert dashboard.dashboard(staff, association_id=d.associations[0].id).months[0].circulars == 1
        result = notices.publish(staff, {"title": "t", "body": "b", "bands": ["age_65_plus"]})
        assert result.reach == 1 and result.mailed == 1  # psycopg gives no row count for INSERT … SELECT
        notices.mark_read(staff, result.notice_id)
        notices.mark_read(staff, result.notice_id)
        assert notices.feed(staff).unread == 0
        receipt = inquiries.submit(staff, {"department_id": dept_id, "sender_name": "名前", "sender_contact": "a@b.jp",
                                           "subject": "件名", "body": "本文"})
        with session() as s:
            assert s.exec(select(Inquiry.body).where(Inquiry.reference == receipt.reference)).one() == ""
        assert inquiries.purge_expired(force=True) is not None
    finally:
        os.environ["REFLEX_DB_URL"] = previous
        settings_module.reload()


def _month_boundary(aid: int, household_id: int, staff) -> None:
    """A circular sent at 00:30 on 1 February in the city (15:30 UTC on 31 January) belongs to February."""
    from datetime import datetime, timezone

    with session() as s:
        c = Circular(association_id=aid, title="境目", status="sent",
                     sent_at=datetime(2025, 1, 31, 15, 30, tzinfo=timezone.utc))
        s.add(c)
        s.flush()
        s.add(Delivery(circular_id=c.id, household_id=household_id, state="read"))
    d = dashboard.dashboard(staff, association_id=aid, now=datetime(2025, 2, 10, tzinfo=timezone.utc))
    months = {m.month: (m.circulars, m.read_rate) for m in d.months}
    assert months["2025-02"] == (1, 100.0) and "2025-01" not in months


def test_months_are_the_citys_months(demo, exact_rates):
    a1 = demo.association_id(DemoCity.A1)
    _month_boundary(a1, _households(a1)[0].id, demo.actor("city@example.jp"))


def test_a_rate_over_fewer_than_five_is_not_shown(demo):
    """A safety check sent to a han of one household: its participation rate would tell city staff whether that
    one person answered; a circular's read rate over one household, whether they read it."""
    a1 = demo.association_id(DemoCity.A1)
    hid, _sid = _safety_check_of_one_household(a1)
    c = circular(a1, [(hid, "read")])
    with session() as s:
        s.get(Circular, c).household_count, s.get(Circular, c).read_households = 1, 1
    staff = demo.actor("city@example.jp")
    # Neither is shown anywhere, nor counted in a total it could be worked out from (the next test).
    assert dashboard.association_months(staff, a1) == []
    row = next(r for r in dashboard.dashboard(staff).associations if r.id == a1)
    assert (row.circulars, row.read_rate, row.survey_rate) == (0, None, None)
    assert dashboard.rate(1, 4) is None and dashboard.rate(0, 5) == 0.0 and dashboard.rate(5, 5) == 100.0


def _safety_check_of_one_household(aid: int, answered: bool = False) -> tuple[int, int]:
    """A han of one household with one active member, and a safety check sent to that han: (household, survey)."""
    now = utcnow()
    with session() as s:
        han = Han(association_id=aid, name="小班", route_order=99)
        s.add(han)
        s.flush()
        hh = s.exec(select(Household).join(Membership, Membership.household_id == Household.id)
                    .where(Household.association_id == aid, Membership.status == "active")).first()
        members = s.exec(select(Membership).where(Membership.household_id == hh.id,
                                                  Membership.status == "active")).all()
        assert len(members) == 1
        hh.han_id = han.id
        s.add(hh)
        sv = Survey(association_id=aid, title="安否確認", kind="safety", target_all=False,
                    deadline=now + timedelta(days=1), created_at=now - timedelta(hours=1))
        s.add(sv)
        s.flush()
        s.add(SurveyTarget(survey_id=sv.id, han_id=han.id))
        if answered:
            s.add(SurveyParticipation(survey_id=sv.id, account_id=members[0].account_id, household_id=hh.id,
                                      answered_on=now.date()))
        return hh.id, sv.id


@pytest.mark.parametrize("did", ["nothing", "read and answered"])
def test_a_hidden_figure_cannot_be_worked_out_from_the_totals(demo, did):
    """A circular to one household and a safety check of one household are hidden in their own month, and left
    out of the association's 12 months and of the city's figures too: otherwise the difference between those
    and the months shown would tell whether that one household read it and answered. Every figure is the same
    whatever that household did."""
    a1 = demo.association_id(DemoCity.A1)
    hh = [h.id for h in _households(a1)]
    circular(a1, [(h, "read") for h in hh[:5]], sent_days_ago=70)  # five households: shown
    now = utcnow()
    with session() as s:  # a survey of the whole association: shown
        s.add(Survey(association_id=a1, title="総会", deadline=now + timedelta(days=3),
                     created_at=now - timedelta(days=70), answered_accounts=10))
    hid, _sid = _safety_check_of_one_household(a1, answered=did != "nothing")
    circular(a1, [(hid, "read" if did != "nothing" else "unread")], sent_days_ago=1)
    staff = demo.actor("city@example.jp")
    d = dashboard.dashboard(staff)
    row = next(r for r in d.associations if r.id == a1)
    months = dashboard.association_months(staff, a1)
    assert (row.circulars, row.read_rate) == (1, 100.0)
    assert (d.overview.circulars, d.overview.read_rate) == (1, 100.0)
    assert [(m.circulars, m.read_rate) for m in months] == [(1, 100.0)] == [(m.circulars, m.read_rate)
                                                                              for m in d.months]
    assert row.survey_rate == d.overview.survey_rate == months[0].survey_rate == dashboard.rate(
        10, len(_members(a1)))


def test_an_association_of_fewer_than_five_households_shows_no_household_counts(demo):
    """Its member households over its households is the digital share, hidden for fewer than five: neither
    count is shown, and neither is in the city's totals (the difference would give them)."""
    before = dashboard.dashboard(demo.actor("city@example.jp")).overview
    with session() as s:
        a = Association(name="小さな町内会", area_id=s.exec(select(Association.area_id)).first())
        s.add(a)
        s.flush()
        s.add_all([Household(association_id=a.id, address=f"住所{i}", paper_only=i == 0) for i in range(3)])
        aid = a.id
    d = dashboard.dashboard(demo.actor("city@example.jp"))
    row = next(r for r in d.associations if r.id == aid)
    assert (row.households, row.member_households, row.digital_share) == (None, None, None)
    o = d.overview
    assert (o.associations, o.households, o.member_households, o.digital_households, o.digital_share) == (
        before.associations + 1, before.households, before.member_households, before.digital_households,
        before.digital_share)
