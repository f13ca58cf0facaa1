"""Roster services: route order, scope, search, audit, paper households, linking, import and export."""

import dataclasses
import io

import openpyxl
import pytest
from sqlalchemy import func
from sqlmodel import select

from chiiki.models import Account, AuditAccess, AuditEvent, Han, Household, Membership, utcnow
from chiiki.services import roster, tabular
from chiiki.services.db import session
from chiiki.services.errors import Denied, NotFound, ServiceError, ValidationErrors
from chiiki.services.policy import EXPORT, MANAGE_MEMBERS, VIEW_MEMBERS, RoleGrant
from tests.conftest import DemoCity


def snapshot():
    with session() as s:
        return tuple([tuple(r.model_dump().values()) for r in s.exec(select(m).order_by(m.id)).all()]
                     for m in (Household, Membership))


def audits(action: str) -> list[AuditEvent]:
    """The per-person events of these accesses (what each person's access log reads)."""
    with session() as s:
        return list(s.exec(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)).all())


def accesses(action: str) -> list[AuditAccess]:
    """The accesses themselves, one per audited action (what city staff's trail lists)."""
    with session() as s:
        return list(s.exec(select(AuditAccess).where(AuditAccess.action == action).order_by(AuditAccess.id)).all())


def households(aid: int, *, han_id: int | None = None, paper: bool | None = None) -> list[Household]:
    with session() as s:
        q = select(Household).where(Household.association_id == aid, Household.removed_at.is_(None))
        if han_id is not None:
            q = q.where(Household.han_id == han_id)
        if paper is not None:
            q = q.where(Household.paper_only == paper)
        return list(s.exec(q.order_by(Household.route_position, Household.id)).all())


def han_manager(demo, han_id: int):
    """The demo 班長, given manage_members too, still only for their own han."""
    actor = demo.actor("hancho@example.jp")
    role = actor.roles[0]
    return dataclasses.replace(actor, roles=(RoleGrant(role.role_id, role.association_id, "班長",
                                                       frozenset({VIEW_MEMBERS, MANAGE_MEMBERS}), han_id),))


@pytest.fixture
def a1(demo):
    return demo.association_id(DemoCity.A1)


# --------------------------------------------------------------------------- viewing


def test_president_sees_households_in_route_order_by_han(demo, a1):
    page = roster.roster_page(demo.actor("kaicho@example.jp"), a1, limit=100)
    assert page.total == 80 and len(page.rows) == 80
    han_order = {h: i for i, h in enumerate(demo.han_ids(DemoCity.A1))}
    keys = [(han_order[r.han_id], r.route_position) for r in page.rows]
    assert keys == sorted(keys)
    assert [r.han_name for r in page.rows[:2]] == ["1班", "1班"] and page.rows[-1].han_name == "4班"


def test_rows_show_member_accounts_for_digital_and_the_head_for_paper_households(demo, a1):
    rows = roster.roster_page(demo.actor("kaicho@example.jp"), a1, limit=100).rows
    with session() as s:
        me = s.get(Account, demo.account_id("member@example.jp"))
        me.phone = "0166111111"
        s.add(me)
    rows = roster.roster_page(demo.actor("kaicho@example.jp"), a1, limit=100).rows
    mine = next(r for r in rows if any(p.account_id == me.id for p in r.members))
    assert mine.channel == "digital"
    assert mine.names == [me.name] and mine.kanas == [me.kana]
    assert mine.phones == ["0166111111"] and mine.emails == ["member@example.jp"]
    assert mine.head_name == ""
    paper = [r for r in rows if r.channel == "paper"]
    assert paper and all(not r.members and r.head_name for r in paper)
    assert {r.household_id for r in paper} == {h.id for h in households(a1, paper=True)}


def test_pagination_is_on_the_server_with_a_total(demo, a1):
    kaicho = demo.actor("kaicho@example.jp")
    first = roster.roster_page(kaicho, a1)
    second = roster.roster_page(kaicho, a1, offset=50)
    assert (len(first.rows), len(second.rows), first.total, second.total) == (50, 30, 80, 80)
    assert not {r.household_id for r in first.rows} & {r.household_id for r in second.rows}
    with pytest.raises(ServiceError):
        roster.roster_page(kaicho, a1, limit=10_000)


def test_han_leader_sees_only_their_han(demo, a1):
    han1 = demo.han_ids(DemoCity.A1)[0]
    page = roster.roster_page(demo.actor("hancho@example.jp"), a1, limit=100)
    assert page.total == 20 and {r.han_id for r in page.rows} == {han1}
    # A search cannot reach beyond the han either.
    other = next(h for h in households(a1, paper=True) if h.han_id != han1)
    assert roster.roster_page(demo.actor("hancho@example.jp"), a1, query=other.head_name).total == 0


