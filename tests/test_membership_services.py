"""Joining: consent, requests and decisions, invite codes, leaving, and paper-only households kept right."""

import unicodedata
from datetime import timedelta

import pytest
from sqlalchemy import func
from sqlmodel import select

from chiiki.models import (Account, AuditAccess, AuditEvent, Household, InviteCode, Membership, OfficerRole, OutboxMail,
                           utcnow)
from chiiki.services import membership as ms
from chiiki.services.db import session
from chiiki.services.errors import Denied, ServiceError, ValidationErrors
from chiiki.services.policy import ANONYMOUS
from tests.conftest import DemoCity

V = ms.CONSENT_VERSION


def snapshot():
    with session() as s:
        return tuple(
            [tuple(r.model_dump().values()) for r in s.exec(select(m).order_by(m.id)).all()]
            for m in (Membership, Household, InviteCode, AuditEvent, AuditAccess)
        )


def ask(demo, login="newcomer@example.jp", assoc=DemoCity.A1):
    return ms.request_join(demo.actor(login), demo.association_id(assoc), True, V, "よろしくお願いします")


def test_a_resident_asks_to_join_with_consent_recorded(demo):
    mid = ask(demo)
    with session() as s:
        m = s.get(Membership, mid)
    assert (m.status, m.consent_version, m.message) == ("pending", V, "よろしくお願いします")
    assert m.consented_at is not None
    status = ms.my_membership(demo.actor("newcomer@example.jp"))
    assert (status.status, status.association_name) == ("pending", DemoCity.A1)


@pytest.mark.parametrize("consent,version", [(False, V), ("on", V), (True, "old"), (True, None)])
def test_no_consent_no_request(demo, consent, version):
    before = snapshot()
    with pytest.raises(ValidationErrors) as e:
        ms.request_join(demo.actor("newcomer@example.jp"), demo.association_id(DemoCity.A1), consent, version)
    assert e.value.errors["consent"][0] == "membership.error.consent"
    assert snapshot() == before


def test_joining_twice_or_while_a_member_is_refused(demo):
    ask(demo)
    before = snapshot()
    for login, assoc in (("newcomer@example.jp", DemoCity.A1), ("newcomer@example.jp", DemoCity.A2),
                         ("member@example.jp", DemoCity.A2), ("member@example.jp", DemoCity.A1)):
        with pytest.raises(ServiceError) as e:
            ask(demo, login, assoc)
        assert e.value.key == "membership.error.already"
    assert snapshot() == before


@pytest.mark.parametrize("aid", ["abc", 999999, None, -3])
def test_bad_association_ids_are_refused(demo, aid):
    before = snapshot()
    with pytest.raises(ServiceError):
        ms.request_join(demo.actor("newcomer@example.jp"), aid, True, V)
    assert snapshot() == before


def test_anonymous_cannot_ask(demo):
    with pytest.raises(Denied):
        ms.request_join(ANONYMOUS, demo.association_id(DemoCity.A1), True, V)


def test_over_long_message_is_refused(demo):
    with pytest.raises(ServiceError) as e:
        ms.request_join(demo.actor("newcomer@example.jp"), demo.association_id(DemoCity.A1), True, V, "あ" * 501)
    assert e.value.key == "error.too_long"


def test_the_president_sees_applicants_and_that_view_is_audited(demo):
    mid = ask(demo)
    rows, total = ms.pending_requests(demo.actor("kaicho@example.jp"), demo.association_id(DemoCity.A1))
    assert total >= 1 and any(r.membership_id == mid and r.name == "新井 みどり" for r in rows)
    with session() as s:
        ev = s.exec(select(AuditEvent).where(AuditEvent.action == "membership.review")).all()
    assert demo.account_id("newcomer@example.jp") in {e.subject_account_id for e in ev}


def _paper_household(demo) -> Household:
    with session() as s:
        return s.exec(select(Household).where(Household.association_id == demo.association_id(DemoCity.A1),
                                              Household.paper_only.is_(True)).order_by(Household.id)).first()


