"""Officer roles: grant, change, revoke, handover — scoped, audited, never leaving no manager."""

from datetime import timedelta

import pytest
from sqlalchemy import func
from sqlmodel import select

from chiiki.i18n import TZ
from chiiki.models import Account, AuditAccess, AuditEvent, Membership, OfficerRole, utcnow
from chiiki.services import membership as ms
from chiiki.services import officers
from chiiki.services.accounts import load_actor_in
from chiiki.services.db import session
from chiiki.services.errors import Denied, ServiceError, ValidationErrors
from chiiki.services.policy import MANAGE_MEMBERS, OFFICER_PERMISSIONS, VIEW_MEMBERS, Assoc, can
from tests.conftest import DemoCity


def count(model) -> int:
    with session() as s:
        return s.exec(select(func.count()).select_from(model)).one()


def snapshot():
    with session() as s:
        return ([tuple(r.model_dump().values()) for r in s.exec(select(OfficerRole).order_by(OfficerRole.id)).all()],
                [tuple(r.model_dump().values()) for r in s.exec(select(Membership).order_by(Membership.id)).all()],
                count(AuditEvent), count(AuditAccess))


def membership_of(demo, login: str) -> int:
    with session() as s:
        return s.exec(select(Membership.id).where(Membership.account_id == demo.account_id(login),
                                                  Membership.status == "active")).one()


def role_of(demo, login: str) -> int:
    with session() as s:
        return s.exec(select(OfficerRole.id).where(OfficerRole.membership_id == membership_of(demo, login),
                                                   OfficerRole.revoked_at.is_(None))).first()


def actor_at(demo, login, when):
    with session() as s:
        return load_actor_in(s, demo.account_id(login), when)


def grant(**over):
    return {"title": "総務部長", "permissions": [MANAGE_MEMBERS], "han_id": "", "valid_from": "", "valid_until": "",
            **over}


def test_president_grants_a_role_and_the_holder_gains_it_with_an_audit_event(demo):
    a1 = demo.association_id(DemoCity.A1)
    kaicho = demo.actor("kaicho@example.jp")
    rid = officers.grant_role(kaicho, a1, grant(membership_id=membership_of(demo, "member@example.jp"),
                                                permissions=[VIEW_MEMBERS, MANAGE_MEMBERS]))
    member = demo.actor("member@example.jp")
    assert can(member, VIEW_MEMBERS, Assoc(a1)) and can(member, MANAGE_MEMBERS, Assoc(a1))
    with session() as s:
        ev = s.exec(select(AuditEvent).where(AuditEvent.action == "role.change")).all()
    assert [e.subject_account_id for e in ev] == [member.account_id]
    assert any(r.id == rid and r.state == "current" for r in officers.list_roles(kaicho, a1))


def test_a_role_with_a_future_start_grants_nothing_until_then(demo):
    a1 = demo.association_id(DemoCity.A1)
    officers.grant_role(demo.actor("kaicho@example.jp"), a1,
                        grant(membership_id=membership_of(demo, "member@example.jp"), valid_from="2099-04-01",
                              valid_until="2100-03-31"))
    assert not demo.actor("member@example.jp").roles
    roles = officers.list_roles(demo.actor("kaicho@example.jp"), a1)
    assert [r.state for r in roles if r.title == "総務部長"] == ["future"]


@pytest.mark.parametrize("over,field,key", [
    ({"title": ""}, "title", "error.required"),
    ({"title": "x" * 51}, "title", "error.too_long"),
    ({"permissions": []}, "permissions", "officer.error.no_permission"),
    ({"permissions": ["city_admin"]}, "permissions", "error.invalid"),
    ({"permissions": "manage_members"}, "permissions", "error.invalid"),
    ({"valid_from": "2027-13-01"}, "valid_from", "error.date"),
    ({"valid_from": "2027-04-01", "valid_until": "2027-03-31"}, "valid_until", "officer.error.until_before_from"),
])
def test_bad_role_input_is_refused_and_nothing_written(demo, over, field, key):
    before = snapshot()
    with pytest.raises(ValidationErrors) as e:
        officers.grant_role(demo.actor("kaicho@example.jp"), demo.association_id(DemoCity.A1),
                            grant(membership_id=membership_of(demo, "member@example.jp"), **over))
    assert e.value.errors[field][0] == key
    assert snapshot() == before


