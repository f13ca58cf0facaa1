"""Every handler of the association, join, officers, members and city pages, through an rx.State tree:
refused with nothing changed for everyone but the rightful actor, and no personal data where it must not go."""

import json

import pytest
from sqlalchemy import inspect
from sqlmodel import SQLModel, select

import chiiki.models  # noqa: F401
from chiiki.models import Account, Household, InviteCode, Membership, OfficerRole
from chiiki.services import associations as assoc_service
from chiiki.services import membership as ms
from chiiki.services import officers as officer_service
from chiiki.services.db import engine, session
from chiiki import routes
from chiiki.i18n import tr
from chiiki.state import AuthState
from tests.conftest import DemoCity, login_state, state_text

SKIP_TABLES = {"authsession", "loginattempt"}  # logging in writes these


@pytest.fixture
def app_state():
    """A state tree with the login page and this feature's pages only, so these tests do not depend on
    other features' pages being importable at the moment."""
    import reflex as rx

    import chiiki.pages.association  # noqa: F401
    import chiiki.pages.auth  # noqa: F401
    import chiiki.pages.city  # noqa: F401
    import chiiki.pages.join  # noqa: F401
    import chiiki.pages.members_admin  # noqa: F401
    import chiiki.pages.officers  # noqa: F401

    return rx.State()


def db_snapshot() -> dict:
    out = {}
    eng = engine()
    with eng.connect() as c:
        for table in SQLModel.metadata.sorted_tables:
            if table.name in SKIP_TABLES or table.name not in inspect(eng).get_table_names():
                continue
            out[table.name] = [tuple(r) for r in c.execute(table.select().order_by(*table.primary_key.columns))]
    return out


class Ctx:
    """Ids in 旭町一丁目町内会 (A1) that attacks aim at."""

    def __init__(self, demo):
        from chiiki.models import Area

        self.a1 = demo.association_id(DemoCity.A1)
        self.han1, self.han2 = demo.han_ids(DemoCity.A1)[:2]
        kaicho = demo.actor("kaicho@example.jp")
        staff = demo.actor("city@example.jp")
        # 班長 of 1班 also manages members, but only in 1班.
        with session() as s:
            hancho_role = s.exec(select(OfficerRole.id).where(OfficerRole.title == "班長")).one()
        officer_service.change_role(kaicho, hancho_role, {"title": "班長", "han_id": self.han1,
                                                           "permissions": ["view_members", "manage_members"]})
        self.pending = ms.request_join(demo.actor("newcomer@example.jp"), self.a1, True, ms.CONSENT_VERSION)
        ms.create_invite(kaicho, self.a1, {"days": 7, "max_uses": 1, "han_id": self.han2})
        from chiiki.services import accounts

        accounts.register({"name": "新 太郎", "kana": "シン タロウ", "address": "旭川市旭町", "area_id": s_area("旭町"),
                           "birth_year": "1980", "login_id": "fresh@example.jp", "password": "fresh-pass-2026"})
        self.new_assoc = assoc_service.create_association(staff, {"name": "空の町内会", "name_kana": "カラ",
                                                                  "area_id": s_area("旭町")})
        with session() as s:
            self.invite = s.exec(select(InviteCode.id).order_by(InviteCode.id.desc())).first()
            self.kaikei_role = s.exec(select(OfficerRole.id).where(OfficerRole.title == "会計")).one()

            def ms_of(login):
                return s.exec(select(Membership.id).where(Membership.account_id == demo.account_id(login),
                                                          Membership.status == "active")).one()

            self.member1 = ms_of("member@example.jp")
            self.member2 = ms_of("member2@example.jp")
            self.paper = s.exec(select(Household.id).where(Household.association_id == self.a1,
                                                           Household.han_id == self.han2,
                                                           Household.paper_only.is_(True))).first()
            self.city_area = s.exec(select(Area.id).where(Area.level == "city")).first()
            a3 = demo.association_id(DemoCity.A3)
            mid = s.exec(select(OfficerRole.membership_id).where(OfficerRole.association_id == a3)).first()
            self.other_president = s.get(Account, s.get(Membership, mid).account_id).login_id