@pytest.mark.parametrize("login", ["member@example.jp", "newcomer@example.jp", "city@example.jp", "other@example.jp"])
def test_people_without_view_members_are_refused_and_nothing_is_audited(demo, a1, login):
    with pytest.raises(Denied):
        roster.roster_page(demo.actor(login), a1)
    assert audits("roster.view") == []


def test_officer_without_view_members_is_refused(demo, a1):
    actor = demo.actor("kaicho@example.jp")
    actor = dataclasses.replace(actor, roles=tuple(dataclasses.replace(r, permissions=frozenset({"send_circulars"}))
                                                   for r in actor.roles))
    with pytest.raises(Denied):
        roster.roster_page(actor, a1)


def test_managing_members_without_view_members_shows_no_household_data(demo, a1):
    """manage_members alone (no view_members) may not open a household's details nor look up addresses:
    both are personal data (privacy rule 1)."""
    from chiiki.services import membership

    actor = demo.actor("kaicho@example.jp")
    actor = dataclasses.replace(actor, roles=tuple(dataclasses.replace(r, permissions=frozenset({MANAGE_MEMBERS}))
                                                   for r in actor.roles))
    paper = households(a1, paper=True)[0]
    before = snapshot()
    with pytest.raises(Denied):
        roster.get_household(actor, paper.id)
    assert membership.household_options(actor, a1, "") == []
    assert snapshot() == before


def test_a_han_leader_is_not_offered_members_without_a_household(demo, a1):
    """A member with no household is in no han: linking them is for an association-wide officer."""
    han1 = demo.han_ids(DemoCity.A1)[0]
    loose = demo.account_id("member2@example.jp")
    with session() as s:
        m = s.exec(select(Membership).where(Membership.account_id == loose, Membership.status == "active")).one()
        m.household_id = None
        s.add(m)
    paper = households(a1, han_id=han1, paper=True)[0]
    assert m.id not in {c.membership_id for c in roster.link_candidates(han_manager(demo, han1), paper.id).candidates}
    assert m.id in {c.membership_id for c in roster.link_candidates(demo.actor("kaicho@example.jp"), paper.id).candidates}
    # Nor may they link one by sending its id: the member's name, phone and email would be on their roster.
    before = snapshot()
    with pytest.raises(Denied):
        roster.link_household(han_manager(demo, han1), paper.id, m.id)
    assert snapshot() == before
    roster.link_household(demo.actor("kaicho@example.jp"), paper.id, m.id)
    with session() as s:
        assert s.get(Membership, m.id).household_id == paper.id


def test_linking_needs_sight_of_the_household_and_of_the_members_present_one(demo, a1):
    """A manager who may not see a han's members links no one into or out of its households."""
    han1, han2 = demo.han_ids(DemoCity.A1)[:2]
    blind = dataclasses.replace(han_manager(demo, han1), roles=(RoleGrant(
        demo.actor("hancho@example.jp").roles[0].role_id, a1, "班長", frozenset({MANAGE_MEMBERS}), None),))
    member = demo.account_id("member@example.jp")
    with session() as s:
        m = s.exec(select(Membership).where(Membership.account_id == member, Membership.status == "active")).one()
    paper = households(a1, han_id=han1, paper=True)[0]
    before = snapshot()
    with pytest.raises(Denied):
        roster.link_household(blind, paper.id, m.id)
    # A han leader who sees and manages 2班 only cannot take a 1班 member out of their household either.
    with pytest.raises(Denied):
        roster.link_household(han_manager(demo, han2), households(a1, han_id=han2, paper=True)[0].id, m.id)
    assert snapshot() == before


@pytest.mark.parametrize("bad", ["abc", None, -1, 10**20, 999999])
def test_bad_association_ids_are_refused(demo, bad):
    with pytest.raises(ServiceError):
        roster.roster_page(demo.actor("kaicho@example.jp"), bad)


def test_every_page_view_is_audited_once_per_person_shown(demo, a1):
    page = roster.roster_page(demo.actor("kaicho@example.jp"), a1)
    events = audits("roster.view")
    subjects = {e.subject_account_id for e in events if e.subject_account_id}
    paper = {e.subject_household_id for e in events if e.subject_household_id}
    assert subjects == {p.account_id for r in page.rows for p in r.members}
    assert paper == {r.household_id for r in page.rows if r.channel == "paper"}
    assert len(events) == len(subjects) + len(paper)
    assert {e.record_count for e in events} == {50}
    assert {e.actor_title for e in events} == {"会長"}


def test_the_member_can_see_that_the_roster_view_touched_their_data(demo, a1):
    roster.roster_page(demo.actor("kaicho@example.jp"), a1)
    with session() as s:
        from chiiki.services import audit

        entries = audit.accesses_to(s, demo.account_id("member@example.jp"))
    assert [(e.action, e.actor_title) for e in entries] == [("roster.view", "会長")]


