"""The city's pages through the state tree: staff get aggregates only; everyone else gets nothing."""

from __future__ import annotations

import pytest
from sqlmodel import select

from chiiki.models import Account, Household
from chiiki.services.db import session
from tests.conftest import login_state, state_text


def _people() -> list[str]:
    """Every demo member's name and address (and every household's), the strings that must never leak."""
    with session() as s:
        accounts = s.exec(select(Account.name, Account.address).where(Account.is_city_staff.is_(False))).all()
        households = s.exec(select(Household.head_name, Household.address)).all()
    return sorted({v for pair in [*accounts, *households] for v in pair if v})


async def _load_city_pages(root):
    from chiiki.pages.dashboard import DashboardState
    from chiiki.pages.inquiry import InquiryAdminState
    from chiiki.pages.notices import NoticeAdminState

    dash = await root.get_state(DashboardState)
    await DashboardState.load.fn(dash)
    first = dash.rows[0]["id"]
    await DashboardState.select.fn(dash, first)
    await DashboardState.set_sort.fn(dash, "read_rate")
    notice_admin = await root.get_state(NoticeAdminState)
    await NoticeAdminState.load.fn(notice_admin)
    await NoticeAdminState.preview.fn(notice_admin, {"title": "お知らせ", "body": "本文", "everyone": "on"})
    inquiry_admin = await root.get_state(InquiryAdminState)
    await InquiryAdminState.load.fn(inquiry_admin)
    return dash, notice_admin, inquiry_admin


async def test_city_staff_pages_never_hold_a_members_name_or_address(demo, app_state):
    await login_state(app_state, "city@example.jp")
    dash, notice_admin, inquiry_admin = await _load_city_pages(app_state)
    assert dash.overview["associations"] == "3" and len(dash.rows) == 3 and dash.selected_name
    assert notice_admin.confirming and int(notice_admin.confirm_reach.removeprefix("約 ")) > 100
    assert len(inquiry_admin.departments) == 3
    text = state_text(app_state)
    leaked = [p for p in _people() if p in text]
    assert leaked == []


@pytest.mark.parametrize("login", ["member@example.jp", "kaicho@example.jp", "hancho@example.jp"])
async def test_residents_and_officers_get_a_refusal_and_no_figures(demo, app_state, login):
    from chiiki.pages.dashboard import DashboardState
    from chiiki.pages.inquiry import InquiryAdminState
    from chiiki.pages.notices import NoticeAdminState

    await login_state(app_state, login)
    dash = await app_state.get_state(DashboardState)
    await DashboardState.load.fn(dash)
    await DashboardState.select.fn(dash, "1")
    assert dash.error and dash.overview == {} and dash.rows == [] and dash.months == []
    admin = await app_state.get_state(NoticeAdminState)
    await NoticeAdminState.load.fn(admin)
    await NoticeAdminState.preview.fn(admin, {"title": "t", "body": "b", "everyone": "on"})
    await NoticeAdminState.publish.fn(admin)
    assert admin.error and admin.rows == [] and not admin.confirming and admin.area_options == []
    inq = await app_state.get_state(InquiryAdminState)
    await InquiryAdminState.load.fn(inq)
    await InquiryAdminState.retry.fn(inq, "1")
    assert inq.error and inq.departments == [] and inq.undelivered == [] and inq.receipts == []


async def test_visitors_are_sent_to_the_login_page(demo, app_state):
    from chiiki.pages.dashboard import DashboardState
    from chiiki.pages.inquiry import InquiryAdminState
    from chiiki.pages.notices import NoticeAdminState, NoticeFeedState

    for cls in (DashboardState, NoticeAdminState, InquiryAdminState, NoticeFeedState):
        state = await app_state.get_state(cls)
        result = await cls.load.fn(state)
        assert "/login" in str(result), cls.__name__