def test_approving_into_a_paper_only_household_makes_it_digital(demo):
    mid = ask(demo)
    hh = _paper_household(demo)
    ms.approve(demo.actor("kaicho@example.jp"), mid, {"household_id": str(hh.id)})
    with session() as s:
        assert s.get(Household, hh.id).paper_only is False
        m = s.get(Membership, mid)
        assert (m.status, m.household_id, m.decided_by) == ("active", hh.id,
                                                             demo.account_id("kaicho@example.jp"))
        decided = s.exec(select(AuditEvent).where(AuditEvent.action == "membership.decide")).all()
    assert any(e.subject_account_id == demo.account_id("newcomer@example.jp") for e in decided)
    assert demo.actor("newcomer@example.jp").membership(demo.association_id(DemoCity.A1)).han_id == hh.han_id


def test_approving_into_a_new_household_with_address_and_han(demo):
    mid = ask(demo)
    han2 = demo.han_ids(DemoCity.A1)[1]
    ms.approve(demo.actor("kaicho@example.jp"), mid, {"household_id": "", "address": "旭川市旭町1条9丁目9-9",
                                                      "han_id": str(han2)})
    with session() as s:
        hh = s.get(Household, s.get(Membership, mid).household_id)
    assert (hh.address, hh.han_id, hh.paper_only) == ("旭川市旭町1条9丁目9-9", han2, False)


@pytest.mark.parametrize("choice,field", [
    ({"address": "", "han_id": "HAN"}, "address"),
    ({"address": "x" * 201, "han_id": "HAN"}, "address"),
    ({"address": "旭川市", "han_id": ""}, "han_id"),
    ({"address": "旭川市", "han_id": "FOREIGN"}, "han_id"),
    ({"address": "旭川市", "han_id": "abc"}, "han_id"),
])
def test_bad_new_household_is_refused_and_nothing_written(demo, choice, field):
    mid = ask(demo)
    subs = {"HAN": str(demo.han_ids(DemoCity.A1)[0]), "FOREIGN": str(demo.han_ids(DemoCity.A3)[0])}
    choice = {k: subs.get(v, v) for k, v in choice.items()}
    before = snapshot()
    with pytest.raises(ValidationErrors) as e:
        ms.approve(demo.actor("kaicho@example.jp"), mid, choice)
    assert field in e.value.errors
    assert snapshot() == before


def test_household_of_another_association_is_refused(demo):
    mid = ask(demo)
    with session() as s:
        foreign = s.exec(select(Household.id).where(Household.association_id == demo.association_id(DemoCity.A3))
                         ).first()
    before = snapshot()
    with pytest.raises(Denied):
        ms.approve(demo.actor("kaicho@example.jp"), mid, {"household_id": foreign})
    assert snapshot() == before


def test_reject_with_a_reason_the_applicant_can_read(demo):
    mid = ask(demo)
    ms.reject(demo.actor("kaicho@example.jp"), mid, "区域外のため")
    status = ms.my_membership(demo.actor("newcomer@example.jp"))
    assert (status.status, status.decision_note) == ("rejected", "区域外のため")
    ask(demo, assoc=DemoCity.A2)  # may ask elsewhere afterwards


@pytest.mark.parametrize("login", ["fukukaicho@example.jp", "hancho@example.jp", "member@example.jp",
                                   "other@example.jp", "newcomer@example.jp", "city@example.jp"])
def test_only_whole_association_managers_decide_requests(demo, login):
    mid = ask(demo, "newcomer@example.jp")
    a1 = demo.association_id(DemoCity.A1)
    actor = demo.actor(login)
    hh = _paper_household(demo)
    before = snapshot()
    for call in (lambda: ms.pending_requests(actor, a1), lambda: ms.approve(actor, mid, {"household_id": hh.id}),
                 lambda: ms.reject(actor, mid, ""), lambda: ms.household_options(actor, a1),
                 lambda: ms.create_invite(actor, a1, {"days": 7, "max_uses": 1}),
                 lambda: ms.list_invites(actor, a1)):
        with pytest.raises(Denied):
            call()
    assert snapshot() == before


