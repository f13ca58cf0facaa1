"""The roster (名簿): households in route order by han, paper-only households, linking, import and export."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import Iterable, Sequence

from sqlalchemy import bindparam, case, func, insert, update
from sqlmodel import Session, select

from chiiki.i18n import TZ, tr
from chiiki.models import Account, Association, Han, Household, Membership, utcnow
from chiiki.services import audit, tabular, validate
from chiiki.services.accounts import refresh_paper_only
from chiiki.services.associations import association_or_404, han_of, in_scope, page_args, require_scope
from chiiki.services.db import lock_row, session
from chiiki.services.errors import Denied, NotFound, ServiceError, ValidationErrors
from chiiki.services.policy import ALL_HAN, EXPORT, MANAGE_MEMBERS, VIEW_MEMBERS, Actor, han_scope, shared_scope

PAGE_SIZE = 50
MAX_QUERY = 100
MAX_POSITION = 100_000
# Lengths follow the Household columns in chiiki.models.
MAX_LEN = {"address": 200, "name": 100, "kana": 200, "phone": 30, "note": 500}


# --------------------------------------------------------------------------- text folding


# Dashes that survive NFKC ("－" and "﹣" already become "-"); people type all of them in addresses.
_DASHES = "\u2010\u2011\u2012\u2013\u2014\u2015\u2212"
_TO_KATAKANA = {c: c + 0x60 for c in range(0x3041, 0x3097)}
_TO_HIRAGANA = {c + 0x60: c for c in range(0x3041, 0x3097)}


_DIGIT_DASH = re.compile(r"(?<=\d)ー(?=\d)")


def _squeeze(value: str) -> str:
    """Width, case, dashes and spaces ignored. Only C-level string calls: it runs over whole associations."""
    v = unicodedata.normalize("NFKC", value or "").lower()
    for d in _DASHES:
        if d in v:
            v = v.replace(d, "-")
    if "ー" in v:  # 「1ー17」: the long-vowel mark typed as a dash between numbers
        v = _DIGIT_DASH.sub("-", v)
    return v.replace(" ", "").replace("\t", "")


def fold(value: str) -> str:
    """Compare addresses the way people mean them: "１丁目２－３" = "1丁目2-3", "さとう" = "サトウ"."""
    return _squeeze(value).translate(_TO_KATAKANA)


def search_keys(query: str) -> tuple[str, ...]:
    """A search term in both kana scripts, so stored text needs no kana conversion while scanning."""
    base = _squeeze(query)
    if not base:
        return ()
    return tuple(dict.fromkeys((base.translate(_TO_KATAKANA), base.translate(_TO_HIRAGANA))))


# --------------------------------------------------------------------------- reading the roster


@dataclass(frozen=True)
class Person:
    account_id: int
    name: str
    kana: str
    phone: str
    email: str


@dataclass(frozen=True)
class RosterRow:
    household_id: int
    han_id: int | None
    han_name: str
    route_position: int
    address: str
    channel: str  # digital (at least one active member account) | both (digital, and a paper copy) | paper
    # Paper-only households: the representative kept on the household row. Digital: empty.
    head_name: str
    head_kana: str
    phone: str
    members: tuple[Person, ...]

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.members] if self.members else [self.head_name]

    @property
    def kanas(self) -> list[str]:
        return [p.kana for p in self.members] if self.members else [self.head_kana]

    @property
    def phones(self) -> list[str]:
        found = [p.phone for p in self.members] if self.members else [self.phone]
        return [x for x in dict.fromkeys(found) if x]

    @property
    def emails(self) -> list[str]:
        return [x for x in dict.fromkeys(p.email for p in self.members) if x]


@dataclass(frozen=True)
class RosterPage:
    rows: tuple[RosterRow, ...]
    total: int
    offset: int
    limit: int


def _active_household_filter(association_id: int, scope) -> list:
    cond = [Household.association_id == association_id, Household.removed_at.is_(None)]
    if scope != ALL_HAN:
        cond.append(Household.han_id.in_(sorted(scope)))
    return cond


def _clean_query(query: object) -> tuple[str, ...]:
    return search_keys(validate.text(query, "query", max_len=MAX_QUERY, required=False))


def _search_ids(s: Session, association_id: int, scope, keys: tuple[str, ...]) -> list[int]:
    """Households in scope whose address or paper head, or an active member's name or kana, contains a key.

    Matching runs in Python on folded text, because SQL LIKE cannot ignore width or kana script.
    """
    sep = "\x1f"  # a control character: no search key can contain it, so no match spans two fields
    conn = s.connection()  # plain rows: ORM row processing would double the time of these scans
    # Two plain scans joined here rather than in SQL: a join leaves the plan to table statistics, and
    # right after a bulk load (an import, a new deployment) a stale estimate made PostgreSQL rescan the
    # memberships for every household (5 s at 3,000 households); SQLite did the same with one of its indexes.
    names = dict(conn.execute(
        select(Membership.household_id, func.aggregate_strings(Account.name + sep + Account.kana, sep))
        .join(Account, Account.id == Membership.account_id)
        .where(Membership.association_id == association_id, Membership.status == "active")
        .group_by(Membership.household_id)
    ).all())
    hits = []
    for hid, address, paper, head_name, head_kana in conn.execute(
        select(Household.id, Household.address, Household.paper_only, Household.head_name, Household.head_kana)
        .where(*_active_household_filter(association_id, scope))
    ).all():
        head = f"{head_name}{sep}{head_kana}" if paper else ""
        folded = _squeeze(f"{address}{sep}{head}{sep}{names.get(hid) or ''}")
        if any(k in folded for k in keys):
            hits.append(hid)
    return hits


# Han in route order, households without a han last, then the route inside each han.
_ROUTE_ORDER = (case((Han.id.is_(None), 1), else_=0), Han.route_order, Han.id, Household.route_position, Household.id)


def _select_rows(s: Session, association_id: int, scope, keys: tuple[str, ...], limit: int | None, offset: int
                 ) -> tuple[list[RosterRow], int]:
    if keys:
        ids = _search_ids(s, association_id, scope, keys)
        cond = [Household.id.in_(ids)]
        total = len(ids)
    else:
        cond = _active_household_filter(association_id, scope)
        total = s.exec(select(func.count(Household.id)).where(*cond)).one()
    stmt = (
        select(Household.id, Household.han_id, Han.name, Household.route_position, Household.address,
               Household.head_name, Household.head_kana, Household.phone, Household.paper_copy)
        .join(Han, Han.id == Household.han_id, isouter=True)
        .where(*cond)
        .order_by(*_ROUTE_ORDER)
        .offset(offset)
    )
    if limit is not None:
        stmt = stmt.limit(limit)
    base = s.exec(stmt).all() if total else []
    if limit is None and not keys and offset == 0:
        # The whole roster (an export) joins the same filter instead of sending thousands of ids back.
        members = _members_of(s, association_id, where=cond)
    else:
        members = _members_of(s, association_id, [r[0] for r in base])
    rows = []
    for hid, han_id, han_name, pos, address, head_name, head_kana, phone, paper_copy in base:
        people = tuple(members.get(hid, ()))
        digital = bool(people)
        channel = ("both" if paper_copy else "digital") if digital else "paper"
        rows.append(RosterRow(hid, han_id, han_name or "", pos, address, channel,
                              "" if digital else head_name, "" if digital else head_kana,
                              "" if digital else phone, people))
    return rows, total


def _members_of(s: Session, association_id: int, household_ids: list[int] | None = None, *,
                where: list | None = None) -> dict[int, list[Person]]:
    """Active member accounts of these households, in one query (no N+1): the households are given by id,
    or by the conditions on Household that chose them (`where`, from _active_household_filter)."""
    out: dict[int, list[Person]] = {}
    if not household_ids and not where:
        return out
    q = (select(Membership.household_id, Account.id, Account.name, Account.kana, Account.phone, Account.email)
         .join(Account, Account.id == Membership.account_id)
         .where(Membership.association_id == association_id, Membership.status == "active",
                Account.deleted_at.is_(None)))
    if where:
        q = q.join(Household, Household.id == Membership.household_id).where(*where)
    else:
        q = q.where(Membership.household_id.in_(household_ids))
    for hid, aid, name, kana, phone, email in s.connection().execute(
        q.order_by(Membership.household_id, Membership.id)
    ).all():
        out.setdefault(hid, []).append(Person(aid, name, kana, phone, email))
    return out


def _audit_rows(s: Session, actor: Actor, action: str, association_id: int, rows: Sequence[RosterRow],
                detail: str = "", empty_too: bool = False) -> None:
    """One audit event for each person whose data was shown: member accounts, and paper-only households; for no
    rows nothing, unless empty_too (an export is logged with its count, 0 too: privacy rule 4)."""
    if not rows and not empty_too:
        return
    audit.record(s, actor, action, association_id=association_id,
                 subjects=[p.account_id for r in rows for p in r.members],
                 household_ids=[r.household_id for r in rows if not r.members], count=len(rows), detail=detail)


def roster_page(actor: Actor, association_id: object, query: object = "", limit: object = PAGE_SIZE,
                offset: object = 0) -> RosterPage:
    """One page of the roster within the actor's view_members scope; the view is audited."""
    keys = _clean_query(query)
    lim, off = page_args(limit, offset)
    with session() as s:
        a = association_or_404(s, association_id)
        scope = require_scope(actor, VIEW_MEMBERS, a.id)
        rows, total = _select_rows(s, a.id, scope, keys, lim, off)
        _audit_rows(s, actor, "roster.view", a.id, rows, detail="search" if keys else "")
        return RosterPage(tuple(rows), total, off, lim)