async def test_dashboard_handlers_ignore_foreign_payloads(demo, app_state):
    from chiiki.pages.dashboard import DashboardState

    await login_state(app_state, "city@example.jp")
    dash = await app_state.get_state(DashboardState)
    await DashboardState.load.fn(dash)
    await DashboardState.select.fn(dash, {"id": 1})
    assert dash.selected_id == "" and not dash.error
    await DashboardState.set_sort.fn(dash, "name; drop table")
    assert dash.sort == "name"


def test_the_city_pages_build(demo):
    from chiiki.pages import dashboard, inquiry, notices

    for page in (dashboard.dashboard_page, notices.notices_page, notices.notice_admin_page, inquiry.inquiry_page,
                 inquiry.inquiry_admin_page):
        assert page().render()


async def test_choosing_an_association_reads_only_its_series_and_back_restores_the_citys(demo, app_state,
                                                                                         monkeypatch):
    from chiiki.pages import dashboard as page
    from chiiki.pages.dashboard import DashboardState
    from chiiki.services import dashboard
    from tests.conftest import DemoCity
    from tests.test_dashboard_aggregates import _households, circular

    monkeypatch.setattr(dashboard, "SMALL_GROUP", 1)  # rates over the one household of each circular below
    a1, a3 = demo.association_id(DemoCity.A1), demo.association_id(DemoCity.A3)
    circular(a1, [(_households(a1)[0].id, "read")], sent_days_ago=1)
    circular(a3, [(_households(a3)[0].id, "confirmed")], sent_days_ago=40)
    await login_state(app_state, "city@example.jp")
    dash = await app_state.get_state(DashboardState)
    await DashboardState.load.fn(dash)
    city, table = [dict(m) for m in dash.months], [dict(r) for r in dash.rows]
    assert [m["circulars"] for m in city] == [1, 1]
    chosen = next(r for r in dash.rows if r["id"] == str(a1))

    def no_recompute(*args, **kwargs):
        raise AssertionError("choosing an association recomputed the whole city")

    monkeypatch.setattr(page.dashboard, "dashboard", no_recompute)
    await DashboardState.select.fn(dash, chosen["id"])
    assert dash.selected_id == chosen["id"] and dash.selected_name == chosen["name"] and not dash.error
    expected = dashboard.association_months(demo.actor("city@example.jp"), a1)
    assert [(m["month"], m["circulars"], m["read"]) for m in dash.months] == [
        (m.month, m.circulars, m.read_rate) for m in expected] and len(expected) == 1
    assert [dict(r) for r in dash.rows] == table  # the table stays as it was
    await DashboardState.select.fn(dash, "")
    assert dash.selected_id == "" and dash.selected_name == "" and [dict(m) for m in dash.months] == city
    await DashboardState.select.fn(dash, "999999")  # not one the dashboard listed: the city's series
    assert dash.selected_id == "" and [dict(m) for m in dash.months] == city


async def test_kept_figures_are_not_shown_again_once_the_staff_right_is_gone(demo, app_state):
    """Sorting, paging and going back show figures kept in the tab: the right is checked for each."""
    from sqlmodel import update

    from chiiki.pages.dashboard import DashboardState

    def staff(flag: bool) -> None:
        with session() as s:
            s.exec(update(Account).where(Account.login_id == "city@example.jp").values(is_city_staff=flag))

    await login_state(app_state, "city@example.jp")
    dash = await app_state.get_state(DashboardState)
    for handler, args in ((DashboardState.set_sort, ("read_rate",)), (DashboardState.select, ("",)),
                          (DashboardState.next_page, ()), (DashboardState.prev_page, ())):
        staff(True)
        await DashboardState.load.fn(dash)
        assert dash.rows and dash.overview and dash._all and not dash.error
        staff(False)
        await handler.fn(dash, *args)
        assert dash.rows == [] and dash.overview == {} and dash.months == [] and dash.error, handler
        assert dash._all == [] and dash._city_months == []