def test_household_options_are_address_and_han_only_and_audited(demo):
    opts = ms.household_options(demo.actor("kaicho@example.jp"), demo.association_id(DemoCity.A1), "旭町1条1丁目")
    assert opts and all(o.address.startswith("旭川市旭町1条1丁目") for o in opts)
    with session() as s:
        n = s.exec(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action == "household.lookup", AuditEvent.subject_household_id.is_not(None))).one()
    assert n == len(opts)


def _invite(demo, **data):
    return ms.create_invite(demo.actor("kaicho@example.jp"), demo.association_id(DemoCity.A1),
                            {"days": 7, "max_uses": 1, **data})


def test_an_invite_code_is_shown_once_and_stored_hashed(demo):
    inv = _invite(demo)
    assert inv.link.endswith("/join?code=" + inv.code)
    with session() as s:
        row = s.exec(select(InviteCode)).all()[-1]
    assert row.code_hash == ms.hash_code(inv.code.replace("-", ""))
    assert inv.code.replace("-", "") not in str(row.model_dump())


def test_joining_with_a_code_links_the_household_at_my_address(demo):
    han1 = demo.han_ids(DemoCity.A1)[0]
    inv = _invite(demo, han_id=str(han1))
    newcomer = demo.actor("newcomer@example.jp")
    assert ms.check_invite(newcomer, inv.code.lower()).association_name == DemoCity.A1
    joined = ms.join_with_code(newcomer, inv.code.lower(), True, V)
    assert joined.joined
    with session() as s:
        m = s.get(Membership, joined.membership_id)
        hh = s.get(Household, m.household_id)
        acc = s.get(Account, newcomer.account_id)
    assert (m.status, m.consent_version, hh.han_id, hh.address, hh.paper_only) == ("active", V, han1, acc.address,
                                                                                   False)


def test_a_code_for_no_han_asks_an_officer_to_place_the_resident_in_a_han(demo):
    """A whole-association code used at a new address made a household in no han: on no circular route and seen
    by no 班長. It is now a request, which the officer approves into a han."""
    newcomer = demo.actor("newcomer@example.jp")
    before = count_households()
    asked = ms.join_with_code(newcomer, _invite(demo).code, True, V)
    assert (asked.joined, asked.waits_for) == (False, "han")
    with session() as s:
        m = s.get(Membership, asked.membership_id)
        assert (m.status, m.household_id, m.consent_version) == ("pending", None, V)
    assert count_households() == before
    han2 = demo.han_ids(DemoCity.A1)[1]
    with session() as s:
        address = s.get(Account, newcomer.account_id).address
    ms.approve(demo.actor("kaicho@example.jp"), asked.membership_id,
               {"household_id": "", "address": address, "han_id": str(han2)})
    with session() as s:
        assert s.get(Household, s.get(Membership, asked.membership_id).household_id).han_id == han2


def test_a_code_at_the_paper_households_address_however_typed_asks_an_officer_then_joins_it(demo):
    """A resident who types the paper household's address with full-width digits and a different dash makes no
    han-less twin that would get every circular twice: the code becomes a request, and the officer approving it
    at that address joins them to that household (which becomes digital)."""
    hh = _paper_household(demo)
    typed = unicodedata.normalize("NFKC", hh.address).translate(str.maketrans("0123456789-", "０１２３４５６７８９－"))
    assert typed != hh.address
    newcomer = demo.actor("newcomer@example.jp")
    demo.set_address("newcomer@example.jp", typed)
    before = count_households()
    inv = _invite(demo)  # association-wide: no han on the code
    asked = ms.join_with_code(newcomer, inv.code, True, V)
    assert not asked.joined
    with session() as s:
        m = s.get(Membership, asked.membership_id)
        assert (m.status, m.household_id, m.consent_version) == ("pending", None, V)
        assert s.get(Household, hh.id).paper_only is True
    assert count_households() == before
    assert ms.my_membership(newcomer).status == "pending"
    ms.approve(demo.actor("kaicho@example.jp"), asked.membership_id,
               {"household_id": "", "address": typed, "han_id": str(hh.han_id)})
    with session() as s:
        assert s.get(Membership, asked.membership_id).household_id == hh.id
        assert s.get(Household, hh.id).paper_only is False
    assert count_households() == before