def s_area(name):
    from chiiki.models import Area

    with session() as s:
        return s.exec(select(Area.id).where(Area.name == name)).one()


def _pages():
    from chiiki.pages.city import CityState
    from chiiki.pages.members_admin import MembersAdminState
    from chiiki.pages.officers import OfficersState

    return OfficersState, MembersAdminState, CityState


def _role_form(**over):
    form = {"title_preset": "会長", "perm_manage_members": "on", "perm_view_members": "on", "han_id": "",
            "valid_from": "", "valid_until": ""}
    form.update(over)
    return form


def attacks(ctx: Ctx):
    """(name, state class, handler name, prepare(state), args): prepare sets the state as if the page had
    loaded for someone allowed (a stale page, or a forged one), so only the server's own checks stand."""
    Officers, Members, City = _pages()

    def prep(**fields):
        def apply(st):
            for k, v in fields.items():
                setattr(st, k, v)
        return apply

    return [
        ("officers.grant", Officers, "grant", prep(), (_role_form(membership_id=str(ctx.member2)),)),
        ("officers.change", Officers, "change", prep(_role_ids=[ctx.kaikei_role], role_id=ctx.kaikei_role),
         (_role_form(title_preset="会計"),)),
        ("officers.revoke", Officers, "revoke", prep(), (str(ctx.kaikei_role),)),
        ("officers.handover", Officers, "handover", prep(_role_ids=[ctx.kaikei_role], role_id=ctx.kaikei_role),
         ({"to_membership_id": str(ctx.member2), "handover_day": "2099-04-01", "handover_time": ""},)),
        ("officers.find_members", Officers, "find_members", prep(), ({"member_query": ""},)),
        ("members.approve", Members, "approve", prep(deciding=ctx.pending, _request_ids=[ctx.pending]),
         ({"household_id": str(ctx.paper)},)),
        ("members.reject", Members, "reject", prep(deciding=ctx.pending, _request_ids=[ctx.pending]),
         ({"reason": "x"},)),
        ("members.start_decide", Members, "start_decide", prep(), (str(ctx.pending),)),
        ("members.find_households", Members, "find_households", prep(deciding=ctx.pending),
         ({"household_query": ""},)),
        ("members.create_invite", Members, "create_invite", prep(),
         ({"days": "7", "max_uses": "1", "han_id": str(ctx.han2)},)),
        ("members.revoke_invite", Members, "revoke_invite", prep(), (str(ctx.invite),)),
        ("members.end_membership", Members, "end_membership", prep(ending=str(ctx.member2)),
         ({"end_membership_id": str(ctx.member2)},)),
        ("city.save_area", City, "save_area", prep(area_form="new"),
         ({"name": "西地区", "level": "district", "parent_id": str(ctx.city_area)},)),
        ("city.edit_area", City, "save_area", prep(area_form="edit", area_edit={"id": str(s_area("旭町"))}),
         ({"name": "改名", "level": "block", "parent_id": str(s_area("中央地区"))},)),
        ("city.save_association", City, "save_association", prep(assoc_form="new"),
         ({"name": "新町内会", "name_kana": "シン", "area_id": str(s_area("旭町")), "description": ""},)),
        ("city.edit_association", City, "save_association", prep(assoc_form="edit", assoc_edit={"id": str(ctx.a1)}),
         ({"name": "改名町内会", "name_kana": "カイメイ", "area_id": str(s_area("旭町")), "description": ""},)),
        ("city.appoint", City, "appoint", prep(assoc_form="appoint", assoc_edit={"id": str(ctx.new_assoc)}),
         ({"login_id": "fresh@example.jp"},)),
    ]


CITY_ATTACKS = {"city.save_area", "city.edit_area", "city.save_association", "city.edit_association", "city.appoint"}
# Reads that audit what they show: for the rightful actor they write audit rows, not domain changes.
READS = {"officers.find_members", "members.start_decide", "members.find_households"}
ACTORS = ["anonymous", "newcomer@example.jp", "member@example.jp", "fukukaicho@example.jp", "hancho@example.jp",
          "OTHER_PRESIDENT", "city@example.jp", "kaicho@example.jp"]
