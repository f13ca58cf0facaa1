"""Every roster handler, called by everyone who must be refused: nothing changes, no personal data in state."""

import io
from pathlib import Path

import pytest
import reflex as rx
from sqlmodel import SQLModel, select

from chiiki.models import Account, Household, Membership, OfficerRole
from chiiki.pages.roster import RosterState
from chiiki.services.db import engine, session
from tests.conftest import DemoCity, login_state, state_text

# Everything a roster handler could write (audit events aside: an allowed own-han view writes those).
WATCHED = {"household", "membership", "account", "han", "association", "officerrole"}


def db_snapshot() -> dict:
    out = {}
    with engine().connect() as c:
        for table in SQLModel.metadata.sorted_tables:
            if table.name in WATCHED:
                out[table.name] = [tuple(r) for r in c.execute(table.select().order_by(*table.primary_key.columns))]
    assert set(out) == WATCHED
    return out


def president_of(association_id: int) -> str:
    with session() as s:
        return s.exec(
            select(Account.login_id).join(Membership, Membership.account_id == Account.id)
            .join(OfficerRole, OfficerRole.membership_id == Membership.id)
            .where(OfficerRole.association_id == association_id, OfficerRole.title == "会長")
        ).first()


def personal_data(association_id: int, han_id: int | None = None, *, except_login: str | None = None) -> list[str]:
    """Addresses, emails and phone numbers (unique in the demo) of people the actor must not see."""
    with session() as s:
        q = select(Household).where(Household.association_id == association_id)
        if han_id:
            q = q.where(Household.han_id == han_id)
        homes = s.exec(q).all()
        ids = [h.id for h in homes]
        accounts = s.exec(select(Account).join(Membership, Membership.account_id == Account.id)
                          .where(Membership.household_id.in_(ids))).all()
    mine = [a for a in accounts if a.login_id == except_login]
    own_address = mine[0].address if mine else None
    values = [h.address for h in homes if h.address != own_address]
    values += [a.email for a in accounts if a.login_id != except_login and a.email]
    values += [h.phone for h in homes if h.phone]
    return values


class Targets:
    def __init__(self, demo):
        self.a1 = demo.association_id(DemoCity.A1)
        self.han1, self.han2 = demo.han_ids(DemoCity.A1)[:2]
        with session() as s:
            # Phone numbers on a paper household, so a leak of phones would be caught too.
            homes = s.exec(select(Household).where(Household.association_id == self.a1,
                                                   Household.han_id == self.han2).order_by(Household.id)).all()
            for i, h in enumerate(homes):
                h.phone = f"016622{i:04d}"
                s.add(h)
            self.paper = next(h.id for h in homes if h.paper_only)
            self.digital = next(h.id for h in homes if not h.paper_only)
            self.member2 = s.exec(select(Membership.id).where(
                Membership.account_id == demo.account_id("member2@example.jp"))).one()
            # An officer without view_members: member2 becomes 広報 with send_circulars only.
            s.add(OfficerRole(association_id=self.a1, membership_id=self.member2, title="広報",
                              permissions="send_circulars"))
            # The 班長 of 1班 also manages members, in 1班 only.
            role = s.exec(select(OfficerRole).where(OfficerRole.title == "班長")).one()
            role.permissions = "view_members manage_members send_circulars"
            s.add(role)


def upload(name: str, data: bytes) -> rx.UploadFile:
    return rx.UploadFile(file=io.BytesIO(data), path=Path(name), size=len(data))


CSV = "班,住所,氏名\n2班,旭川市緑町5条1丁目1-1,紙野 一郎\n".encode()