# --------------------------------------------------------------------------- search


def test_search_by_name_kana_in_either_script_and_address_with_any_width(demo, a1):
    kaicho = demo.actor("kaicho@example.jp")
    paper = households(a1, paper=True)[0]
    family, given = paper.head_name.split(" ")
    kana_family = paper.head_kana.split(" ")[0]
    hira = "".join(chr(ord(c) - 0x60) for c in kana_family)
    for q in (family + given, paper.head_name, kana_family, hira):
        rows = roster.roster_page(kaicho, a1, query=q, limit=100).rows
        assert paper.id in {r.household_id for r in rows}, q
    wide = paper.address.translate({ord(c): ord(c) + 0xFEE0 for c in "0123456789"}).replace("-", "－")
    assert [r.household_id for r in roster.roster_page(kaicho, a1, query=wide).rows] == [paper.id]


def test_search_finds_member_account_names_not_the_stale_head_of_a_digital_household(demo, a1):
    kaicho = demo.actor("kaicho@example.jp")
    me = demo.account_id("member@example.jp")
    with session() as s:
        acc = s.get(Account, me)
        acc.name = "緑川 ゆかり"
        s.add(acc)
    rows = roster.roster_page(kaicho, a1, query="緑川").rows
    assert len(rows) == 1 and rows[0].names == ["緑川 ゆかり"]
    assert roster.roster_page(kaicho, a1, query="no such person").total == 0


def test_search_wildcards_are_literal_and_long_queries_refused(demo, a1):
    kaicho = demo.actor("kaicho@example.jp")
    assert roster.roster_page(kaicho, a1, query="%").total == 0
    assert roster.roster_page(kaicho, a1, query="_").total == 0
    with pytest.raises(ServiceError) as e:
        roster.roster_page(kaicho, a1, query="あ" * 101)
    assert e.value.key == "error.too_long"


# --------------------------------------------------------------------------- export


def test_csv_export_has_a_bom_the_needed_columns_and_is_audited_per_person(demo, a1):
    out = roster.export_roster(demo.actor("kaicho@example.jp"), a1, "csv")
    assert out.data.startswith(b"\xef\xbb\xbf") and out.filename.endswith(".csv") and out.count == 80
    df = tabular.read_table(out.filename, out.data)
    assert list(df.columns) == ["班", "順番", "住所", "氏名", "ふりがな", "回覧の方法", "電話", "メール"]
    assert len(df) == 80
    text = out.data.decode("utf-8-sig")
    assert "password" not in text.lower() and "1950" not in text  # no hashes, no birth years
    events = audits("roster.export")
    assert {e.record_count for e in events} == {80}
    with session() as s:
        members = s.exec(select(func.count(Membership.id)).where(Membership.association_id == a1,
                                                                 Membership.status == "active")).one()
    assert len(events) == members + len(households(a1, paper=True))


def test_xlsx_export_opens_in_excel_format(demo, a1):
    out = roster.export_roster(demo.actor("kaikei@example.jp"), a1, "xlsx", lang="en")
    ws = openpyxl.load_workbook(io.BytesIO(out.data)).active
    assert [c.value for c in ws[1]] == ["Han", "Order", "Address", "Name", "Kana", "Circular by", "Phone", "Email"]
    assert ws.max_row == 81


@pytest.mark.parametrize("login", ["fukukaicho@example.jp", "hancho@example.jp", "member@example.jp",
                                   "city@example.jp", "other@example.jp"])
def test_export_needs_the_export_permission(demo, a1, login):
    with pytest.raises(Denied):
        roster.export_roster(demo.actor(login), a1, "csv")
    assert audits("roster.export") == []


def test_an_export_of_no_rows_is_logged_with_its_count_of_zero(demo, a1):
    """Every export is logged with its count (privacy rule 4), also one of a han with no household yet."""
    with session() as s:
        han = Han(association_id=a1, name="新しい班", route_order=99)
        s.add(han)
        s.flush()
        han_id = han.id
    actor = demo.actor("hancho@example.jp")
    role = actor.roles[0]
    actor = dataclasses.replace(actor, roles=(RoleGrant(role.role_id, a1, "班長", frozenset({VIEW_MEMBERS, EXPORT}),
                                                        han_id),))
    assert roster.export_roster(actor, a1, "csv").count == 0
    assert [(e.actor_account_id, e.record_count, e.detail) for e in accesses("roster.export")] == [
        (actor.account_id, 0, "csv")]
    assert audits("roster.export") == []  # no one's data was in it


def test_export_format_must_be_known(demo, a1):
    with pytest.raises(ServiceError):
        roster.export_roster(demo.actor("kaicho@example.jp"), a1, "pdf")


# --------------------------------------------------------------------------- paper households


