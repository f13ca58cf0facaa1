"""City staff, notices and officers at their edges: a withdrawn scheduled notice, a manager who became city
staff, a role edited after a timed handover."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import select

from chiiki.models import Account, Area, utcnow
from chiiki.services import associations as assoc
from chiiki.services import notices
from chiiki.services.db import session
from tests.test_notice_targeting import staff, town  # noqa: F401  (fixture)

CITY = "city@example.jp"


def test_a_withdrawn_scheduled_notice_is_listed_as_ended_not_still_scheduled(town):
    st = staff(town)
    later = (utcnow() + timedelta(days=3)).astimezone(notices.TZ)
    nid = notices.publish(st, {"title": "予定", "body": "b", "everyone": "on",
                               "publish_from_date": later.date().isoformat()}).notice_id
    notices.withdraw(st, nid)
    [item] = [i for i in notices.admin_list(st)[0] if i.id == nid]
    # The page says 「掲載を終えました」 but the row still reads 「掲載予定」 with a withdraw button under it.
    assert item.status == "ended"


def test_an_association_whose_only_manager_became_city_staff_is_listed_without_a_manager(demo):
    staff = demo.actor(CITY)
    with session() as s:
        area = s.exec(select(Area.id).where(Area.name == "旭町")).one()
    aid = assoc.create_association(staff, {"name": "神楽町内会", "name_kana": "カグラ", "area_id": area})
    assoc.appoint_first_officer(staff, aid, "newcomer@example.jp")
    with session() as s:  # the 会長 takes a job at the city office
        acc = s.exec(select(Account).where(Account.login_id == "newcomer@example.jp")).one()
        acc.is_city_staff = True
        s.add(acc)
    # The 会長's role now gives no power (policy.han_scope) and the service would accept a new first officer
    # (manager_roles leaves staff out), but the list says there is a manager, so the page hides 「会長を任命」.
    assert assoc.city_association(staff, aid).has_manager is False


def test_editing_a_role_title_keeps_the_handover_time_the_officer_set(demo):
    """The 会長 hands over at 10:00 on a day to come; later a manager opens the role's edit form (dates only,
    pre-filled by the page) to change nothing but the title: the end must stay 10:00, where the successor starts."""
    from chiiki.models import OfficerRole
    from chiiki.pages.officers import _local, role_form_data
    from chiiki.services import officers
    from tests.conftest import DemoCity
    from tests.test_officers_services import membership_of, role_of

    a1 = demo.association_id(DemoCity.A1)
    kaicho = demo.actor("kaicho@example.jp")
    day = (utcnow() + timedelta(days=10)).astimezone(notices.TZ).strftime("%Y-%m-%d")
    rid = role_of(demo, "kaicho@example.jp")
    new = officers.handover_role(kaicho, rid, membership_of(demo, "member@example.jp"), day, "10:00")
    [row] = [r for r in officers.list_roles(kaicho, a1) if r.id == rid]
    form = {"title_preset": "会長", "valid_from": _local(row.valid_from), "valid_until": _local(row.valid_until),
            "han_id": "", **{"perm_" + p: "on" for p in row.permissions}}
    data = role_form_data(form)
    data.pop("membership_id")
    officers.change_role(demo.actor("kaicho@example.jp"), rid, data)
    with session() as s:
        old, succ = s.get(OfficerRole, rid), s.get(OfficerRole, new)
        assert old.valid_until == succ.valid_from  # 10:00 on that day, as set


def test_a_term_typed_as_dates_runs_to_the_end_of_its_last_day_and_its_successor_follows_without_a_gap(demo):
    """「終了日(この日まで)」: a term 4/1〜3/31 covers 3/31; a successor typed from 4/1 leaves no day without a
    manager (it was refused as the last manager's gap); the list shows the last day, and the edit form saved
    unchanged keeps the end."""
    from datetime import datetime

    from chiiki.models import OfficerRole
    from chiiki.pages.officers import until_text, role_form_data
    from chiiki.services import officers
    from tests.conftest import DemoCity
    from tests.test_officers_services import membership_of, role_of

    a1 = demo.association_id(DemoCity.A1)
    kaicho = demo.actor("kaicho@example.jp")
    year = utcnow().astimezone(notices.TZ).year + 1
    rid = role_of(demo, "kaicho@example.jp")
    [row] = [r for r in officers.list_roles(kaicho, a1) if r.id == rid]
    form = {"title_preset": "会長", "valid_from": "", "valid_until": f"{year}-03-31", "han_id": "",
            **{"perm_" + p: "on" for p in row.permissions}}
    data = role_form_data(form)
    data.pop("membership_id")
    new = officers.grant_role(kaicho, a1, {**data, "membership_id": membership_of(demo, "member@example.jp"),
                                           "valid_from": f"{year}-04-01", "valid_until": ""})
    officers.change_role(kaicho, rid, data)  # the only manager's term now ends: refused if a day were left open
    with session() as s:
        end = s.get(OfficerRole, rid).valid_until
        assert s.get(OfficerRole, new).valid_from == end
    assert end == datetime(year, 4, 1, tzinfo=notices.TZ)  # the end of 3/31 in city time
    assert until_text(end, "ja") == f"{year}年3月31日" and officers.end_day(end).isoformat() == f"{year}-03-31"
    officers.change_role(kaicho, rid, {**data, "valid_until": officers.end_day(end).isoformat()})  # saved unchanged
    with session() as s:
        assert s.get(OfficerRole, rid).valid_until == end


def test_the_own_term_message_names_the_last_day_as_the_list_shows_it(demo):
    """A 副会長 whose term was typed 〜2100-03-31 (stored 2100-04-01 00:00) tries to give a role until 4/30. The
    list shows their term as 「2100年3月31日」; the refusal says 「2100年4月1日 00:00 まで」, so the officer types
    4/1, which is refused again."""
    from chiiki.i18n import tr
    from chiiki.services import officers
    from chiiki.services.errors import ValidationErrors
    from tests.conftest import DemoCity
    from tests.test_officers_services import membership_of
    from chiiki.services.policy import MANAGE_MEMBERS, VIEW_MEMBERS

    a1 = demo.association_id(DemoCity.A1)
    kaicho = demo.actor("kaicho@example.jp")
    perms = [MANAGE_MEMBERS, VIEW_MEMBERS]
    officers.grant_role(kaicho, a1, {"title": "副会長", "permissions": perms, "han_id": "",
                                     "valid_from": "", "valid_until": "2100-03-31",
                                     "membership_id": membership_of(demo, "member@example.jp")})
    deputy = demo.actor("member@example.jp")
    with pytest.raises(ValidationErrors) as e:
        officers.grant_role(deputy, a1, {"title": "書記", "permissions": [VIEW_MEMBERS], "han_id": "",
                                         "valid_from": "", "valid_until": "2100-04-30",
                                         "membership_id": membership_of(demo, "member2@example.jp")})
    key, params = e.value.errors["valid_until"]
    assert tr("ja", key, **params) == "ご自身の任期(2100年3月31日 まで)より後まで続く役目は設定できません"