def _home_of(demo, login: str) -> Household:
    """The household of the member's active membership."""
    with session() as s:
        return s.get(Household, s.exec(select(Membership.household_id).where(
            Membership.account_id == demo.account_id(login), Membership.status == "active")).one())


def test_a_code_never_joins_another_familys_household_by_its_typed_address(demo):
    """Whoever holds the han's code (it goes round on paper) and types a neighbour's address joins nothing: the
    neighbour's household keeps its members, its paper copy and its answers to itself until an officer decides."""
    han1 = demo.han_ids(DemoCity.A1)[0]
    home = _home_of(demo, "member@example.jp")
    with session() as s:
        paper = s.exec(select(Household).where(Household.han_id == han1, Household.paper_only.is_(True))
                       .order_by(Household.id)).first()
    assert home.han_id == han1 and paper is not None
    login = "newcomer@example.jp"  # the second time with the request the first one left open
    for target in (home, paper):
        demo.set_address(login, target.address)
        with session() as s:
            members_before = s.exec(select(Membership.account_id).where(
                Membership.household_id == target.id, Membership.status == "active")).all()
        asked = ms.join_with_code(demo.actor(login), _invite(demo, han_id=str(han1)).code, True, V)
        assert not asked.joined
        with session() as s:
            assert s.get(Membership, asked.membership_id).status == "pending"
            assert s.exec(select(Membership.account_id).where(
                Membership.household_id == target.id, Membership.status == "active")).all() == members_before
            assert s.get(Household, target.id).paper_only == target.paper_only


def test_approving_into_a_new_household_at_an_address_the_roster_has_joins_that_household(demo):
    """Typed however (full-width digits), the address of a household the roster has is that household: the
    applicant joins it (an officer without view_members cannot even look it up) instead of making a twin."""
    mid = ask(demo)
    hh = _paper_household(demo)
    typed = hh.address.translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    before = count_households()
    ms.approve(demo.actor("kaicho@example.jp"), mid, {"household_id": "", "address": typed,
                                                      "han_id": str(hh.han_id)})
    with session() as s:
        assert s.get(Membership, mid).household_id == hh.id
        assert s.get(Household, hh.id).paper_only is False
    assert count_households() == before


def test_approving_into_a_new_household_never_merges_into_another_familys_or_hans_household(demo):
    han1, han2 = demo.han_ids(DemoCity.A1)[:2]
    taken = _home_of(demo, "member@example.jp")
    with session() as s:
        other_han = s.exec(select(Household).where(Household.han_id == han2, Household.paper_only.is_(True))
                           .order_by(Household.id)).first()
    mid = ask(demo)
    before = snapshot()
    for address, han in ((taken.address, taken.han_id), (other_han.address, han1)):
        with pytest.raises(ValidationErrors) as e:
            ms.approve(demo.actor("kaicho@example.jp"), mid, {"household_id": "", "address": address,
                                                              "han_id": str(han)})
        assert e.value.errors["address"][0] == "roster.error.address_taken"
    assert snapshot() == before


def test_a_hans_invite_never_joins_a_household_of_another_han_and_says_nothing_of_it(demo):
    """An address with a household in another han gets what one in the code's own han gets: a request for an
    officer to decide (the household is not joined). A refusal of its own would tell whoever holds the code
    which addresses are on the roster."""
    han1, han2 = demo.han_ids(DemoCity.A1)[:2]
    with session() as s:
        other = s.exec(select(Household).where(Household.han_id == han2, Household.paper_only.is_(True))
                       .order_by(Household.id)).first()
        own = s.exec(select(Household).where(Household.han_id == han1).order_by(Household.id)).first()
    inv = _invite(demo, han_id=str(han1), max_uses=2)
    answers = []
    for login_id, household in (("newcomer@example.jp", other), ("member2@example.jp", own)):
        if login_id == "member2@example.jp":
            ms.leave(demo.actor(login_id), demo.association_id(DemoCity.A1))
        demo.set_address(login_id, household.address)
        res = ms.join_with_code(demo.actor(login_id), inv.code, True, V)
        answers.append(res.joined)
        with session() as s:
            m = s.get(Membership, res.membership_id)
            assert (m.status, m.household_id) == ("pending", None)
            assert s.get(Household, other.id).paper_only is True  # not joined
    assert answers == [False, False]


