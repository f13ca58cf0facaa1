"""City staff read the audit trail per association, never whose data it was or officers' names."""

import pytest
from sqlmodel import select

from chiiki.models import Account, Household
from chiiki.pages.audit_trail import AuditTrailState
from chiiki.services import audit, roster
from chiiki.services.db import session
from chiiki.services.errors import Denied
from tests.conftest import login_state, state_text


def test_a_roster_view_shows_up_once_with_its_count_for_city_staff(demo):
    a1 = demo.association_id(demo.A1)
    page = roster.roster_page(demo.actor("kaicho@example.jp"), a1)
    entries, total = audit.city_trail(demo.actor("city@example.jp"))
    views = [e for e in entries if e.action == "roster.view"]
    assert total >= 1 and len(views) == 1
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
