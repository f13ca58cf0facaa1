"""City staff read the audit trail per association, never whose data it was or officers' names."""

import pytest
from sqlmodel import select

from chiiki.models import Account, AuditAccess, AuditEvent, Household
from chiiki.pages.audit_trail import AuditTrailState
from chiiki.services import audit, roster
from chiiki.services.db import session
from chiiki.services.errors import Denied
from tests.conftest import login_state, state_text


def test_a_roster_view_shows_up_once_with_its_count_for_city_staff(demo):
    a1 = demo.association_id(demo.A1)
    page = roster.roster_page(demo.actor("kaicho@example.jp"), a1)
    entries, _more = audit.city_trail(demo.actor("city@example.jp"))
    views = [e for e in entries if e.action == "roster.view"]
    assert len(views) == 1
    assert views[0].association == demo.A1 and views[0].actor_title.startswith("会長")
    assert views[0].record_count == len(page.rows)


@pytest.mark.parametrize("login", ["member@example.jp", "kaicho@example.jp", "newcomer@example.jp"])
def test_only_city_staff_may_read_the_trail(demo, login):
    with pytest.raises(Denied):
        audit.city_trail(demo.actor(login))


async def test_trail_page_state_holds_no_member_personal_data(demo, app_state):
    roster.roster_page(demo.actor("kaicho@example.jp"), demo.association_id(demo.A1))
    await login_state(app_state, "city@example.jp")
    st = await app_state.get_state(AuditTrailState)
    await AuditTrailState.load.fn(st)
    assert st.rows and st.rows[0]["what"] == "名簿で閲覧"
    text = state_text(app_state)
    with session() as s:
        people = [a.name for a in s.exec(select(Account).where(Account.is_city_staff.is_(False))).all() if a.name]
        people += [h.address for h in s.exec(select(Household)).all() if h.address]
    assert [p for p in people if p in text] == []


async def test_trail_page_refuses_a_member(demo, app_state):
    roster.roster_page(demo.actor("kaicho@example.jp"), demo.association_id(demo.A1))
    await login_state(app_state, "member@example.jp")
    st = await app_state.get_state(AuditTrailState)
    await AuditTrailState.load.fn(st)
    assert st.rows == [] and st.error == "この操作はできません"


def test_the_trail_pages_through_accesses_newest_first_and_says_when_older_ones_follow(demo):
    """One access is one entry however many people it listed; a page reads limit + 1 accesses, not the log."""
    kaicho, city = demo.actor("kaicho@example.jp"), demo.actor("city@example.jp")
    a1 = demo.association_id(demo.A1)
    roster.export_roster(kaicho, a1, "csv")  # 80 households: one access, many per-person events
    for _ in range(4):
        roster.roster_page(kaicho, a1)
    with session() as s:
        accesses = len(s.exec(select(AuditAccess.id).where(AuditAccess.action.not_like("self.%"))).all())
        events = len(s.exec(select(AuditEvent.id)).all())
    assert events > accesses >= 5
    first, more = audit.city_trail(city, limit=2)
    assert [e.action for e in first] == ["roster.view", "roster.view"] and more
    seen = []
    for offset in range(0, accesses + 2, 2):
        page, more = audit.city_trail(city, limit=2, offset=offset)
        seen += page
        if not more:
            break
    assert len(seen) == accesses and not more
    assert [e.at for e in seen] == sorted((e.at for e in seen), reverse=True)
    export = [e for e in seen if e.action == "roster.export"]
    assert len(export) == 1 and export[0].record_count == 80


async def test_trail_page_next_stops_at_the_oldest_access(demo, app_state):
    kaicho = demo.actor("kaicho@example.jp")
    for _ in range(3):
        roster.roster_page(kaicho, demo.association_id(demo.A1))
    await login_state(app_state, "city@example.jp")
    st = await app_state.get_state(AuditTrailState)
    await AuditTrailState.load.fn(st)
    assert st.page == 1 and st.rows and not st.has_more  # fewer than a page of 50
    await AuditTrailState.next_page.fn(st)
    assert st.page == 1 and st.rows


def test_city_staffs_own_actions_are_the_citys_in_every_trail(demo):
    """Appointing an association's first officer is recorded as done by city staff (市職員), in the city's trail
    and in the appointee's own access log, not as an unnamed system action."""
    from chiiki.models import Area
    from chiiki.services import associations

    staff = demo.actor("city@example.jp")
    with session() as s:
        area = s.exec(select(Area.id).where(Area.level == "block")).first()
    aid = associations.create_association(staff, {"name": "神楽町内会", "name_kana": "カグラ", "area_id": area})
    associations.appoint_first_officer(staff, aid, "newcomer@example.jp")
    entries, _ = audit.city_trail(staff)
    assert [e.actor_title for e in entries if e.action == "role.change"] == [audit.CITY_STAFF_TITLE]
    with session() as s:
        seen = audit.accesses_to(s, demo.account_id("newcomer@example.jp"))
    assert [e.actor_title for e in seen] == [audit.CITY_STAFF_TITLE]



async def test_the_trail_names_officers_titles_and_city_staff_in_the_readers_language(demo, app_state):
    """Usual titles in English with the Japanese beside them (two titles of one officer each so), a title an
    association typed itself as typed, city staff as such; in Japanese, as stored."""
    from datetime import timedelta

    from chiiki.models import utcnow
    from chiiki.state import UIState

    a1, now = demo.association_id(demo.A1), utcnow()
    with session() as s:
        for i, title in enumerate(["会長・班長", "防犯係", audit.CITY_STAFF_TITLE]):
            s.add(AuditAccess(at=now - timedelta(minutes=i), actor_account_id=demo.account_id("kaicho@example.jp"),
                              actor_title=title, action="roster.view", association_id=a1, record_count=1))
    await login_state(app_state, "city@example.jp")
    st = await app_state.get_state(AuditTrailState)
    await AuditTrailState.load.fn(st)
    assert [r["who"] for r in st.rows[:3]] == ["会長・班長", "防犯係", "市職員"]
    UIState.toggle_lang.fn(await app_state.get_state(UIState))
    await AuditTrailState.load.fn(st)
    assert [r["who"] for r in st.rows[:3]] == ["President (会長), Han leader (班長)", "防犯係", "City staff"]