def count_households() -> int:
    with session() as s:
        return s.exec(select(func.count()).select_from(Household)).one()


def test_a_code_tied_to_a_paper_household_joins_that_household(demo):
    hh = _paper_household(demo)
    inv = _invite(demo, household_id=hh.id)
    ms.join_with_code(demo.actor("newcomer@example.jp"), inv.code, True, V)
    with session() as s:
        assert s.get(Household, hh.id).paper_only is False


def test_used_expired_revoked_or_unknown_codes_are_refused_with_clear_messages(demo):
    inv = _invite(demo)
    ms.join_with_code(demo.actor("newcomer@example.jp"), inv.code, True, V)
    expired = _invite(demo)
    with session() as s:
        row = s.exec(select(InviteCode).order_by(InviteCode.id.desc())).first()
        row.expires_at = utcnow() - timedelta(minutes=1)
        s.add(row)
    revoked = _invite(demo)
    rows, _ = ms.list_invites(demo.actor("kaicho@example.jp"), demo.association_id(DemoCity.A1))
    ms.revoke_invite(demo.actor("kaicho@example.jp"), rows[0].id)
    other = demo.actor("member2@example.jp")
    ms.leave(other, demo.association_id(DemoCity.A1))
    other = demo.actor("member2@example.jp")
    before = snapshot()
    for code, key in ((inv.code, "membership.error.code_used"), (expired.code, "membership.error.code_expired"),
                      (revoked.code, "membership.error.code_invalid"), ("AAAA-BBBB-CCCC", "membership.error.code_invalid"),
                      ("", "membership.error.code_invalid"), (12345, "membership.error.code_invalid")):
        with pytest.raises(ValidationErrors) as e:
            ms.join_with_code(other, code, True, V)
        assert e.value.errors["code"][0] == key
    assert snapshot() == before


def test_a_member_cannot_use_a_code_again(demo):
    inv = _invite(demo, max_uses=5)
    before = snapshot()
    with pytest.raises(ServiceError) as e:
        ms.join_with_code(demo.actor("member@example.jp"), inv.code, True, V)
    assert e.value.key == "membership.error.already"
    with pytest.raises(ValidationErrors):
        ms.join_with_code(demo.actor("newcomer@example.jp"), inv.code, False, V)
    assert snapshot() == before


@pytest.mark.parametrize("data,field", [({"days": 0}, "days"), ({"days": "x"}, "days"), ({"days": 91}, "days"),
                                        ({"max_uses": 0}, "max_uses"), ({"max_uses": 501}, "max_uses")])
def test_bad_invite_settings_are_refused(demo, data, field):
    before = snapshot()
    with pytest.raises(ValidationErrors) as e:
        _invite(demo, **data)
    assert field in e.value.errors
    assert snapshot() == before


def test_a_han_scoped_manager_invites_only_into_their_han(demo):
    from chiiki.services import officers

    han1, han2 = demo.han_ids(DemoCity.A1)[:2]
    with session() as s:
        from chiiki.models import OfficerRole

        rid = s.exec(select(OfficerRole.id).where(OfficerRole.title == "班長")).first()
    officers.change_role(demo.actor("kaicho@example.jp"), rid, {"title": "班長", "permissions": ["manage_members"],
                                                                 "han_id": han1})
    hancho = demo.actor("hancho@example.jp")
    a1 = demo.association_id(DemoCity.A1)
    before = snapshot()
    with pytest.raises(ServiceError):
        ms.create_invite(hancho, a1, {"days": 7, "max_uses": 1})
    with pytest.raises(ServiceError):
        ms.create_invite(hancho, a1, {"days": 7, "max_uses": 1, "han_id": han2})
    with pytest.raises(Denied):
        ms.pending_requests(hancho, a1)
    assert snapshot() == before
    ms.create_invite(hancho, a1, {"days": 7, "max_uses": 1, "han_id": han1})
    assert len(ms.list_invites(hancho, a1)[0]) == 1