def form(han, **over):
    return {"han_id": str(han), "route_position": "", "address": "旭川市緑町5条9丁目9-9",
            "head_name": "紙野 ふみ", "head_kana": "かみの ふみ", "phone": "0166-22-3333", "note": "玄関は裏", **over}


def test_a_manager_adds_a_paper_household_at_the_end_of_its_han(demo, a1):
    han2 = demo.han_ids(DemoCity.A1)[1]
    hid = roster.save_household(demo.actor("kaicho@example.jp"), a1, form(han2))
    order = households(a1, han_id=han2)
    assert order[-1].id == hid
    hh = order[-1]
    assert (hh.head_kana, hh.phone, hh.paper_only) == ("カミノ フミ", "0166223333", True)
    assert [h.route_position for h in order] == list(range(len(order)))
    assert audits("roster.household")[-1].subject_household_id == hid


def test_the_route_position_puts_a_household_where_it_belongs(demo, a1):
    kaicho = demo.actor("kaicho@example.jp")
    han2 = demo.han_ids(DemoCity.A1)[1]
    hid = roster.save_household(kaicho, a1, form(han2, route_position="1"))
    order = households(a1, han_id=han2)
    assert order[0].id == hid and [h.route_position for h in order] == list(range(len(order)))
    roster.move_household(kaicho, hid, "down")
    assert [h.id for h in households(a1, han_id=han2)][1] == hid
    roster.move_household(kaicho, hid, "up")
    roster.move_household(kaicho, hid, "up")  # already first: stays
    assert households(a1, han_id=han2)[0].id == hid
    roster.save_household(kaicho, a1, form(han2, route_position="3"), hid)
    assert [h.id for h in households(a1, han_id=han2)][2] == hid


@pytest.mark.parametrize("over,field,key", [
    ({"address": ""}, "address", "error.required"),
    ({"head_name": ""}, "head_name", "error.required"),
    ({"head_kana": "kamino"}, "head_kana", "error.kana"),
    ({"phone": "12"}, "phone", "error.phone"),
    ({"address": "あ" * 201}, "address", "error.too_long"),
    ({"route_position": "x"}, "route_position", "error.number"),
    ({"han_id": ""}, "han_id", "error.required"),
    ({"han_id": "999999"}, "han_id", "error.invalid"),
])
def test_bad_household_input_is_refused_and_nothing_written(demo, a1, over, field, key):
    before = snapshot()
    with pytest.raises(ValidationErrors) as e:
        roster.save_household(demo.actor("kaicho@example.jp"), a1, form(demo.han_ids(DemoCity.A1)[0], **over))
    assert e.value.errors[field][0] == key
    assert snapshot() == before


def test_a_han_officer_learns_nothing_of_other_hans_addresses_from_the_duplicate_checks(demo, a1):
    """A 班長 keeping one han's roster gets the same answer for an address of another han's household as for an
    address that exists nowhere, in the 世帯を追加 form and in an import preview: "taken" there would map the
    other hans' roster address by address."""
    han1, han2 = demo.han_ids(DemoCity.A1)[:2]
    leader = han_manager(demo, han1)
    other = households(a1, han_id=han2)[0].address
    made_up = "旭川市旭町9条9丁目99-99"
    csv = f"班,住所,氏名\n{demo_han_name(han1)},{other},山田 太郎\n{demo_han_name(han1)},{made_up},山田 花子\n"
    preview = roster.preview_import(leader, a1, "probe.csv", csv.encode())
    errors = {r.address: [k for k, _p in r.errors] for r in preview.rows}
    assert errors == {other: [], made_up: []}
    saved = roster.save_household(leader, a1, form(han1, address=other))
    assert saved  # written: the 会長, who sees both hans, can merge them
    with pytest.raises(ValidationErrors) as e:  # within the officer's own han a twin is still refused
        roster.save_household(leader, a1, form(han1, address=other))
    assert e.value.errors["address"][0] == "roster.error.address_taken"