@pytest.mark.parametrize("membership", ["abc", -1, None, True, 10**20])
def test_string_or_bogus_membership_ids_are_refused(demo, membership):
    before = snapshot()
    with pytest.raises(ServiceError):
        officers.grant_role(demo.actor("kaicho@example.jp"), demo.association_id(DemoCity.A1),
                            grant(membership_id=membership))
    assert snapshot() == before


def test_members_of_another_association_or_foreign_han_cannot_be_used(demo):
    a1 = demo.association_id(DemoCity.A1)
    kaicho = demo.actor("kaicho@example.jp")
    before = snapshot()
    with pytest.raises(Denied):
        officers.grant_role(kaicho, a1, grant(membership_id=membership_of(demo, "other@example.jp")))
    with pytest.raises(Denied):
        officers.grant_role(kaicho, a1, grant(membership_id=membership_of(demo, "member@example.jp"),
                                              han_id=demo.han_ids(DemoCity.A3)[0]))
    assert snapshot() == before


@pytest.mark.parametrize("login", ["fukukaicho@example.jp", "hancho@example.jp", "member@example.jp",
                                   "other@example.jp", "newcomer@example.jp", "city@example.jp"])
def test_actors_without_manage_members_here_cannot_touch_roles(demo, login):
    a1 = demo.association_id(DemoCity.A1)
    actor = demo.actor(login)
    target = role_of(demo, "kaikei@example.jp")
    before = snapshot()
    for call in (lambda: officers.list_roles(actor, a1),
                 lambda: officers.member_options(actor, a1),
                 lambda: officers.grant_role(actor, a1, grant(membership_id=membership_of(demo, "member@example.jp"))),
                 lambda: officers.change_role(actor, target, grant(title="会計")),
                 lambda: officers.revoke_role(actor, target),
                 lambda: officers.handover_role(actor, target, membership_of(demo, "member@example.jp"), "2099-04-01")):
        with pytest.raises(Denied):
            call()
    assert snapshot() == before


def _make_han_manager(demo):
    """Give the 班長 manage_members for 1班 only."""
    a1 = demo.association_id(DemoCity.A1)
    officers.change_role(demo.actor("kaicho@example.jp"), role_of(demo, "hancho@example.jp"),
                         grant(title="班長", permissions=[VIEW_MEMBERS, MANAGE_MEMBERS],
                               han_id=demo.han_ids(DemoCity.A1)[0]))
    return a1, demo.actor("hancho@example.jp")


def test_a_han_scoped_manager_grants_only_within_their_han(demo):
    a1, hancho = _make_han_manager(demo)
    han1, han2 = demo.han_ids(DemoCity.A1)[:2]
    member1 = membership_of(demo, "member@example.jp")  # 1班
    member2 = membership_of(demo, "member2@example.jp")  # 2班
    before = snapshot()
    with pytest.raises(ServiceError) as e:  # a whole-association role
        officers.grant_role(hancho, a1, grant(membership_id=member1, permissions=[VIEW_MEMBERS]))
    assert e.value.key == "officer.error.scope"
    with pytest.raises(Denied):  # a member of another han
        officers.grant_role(hancho, a1, grant(membership_id=member2, permissions=[VIEW_MEMBERS], han_id=han1))
    with pytest.raises(ServiceError):  # a role for another han
        officers.grant_role(hancho, a1, grant(membership_id=member1, permissions=[VIEW_MEMBERS], han_id=han2))
    with pytest.raises(Denied):  # changing a whole-association role
        officers.revoke_role(hancho, role_of(demo, "kaikei@example.jp"))
    with pytest.raises(ValidationErrors) as e:  # a permission the 班長 does not hold
        officers.grant_role(hancho, a1, grant(membership_id=member1, permissions=[VIEW_MEMBERS, "export"],
                                              han_id=han1))
    assert e.value.errors["permissions"][0] == "officer.error.not_held"
    assert snapshot() == before
    officers.grant_role(hancho, a1, grant(title="副班長", membership_id=member1, permissions=[VIEW_MEMBERS],
                                          han_id=han1))
    assert demo.actor("member@example.jp").roles[0].han_id == han1


def test_revoking_the_only_president_is_refused_with_the_last_manager_message(demo):
    before = snapshot()
    with pytest.raises(ServiceError) as e:
        officers.revoke_role(demo.actor("kaicho@example.jp"), role_of(demo, "kaicho@example.jp"))
    assert e.value.key == "error.last_manager"
    assert snapshot() == before