NAMES = [
    "officers.grant", "officers.change", "officers.revoke", "officers.handover", "officers.find_members",
    "members.approve", "members.reject", "members.start_decide", "members.find_households", "members.create_invite",
    "members.revoke_invite", "members.end_membership", "city.save_area", "city.edit_area", "city.save_association",
    "city.edit_association", "city.appoint"]


def allowed(name: str, login: str) -> bool:
    if name in CITY_ATTACKS:
        return login == "city@example.jp"
    if login == "kaicho@example.jp":
        return True
    # The 1班 manager may list members of their own han, but every target here is in 2班 or whole-association.
    return False


async def _run(app_state, demo, login, name):
    ctx = Ctx(demo)
    login = ctx.other_president if login == "OTHER_PRESIDENT" else login
    root = app_state
    if login != "anonymous":
        await login_state(root, login)
    (_, cls, handler, prep, args), = [a for a in attacks(ctx) if a[0] == name]
    st = await root.get_state(cls)
    prep(st)
    before = db_snapshot()
    await getattr(cls, handler).fn(st, *args)
    return before, db_snapshot(), st, login


def ctx_other(demo) -> str:
    a3 = demo.association_id(DemoCity.A3)
    with session() as s:
        mid = s.exec(select(OfficerRole.membership_id).where(OfficerRole.association_id == a3)).first()
        return s.get(Account, s.get(Membership, mid).account_id).login_id


def _domain(snap: dict) -> dict:
    return {k: v for k, v in snap.items() if k not in ("auditevent", "auditaccess")}


@pytest.mark.parametrize("login", ACTORS)
@pytest.mark.parametrize("name", NAMES)
async def test_every_admin_handler_refuses_everyone_but_the_rightful_actor(app_state, demo, login, name):
    before, after, st, login = await _run(app_state, demo, login, name)
    if name in READS:
        # Reads never change data; they write audit rows only for managers reading their own scope.
        assert _domain(after) == _domain(before)
        if login not in ("kaicho@example.jp", "hancho@example.jp", ctx_other(demo)):
            assert after == before, f"{name} by {login} wrote an audit event"
    elif allowed(name, login):
        assert after != before, f"{name} by {login} should have changed something (control)"
        assert not st.error, st.error
    else:
        assert after == before, f"{name} by {login} changed the database"


async def test_the_han_manager_may_act_in_their_own_han(app_state, demo):
    ctx = Ctx(demo)
    from chiiki.pages.members_admin import MembersAdminState

    await login_state(app_state, "hancho@example.jp")
    st = await app_state.get_state(MembersAdminState)
    await MembersAdminState.load.fn(st)
    assert st.allowed and not st.whole and st.requests == []
    before = db_snapshot()
    await MembersAdminState.create_invite.fn(st, {"days": "7", "max_uses": "1", "han_id": str(ctx.han1)})
    assert st.new_code and db_snapshot() != before


async def test_an_officer_managing_members_of_every_han_without_the_roster_invites_to_any_han(app_state, demo):
    """manage_members over the whole association without view_members (a 総務部長 without 名簿閲覧): no join
    requests (deciding them shows the applicants), but invitations to every han."""
    from chiiki.pages.members_admin import MembersAdminState
    from tests.test_survey_services import grant

    grant(demo, "member2@example.jp", "manage_members")
    await login_state(app_state, "member2@example.jp")
    st = await app_state.get_state(MembersAdminState)
    await MembersAdminState.load.fn(st)
    assert st.allowed and not st.whole and st.requests == [] and not st.error
    assert [h[0] for h in st.han_options] == [str(h) for h in demo.han_ids(demo.A1)]