def test_managing_members_without_view_members_cannot_tell_which_addresses_are_on_the_roster(demo, a1):
    """Officers holding manage_members but not view_members (anywhere, or in one of the han they keep) get the
    same answer for an address on the roster as for one that exists nowhere: "already on the roster" told them,
    unaudited, what they may not see. Twins are refused where the officer sees the roster."""
    han1, han2 = demo.han_ids(DemoCity.A1)[:2]
    kaicho = demo.actor("kaicho@example.jp")
    manage_only = dataclasses.replace(kaicho, roles=tuple(
        dataclasses.replace(r, permissions=frozenset({MANAGE_MEMBERS})) for r in kaicho.roles))
    role = demo.actor("hancho@example.jp").roles[0]
    sees_han1_keeps_both = dataclasses.replace(demo.actor("hancho@example.jp"), roles=(
        RoleGrant(role.role_id, a1, "班長", frozenset({VIEW_MEMBERS, MANAGE_MEMBERS}), han1),
        RoleGrant(role.role_id, a1, "班長", frozenset({MANAGE_MEMBERS}), han2)))
    made_up = "旭川市旭町9条9丁目99-99"
    for actor, han in ((manage_only, han1), (sees_han1_keeps_both, han2)):
        existing = households(a1, han_id=han)[0].address
        csv = f"班,住所,氏名\n{demo_han_name(han)},{existing},山田 太郎\n{demo_han_name(han)},{made_up},山田 花子\n"
        views = len(accesses("roster.view"))
        preview = roster.preview_import(actor, a1, "probe.csv", csv.encode())
        assert {r.address: [k for k, _p in r.errors] for r in preview.rows} == {existing: [], made_up: []}
        assert roster.save_household(actor, a1, form(han, address=existing))  # as for an address never seen
        assert len(accesses("roster.view")) == views
    existing = households(a1, han_id=han1)[0].address
    with pytest.raises(ValidationErrors) as e:
        roster.save_household(sees_han1_keeps_both, a1, form(han1, address=existing))
    assert e.value.errors["address"][0] == "roster.error.address_taken"


def demo_han_name(han_id: int) -> str:
    with session() as s:
        return s.get(Han, han_id).name


def test_a_duplicate_address_is_refused_whatever_its_width(demo, a1):
    existing = households(a1)[0]
    wide = existing.address.translate({ord(c): ord(c) + 0xFEE0 for c in "0123456789"})
    before = snapshot()
    with pytest.raises(ValidationErrors) as e:
        roster.save_household(demo.actor("kaicho@example.jp"), a1, form(existing.han_id, address=wide))
    assert e.value.errors["address"][0] == "roster.error.address_taken"
    assert snapshot() == before


def test_han_manager_works_only_in_their_han(demo, a1):
    han1, han2 = demo.han_ids(DemoCity.A1)[:2]
    manager = han_manager(demo, han1)
    assert [h for h, _ in roster.han_choices(manager, a1)] == [han1]
    hid = roster.save_household(manager, a1, form(han1))
    before = snapshot()
    with pytest.raises(ValidationErrors) as e:
        roster.save_household(manager, a1, form(han2, address="別の住所1-1"))
    assert e.value.errors["han_id"][0] == "error.invalid"
    with pytest.raises(ValidationErrors):
        roster.save_household(manager, a1, form(han2), hid)  # moving it out of the han
    other = households(a1, han_id=han2, paper=True)[0]
    for call in (lambda: roster.get_household(manager, other.id),
                 lambda: roster.save_household(manager, a1, form(han1, address="x"), other.id),
                 lambda: roster.remove_household(manager, other.id),
                 lambda: roster.move_household(manager, other.id, "up"),
                 lambda: roster.link_candidates(manager, other.id)):
        with pytest.raises(Denied):
            call()
    assert snapshot() == before


def test_editing_a_digital_household_never_touches_head_fields(demo, a1):
    kaicho = demo.actor("kaicho@example.jp")
    digital = households(a1, paper=False)[0]
    detail = roster.get_household(kaicho, digital.id)
    assert (detail.head_name, detail.phone, detail.paper_only) == ("", "", False)
    roster.save_household(kaicho, a1, form(digital.han_id, address=digital.address, head_name="", note="角の家"),
                          digital.id)
    with session() as s:
        after = s.get(Household, digital.id)
    assert (after.note, after.head_name) == ("角の家", digital.head_name)


def test_opening_a_digital_household_to_edit_shows_on_its_members_access_log(demo, a1):
    """The edit form shows the household's address and note: each member living there sees the access."""
    from chiiki.services import audit

    member = demo.actor("member@example.jp")
    with session() as s:
        home = s.exec(select(Membership.household_id).where(Membership.account_id == member.account_id,
                                                            Membership.status == "active")).one()
        before = len(audit.accesses_to(s, member.account_id))
    roster.get_household(demo.actor("kaicho@example.jp"), home)
    with session() as s:
        log = audit.accesses_to(s, member.account_id)
    assert len(log) == before + 1 and log[0].action == "roster.view" and log[0].actor_title == "会長"


def test_remove_is_soft_and_refused_while_members_live_there(demo, a1):
    kaicho = demo.actor("kaicho@example.jp")
    paper = households(a1, paper=True)[0]
    roster.remove_household(kaicho, paper.id)
    with session() as s:
        assert s.get(Household, paper.id).removed_at is not None
    assert paper.id not in {r.household_id for r in roster.roster_page(kaicho, a1, limit=100).rows}
    with pytest.raises(NotFound):
        roster.remove_household(kaicho, paper.id)
    digital = households(a1, paper=False)[0]
    before = snapshot()
    with pytest.raises(ServiceError) as e:
        roster.remove_household(kaicho, digital.id)
    assert e.value.key == "roster.error.has_members"
    assert snapshot() == before