def test_leaving_keeps_paper_only_right(demo):
    a1 = demo.association_id(DemoCity.A1)
    member = demo.actor("member@example.jp")
    hh_id = member.membership(a1).household_id
    ms.leave(member, a1)
    with session() as s:
        assert s.get(Household, hh_id).paper_only is True
    assert ms.my_membership(demo.actor("member@example.jp")).status == "none"


def test_a_pending_request_can_be_withdrawn(demo):
    ask(demo)
    ms.cancel_request(demo.actor("newcomer@example.jp"))
    assert ms.my_membership(demo.actor("newcomer@example.jp")).status == "none"
    with pytest.raises(ServiceError):
        ms.cancel_request(demo.actor("newcomer@example.jp"))


def test_a_household_lookup_shows_on_its_members_access_page(demo):
    from chiiki.services import audit

    member = demo.account_id("member@example.jp")
    with session() as s:
        hh = s.get(Household, s.exec(select(Membership.household_id).where(
            Membership.account_id == member, Membership.status == "active")).one())
    found = ms.household_options(demo.actor("kaicho@example.jp"), demo.association_id(DemoCity.A1), hh.address[-6:])
    assert hh.id in {o.id for o in found}
    with session() as s:
        assert "household.lookup" in [e.action for e in audit.accesses_to(s, member)]



def _manager_without_view(demo):
    """The 会長 with manage_members over the whole association but no view_members."""
    import dataclasses

    from chiiki.services.policy import MANAGE_MEMBERS

    kaicho = demo.actor("kaicho@example.jp")
    return dataclasses.replace(kaicho, roles=tuple(dataclasses.replace(r, permissions=frozenset({MANAGE_MEMBERS}))
                                                   for r in kaicho.roles))


def test_applicants_names_and_addresses_need_view_members_too(demo):
    ask(demo)
    a1 = demo.association_id(DemoCity.A1)
    rows, total = ms.pending_requests(demo.actor("kaicho@example.jp"), a1)
    assert total >= 1 and rows[0].address
    before = snapshot()
    with pytest.raises(Denied):
        ms.pending_requests(_manager_without_view(demo), a1)
    assert snapshot() == before  # nothing shown, nothing audited


def test_an_invite_for_a_household_shows_its_address_only_with_view_members_and_audited(demo):
    hh = _paper_household(demo)
    _invite(demo, household_id=hh.id)
    a1 = demo.association_id(DemoCity.A1)
    blind, _ = ms.list_invites(_manager_without_view(demo), a1)
    assert blind and all(i.household_address == "" for i in blind)
    with session() as s:
        events = s.exec(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.subject_household_id == hh.id)).one()
    seen, _ = ms.list_invites(demo.actor("kaicho@example.jp"), a1)
    assert hh.address in {i.household_address for i in seen}
    with session() as s:
        assert s.exec(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.subject_household_id == hh.id)).one() == events + 1


def test_an_officer_who_may_not_see_the_roster_cannot_decide_a_request(demo):
    """Deciding a request names a household of the roster (or refuses someone) unseen: like the request list,
    it needs view_members besides manage_members."""
    a1 = demo.association_id(DemoCity.A1)
    mid = ms.request_join(demo.actor("newcomer@example.jp"), a1, True, V)
    with session() as s:
        hh = s.exec(select(Household).where(Household.association_id == a1, Household.paper_only.is_(True))
                    .order_by(Household.id)).first()
    officer = _manager_without_view(demo)
    before = snapshot()
    with pytest.raises(Denied):
        ms.approve(officer, mid, {"household_id": str(hh.id)})
    with pytest.raises(Denied):
        ms.reject(officer, mid, "")
    assert snapshot() == before