@pytest.mark.parametrize("page", ["association", "join", "officers", "members_admin", "city"])
async def test_anonymous_loads_are_sent_to_login(app_state, demo, page):
    import importlib

    mod = importlib.import_module(f"chiiki.pages.{page}")
    cls = next(v for k, v in vars(mod).items() if k.endswith("State") and k != "AuthState" and isinstance(v, type)
               and v.__module__ == mod.__name__)
    before = db_snapshot()
    result = await cls.load.fn(await app_state.get_state(cls))
    assert result is not None and "redirect" in str(result).lower() or "/login" in str(result)
    assert db_snapshot() == before


@pytest.mark.parametrize("args", [("abc",), (None,), (-5,), ({"x": 1},), ("999999",)])
async def test_foreign_and_string_ids_change_nothing(app_state, demo, args):
    from chiiki.pages.members_admin import MembersAdminState
    from chiiki.pages.officers import OfficersState

    Ctx(demo)
    await login_state(app_state, "kaicho@example.jp")
    off = await app_state.get_state(OfficersState)
    mem = await app_state.get_state(MembersAdminState)
    await OfficersState.load.fn(off)
    await MembersAdminState.load.fn(mem)
    before = db_snapshot()
    await OfficersState.revoke.fn(off, *args)
    OfficersState.start.fn(off, "edit", *args)
    await MembersAdminState.revoke_invite.fn(mem, *args)
    await MembersAdminState.start_decide.fn(mem, *args)
    await MembersAdminState.end_membership.fn(mem, {"end_membership_id": args[0]})
    assert _domain(db_snapshot()) == _domain(before)
    assert off.mode == "" and mem.deciding == 0


async def test_a_member_calling_officer_handlers_with_another_associations_ids_changes_nothing(app_state, demo):
    from chiiki.pages.members_admin import MembersAdminState
    from chiiki.pages.officers import OfficersState

    a3 = demo.association_id(DemoCity.A3)
    with session() as s:
        role = s.exec(select(OfficerRole.id).where(OfficerRole.association_id == a3)).first()
        victim = s.exec(select(Membership.id).where(Membership.association_id == a3,
                                                    Membership.status == "active")).all()[-1]
    await login_state(app_state, "member@example.jp")
    off = await app_state.get_state(OfficersState)
    mem = await app_state.get_state(MembersAdminState)
    off._role_ids, off.role_id = [role], role
    before = db_snapshot()
    await OfficersState.revoke.fn(off, str(role))
    await OfficersState.change.fn(off, _role_form())
    await OfficersState.grant.fn(off, _role_form(membership_id=str(victim)))
    await OfficersState.handover.fn(off, {"to_membership_id": str(victim), "handover_day": "2099-01-01"})
    await MembersAdminState.end_membership.fn(mem, {"end_membership_id": str(victim)})
    await MembersAdminState.create_invite.fn(mem, {"days": "7", "max_uses": "9"})
    assert db_snapshot() == before
    assert off.roles == [] and mem.requests == []


async def test_city_staff_state_never_holds_a_members_name_or_address(app_state, demo):
    from chiiki.pages.city import CityState

    with session() as s:
        member = s.exec(select(Account).where(Account.login_id == "member@example.jp")).one()
        kaicho = s.exec(select(Account).where(Account.login_id == "kaicho@example.jp")).one()
    await login_state(app_state, "city@example.jp")
    st = await app_state.get_state(CityState)
    await CityState.load.fn(st)
    assert st.allowed and st.rows
    CityState.open_association.fn(st, "edit", st.rows[0]["id"])
    await CityState.search.fn(st, {"query": ""})
    text = state_text(app_state)
    assert DemoCity.A1 in text  # the page did load (the test can fail)
    for secret in (member.name, member.kana, member.address, kaicho.name, kaicho.address, "member@example.jp"):
        assert secret not in text


async def test_a_plain_member_sees_counts_and_officer_display_names_only(app_state, demo):
    from chiiki.pages.association import AssociationState

    with session() as s:
        kaicho = s.exec(select(Account).where(Account.login_id == "kaicho@example.jp")).one()
        member2 = s.exec(select(Account).where(Account.login_id == "member2@example.jp")).one()
    await login_state(app_state, "member@example.jp")
    st = await app_state.get_state(AssociationState)
    await AssociationState.load.fn(st)
    assert st.name == DemoCity.A1 and st.households == 80
    assert {"title": "会長", "name": kaicho.display_name, "han": ""} in st.officers
    text = state_text(app_state)
    for secret in (kaicho.name, kaicho.address, kaicho.kana, member2.name, member2.address):
        assert secret not in text