def test_a_president_cannot_touch_another_associations_households(demo, a1):
    kaicho = demo.actor("kaicho@example.jp")
    foreign = households(demo.association_id(DemoCity.A2), paper=True)[0]
    foreign_han = demo.han_ids(DemoCity.A2)[0]
    before = snapshot()
    for call in (lambda: roster.get_household(kaicho, foreign.id),
                 lambda: roster.save_household(kaicho, foreign.association_id, form(foreign_han), foreign.id),
                 lambda: roster.save_household(kaicho, a1, form(foreign_han), foreign.id),
                 lambda: roster.save_household(kaicho, foreign.association_id, form(foreign_han)),
                 lambda: roster.remove_household(kaicho, foreign.id),
                 lambda: roster.move_household(kaicho, foreign.id, "down"),
                 lambda: roster.link_household(kaicho, foreign.id, 1),
                 lambda: roster.roster_page(kaicho, foreign.association_id)):
        with pytest.raises(Denied):
            call()
    with pytest.raises(ValidationErrors):  # a han of A2 is not a han of A1
        roster.save_household(kaicho, a1, form(foreign_han))
    assert snapshot() == before


def test_move_direction_must_be_up_or_down(demo, a1):
    with pytest.raises(ServiceError):
        roster.move_household(demo.actor("kaicho@example.jp"), households(a1)[0].id, "sideways")


# --------------------------------------------------------------------------- linking an account


def _new_member_without_household(demo, a1, address: str) -> int:
    with session() as s:
        acc = s.get(Account, demo.account_id("newcomer@example.jp"))
        acc.address = address
        s.add(acc)
        m = Membership(account_id=acc.id, association_id=a1, status="active", decided_at=utcnow())
        s.add(m)
        s.flush()
        return m.id


def test_linking_a_paper_household_to_a_new_member_makes_it_digital(demo, a1):
    kaicho = demo.actor("kaicho@example.jp")
    paper = households(a1, paper=True)[0]
    mid = _new_member_without_household(demo, a1, paper.address.replace("-", "－"))
    choice = roster.link_candidates(kaicho, paper.id)
    assert choice.address == paper.address and choice.candidates[0].membership_id == mid
    roster.link_household(kaicho, paper.id, mid)
    with session() as s:
        assert s.get(Membership, mid).household_id == paper.id
        assert s.get(Household, paper.id).paper_only is False
    row = next(r for r in roster.roster_page(kaicho, a1, limit=100).rows if r.household_id == paper.id)
    assert row.channel == "digital" and row.names == ["新井 みどり"]
    assert {(e.subject_account_id, e.subject_household_id) for e in audits("roster.link")} == {
        (demo.account_id("newcomer@example.jp"), None), (None, paper.id)}


def test_moving_a_member_to_another_household_recomputes_both_channels(demo, a1):
    kaicho = demo.actor("kaicho@example.jp")
    paper = households(a1, paper=True)[0]
    with session() as s:
        m = s.exec(select(Membership).where(Membership.account_id == demo.account_id("member@example.jp"))).one()
        old = m.household_id
    roster.link_household(kaicho, paper.id, m.id)
    with session() as s:
        assert s.get(Household, paper.id).paper_only is False
        assert s.get(Household, old).paper_only is True


def test_linking_refuses_foreign_or_inactive_memberships(demo, a1):
    kaicho = demo.actor("kaicho@example.jp")
    paper = households(a1, paper=True)[0]
    with session() as s:
        foreign = s.exec(select(Membership.id).where(Membership.account_id == demo.account_id("other@example.jp"))
                         ).one()
    before = snapshot()
    for mid in (foreign, 999999, "x", None):
        with pytest.raises(ServiceError):
            roster.link_household(kaicho, paper.id, mid)
    assert snapshot() == before


# --------------------------------------------------------------------------- import


def csv_bytes(rows, headers=("班", "住所", "氏名", "ふりがな", "電話"), encoding="utf-8-sig") -> bytes:
    lines = [",".join(headers)] + [",".join(r) for r in rows]
    return ("\r\n".join(lines) + "\r\n").encode(encoding)


GOOD = [("1班", "旭川市緑町5条8丁目1-1", "紙野 一郎", "かみの いちろう", "0166-11-2222"),
        ("2", "旭川市緑町5条8丁目1-2", "紙野 二郎", "", ""),
        ("３班", "旭川市緑町5条8丁目1-3", "紙野 三郎", "カミノ サブロウ", "")]