@pytest.mark.parametrize("change", ["drop_manage_members", "limit_to_a_han", "end_next_year"])
def test_changing_the_only_manager_away_is_refused(demo, change):
    data = grant(title="会長", permissions=list(OFFICER_PERMISSIONS))
    if change == "drop_manage_members":
        data["permissions"] = [p for p in OFFICER_PERMISSIONS if p != MANAGE_MEMBERS]
    elif change == "limit_to_a_han":
        data["han_id"] = demo.han_ids(DemoCity.A1)[0]
    else:
        data["valid_until"] = "2099-01-01"
    before = snapshot()
    with pytest.raises(ServiceError) as e:
        officers.change_role(demo.actor("kaicho@example.jp"), role_of(demo, "kaicho@example.jp"), data)
    assert e.value.key == "error.last_manager"
    assert snapshot() == before


def test_with_a_second_manager_the_president_may_step_down(demo):
    kaicho = demo.actor("kaicho@example.jp")
    a1 = demo.association_id(DemoCity.A1)
    officers.grant_role(kaicho, a1, grant(membership_id=membership_of(demo, "fukukaicho@example.jp"),
                                          permissions=[MANAGE_MEMBERS]))
    officers.revoke_role(kaicho, role_of(demo, "kaicho@example.jp"))
    assert not demo.actor("kaicho@example.jp").roles


def test_handover_moves_the_role_at_the_given_moment_in_one_step(demo):
    a1 = demo.association_id(DemoCity.A1)
    old_role = role_of(demo, "kaicho@example.jp")
    new_id = officers.handover_role(demo.actor("kaicho@example.jp"), old_role,
                                    membership_of(demo, "member2@example.jp"), "2099-04-01", "09:00")
    with session() as s:
        old, new = s.get(OfficerRole, old_role), s.get(OfficerRole, new_id)
        assert old.valid_until == new.valid_from
        assert new.permissions == old.permissions and new.title == "会長"
        at = new.valid_from
        ev = s.exec(select(AuditEvent).where(AuditEvent.action == "role.change")).all()
    assert at.hour == 0 and at.minute == 0  # 09:00 in Japan is 00:00 UTC
    assert {e.subject_account_id for e in ev} == {demo.account_id("kaicho@example.jp"),
                                                   demo.account_id("member2@example.jp")}
    before = actor_at(demo, "kaicho@example.jp", at - timedelta(seconds=1))
    after = actor_at(demo, "kaicho@example.jp", at)
    assert can(before, MANAGE_MEMBERS, Assoc(a1)) and not can(after, MANAGE_MEMBERS, Assoc(a1))
    assert not can(actor_at(demo, "member2@example.jp", at - timedelta(seconds=1)), MANAGE_MEMBERS, Assoc(a1))
    assert can(actor_at(demo, "member2@example.jp", at), MANAGE_MEMBERS, Assoc(a1))


def test_handover_today_takes_effect_at_once(demo):
    today = utcnow().astimezone(__import__("chiiki.i18n", fromlist=["TZ"]).TZ).date().isoformat()
    officers.handover_role(demo.actor("kaicho@example.jp"), role_of(demo, "kaicho@example.jp"),
                           membership_of(demo, "member2@example.jp"), today)
    assert not demo.actor("kaicho@example.jp").roles
    assert demo.actor("member2@example.jp").roles[0].title == "会長"


@pytest.mark.parametrize("day,key", [("2001-01-01", "officer.error.handover_past"), ("nope", "error.date"),
                                     ("", "error.required")])
def test_handover_needs_a_moment_in_the_future(demo, day, key):
    before = snapshot()
    with pytest.raises(ValidationErrors) as e:
        officers.handover_role(demo.actor("kaicho@example.jp"), role_of(demo, "kaicho@example.jp"),
                               membership_of(demo, "member2@example.jp"), day)
    assert e.value.errors["handover_at"][0] == key
    assert snapshot() == before


def test_handover_to_the_same_holder_or_an_outsider_is_refused(demo):
    before = snapshot()
    kaicho = demo.actor("kaicho@example.jp")
    with pytest.raises(ValidationErrors):
        officers.handover_role(kaicho, role_of(demo, "kaicho@example.jp"), membership_of(demo, "kaicho@example.jp"),
                               "2099-04-01")
    with pytest.raises(Denied):
        officers.handover_role(kaicho, role_of(demo, "kaicho@example.jp"), membership_of(demo, "other@example.jp"),
                               "2099-04-01")
    assert snapshot() == before