async def test_officers_page_shows_display_names_and_president_sees_applicants(app_state, demo):
    from chiiki.pages.members_admin import MembersAdminState
    from chiiki.pages.officers import OfficersState

    ms.request_join(demo.actor("newcomer@example.jp"), demo.association_id(DemoCity.A1), True, ms.CONSENT_VERSION)
    await login_state(app_state, "kaicho@example.jp")
    off = await app_state.get_state(OfficersState)
    await OfficersState.load.fn(off)
    assert {r["title"] for r in off.roles} >= {"会長", "副会長", "会計", "班長"}
    mem = await app_state.get_state(MembersAdminState)
    await MembersAdminState.load.fn(mem)
    assert any(r["name"] == "新井 みどり" for r in mem.requests)
    await MembersAdminState.start_decide.fn(mem, mem.requests[-1]["id"])
    assert mem.deciding


async def test_join_flow_through_the_state(app_state, demo):
    from chiiki.pages.join import JoinState

    await login_state(app_state, "newcomer@example.jp")
    st = await app_state.get_state(JoinState)
    await JoinState.load.fn(st)
    assert st.status == "none" and st.total == 3
    await JoinState.search.fn(st, {"area_id": str(s_area("旭町")), "query": ""})
    assert [h["name"] for h in st.hits] == [DemoCity.A1]
    JoinState.choose.fn(st, st.hits[0]["id"])
    before = db_snapshot()
    await JoinState.ask.fn(st, {"message": "よろしく"})  # no consent ticked
    assert st.errors.get("consent") and db_snapshot() == before
    await JoinState.ask.fn(st, {"consent": "on", "message": "よろしく"})
    assert st.status == "pending"
    await JoinState.ask.fn(st, {"consent": "on"})  # twice: nothing selected any more, nothing written
    assert len([m for m in db_snapshot()["membership"] if m[2] == demo.association_id(DemoCity.A1)]) == \
        len([m for m in before["membership"] if m[2] == demo.association_id(DemoCity.A1)]) + 1
    await JoinState.withdraw.fn(st)
    assert st.status == "none"


async def test_join_with_a_code_through_the_state(app_state, demo):
    from chiiki.pages.join import JoinState

    inv = ms.create_invite(demo.actor("kaicho@example.jp"), demo.association_id(DemoCity.A1),
                           {"days": 7, "max_uses": 1, "han_id": str(demo.han_ids(DemoCity.A1)[0])})
    await login_state(app_state, "newcomer@example.jp")
    st = await app_state.get_state(JoinState)
    await JoinState.check_code.fn(st, {"code": "ZZZZ-ZZZZ-ZZZZ"})
    assert st.errors.get("code") and not st.invite_name
    await JoinState.check_code.fn(st, {"code": inv.code})
    assert st.invite_name == DemoCity.A1
    await JoinState.join_code.fn(st, {})
    assert st.errors.get("consent")
    await JoinState.join_code.fn(st, {"consent": "on"})
    assert demo.actor("newcomer@example.jp").membership(demo.association_id(DemoCity.A1)) is not None
    # The page it sends them to says so, with a member's navigation.
    auth = await app_state.get_state(AuthState)
    await AuthState.load_page.fn(auth, routes.ASSOCIATION)
    assert auth.flash == tr("ja", "join.joined") and auth.is_member
    await AuthState.load_page.fn(auth, routes.ASSOCIATION)
    assert auth.flash == ""  # once