def test_preview_writes_nothing_and_confirm_writes_every_row(demo, a1):
    kaicho = demo.actor("kaicho@example.jp")
    before = snapshot()
    preview = roster.preview_import(kaicho, a1, "paper.csv", csv_bytes(GOOD, encoding="cp932"))
    assert preview.ok and len(preview.rows) == 3 and preview.error_rows == 0
    assert snapshot() == before
    n_before = len(households(a1))
    assert roster.confirm_import(kaicho, a1, preview.raw()) == 3
    assert len(households(a1)) == n_before + 3
    han3 = demo.han_ids(DemoCity.A1)[2]
    last = households(a1, han_id=han3)[-1]
    assert (last.head_name, last.head_kana, last.paper_only) == ("紙野 三郎", "カミノ サブロウ", True)
    assert [h.route_position for h in households(a1, han_id=han3)][-2:] == [19, 20]
    ev = accesses("roster.import")
    assert len(ev) == 1 and ev[0].record_count == 3 and audits("roster.import") == []


def test_english_headers_and_xlsx_are_accepted(demo, a1):
    data = tabular.to_xlsx_bytes(["han", "address", "name", "kana", "phone"], [list(r) for r in GOOD], "roster")
    preview = roster.preview_import(demo.actor("kaicho@example.jp"), a1, "paper.xlsx", data)
    assert preview.ok and [r.name for r in preview.rows] == ["紙野 一郎", "紙野 二郎", "紙野 三郎"]


def test_preview_lists_the_errors_of_each_row(demo, a1):
    existing = households(a1)[0].address
    rows = [
        ("1班", "旭川市緑町5条8丁目1-1", "", "", ""),                 # 2: missing name
        ("1班", "", "名無", "", ""),                                  # 3: missing address
        ("9班", "旭川市緑町5条8丁目2-1", "某", "", ""),               # 4: unknown han
        ("1班", "旭川市緑町5条８丁目1-1", "重複", "", ""),            # 5: same address as row 2 (other width)
        ("1班", existing, "既存", "", ""),                            # 6: already in the roster
        ("1班", "旭川市緑町5条8丁目3-1", "あ" * 101, "", ""),          # 7: name too long
        ("1班", "旭川市緑町5条8丁目4-1", "某", "kana", "12"),          # 8: bad kana and phone
        ("", "旭川市緑町5条8丁目5-1", "某", "", ""),                   # 9: han missing
        ("1班", "旭川市緑町5条8丁目6-1", "正しい 行", "タダシイ ギョウ", ""),  # 10: fine
    ]
    preview = roster.preview_import(demo.actor("kaicho@example.jp"), a1, "p.csv", csv_bytes(rows))
    errors = {r.line: [k for k, _p in r.errors] for r in preview.rows}
    assert errors[2] == ["roster.import.name_required"]
    assert errors[3] == ["roster.import.address_required"]
    assert errors[4] == ["roster.import.han_unknown"]
    assert errors[5] == ["roster.import.dup_file"]
    assert errors[6] == ["roster.import.dup_existing"]
    assert errors[7] == ["roster.import.too_long"]
    assert errors[8] == ["roster.import.bad_kana", "roster.import.bad_phone"]
    assert errors[9] == ["roster.import.han_required"]
    assert errors[10] == []
    assert preview.error_rows == 8 and not preview.ok
    dup = next(r for r in preview.rows if r.line == 5)
    assert dup.errors[0][1] == {"row": 2}


def test_confirm_with_any_bad_row_writes_nothing(demo, a1):
    kaicho = demo.actor("kaicho@example.jp")
    raw = roster.preview_import(kaicho, a1, "p.csv", csv_bytes(GOOD)).raw()
    raw.append({"line": 5, "han": "1班", "address": "", "name": "x", "kana": "", "phone": ""})
    before = snapshot()
    with pytest.raises(ServiceError) as e:
        roster.confirm_import(kaicho, a1, raw)
    assert e.value.key == "roster.import.changed"
    assert snapshot() == before and accesses("roster.import") == []


def test_confirm_re_checks_against_the_roster_as_it_is_now(demo, a1):
    kaicho = demo.actor("kaicho@example.jp")
    preview = roster.preview_import(kaicho, a1, "p.csv", csv_bytes(GOOD))
    assert preview.ok
    # Meanwhile someone adds one of those addresses by hand.
    roster.save_household(kaicho, a1, form(demo.han_ids(DemoCity.A1)[0], address=GOOD[1][1]))
    before = snapshot()
    with pytest.raises(ServiceError):
        roster.confirm_import(kaicho, a1, preview.raw())
    assert snapshot() == before


def test_import_needs_manage_members_and_keeps_a_han_manager_in_their_han(demo, a1):
    data = csv_bytes(GOOD)
    for login in ("kaikei@example.jp", "member@example.jp", "city@example.jp", "other@example.jp"):
        with pytest.raises(Denied):
            roster.preview_import(demo.actor(login), a1, "p.csv", data)
        with pytest.raises(Denied):
            roster.confirm_import(demo.actor(login), a1, [dict(line=2, han="1班", address="a", name="b")])
    manager = han_manager(demo, demo.han_ids(DemoCity.A1)[0])
    preview = roster.preview_import(manager, a1, "p.csv", data)
    assert [[k for k, _ in r.errors] for r in preview.rows] == [[], ["roster.import.han_out_of_scope"],
                                                                ["roster.import.han_out_of_scope"]]