def _pending_badge(actor) -> int:
    from chiiki.state import _badges

    return _badges(actor, demo_a1(actor))[2]


def demo_a1(actor) -> int:
    return actor.memberships[0].association_id


def test_officers_who_decide_requests_see_how_many_wait_in_the_navigation(demo):
    """No page told anyone that applicants were waiting. The badge counts them for whole-association managers
    who may see the members (those who decide them), and for no one else: not a 班長 with manage_members."""
    from chiiki.services import officers

    kaicho = demo.actor("kaicho@example.jp")
    assert _pending_badge(kaicho) == 0
    ms.leave(demo.actor("other@example.jp"), demo.association_id(DemoCity.A3))
    first = ask(demo)
    ask(demo, "other@example.jp", DemoCity.A3)  # counted there, not here
    with session() as s:
        rid = s.exec(select(OfficerRole.id).where(OfficerRole.title == "班長")).first()
    officers.change_role(kaicho, rid, {"title": "班長", "permissions": ["view_members", "manage_members"],
                                       "han_id": demo.han_ids(DemoCity.A1)[0]})
    assert _pending_badge(kaicho) == 1
    for login in ("hancho@example.jp", "fukukaicho@example.jp", "member@example.jp"):
        assert _pending_badge(demo.actor(login)) == 0, login
    assert _pending_badge(_manager_without_view(demo)) == 0
    ms.reject(kaicho, first, "")
    assert _pending_badge(kaicho) == 0


def _takes_mail(demo, login: str, wants: bool) -> str:
    address = login.replace("@", "+mail@")
    with session() as s:
        acc = s.get(Account, demo.account_id(login))
        acc.email, acc.email_circulars = address, wants
        s.add(acc)
    return address


def _mails_to(address: str) -> list:
    with session() as s:
        return s.exec(select(OutboxMail).where(OutboxMail.to_address == address)).all()


def test_the_applicant_is_mailed_the_decision_without_anyone_elses_data(demo):
    hh = _paper_household(demo)
    kaicho = demo.actor("kaicho@example.jp")
    address = _takes_mail(demo, "newcomer@example.jp", True)
    ms.approve(kaicho, ask(demo), {"household_id": str(hh.id)})
    (sent,) = _mails_to(address)
    assert sent.kind == "membership" and DemoCity.A1 in sent.subject and "承認" in sent.subject + sent.body
    with session() as s:
        others = [a.name for a in s.exec(select(Account).where(Account.id != demo.account_id("newcomer@example.jp"),
                                                               Account.name != "")).all()]
    assert hh.address not in sent.body and not [n for n in others if n in sent.body]

    other = _takes_mail(demo, "other@example.jp", True)
    ms.leave(demo.actor("other@example.jp"), demo.association_id(DemoCity.A3))
    ms.reject(kaicho, ask(demo, "other@example.jp"), "お住まいが区域の外のため")
    (declined,) = _mails_to(other)
    assert "受け付けられません" in declined.body and "区域の外" not in declined.body


def test_no_decision_mail_to_who_did_not_ask_for_mail(demo):
    address = _takes_mail(demo, "newcomer@example.jp", False)
    ms.reject(demo.actor("kaicho@example.jp"), ask(demo), "")
    assert _mails_to(address) == []


def test_a_code_of_an_association_the_city_has_closed_is_refused(demo):
    """request_join refused a closed association; its invite codes still worked."""
    from chiiki.models import Association

    inv = _invite(demo, han_id=str(demo.han_ids(DemoCity.A1)[0]))
    with session() as s:
        a = s.get(Association, demo.association_id(DemoCity.A1))
        a.active = False
        s.add(a)
    newcomer = demo.actor("newcomer@example.jp")
    before = snapshot()
    for call in (lambda: ms.check_invite(newcomer, inv.code), lambda: ms.join_with_code(newcomer, inv.code, True, V)):
        with pytest.raises(ValidationErrors) as e:
            call()
        assert e.value.errors["code"][0] == "membership.error.code_invalid"
    assert snapshot() == before