async def _join_with_a_han_code_at(app_state, demo, home_han: int, code_han: int, *, used_up: bool = False):
    """The newcomer, registered at the address of the first household of `home_han`, joins with a code of
    `code_han` (with `used_up`, someone else spends its last use between checking and joining); the join
    page's state afterwards."""
    from sqlalchemy import update

    from chiiki.pages.join import JoinState

    with session() as s:
        home = s.exec(select(Household).where(Household.han_id == home_han).order_by(Household.id)).first()
    demo.set_address("newcomer@example.jp", home.address)
    inv = ms.create_invite(demo.actor("kaicho@example.jp"), demo.association_id(DemoCity.A1),
                           {"days": 7, "max_uses": 1, "han_id": str(code_han)})
    await login_state(app_state, "newcomer@example.jp")
    st = await app_state.get_state(JoinState)
    await JoinState.check_code.fn(st, {"code": inv.code})
    if used_up:
        with session() as s:
            s.exec(update(InviteCode).values(uses=InviteCode.max_uses))
    await JoinState.join_code.fn(st, {"consent": "on"})
    return st


async def test_a_code_refused_at_joining_says_why_on_top_of_the_page(app_state, demo):
    han1 = demo.han_ids(DemoCity.A1)[0]
    st = await _join_with_a_han_code_at(app_state, demo, han1, han1, used_up=True)
    assert st.error == tr("ja", "membership.error.code_used") and "code" not in st.errors


async def test_a_code_at_an_address_of_another_han_says_what_one_of_its_own_han_says(app_state, demo):
    """Nothing tells whoever holds a han's code in which han (if any) an address is on the roster."""
    han1, han2 = demo.han_ids(DemoCity.A1)[:2]
    st = await _join_with_a_han_code_at(app_state, demo, han2, han1)
    assert st.error == "" and st.notice == tr("ja", "join.asked_household") and st.status == "pending"


async def test_a_code_at_an_address_on_the_roster_says_an_officer_will_confirm(app_state, demo):
    han1 = demo.han_ids(DemoCity.A1)[0]
    st = await _join_with_a_han_code_at(app_state, demo, han1, han1)
    assert st.error == "" and st.notice == tr("ja", "join.asked_household")
    assert st.status == "pending" and not st.invite_name
    assert demo.actor("newcomer@example.jp").membership(demo.association_id(DemoCity.A1)) is None
    auth = await app_state.get_state(AuthState)
    assert not auth.is_member


async def test_leaving_says_so_on_the_next_page(app_state, demo):
    from chiiki.pages.association import AssociationState

    await login_state(app_state, "member2@example.jp")
    st = await app_state.get_state(AssociationState)
    await AssociationState.leave.fn(st)
    assert st.error == ""
    auth = await app_state.get_state(AuthState)
    await AuthState.load_page.fn(auth, routes.JOIN)
    assert auth.flash == tr("ja", "association.left") and not auth.is_member


async def test_leave_through_the_state_refuses_the_last_manager(app_state, demo):
    from chiiki.pages.association import AssociationState

    await login_state(app_state, "kaicho@example.jp")
    st = await app_state.get_state(AssociationState)
    before = db_snapshot()
    await AssociationState.leave.fn(st)
    assert "役員" in st.error and db_snapshot() == before


def test_demo_content_adds_pending_requests_and_a_working_invite(demo):
    from chiiki.demo_association import DEMO_INVITE_CODE, seed_demo_content
    from chiiki.seed import DemoIds

    a1 = demo.association_id(DemoCity.A1)
    ids = DemoIds(associations=[a1], han={a1: demo.han_ids(DemoCity.A1)},
                  officers={"kaicho@example.jp": demo.account_id("kaicho@example.jp")})
    with session() as s:
        seed_demo_content(s, ids)
    rows, total = ms.pending_requests(demo.actor("kaicho@example.jp"), a1)
    assert total == 2
    assert ms.check_invite(demo.actor("newcomer@example.jp"), DEMO_INVITE_CODE).association_name == DemoCity.A1


def test_state_text_helper_sees_names_when_they_are_there(app_state):
    # Guards the leak checks above: the helper really serialises every var.
    assert isinstance(json.loads(state_text(app_state)), dict)