def test_officer_of_another_association_cannot_touch_roles_here(demo):
    other_president = None
    with session() as s:
        a3 = demo.association_id(DemoCity.A3)
        mid = s.exec(select(OfficerRole.membership_id).where(OfficerRole.association_id == a3)).first()
        other_president = s.get(Account, s.get(Membership, mid).account_id).login_id
    actor = demo.actor(other_president)
    before = snapshot()
    with pytest.raises(Denied):
        officers.revoke_role(actor, role_of(demo, "kaikei@example.jp"))
    with pytest.raises(Denied):
        officers.grant_role(actor, demo.association_id(DemoCity.A1),
                            grant(membership_id=membership_of(demo, "member@example.jp")))
    with pytest.raises(Denied):  # an id from A1 used against A3
        officers.grant_role(actor, a3, grant(membership_id=membership_of(demo, "member@example.jp")))
    assert snapshot() == before


def test_the_last_manager_cannot_leave_but_others_can(demo):
    a1 = demo.association_id(DemoCity.A1)
    before = snapshot()
    with pytest.raises(ServiceError) as e:
        ms.leave(demo.actor("kaicho@example.jp"), a1)
    assert e.value.key == "error.last_manager"
    assert snapshot() == before
    ms.leave(demo.actor("kaikei@example.jp"), a1)
    assert demo.actor("kaikei@example.jp").membership(a1) is None
    with session() as s:
        assert s.get(OfficerRole, role_of(demo, "kaicho@example.jp")).revoked_at is None


def test_ending_the_last_managers_membership_is_refused(demo):
    a1 = demo.association_id(DemoCity.A1)
    kaicho = demo.actor("kaicho@example.jp")
    before = snapshot()
    with pytest.raises(ServiceError) as e:
        ms.end_membership(kaicho, membership_of(demo, "kaicho@example.jp"))
    assert e.value.key == "error.last_manager"
    assert snapshot() == before
    ms.end_membership(kaicho, membership_of(demo, "member2@example.jp"))
    assert demo.actor("member2@example.jp").membership(a1) is None


def test_a_manager_cannot_end_the_membership_of_an_officer_whose_role_they_may_not_change(demo):
    """Ending a membership ends its roles: a 班長 with manage_members in the 会長's han, or a 副会長 without the
    会計's export, used to remove them that way although the officers page refuses them the same change."""
    from chiiki.models import Household

    a1 = demo.association_id(DemoCity.A1)
    kaicho = demo.actor("kaicho@example.jp")
    with session() as s:
        kaicho_han = s.get(Household, kaicho.membership(a1).household_id).han_id
    officers.change_role(kaicho, role_of(demo, "hancho@example.jp"),
                         grant(title="班長", permissions=[VIEW_MEMBERS, MANAGE_MEMBERS], han_id=kaicho_han))
    officers.change_role(kaicho, role_of(demo, "fukukaicho@example.jp"),
                         grant(title="副会長", permissions=[VIEW_MEMBERS, MANAGE_MEMBERS]))
    hancho, vice = demo.actor("hancho@example.jp"), demo.actor("fukukaicho@example.jp")
    before = snapshot()
    for actor, login in ((hancho, "kaicho@example.jp"), (vice, "kaicho@example.jp"), (vice, "kaikei@example.jp")):
        with pytest.raises(ServiceError) as e:
            ms.end_membership(actor, membership_of(demo, login))
        assert e.value.key == "members.error.end_officer"
    assert snapshot() == before
    # What they may change, they may still end: a plain member (the 副会長), the 会計 (the 会長, who holds export).
    ms.end_membership(vice, membership_of(demo, "member2@example.jp"))
    ms.end_membership(kaicho, membership_of(demo, "kaikei@example.jp"))
    assert demo.actor("kaikei@example.jp").membership(a1) is None


def test_member_options_show_full_names_only_to_viewers_and_audit_it(demo):
    a1 = demo.association_id(DemoCity.A1)
    opts = officers.member_options(demo.actor("kaicho@example.jp"), a1, limit=5)
    assert len(opts) == 5 and "(" in opts[0].label
    with session() as s:
        assert s.exec(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "member.view")).one() == 5


