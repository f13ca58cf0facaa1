"""City staff: areas, associations, first officer, and counts that never carry a member's data."""

import dataclasses
import json

import pytest
from sqlalchemy import func
from sqlmodel import select

from chiiki.models import Account, Area, Association, AuditEvent, Household, Membership, OfficerRole
from chiiki.services import associations as assoc
from chiiki.services.db import session
from chiiki.services.errors import Denied, ServiceError, ValidationErrors
from chiiki.services.policy import ANONYMOUS, MANAGE_MEMBERS, OFFICER_PERMISSIONS
from tests.conftest import DemoCity

CITY = "city@example.jp"


def count(model) -> int:
    with session() as s:
        return s.exec(select(func.count()).select_from(model)).one()


def area_id(name: str) -> int:
    with session() as s:
        return s.exec(select(Area.id).where(Area.name == name)).one()


def test_city_staff_builds_the_area_tree_city_district_block(demo):
    staff = demo.actor(CITY)
    district = assoc.create_area(staff, {"name": "西地区", "level": "district", "parent_id": area_id("旭川市")})
    block = assoc.create_area(staff, {"name": "神居", "level": "block", "parent_id": str(district)})
    labels = {a.id: a.label for a in assoc.list_areas(staff)}
    assert labels[block] == "旭川市 / 西地区 / 神居"
    assoc.update_area(staff, block, {"name": "神居一条", "level": "block", "parent_id": district})
    assert {a.id: a.name for a in assoc.list_areas(staff)}[block] == "神居一条"


@pytest.mark.parametrize("data,field,key", [
    ({"name": "", "level": "block", "parent_id": "district"}, "name", "error.required"),
    ({"name": "あ" * 101, "level": "block", "parent_id": "district"}, "name", "error.too_long"),
    ({"name": "X", "level": "block", "parent_id": "city"}, "parent_id", "cityadmin.error.parent_level"),
    ({"name": "X", "level": "district", "parent_id": None}, "parent_id", "cityadmin.error.parent_level"),
    ({"name": "X", "level": "town", "parent_id": "district"}, "level", "error.invalid"),
    ({"name": "X", "level": "block", "parent_id": "abc"}, "parent_id", "error.invalid"),
    ({"name": "X", "level": "block", "parent_id": 999999}, "parent_id", "error.invalid"),
])
def test_bad_area_input_is_refused_and_nothing_written(demo, data, field, key):
    ids = {"district": area_id("中央地区"), "city": area_id("旭川市")}
    data = {**data, "parent_id": ids.get(data["parent_id"], data["parent_id"])}
    before = count(Area)
    with pytest.raises(ValidationErrors) as e:
        assoc.create_area(demo.actor(CITY), data)
    assert e.value.errors[field][0] == key
    assert count(Area) == before


def test_an_area_cannot_move_under_its_own_descendant(demo):
    staff = demo.actor(CITY)
    with pytest.raises(ValidationErrors):
        assoc.update_area(staff, area_id("中央地区"), {"name": "中央地区", "level": "district",
                                                      "parent_id": area_id("旭町")})


def test_city_staff_creates_and_edits_an_association(demo):
    staff = demo.actor(CITY)
    aid = assoc.create_association(staff, {"name": "神楽町内会", "name_kana": "かぐらちょうないかい",
                                           "area_id": area_id("旭町"), "description": "新しい町内会"})
    assoc.update_association(staff, aid, {"name": "神楽町内会", "name_kana": "カグラ", "area_id": area_id("本町"),
                                          "description": ""})
    info = assoc.city_association(staff, aid)
    assert (info.name_kana, info.area_label, info.households, info.has_manager) == ("カグラ", "旭川市 / 中央地区 / 本町",
                                                                                   0, False)


@pytest.mark.parametrize("over,field", [
    ({"name": ""}, "name"), ({"name": "x" * 101}, "name"), ({"name_kana": "abc"}, "name_kana"),
    ({"area_id": "x"}, "area_id"), ({"area_id": 99999}, "area_id"), ({"description": "x" * 2001}, "description"),
    ({"name": DemoCity.A1}, "name"),
])
def test_bad_association_input_is_refused_and_nothing_written(demo, over, field):
    data = {"name": "新町内会", "name_kana": "シン", "area_id": area_id("旭町"), "description": "", **over}
    before = count(Association)
    with pytest.raises(ValidationErrors) as e:
        assoc.create_association(demo.actor(CITY), data)
    assert field in e.value.errors
    assert count(Association) == before