async def test_ending_a_membership_on_the_page_asks_once_more_before_anything_is_written(app_state, demo):
    """Many officers are new to smartphones: one tap on the end button only asks; the second records it."""
    from chiiki.pages.members_admin import MembersAdminState

    await login_state(app_state, "kaicho@example.jp")
    st = await app_state.get_state(MembersAdminState)
    await MembersAdminState.load.fn(st)
    await MembersAdminState.find_members.fn(st, {"member_query": ""})
    victim, label = st.member_options[-1]
    before = db_snapshot()
    await MembersAdminState.ask_end.fn(st, {"end_membership_id": "999999"})  # not among those listed
    assert st.ending == ""
    await MembersAdminState.ask_end.fn(st, {"end_membership_id": victim})
    assert (st.ending, st.ending_label) == (victim, label)
    MembersAdminState.keep_member.fn(st)
    assert st.ending == "" and db_snapshot() == before
    await MembersAdminState.ask_end.fn(st, {"end_membership_id": victim})
    assert db_snapshot() == before
    other = next(o for o, _label in st.member_options if o != victim)
    await MembersAdminState.end_membership.fn(st, {"end_membership_id": other})  # not the one confirmed
    assert db_snapshot() == before
    await MembersAdminState.ask_end.fn(st, {"end_membership_id": victim})
    await MembersAdminState.end_membership.fn(st, {"end_membership_id": st.ending})
    assert st.ending == "" and not st.error
    with session() as s:
        assert s.get(Membership, int(victim)).status == "left"


async def test_a_code_for_no_han_says_an_officer_will_place_the_resident(app_state, demo):
    from chiiki.pages.join import JoinState

    inv = ms.create_invite(demo.actor("kaicho@example.jp"), demo.association_id(DemoCity.A1),
                           {"days": 7, "max_uses": 1})
    await login_state(app_state, "newcomer@example.jp")
    st = await app_state.get_state(JoinState)
    await JoinState.check_code.fn(st, {"code": inv.code})
    await JoinState.join_code.fn(st, {"consent": "on"})
    assert st.error == "" and st.notice == tr("ja", "join.asked_han") and st.status == "pending"


async def test_the_members_page_badge_counts_waiting_requests_and_drops_when_one_is_decided(app_state, demo):
    from chiiki.components.shell import NAV_ITEMS
    from chiiki.pages.members_admin import MembersAdminState

    assert ("nav.members_admin", routes.MEMBERS_ADMIN, "can_manage_members", "pending_requests") in NAV_ITEMS
    mid = ms.request_join(demo.actor("newcomer@example.jp"), demo.association_id(DemoCity.A1), True,
                          ms.CONSENT_VERSION)
    auth = await login_state(app_state, "kaicho@example.jp")
    assert auth.pending_requests == 1
    st = await app_state.get_state(MembersAdminState)
    await MembersAdminState.load.fn(st)
    await MembersAdminState.start_decide.fn(st, str(mid))
    await MembersAdminState.reject.fn(st, {"reason": ""})
    assert st.notice and auth.pending_requests == 0
    member = await login_state(app_state, "hancho@example.jp")
    assert member.pending_requests == 0


async def test_usual_officer_titles_read_in_english_with_the_japanese_beside_them(app_state, demo):
    """An English reader choosing or reading a title sees "President (会長)", not 会長 alone; what is stored
    (and printed on paper) stays the Japanese title."""
    from chiiki.pages.association import AssociationState
    from chiiki.pages.officers import OfficersState
    from chiiki.state import UIState

    await login_state(app_state, "kaicho@example.jp")
    (await app_state.get_state(UIState)).lang = "en"
    off = await app_state.get_state(OfficersState)
    await OfficersState.load.fn(off)
    assert ["会長", "President (会長)"] in off.title_options and ["班長", "Han leader (班長)"] in off.title_options
    president = next(r for r in off.roles if r["title"] == "会長")
    assert president["title_label"] == "President (会長)"
    st = await app_state.get_state(AssociationState)
    await AssociationState.load.fn(st)
    assert any(o["title"] == "President (会長)" for o in st.officers)