def test_a_manager_without_the_presidents_permissions_cannot_end_or_change_the_presidents_role(demo):
    """A 総務部長 holding only manage_members would otherwise revoke the 会長, leaving permissions (moderating the
    board, exporting) that no one left could grant again."""
    kaicho = demo.actor("kaicho@example.jp")
    a1 = demo.association_id(DemoCity.A1)
    officers.grant_role(kaicho, a1, grant(membership_id=membership_of(demo, "member@example.jp")))
    soumu = demo.actor("member@example.jp")
    president = role_of(demo, "kaicho@example.jp")
    before = snapshot()
    with pytest.raises(Denied):
        officers.revoke_role(soumu, president)
    with pytest.raises(Denied):
        officers.change_role(soumu, president, grant(title="会長", permissions=[MANAGE_MEMBERS]))
    with pytest.raises(Denied):
        officers.handover_role(soumu, president, membership_of(demo, "member2@example.jp"), "2099-01-01")
    assert snapshot() == before
    # A role granting no more than they hold is theirs to manage.
    other = officers.grant_role(soumu, a1, grant(title="書記", membership_id=membership_of(demo, "member2@example.jp")))
    officers.revoke_role(soumu, other)


def test_no_role_lasts_beyond_the_granting_officers_own_term(demo):
    """An officer appointed for 30 days cannot appoint themselves again without an end, nor a friend for longer."""
    kaicho = demo.actor("kaicho@example.jp")
    a1 = demo.association_id(DemoCity.A1)
    end = (utcnow() + timedelta(days=30)).astimezone(TZ)
    officers.grant_role(kaicho, a1, grant(membership_id=membership_of(demo, "member@example.jp"),
                                          valid_until=end.strftime("%Y-%m-%d")))
    soumu = demo.actor("member@example.jp")
    before = snapshot()
    for whom, until in (("member@example.jp", ""), ("member2@example.jp", ""), ("member2@example.jp", "2099-01-01")):
        with pytest.raises(ValidationErrors) as e:
            officers.grant_role(soumu, a1, grant(membership_id=membership_of(demo, whom), valid_until=until))
        assert e.value.errors["valid_until"][0] == "officer.error.beyond_own_term"
    with pytest.raises(ValidationErrors):  # nor by lengthening their own role
        officers.change_role(soumu, role_of(demo, "member@example.jp"), grant(valid_until=""))
    assert snapshot() == before
    within = (end - timedelta(days=10)).strftime("%Y-%m-%d")
    officers.grant_role(soumu, a1, grant(membership_id=membership_of(demo, "member2@example.jp"), valid_until=within))


def test_the_term_cap_holds_for_handovers_and_counts_a_next_term_already_set(demo):
    kaicho = demo.actor("kaicho@example.jp")
    a1 = demo.association_id(DemoCity.A1)
    now = utcnow()
    end = (now + timedelta(days=30)).astimezone(TZ)
    officers.grant_role(kaicho, a1, grant(membership_id=membership_of(demo, "member@example.jp"),
                                          valid_until=end.strftime("%Y-%m-%d")))
    open_ended = officers.grant_role(kaicho, a1, grant(title="書記",
                                                       membership_id=membership_of(demo, "member2@example.jp")))
    soumu = demo.actor("member@example.jp")
    before = snapshot()
    with pytest.raises(ValidationErrors) as e:  # an open-ended role handed to himself
        officers.handover_role(soumu, open_ended, membership_of(demo, "member@example.jp"),
                               (now + timedelta(days=1)).astimezone(TZ).strftime("%Y-%m-%d"))
    assert e.value.errors["to_membership_id"][0] == "officer.error.beyond_own_term"
    assert snapshot() == before
    # With his next term already set, starting where this one ends, a 60-day role is his to grant.
    with session() as s:
        role = s.get(OfficerRole, role_of(demo, "member@example.jp"))
        s.add(OfficerRole(association_id=a1, membership_id=role.membership_id, title="総務部長",
                          permissions=role.permissions, valid_from=role.valid_until,
                          valid_until=role.valid_until + timedelta(days=400)))
    sixty = (now + timedelta(days=60)).astimezone(TZ).strftime("%Y-%m-%d")
    officers.grant_role(soumu, a1, grant(membership_id=membership_of(demo, "fukukaicho@example.jp"),
                                         valid_until=sixty))