@pytest.mark.parametrize("login", ["kaicho@example.jp", "member@example.jp", "newcomer@example.jp"])
def test_only_city_staff_may_administer(demo, login):
    actor = demo.actor(login)
    a1 = demo.association_id(DemoCity.A1)
    before = (count(Area), count(Association), count(OfficerRole))
    for call in (lambda: assoc.create_area(actor, {"name": "X", "level": "district", "parent_id": area_id("旭川市")}),
                 lambda: assoc.update_area(actor, area_id("旭町"), {"name": "X", "level": "block",
                                                                    "parent_id": area_id("中央地区")}),
                 lambda: assoc.create_association(actor, {"name": "X", "name_kana": "エックス",
                                                          "area_id": area_id("旭町")}),
                 lambda: assoc.update_association(actor, a1, {"name": "X", "name_kana": "エックス",
                                                              "area_id": area_id("旭町")}),
                 lambda: assoc.appoint_first_officer(actor, a1, "newcomer@example.jp"),
                 lambda: assoc.city_associations(actor),
                 lambda: assoc.city_association(actor, a1)):
        with pytest.raises(Denied):
            call()
    with pytest.raises(Denied):
        assoc.city_associations(ANONYMOUS)
    assert (count(Area), count(Association), count(OfficerRole)) == before


def test_counts_are_households_members_digital_and_paper_only(demo):
    rows, total = assoc.city_associations(demo.actor(CITY))
    assert total == 3
    a1 = next(r for r in rows if r.name == DemoCity.A1)
    with session() as s:
        aid = a1.id
        households = s.exec(select(func.count()).select_from(Household).where(Household.association_id == aid)).one()
        paper = s.exec(select(func.count()).select_from(Household)
                       .where(Household.association_id == aid, Household.paper_only.is_(True))).one()
        members = s.exec(select(func.count()).select_from(Membership)
                         .where(Membership.association_id == aid, Membership.status == "active")).one()
    assert (a1.households, a1.member_accounts, a1.paper_only_households) == (households, members, paper)
    assert a1.digital_households + a1.paper_only_households == households
    assert a1.has_manager is True


def test_city_counts_carry_no_personal_field(demo):
    rows, _ = assoc.city_associations(demo.actor(CITY))
    text = json.dumps([dataclasses.asdict(r) for r in rows], ensure_ascii=False)
    with session() as s:
        people = s.exec(select(Account).where(Account.is_city_staff.is_(False)).limit(30)).all()
    for p in people:
        assert p.name not in text and p.address not in text and p.login_id not in text


def test_search_by_name_and_kana_paginates_on_the_server(demo):
    staff = demo.actor(CITY)
    rows, total = assoc.city_associations(staff, query="本町")
    assert [r.name for r in rows] == [DemoCity.A2] and total == 1
    rows, total = assoc.city_associations(staff, limit=2, offset=2)
    assert total == 3 and len(rows) == 1


def test_first_officer_becomes_member_and_president_with_every_permission(demo):
    staff = demo.actor(CITY)
    aid = assoc.create_association(staff, {"name": "神楽町内会", "name_kana": "カグラ", "area_id": area_id("旭町")})
    name = assoc.appoint_first_officer(staff, aid, " NEWCOMER@example.jp ")
    assert name == "新井"
    newcomer = demo.actor("newcomer@example.jp")
    assert newcomer.membership(aid) is not None
    (role,) = newcomer.roles_in(aid)
    assert role.title == "会長" and role.permissions == frozenset(OFFICER_PERMISSIONS) and role.han_id is None
    with session() as s:
        ev = s.exec(select(AuditEvent).where(AuditEvent.action == "role.change")).all()
    assert [e.subject_account_id for e in ev] == [newcomer.account_id]
    assert assoc.city_association(staff, aid).has_manager