def test_import_file_problems_are_clear(demo, a1):
    kaicho = demo.actor("kaicho@example.jp")
    with pytest.raises(ServiceError) as e:
        roster.preview_import(kaicho, a1, "p.csv", csv_bytes(GOOD, headers=("班", "住所", "電話番号", "x", "y")))
    assert e.value.key == "roster.import.missing_columns" and e.value.params["columns"] == "氏名"
    with pytest.raises(ServiceError) as e:
        roster.preview_import(kaicho, a1, "p.pdf", b"%PDF-1.4")
    assert e.value.key == "tabular.error_type"
    with pytest.raises(ServiceError):
        roster.confirm_import(kaicho, a1, "not rows")
    with pytest.raises(ServiceError):
        roster.confirm_import(kaicho, a1, [])


def test_a_large_import_is_one_statement_and_fast_enough(demo, a1):
    rows = [("1班", f"旭川市旭町9条{i}丁目", f"紙野 {i}", "", "") for i in range(2000)]
    kaicho = demo.actor("kaicho@example.jp")
    preview = roster.preview_import(kaicho, a1, "big.csv", csv_bytes(rows))
    assert preview.ok
    assert roster.confirm_import(kaicho, a1, preview.raw()) == 2000
    with session() as s:
        assert s.exec(select(func.count(Household.id)).where(Household.association_id == a1)).one() == 2080
        positions = s.exec(select(Household.route_position).where(Household.han_id == demo.han_ids(DemoCity.A1)[0])
                           .order_by(Household.route_position)).all()
    assert positions == list(range(len(positions)))


def test_han_names_are_matched_width_insensitively(demo, a1):
    with session() as s:
        names = s.exec(select(Han.name).where(Han.association_id == a1)).all()
    assert "1班" in names
    preview = roster.preview_import(demo.actor("kaicho@example.jp"), a1, "p.csv",
                                    csv_bytes([("１班", "旭川市緑町5条8丁目1-1", "紙野 一郎", "", "")]))
    assert preview.ok


# --------------------------------------------------------------------------- PostgreSQL


@pytest.mark.postgres
def test_page_search_and_export_run_on_postgresql(pg_url, monkeypatch, tmp_path):
    """The search's aggregate (string_agg there, group_concat on SQLite) and the route order on PostgreSQL."""
    from chiiki import settings as settings_module
    from chiiki.bench import roster as bench
    from chiiki.services import db
    from chiiki.services.accounts import load_actor_in

    monkeypatch.setenv("REFLEX_DB_URL", pg_url)
    monkeypatch.setenv("CHIIKI_DATA_DIR", str(tmp_path))
    settings_module.reload()
    try:
        aid, president = bench.build(120)
        with session() as s:
            actor = load_actor_in(s, president)
        page = roster.roster_page(actor, aid)
        assert page.total == 120 and [r.route_position for r in page.rows[:12]] == list(range(12))
        assert {r.han_name for r in page.rows[:12]} == {"1班"} and page.rows[12].han_name == "2班"
        name = next(p.name for r in page.rows for p in r.members)
        found = roster.roster_page(actor, aid, query=name.replace(" ", ""))
        assert found.total >= 1 and all(name in r.names or name == r.head_name for r in found.rows[:1])
        kana = roster.roster_page(actor, aid, query=page.rows[0].kanas[0].translate(
            {c + 0x60: c for c in range(0x3041, 0x3097)}))
        assert page.rows[0].household_id in {r.household_id for r in kana.rows}
        assert roster.export_roster(actor, aid, "csv").count == 120
    finally:
        db.dispose_all()
        monkeypatch.undo()
        settings_module.reload()


def test_positions_stay_without_holes_after_a_removal_or_a_move_to_another_han(demo, a1):
    kaicho = demo.actor("kaicho@example.jp")
    han1, han2 = demo.han_ids(DemoCity.A1)[:2]
    paper = households(a1, han_id=han1, paper=True)[0]
    roster.remove_household(kaicho, paper.id)
    assert [h.route_position for h in households(a1, han_id=han1)] == list(range(19))
    other = households(a1, han_id=han1, paper=True)[0]
    roster.save_household(kaicho, a1, form(han2, address=other.address, head_name=other.head_name,
                                           head_kana=other.head_kana, phone=""), other.id)
    assert [h.route_position for h in households(a1, han_id=han1)] == list(range(18))
    assert [h.route_position for h in households(a1, han_id=han2)] == list(range(21))
    assert households(a1, han_id=han2)[-1].id == other.id