def test_an_officer_with_two_roles_of_the_same_start_one_open_ended_can_still_delegate(demo):
    """At the 4/1 rotation one person often takes two roles from the same day, one of them for a year: comparing
    the open end of one with the date of the other failed every grant, change and handover they made."""
    a1 = demo.association_id(DemoCity.A1)
    kaicho = demo.actor("kaicho@example.jp")
    m = membership_of(demo, "member@example.jp")
    officers.grant_role(kaicho, a1, grant(membership_id=m, title="総務部長", valid_from="2020-04-01"))
    officers.grant_role(kaicho, a1, grant(membership_id=m, title="防災部長", valid_from="2020-04-01",
                                          valid_until="2099-03-31"))
    soumu = demo.actor("member@example.jp")
    rid = officers.grant_role(soumu, a1, grant(membership_id=membership_of(demo, "member2@example.jp"), title="書記"))
    assert any(r.id == rid and r.state == "current" for r in officers.list_roles(kaicho, a1))


def test_city_staff_never_hold_officer_powers(demo):
    """City staff see aggregates only (DESIGN.md): a staff account that joined its own association as a resident
    is not given a role, and a role it holds anyway (granted before the account became staff) gives it nothing."""
    from chiiki.services import roster

    a1 = demo.association_id(DemoCity.A1)
    kaicho = demo.actor("kaicho@example.jp")
    mid = ms.request_join(demo.actor("city@example.jp"), a1, True, ms.CONSENT_VERSION)
    ms.approve(kaicho, mid, {"address": "旭町1丁目99-9", "han_id": demo.han_ids(DemoCity.A1)[0]})
    before = snapshot()
    with pytest.raises(ValidationErrors) as e:
        officers.grant_role(kaicho, a1, {"membership_id": mid, "title": "書記", "permissions": [VIEW_MEMBERS]})
    assert e.value.errors["membership_id"][0] == "association.error.staff_appointee"
    with pytest.raises(ValidationErrors):
        officers.handover_role(kaicho, role_of(demo, "kaicho@example.jp"), mid, "")
    assert snapshot() == before
    with session() as s:  # a role held from before the account became staff
        s.add(OfficerRole(association_id=a1, membership_id=mid, title="書記", permissions=" ".join(OFFICER_PERMISSIONS),
                          valid_from=utcnow() - timedelta(days=1)))
    staff = demo.actor("city@example.jp")
    assert staff.roles and not any(can(staff, p, Assoc(a1)) for p in OFFICER_PERMISSIONS)
    with pytest.raises(Denied):
        roster.roster_page(staff, a1)


def test_the_last_acting_manager_cannot_leave_only_a_staff_held_role_behind(demo):
    a1 = demo.association_id(DemoCity.A1)
    kaicho = demo.actor("kaicho@example.jp")
    mid = ms.request_join(demo.actor("city@example.jp"), a1, True, ms.CONSENT_VERSION)
    ms.approve(kaicho, mid, {"address": "旭町1丁目99-9", "han_id": demo.han_ids(DemoCity.A1)[0]})
    with session() as s:  # a role held from before the account became staff (the case policy.han_scope names)
        s.add(OfficerRole(association_id=a1, membership_id=mid, title="会長", permissions=" ".join(OFFICER_PERMISSIONS),
                          valid_from=utcnow() - timedelta(days=1)))
        kaicho_role = s.exec(select(OfficerRole.id).join(Membership).where(
            Membership.account_id == demo.account_id("kaicho@example.jp"))).one()
    with pytest.raises(ServiceError) as e:  # nobody who can act would be left
        officers.revoke_role(kaicho, kaicho_role)
    assert e.value.key == "error.last_manager"


def test_a_staff_held_role_does_not_block_the_city_from_appointing_a_first_officer(demo):

    a1 = demo.association_id(DemoCity.A1)
    kaicho = demo.actor("kaicho@example.jp")
    mid = ms.request_join(demo.actor("city@example.jp"), a1, True, ms.CONSENT_VERSION)
    ms.approve(kaicho, mid, {"address": "旭町1丁目99-9", "han_id": demo.han_ids(DemoCity.A1)[0]})
    with session() as s:
        for r in s.exec(select(OfficerRole).where(OfficerRole.association_id == a1)).all():
            r.revoked_at = utcnow() - timedelta(minutes=1)
            s.add(r)
        s.add(OfficerRole(association_id=a1, membership_id=mid, title="会長", permissions=" ".join(OFFICER_PERMISSIONS),
                          valid_from=utcnow() - timedelta(days=1)))
    with session() as s:
        from chiiki.services.associations import first_manager_gap

        gap = first_manager_gap(s, a1, utcnow())
    assert gap is not None, "the association has no manager who can act, yet counts as having one"