def test_first_officer_only_while_no_manager_holds_office(demo):
    before = count(OfficerRole)
    with pytest.raises(ServiceError) as e:
        assoc.appoint_first_officer(demo.actor(CITY), demo.association_id(DemoCity.A1), "member@example.jp")
    assert e.value.key == "association.error.has_manager"
    assert count(OfficerRole) == before


def test_the_city_appoints_a_president_when_the_officers_left_hold_not_every_permission(demo):
    """The 会長 stepped down while a 総務部長 with manage_members alone stayed on: no one inside could grant
    view_members, export … again, and the city could not appoint, as a manager held office."""
    from chiiki.services import officers
    from tests.test_officers_services import grant, membership_of, role_of

    a1 = demo.association_id(DemoCity.A1)
    staff, kaicho = demo.actor(CITY), demo.actor("kaicho@example.jp")
    officers.grant_role(kaicho, a1, grant(membership_id=membership_of(demo, "member@example.jp")))
    officers.revoke_role(kaicho, role_of(demo, "kaicho@example.jp"))  # a manager remains: allowed
    shown = assoc.city_association(staff, a1)
    appointed = demo.actor("member2@example.jp")
    assert assoc.appoint_first_officer(staff, a1, "member2@example.jp")
    assert (shown.has_manager, shown.has_president) == (True, False)  # what the city's list showed before
    (role,) = demo.actor("member2@example.jp").roles_in(a1)
    assert role.title == "会長" and role.permissions == frozenset(OFFICER_PERMISSIONS)
    with session() as s:
        ev = s.exec(select(AuditEvent).where(AuditEvent.action == "role.change",
                                             AuditEvent.subject_account_id == appointed.account_id)).all()
    assert [(e.actor_account_id, e.detail) for e in ev] == [(staff.account_id, "appoint 会長")]  # audited as ever
    assert assoc.city_association(staff, a1).has_president
    with pytest.raises(ServiceError) as e:  # and once more: a president holds office now
        assoc.appoint_first_officer(staff, a1, "fukukaicho@example.jp")
    assert e.value.key == "association.error.has_manager"


@pytest.mark.parametrize("login,key", [("nobody@example.jp", "association.error.no_account"),
                                       ("other@example.jp", "association.error.member_elsewhere"),
                                       # City staff never become officers, so never see member rows.
                                       (CITY, "association.error.staff_appointee"),
                                       ("", "error.required"), ("x" * 300, "error.too_long")])
def test_first_officer_must_be_a_registered_account_not_in_another_association(demo, login, key):
    staff = demo.actor(CITY)
    aid = assoc.create_association(staff, {"name": "神楽町内会", "name_kana": "カグラ", "area_id": area_id("旭町")})
    before = (count(OfficerRole), count(Membership))
    with pytest.raises(ValidationErrors) as e:
        assoc.appoint_first_officer(staff, aid, login)
    assert e.value.errors["login_id"][0] == key
    assert (count(OfficerRole), count(Membership)) == before


def test_a_login_id_staff_find_to_be_a_member_elsewhere_is_on_that_persons_access_log(demo):
    """The refusal tells staff that the id is someone's, a member of another association: they see it."""
    from chiiki.services import audit

    staff = demo.actor(CITY)
    aid = assoc.create_association(staff, {"name": "神楽町内会", "name_kana": "カグラ", "area_id": area_id("旭町")})
    with pytest.raises(ValidationErrors):
        assoc.appoint_first_officer(staff, aid, "other@example.jp")
    with session() as s:
        [entry] = audit.accesses_to(s, demo.account_id("other@example.jp"))
    assert entry.action == "association.appoint_lookup" and entry.actor_title == "市職員"


def test_members_see_counts_and_officer_titles_with_display_names(demo):
    member = demo.actor("member@example.jp")
    info = assoc.summary(member, demo.association_id(DemoCity.A1))
    titles = [o.title for o in info.officers]
    assert titles == ["会長", "副会長", "会計", "班長"]
    assert info.officers[-1].han_name == "1班"
    assert info.households == 80 and info.member_accounts > 40
    with session() as s:
        kaicho = s.exec(select(Account).where(Account.login_id == "kaicho@example.jp")).one()
    assert info.officers[0].display_name == kaicho.display_name
    assert kaicho.name not in json.dumps(dataclasses.asdict(info), ensure_ascii=False)