def calls(t: Targets, household: int):
    """(name, preset state, handler, args) for every handler of the roster page."""
    raw = [{"line": 2, "han": "2班", "address": "旭川市緑町5条1丁目1-1", "name": "紙野 一郎", "kana": "", "phone": ""}]
    form = {"han_id": str(t.han2), "address": "旭川市緑町5条9丁目9-9", "head_name": "侵入", "route_position": "1"}
    return [
        ("load", {}, RosterState.load, ()),
        ("search", {}, RosterState.search, ({"query": "旭"},)),
        ("clear_search", {}, RosterState.clear_search, ()),
        ("next_page", {"pages": 5}, RosterState.next_page, ()),
        ("prev_page", {"page": 2, "pages": 5}, RosterState.prev_page, ()),
        ("open_add", {}, RosterState.open_add, ()),
        ("open_edit", {}, RosterState.open_edit, (str(household),)),
        ("save new", {}, RosterState.save, (form,)),
        ("save existing", {"form_id": household}, RosterState.save, (form,)),
        ("remove", {"remove_id": household}, RosterState.remove, ()),
        ("move", {}, RosterState.move, (str(household), "up")),
        ("open_link", {}, RosterState.open_link, (str(household),)),
        ("link", {"link_id": household}, RosterState.link, ({"membership_id": str(t.member2)},)),
        ("upload", {}, RosterState.upload, ([upload("p.csv", CSV)],)),
        ("confirm_import", {"_rows": raw, "_import_association": t.a1}, RosterState.confirm_import, ()),
        ("export_csv", {}, RosterState.export_csv, ()),
        ("export_xlsx", {}, RosterState.export_xlsx, ()),
    ]


REFUSED = [
    # (who, what they may not touch: None = anything in A1, "han2" = 2班 only)
    ("anonymous", None),
    ("newcomer@example.jp", None),  # a resident who is not a member
    ("member@example.jp", None),
    ("member2@example.jp", None),  # an officer without view_members
    ("city@example.jp", None),
    ("other@example.jp", None),  # a member of another association
    ("president of A3", None),  # an officer (with every permission) of another association
    ("hancho@example.jp", "han2"),  # a han-scoped officer looking at another han
]


async def _run(app_state, demo, who: str):
    t = Targets(demo)
    login = president_of(demo.association_id(DemoCity.A3)) if who == "president of A3" else who
    if login != "anonymous":
        await login_state(app_state, login)
    return t, login


@pytest.mark.parametrize("who,scope", REFUSED)
@pytest.mark.parametrize("kind", ["paper", "digital"])
async def test_every_roster_handler_refuses_and_changes_nothing(app_state, demo, who, scope, kind):
    t, login = await _run(app_state, demo, who)
    household = t.paper if kind == "paper" else t.digital
    st = await app_state.get_state(RosterState)
    before = db_snapshot()
    secrets = personal_data(t.a1, t.han2 if scope == "han2" else None,
                            except_login=None if login == "anonymous" else login)
    assert secrets
    for name, preset, handler, args in calls(t, household):
        for key, value in preset.items():
            setattr(st, key, value)
        result = handler.fn(st, *args)
        if hasattr(result, "__await__"):
            result = await result
        if login == "anonymous":
            assert "/login" in str(result), name
        assert db_snapshot() == before, name
        text = state_text(app_state)
        leaked = [v for v in secrets if v in text]
        assert not leaked, (name, leaked[:3])
        assert not [v for v in secrets if v in str(result)], name  # nor in a download


async def test_han_leader_may_manage_their_own_han_through_the_same_handlers(app_state, demo):
    t, _login = await _run(app_state, demo, "hancho@example.jp")
    st = await app_state.get_state(RosterState)
    await RosterState.load.fn(st)
    assert st.allowed and st.can_manage and [o[0] for o in st.han_options] == [str(t.han1)]
    own = next(r for r in st.rows if r["channel"] == "paper")
    await RosterState.move.fn(st, own["id"], "down")
    assert st.error == "" and st.notice == "順番を変えました"


async def test_refusals_after_a_role_is_revoked_clear_what_the_state_held(app_state, demo):
    t = Targets(demo)
    await login_state(app_state, "kaikei@example.jp")
    st = await app_state.get_state(RosterState)
    await RosterState.load.fn(st)
    assert st.rows
    with session() as s:
        role = s.exec(select(OfficerRole).where(OfficerRole.title == "会計")).one()
        role.revoked_at = role.valid_from
        s.add(role)
    await RosterState.next_page.fn(st)
    assert st.rows == [] and not st.allowed and st.error == "この操作はできません"
    text = state_text(app_state)
    assert not [v for v in personal_data(t.a1, except_login="kaikei@example.jp") if v in text]