# --------------------------------------------------------------------------- export


@dataclass(frozen=True)
class RosterExport:
    filename: str
    data: bytes
    mime_type: str
    count: int


EXPORT_FORMATS = {
    "csv": "text/csv",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
EXPORT_COLUMNS = ("han", "position", "address", "name", "kana", "channel", "phone", "email")


def export_scope(actor: Actor, association_id: int):
    """Where the actor may both read and export: the intersection of the two permissions' scopes."""
    both = shared_scope(actor, association_id, VIEW_MEMBERS, EXPORT)
    if not both:
        raise Denied()
    return both


def export_roster(actor: Actor, association_id: object, fmt: object, lang: str = "ja") -> RosterExport:
    """The whole roster in scope as CSV (UTF-8 with BOM) or .xlsx; only the needed columns; audited."""
    fmt = validate.choice(fmt, "format", tuple(EXPORT_FORMATS))
    lang = "en" if lang == "en" else "ja"
    with session() as s:
        a = association_or_404(s, association_id)
        scope = export_scope(actor, a.id)
        rows, _total = _select_rows(s, a.id, scope, (), None, 0)
        headers = [tr(lang, f"roster.col.{c}") for c in EXPORT_COLUMNS]
        table = [
            [r.han_name, r.route_position + 1, r.address, "、".join(r.names), "、".join(r.kanas),
             tr(lang, f"roster.channel.{r.channel}"), "、".join(r.phones), "、".join(r.emails)]
            for r in rows
        ]
        stamp = datetime.now(TZ).strftime("%Y%m%d-%H%M")
        if fmt == "csv":
            data = tabular.to_csv_bytes(headers, table)
        else:
            data = tabular.to_xlsx_bytes(headers, table, tr(lang, "roster.title"))
        _audit_rows(s, actor, "roster.export", a.id, rows, detail=fmt, empty_too=True)
        return RosterExport(f"roster-{a.id}-{stamp}.{fmt}", data, EXPORT_FORMATS[fmt], len(rows))


# --------------------------------------------------------------------------- editing households


@dataclass(frozen=True)
class HouseholdDetail:
    """What the edit form shows (the officer manages this household)."""

    household_id: int
    han_id: int
    route_position: int  # 1-based, as people count
    address: str
    head_name: str
    head_kana: str
    phone: str
    note: str
    paper_only: bool
    paper_copy: bool


def han_choices(actor: Actor, association_id: object) -> list[tuple[int, str]]:
    """The han where the actor may manage households, in route order (names only, no personal data)."""
    with session() as s:
        a = association_or_404(s, association_id)
        scope = require_scope(actor, MANAGE_MEMBERS, a.id)
        stmt = select(Han.id, Han.name).where(Han.association_id == a.id)
        if scope != ALL_HAN:
            stmt = stmt.where(Han.id.in_(sorted(scope)))
        return [(hid, name) for hid, name in s.exec(stmt.order_by(Han.route_order, Han.id)).all()]


def lock_roster(s: Session, association_id: int) -> None:
    """Take the association's lock for a change of its roster, until the transaction ends, before reading the
    addresses and route positions the change depends on: two changes at once (one import confirmed twice, one
    household added from two tabs) each see what the other wrote, so no address is on the roster twice and no
    two households share a place on a han's route."""
    lock_row(s, Association, association_id)


def _household_in_scope(s: Session, actor: Actor, household_id: object, permission: str, *,
                        lock: bool = False) -> tuple[Household, object]:
    """The household and the actor's scope for `permission`; lock: for a change of the roster (lock_roster), taken
    only for an actor with the permission there, and the household read again under it, as a change committed
    meanwhile left it."""
    hid = validate.ident(household_id, "household_id")
    hh = s.get(Household, hid)
    if hh is not None and lock and han_scope(actor, permission, hh.association_id):
        lock_roster(s, hh.association_id)
        hh = s.get(Household, hid, populate_existing=True)
    if hh is None or hh.removed_at is not None:
        raise NotFound()
    scope = han_scope(actor, permission, hh.association_id)
    if not scope or not in_scope(scope, hh.han_id):
        raise Denied()
    return hh, scope


def _record_household(s: Session, actor: Actor, action: str, hh: Household, detail: str,
                      also: Iterable[int] = (), count: int = 1) -> None:
    """An access to one household's data: its address is its members' too, so each of them sees it on their own
    access log (a household without members is recorded as the household); `also`: other people shown with it."""
    members = s.exec(select(Membership.account_id).where(Membership.household_id == hh.id,
                                                         Membership.status == "active")).all()
    audit.record(s, actor, action, association_id=hh.association_id, subjects=[*members, *also],
                 household_ids=[] if members else [hh.id], count=count, detail=detail)


def get_household(actor: Actor, household_id: object) -> HouseholdDetail:
    """A household to edit: for an officer who manages AND may see the members there (its address, and a
    paper-only household's representative, are personal data: privacy rule 1)."""
    with session() as s:
        hh, _scope = _household_in_scope(s, actor, household_id, MANAGE_MEMBERS)
        if not in_scope(han_scope(actor, VIEW_MEMBERS, hh.association_id), hh.han_id):
            raise Denied()
        _record_household(s, actor, "roster.view", hh, "edit")
        return HouseholdDetail(hh.id, hh.han_id or 0, _index_in_han(s, hh) + 1, hh.address,
                               hh.head_name if hh.paper_only else "", hh.head_kana if hh.paper_only else "",
                               hh.phone if hh.paper_only else "", hh.note, hh.paper_only, hh.paper_copy)


def _han_order(s: Session, association_id: int, han_id: int | None, exclude: int | None = None
               ) -> list[tuple[int, int]]:
    stmt = select(Household.id, Household.route_position).where(
        Household.association_id == association_id, Household.han_id == han_id, Household.removed_at.is_(None))
    if exclude is not None:
        stmt = stmt.where(Household.id != exclude)
    return list(s.exec(stmt.order_by(Household.route_position, Household.id)).all())


def _index_in_han(s: Session, hh: Household) -> int:
    ids = [hid for hid, _ in _han_order(s, hh.association_id, hh.han_id)]
    return ids.index(hh.id) if hh.id in ids else len(ids)


def _write_order(s: Session, order: list[int], current: dict[int, int]) -> None:
    """Route positions 0..n-1 in this order, one executemany UPDATE for the rows whose place changed."""
    changes = [{"hid": hid, "pos": pos} for pos, hid in enumerate(order) if current.get(hid) != pos]
    if changes:
        table = Household.__table__
        s.connection().execute(
            update(table).where(table.c.id == bindparam("hid")).values(route_position=bindparam("pos")), changes)


def _place(s: Session, hh: Household, index: int | None) -> None:
    """Put a household at a 0-based place in its han's route (None: the end); the han stays numbered 0..n-1."""
    others = _han_order(s, hh.association_id, hh.han_id, exclude=hh.id)
    order = [hid for hid, _ in others]
    index = len(order) if index is None else max(0, min(index, len(order)))
    order.insert(index, hh.id)
    hh.route_position = index
    s.add(hh)
    _write_order(s, order, {**dict(others), hh.id: index})


def _close_gap(s: Session, association_id: int, han_id: int | None) -> None:
    """After a household left a han, so the positions shown stay 1, 2, 3 … without holes."""
    if han_id is not None:
        rows = _han_order(s, association_id, han_id)
        _write_order(s, [hid for hid, _ in rows], dict(rows))


def _existing_addresses(s: Session, actor: Actor, association_id: int, exclude: int | None = None
                        ) -> dict[str, int]:
    """The folded addresses of the association's households where the actor both keeps and sees the roster: a
    twin is refused only there. Answering "taken" for an address anywhere else would tell, address by address
    and unaudited, which households are on the roster where the officer may not see it: a 班長 of another han,
    or an officer holding manage_members without view_members (privacy rule 1)."""
    scope = shared_scope(actor, association_id, MANAGE_MEMBERS, VIEW_MEMBERS)
    if not scope:
        return {}
    stmt = select(Household.id, Household.address).where(Household.association_id == association_id,
                                                         Household.removed_at.is_(None))
    if scope != ALL_HAN:
        stmt = stmt.where(Household.han_id.in_(sorted(scope) or [-1]))
    out: dict[str, int] = {}
    for hid, address in s.exec(stmt).all():
        if hid != exclude and fold(address):
            out.setdefault(fold(address), hid)
    return out


def clean_address(value: object, field: str = "address") -> str:
    # NFKC stores "１丁目" and "1丁目" the same way, so duplicates and searches agree. Normalised before
    # the length check: NFKC can lengthen text ("㍻" -> "平成") past the column's limit.
    return validate.text(unicodedata.normalize("NFKC", value) if isinstance(value, str) else value, field,
                         max_len=MAX_LEN["address"])


def _clean_household(s: Session, association_id: int, scope, data: dict, paper_only: bool) -> dict:
    errors: dict = {}
    out: dict = {}

    def run(field: str, fn) -> None:
        try:
            out[field] = fn()
        except ServiceError as e:
            errors[field] = e

    run("address", lambda: clean_address(data.get("address")))
    run("route_position", lambda: validate.integer(data.get("route_position"), "route_position", lo=1,
                                                   hi=MAX_POSITION, required=False))
    run("note", lambda: validate.text(data.get("note"), "note", max_len=MAX_LEN["note"], required=False,
                                      multiline=True))
    # A household with members that also gets the paper circular (a paper-only one always does).
    out["paper_copy"] = not paper_only and data.get("paper_copy") in (True, "on", "true", "1")
    if paper_only:
        run("head_name", lambda: validate.text(data.get("head_name"), "head_name", max_len=MAX_LEN["name"]))
        run("head_kana", lambda: validate.kana(data.get("head_kana"), "head_kana", required=False))
        run("phone", lambda: validate.phone(data.get("phone"), "phone"))
    try:
        han = han_of(s, association_id, data.get("han_id"))
        if han is None:
            errors["han_id"] = "error.required"
        elif not in_scope(scope, han.id):
            errors["han_id"] = "error.invalid"
        else:
            out["han_id"] = han.id
    except ServiceError:
        errors["han_id"] = "error.invalid"
    if errors:
        raise ValidationErrors(errors)
    return out


def save_household(actor: Actor, association_id: object, data: dict, household_id: object = None) -> int:
    """Create a paper-only household, or edit one in scope (head fields only while it is paper-only)."""
    if not isinstance(data, dict):
        raise ServiceError("error.invalid")
    with session() as s:
        if household_id in (None, "", 0, "0"):
            a = association_or_404(s, association_id)
            scope = require_scope(actor, MANAGE_MEMBERS, a.id)
            lock_roster(s, a.id)
            hh = Household(association_id=a.id, paper_only=True, route_position=0)
        else:
            hh, scope = _household_in_scope(s, actor, household_id, MANAGE_MEMBERS, lock=True)
            if hh.association_id != validate.ident(association_id, "association_id"):
                raise Denied()
        clean = _clean_household(s, hh.association_id, scope, data, hh.paper_only)
        if fold(clean["address"]) in _existing_addresses(s, actor, hh.association_id, exclude=hh.id):
            raise ValidationErrors({"address": "roster.error.address_taken"})
        moved = hh.id is None or hh.han_id != clean["han_id"]
        asks_for_paper = clean["paper_copy"] and not hh.paper_copy and hh.id is not None and not hh.paper_only
        old_han, old_index = hh.han_id, None if hh.id is None else _index_in_han(s, hh)
        hh.han_id, hh.address, hh.note, hh.paper_copy = clean["han_id"], clean["address"], clean["note"], \
            clean["paper_copy"]
        if hh.paper_only:
            hh.head_name, hh.head_kana, hh.phone = clean["head_name"], clean["head_kana"], clean["phone"]
        s.add(hh)
        s.flush()
        wanted = clean["route_position"] - 1 if clean["route_position"] else None
        if moved or (wanted is not None and wanted != old_index):
            _place(s, hh, wanted)
        if moved and old_index is not None:
            _close_gap(s, hh.association_id, old_han)
        if asks_for_paper:
            # From now on it also gets circulars on paper; those already travelling that nobody of it has read
            # are added to the paper round too (the print sheet and the status page count them).
            from chiiki.services.circulars import paper_for_new_paper_household

            paper_for_new_paper_household(s, hh)
        _record_household(s, actor, "roster.household", hh, "create" if old_index is None else "edit")
        return hh.id


def remove_household(actor: Actor, household_id: object) -> None:
    """Take a household off the roster (kept for the circular ledger); refused while members live there."""
    with session() as s:
        hh, _scope = _household_in_scope(s, actor, household_id, MANAGE_MEMBERS, lock=True)
        if s.exec(select(Membership.id).where(Membership.household_id == hh.id, Membership.status == "active")
                  ).first() is not None:
            raise ServiceError("roster.error.has_members")
        hh.removed_at = utcnow()
        # The representative's details go with the household (the circular ledger keeps its address only).
        hh.head_name = hh.head_kana = hh.phone = hh.note = ""
        s.add(hh)
        s.flush()
        _close_gap(s, hh.association_id, hh.han_id)
        audit.record(s, actor, "roster.household", association_id=hh.association_id, household_ids=[hh.id],
                     count=1, detail="remove")


def move_household(actor: Actor, household_id: object, direction: object) -> None:
    """One step earlier ("up") or later ("down") on the circular route of its han."""
    step = {"up": -1, "down": 1}.get(direction) if isinstance(direction, str) else None
    if step is None:
        raise ServiceError("error.invalid", "direction")
    with session() as s:
        hh, _scope = _household_in_scope(s, actor, household_id, MANAGE_MEMBERS, lock=True)
        _place(s, hh, max(0, _index_in_han(s, hh) + step))


# --------------------------------------------------------------------------- linking an account


@dataclass(frozen=True)
class LinkCandidate:
    membership_id: int
    name: str
    address: str


@dataclass(frozen=True)
class LinkChoice:
    household_id: int
    address: str
    candidates: tuple[LinkCandidate, ...]


def link_candidates(actor: Actor, household_id: object, limit: int = 20) -> LinkChoice:
    """Members who registered at this household's address (or have no household yet); names need view_members."""
    with session() as s:
        hh, manage = _household_in_scope(s, actor, household_id, MANAGE_MEMBERS)
        view = han_scope(actor, VIEW_MEMBERS, hh.association_id)
        if not in_scope(view, hh.han_id):
            raise Denied()
        key = fold(hh.address)
        rows = s.exec(
            select(Membership.id, Membership.household_id, Account.id, Account.name, Account.address, Household.han_id)
            .join(Account, Account.id == Membership.account_id)
            .join(Household, Household.id == Membership.household_id, isouter=True)
            .where(Membership.association_id == hh.association_id, Membership.status == "active",
                   Account.deleted_at.is_(None))
            .order_by(Membership.id)
        ).all()
        found: list[tuple[int, int, str, str]] = []
        for mid, current, account_id, name, address, han_id in rows:
            same_place = bool(key) and fold(address) == key
            if current != hh.id and (same_place or current is None) and _linkable(manage, view, current, han_id):
                found.append((0 if same_place else 1, mid, account_id, name, address))
        found.sort()
        found = found[:max(1, min(limit, 50))]
        # The dialog shows the household's address (its members', as get_household says) and each candidate.
        _record_household(s, actor, "roster.view", hh, "link candidates", also=[f[2] for f in found],
                          count=1 + len(found))
        return LinkChoice(hh.id, hh.address,
                          tuple(LinkCandidate(mid, name, address) for _rank, mid, _aid, name, address in found))


def _linkable(manage, view, current: int | None, current_han: int | None) -> bool:
    """Whether the officer may move a member into another household: one whose present household the officer both
    manages and sees, or one with no household yet, who is in no han: only an officer of the whole association
    sees and places those."""
    if current is None:
        return manage == ALL_HAN and view == ALL_HAN
    return in_scope(manage, current_han) and in_scope(view, current_han)


def link_household(actor: Actor, household_id: object, membership_id: object) -> None:
    """Make this the household of a member's active membership; both households' channel is recomputed. The
    officer must see and manage the household and the member's present one (_linkable), as link_candidates
    offers them: the membership id comes from the browser."""
    with session() as s:
        # The roster's lock first: the household a member leaves may become paper-only, whose paper copies take
        # the association's lock (circulars.paper_for_new_paper_household) after its row was written.
        hh, manage = _household_in_scope(s, actor, household_id, MANAGE_MEMBERS, lock=True)
        view = han_scope(actor, VIEW_MEMBERS, hh.association_id)
        if not in_scope(view, hh.han_id):
            raise Denied()
        m = s.get(Membership, validate.ident(membership_id, "membership_id"))
        if m is None or m.association_id != hh.association_id or m.status != "active":
            raise Denied()
        old = s.get(Household, m.household_id) if m.household_id else None
        if old is not None and old.id == hh.id:
            return
        if not _linkable(manage, view, old.id if old else None, old.han_id if old else None):
            raise Denied()
        m.household_id = hh.id
        s.add(m)
        s.flush()
        refresh_paper_only(s, hh.id)
        if old is not None:
            refresh_paper_only(s, old.id)
        audit.record(s, actor, "roster.link", association_id=hh.association_id, subjects=[m.account_id],
                     household_ids=[hh.id], count=1)


# --------------------------------------------------------------------------- import of a paper roster


IMPORT_COLUMNS: dict[str, tuple[str, ...]] = {
    "han": ("班", "han", "班名"),
    "address": ("住所", "address"),
    "name": ("氏名", "name", "名前", "世帯主", "世帯主氏名"),
    "kana": ("ふりがな", "kana", "フリガナ", "よみがな", "ヨミガナ", "かな"),
    "phone": ("電話", "phone", "電話番号", "tel", "telephone"),
}
REQUIRED_COLUMNS = ("han", "address", "name")
MAX_PREVIEW_ERRORS = 200


@dataclass(frozen=True)
class ImportRow:
    line: int  # as the officer sees it in the spreadsheet (the header is line 1)
    han: str
    address: str
    name: str
    kana: str
    phone: str
    errors: tuple[tuple[str, dict], ...]  # (message key, params); params["field"] names a roster.col.* column


@dataclass(frozen=True)
class ImportPreview:
    rows: tuple[ImportRow, ...]
    error_rows: int

    @property
    def ok(self) -> bool:
        return bool(self.rows) and self.error_rows == 0

    def raw(self) -> list[dict[str, object]]:
        """The cells as read, for re-validation at confirm time."""
        return [{"line": r.line, "han": r.han, "address": r.address, "name": r.name, "kana": r.kana,
                 "phone": r.phone} for r in self.rows]


def _map_columns(columns: Iterable[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for col in columns:
        key = fold(col)
        for name, aliases in IMPORT_COLUMNS.items():
            if name not in found and key in {fold(a) for a in aliases}:
                found[name] = col
    missing = [c for c in REQUIRED_COLUMNS if c not in found]
    if missing:
        raise ServiceError("roster.import.missing_columns", "file",
                           columns="・".join(IMPORT_COLUMNS[c][0] for c in missing))
    return found


def _field_error(e: ServiceError, field: str) -> tuple[str, dict]:
    if e.key == "error.required":
        return f"roster.import.{field}_required", {}
    if e.key == "error.too_long":
        return "roster.import.too_long", {"field": field, "max": e.params.get("max")}
    if e.key == "error.kana":
        return "roster.import.bad_kana", {}
    if e.key == "error.phone":
        return "roster.import.bad_phone", {}
    return "roster.import.invalid", {"field": field}


class _RowChecker:
    """Validates import rows against the association as it is now; used by preview and confirm alike."""

    def __init__(self, s: Session, actor: Actor, association_id: int, scope) -> None:
        self.scope = scope
        self.hans: dict[str, Han] = {
            fold(h.name): h for h in s.exec(select(Han).where(Han.association_id == association_id)).all()}
        self.existing = _existing_addresses(s, actor, association_id)
        self.seen: dict[str, int] = {}

    def _han(self, value: str) -> tuple[Han | None, tuple[str, dict] | None]:
        key = fold(value)
        if not key:
            return None, ("roster.import.han_required", {})
        han = self.hans.get(key) or (self.hans.get(key + "班") if key.isdigit() else None)
        if han is None:
            return None, ("roster.import.han_unknown", {"han": value.strip()[:50]})
        if not in_scope(self.scope, han.id):
            return None, ("roster.import.han_out_of_scope", {"han": han.name})
        return han, None

    def check(self, raw: dict) -> tuple[ImportRow, dict | None]:
        cells = {k: ("" if raw.get(k) is None else str(raw.get(k))) for k in ("han", "address", "name", "kana", "phone")}
        errors: list[tuple[str, dict]] = []
        clean: dict = {}
        han, err = self._han(cells["han"])
        if err:
            errors.append(err)
        checks = {
            "address": lambda v: clean_address(v),
            "name": lambda v: validate.text(v, "name", max_len=MAX_LEN["name"]),
            "kana": lambda v: validate.kana(v, "kana", required=False),
            "phone": _imported_phone,
        }
        for field, fn in checks.items():
            try:
                clean[field] = fn(cells[field])
            except ServiceError as e:
                errors.append(_field_error(e, field))
        key = fold(clean.get("address", ""))
        if key:
            if key in self.existing:
                errors.append(("roster.import.dup_existing", {}))
            elif key in self.seen:
                errors.append(("roster.import.dup_file", {"row": self.seen[key]}))
            else:
                self.seen[key] = raw.get("line", 0)
        shown = {k: v.strip()[:MAX_LEN.get(k, 50)] for k, v in cells.items()}
        row = ImportRow(int(raw.get("line") or 0), shown["han"].strip(), shown["address"].strip(),
                        shown["name"].strip(), shown["kana"].strip(), shown["phone"].strip(), tuple(errors))
        if errors:
            return row, None
        return row, {**clean, "han_id": han.id}


def _imported_phone(value: str) -> str:
    """A phone number from a spreadsheet. A number cell cannot hold a leading 0, and a CSV saved by Excel drops it
    too: 166112222 was 0166-11-2222 (every domestic number starts with 0: 10 digits, a mobile 11)."""
    digits = validate.phone(value, "phone")
    # Only a bare number: one written with a country code (「+65 6123 4567」) is whole as it is.
    if digits and digits[0] != "0" and len(digits) in (9, 10) and "+" not in unicodedata.normalize("NFKC", value):
        return "0" + digits
    return digits


def _check_all(s: Session, actor: Actor, association_id: int, scope, raw_rows: list[dict]
               ) -> tuple[ImportPreview, list[dict]]:
    checker = _RowChecker(s, actor, association_id, scope)
    rows, clean = [], []
    for raw in raw_rows:
        row, ok = checker.check(raw)
        rows.append(row)
        if ok is not None:
            clean.append(ok)
    return ImportPreview(tuple(rows), sum(1 for r in rows if r.errors)), clean


def preview_import(actor: Actor, association_id: object, filename: object, data: object) -> ImportPreview:
    """Read a CSV/.xlsx paper roster and check every row; nothing is written."""
    with session() as s:
        a = association_or_404(s, association_id)
        scope = require_scope(actor, MANAGE_MEMBERS, a.id)
        df = tabular.read_table(filename if isinstance(filename, str) else "", data)
        columns = _map_columns(df.columns)
        raw_rows = [
            {"line": int(i) + 2, **{name: str(record[col]) for name, col in columns.items()}}
            for i, record in zip(df.index, df.to_dict("records"))
        ]
        preview, _clean = _check_all(s, actor, a.id, scope, raw_rows)
        return preview


def confirm_import(actor: Actor, association_id: object, raw_rows: object) -> int:
    """Re-check the previewed rows against the roster as it is now, then write all of them or none."""
    if not isinstance(raw_rows, list) or not raw_rows or not all(isinstance(r, dict) for r in raw_rows):
        raise ServiceError("roster.import_no_file", "file")
    if len(raw_rows) > tabular.MAX_ROWS:
        raise ServiceError("tabular.error_too_many_rows", "file", max=tabular.MAX_ROWS)
    with session() as s:
        a = association_or_404(s, association_id)
        scope = require_scope(actor, MANAGE_MEMBERS, a.id)
        lock_roster(s, a.id)  # the same file confirmed twice at once: the second sees the first's households
        preview, clean = _check_all(s, actor, a.id, scope, raw_rows)
        if preview.error_rows:
            raise ServiceError("roster.import.changed", "file")
        next_pos = dict(s.exec(
            select(Household.han_id, func.max(Household.route_position))
            .where(Household.association_id == a.id, Household.removed_at.is_(None))
            .group_by(Household.han_id)).all())
        now = utcnow()
        values = []
        for c in clean:
            pos = next_pos.get(c["han_id"])
            pos = 0 if pos is None else pos + 1
            next_pos[c["han_id"]] = pos
            values.append({"association_id": a.id, "han_id": c["han_id"], "route_position": pos,
                           "address": c["address"], "head_name": c["name"], "head_kana": c["kana"],
                           "phone": c["phone"], "note": "", "paper_only": True, "created_at": now})
        s.execute(insert(Household), values)
        audit.record(s, actor, "roster.import", association_id=a.id, count=len(values))
        return len(values)