def test_non_members_cannot_read_an_association_summary(demo):
    a1 = demo.association_id(DemoCity.A1)
    for login in ("other@example.jp", "newcomer@example.jp", CITY):
        with pytest.raises(Denied):
            assoc.summary(demo.actor(login), a1)
    with pytest.raises(ServiceError):
        assoc.summary(demo.actor("member@example.jp"), "abc")


def test_residents_find_associations_by_area_including_sub_areas_and_by_name(demo):
    newcomer = demo.actor("newcomer@example.jp")
    hits, total = assoc.search(newcomer, area_id=area_id("中央地区"))
    assert {h.name for h in hits} == {DemoCity.A1, DemoCity.A2} and total == 2
    hits, _ = assoc.search(newcomer, query="すえひろ")
    assert [h.name for h in hits] == [DemoCity.A3]
    hits, _ = assoc.search(newcomer, query="旭町")
    assert [h.name for h in hits] == [DemoCity.A1]
    with pytest.raises(ValidationErrors):
        assoc.search(newcomer, area_id=99999)
    with pytest.raises(Denied):
        assoc.search(ANONYMOUS)


def test_manager_gap_detection_sees_future_expiry(demo):
    from chiiki.models import utcnow
    from datetime import timedelta

    aid = demo.association_id(DemoCity.A1)
    now = utcnow()
    with session() as s:
        assert assoc.first_manager_gap(s, aid, now) is None
        role = s.exec(select(OfficerRole).where(OfficerRole.association_id == aid, OfficerRole.title == "会長")).one()
        assert MANAGE_MEMBERS in role.permissions
        role.valid_until = now + timedelta(days=30)
        s.add(role)
        s.flush()
        assert assoc.first_manager_gap(s, aid, now) == role.valid_until
        s.rollback()


def test_an_association_of_a_few_households_shows_staff_no_member_or_digital_counts(demo):
    """Which of three households use the app is about those households: only the household count is shown."""
    from chiiki.services.policy import SMALL_GROUP

    staff = demo.actor("city@example.jp")
    area = assoc.list_areas(staff)[-1].id
    aid = assoc.create_association(staff, {"name": "小さな町内会", "name_kana": "ちいさなちょうないかい",
                                                  "area_id": area})
    with session() as s:
        for i in range(SMALL_GROUP - 1):
            s.add(Household(association_id=aid, address=f"旭川市小町{i}", head_name=f"小町 {i}", paper_only=True))
    info = assoc.city_association(staff, aid)
    assert (info.households, info.member_accounts, info.digital_households, info.paper_only_households) == (
        SMALL_GROUP - 1, None, None, None)
    with session() as s:
        s.add(Household(association_id=aid, address="旭川市小町9", head_name="小町 9", paper_only=True))
    info = assoc.city_association(staff, aid)
    assert (info.households, info.member_accounts, info.digital_households, info.paper_only_households) == (
        SMALL_GROUP, 0, 0, SMALL_GROUP)


def test_the_city_cannot_appoint_while_the_officers_hold_every_permission_between_them(demo):
    """The 会長 shares export out to a 会計 and drops it from their own role: nobody holds all six, but every
    permission is still someone's to use and to delegate. The city may not put a second 会長 in then."""
    from tests.test_officers_services import grant, membership_of, role_of

    from chiiki.services import officers
    from chiiki.services.policy import EXPORT

    a1 = demo.association_id(DemoCity.A1)
    staff, kaicho = demo.actor("city@example.jp"), demo.actor("kaicho@example.jp")
    officers.grant_role(kaicho, a1, grant(title="会計", membership_id=membership_of(demo, "member@example.jp"),
                                          permissions=[EXPORT]))
    officers.change_role(kaicho, role_of(demo, "kaicho@example.jp"),
                         {"title": "会長", "permissions": [p for p in OFFICER_PERMISSIONS if p != EXPORT],
                          "han_id": "", "valid_from": "", "valid_until": ""})
    with pytest.raises(ServiceError) as e:
        assoc.appoint_first_officer(staff, a1, "member2@example.jp")
    assert e.value.key == "association.error.has_manager"
    assert assoc.city_association(staff, a1).has_president
