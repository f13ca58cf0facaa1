"""Areas and associations: city administration (counts only), the member's view, and finding one to join."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy import and_, func, or_
from sqlmodel import Session, select

from chiiki.i18n import TZ
from chiiki.models import Account, Area, Association, Han, Household, Membership, OfficerRole, as_utc, utcnow
from chiiki.services import accounts, audit, validate
from chiiki.services.db import lock_row, session
from chiiki.services.errors import Denied, NotFound, ServiceError, ValidationErrors
from chiiki.services.policy import (
    ALL_HAN,
    AUTHENTICATED,
    CITY_ADMIN,
    MANAGE_MEMBERS,
    MEMBER,
    OFFICER_PERMISSIONS,
    SMALL_GROUP,
    VIEW_MEMBERS,
    Actor,
    Assoc,
    can,
    han_scope,
    role_is_valid,
)

AREA_LEVELS = ("city", "district", "block")
# Which level a parent must have: the tree is city -> district -> block.
_PARENT_LEVEL = {"city": None, "district": "city", "block": "district"}
PAGE_SIZE = 20
MAX_PAGE_SIZE = 100


# --------------------------------------------------------------------------- shared helpers (also used by
# chiiki.services.officers and chiiki.services.membership)


def require(actor: Actor, action: str, target: Assoc | None = None) -> None:
    if not can(actor, action, target):
        raise Denied()


def require_scope(actor: Actor, permission: str, association_id: int):
    """ALL_HAN or the han ids where the actor holds the permission; refused when there are none."""
    scope = han_scope(actor, permission, association_id)
    if not scope:
        raise Denied()
    return scope


def in_scope(scope, han_id: int | None) -> bool:
    return scope == ALL_HAN or (han_id is not None and han_id in scope)


def association_or_404(s: Session, association_id: object) -> Association:
    aid = validate.ident(association_id, "association_id")
    row = s.get(Association, aid)
    if row is None:
        raise NotFound()
    return row


def han_of(s: Session, association_id: int, han_id: object, field: str = "han_id") -> Han | None:
    """A han id from a browser: empty means none; anything else must be a han of this association."""
    if han_id in (None, "", 0, "0"):
        return None
    hid = validate.ident(han_id, field)
    han = s.get(Han, hid)
    if han is None or han.association_id != association_id:
        raise Denied()
    return han


def page_args(limit: object, offset: object) -> tuple[int, int]:
    lim = validate.integer(limit, "limit", lo=1, hi=MAX_PAGE_SIZE, required=False) or PAGE_SIZE
    off = validate.integer(offset, "offset", lo=0, hi=10**9, required=False) or 0
    return lim, off


def moment(day: object, clock: object = "", field: str = "valid_from", *, required: bool = True) -> datetime | None:
    """A local (city time) date and optional HH:MM from a form, as an aware UTC datetime."""
    if isinstance(day, datetime):
        return day if day.tzinfo else day.replace(tzinfo=TZ)
    d = validate.iso_date(day, field, required=required)
    if d is None:
        return None
    t = time(0, 0)
    if clock not in (None, ""):
        try:
            t = time.fromisoformat(str(clock).strip())
        except ValueError:
            raise ServiceError("error.invalid", field) from None
    try:
        return datetime.combine(d, t.replace(tzinfo=None), tzinfo=TZ).astimezone(utcnow().tzinfo)
    except OverflowError:  # the first hours of year 1 have no UTC time
        raise ServiceError("error.date", field) from None


def end_moment(day: object, clock: object = "", field: str = "valid_until") -> datetime | None:
    """The end of a period typed as a date and optional HH:MM (see moment); empty: no end. A date without a time
    runs to the end of that day, i.e. until the next day's 00:00 (exclusive): a term 4/1〜3/31 covers 3/31, a
    notice shown until 5/31 is shown all of 5/31. end_day and shown_end show such an end as that date again."""
    if isinstance(day, str) and day.strip() and clock in (None, ""):
        try:
            day = (validate.iso_date(day, field) + timedelta(days=1)).isoformat()
        except OverflowError:
            raise ServiceError("error.date", field) from None
    return moment(day, clock, field, required=False)


def end_day(until: datetime | None) -> date | None:
    """The last day a period runs, as its end date is shown and typed: an end at midnight (city time) is the end
    of the day before (an end date typed without a time runs to the end of that day: end_moment)."""
    if until is None:
        return None
    local = as_utc(until).astimezone(TZ)
    return local.date() - timedelta(days=1) if local.time() == time(0, 0) else local.date()


def shown_end(until: datetime) -> date | datetime:
    """A period's end as one reads and types it: the last day for an end at midnight (end_day), else the
    moment."""
    return end_day(until) if as_utc(until).astimezone(TZ).time() == time(0, 0) else until


def _acting_roles(s: Session, association_ids: list[int], but: int | None = None) -> list[OfficerRole]:
    """Every unrevoked, association-wide role in these associations of an active member who can act (a city staff
    account's role gives it nothing: policy.han_scope), at any time; `but` leaves one membership's out."""
    query = (select(OfficerRole)
             .join(Membership, Membership.id == OfficerRole.membership_id)
             .join(Account, Account.id == Membership.account_id)
             .where(OfficerRole.association_id.in_(association_ids), OfficerRole.revoked_at.is_(None),
                    OfficerRole.han_id.is_(None), Membership.status == "active",
                    Account.is_city_staff.is_(False), Account.deleted_at.is_(None)))
    if but is not None:
        query = query.where(OfficerRole.membership_id != but)
    return list(s.exec(query).all())


def manager_roles(s: Session, association_id: int, but: int | None = None) -> list[OfficerRole]:
    """Every acting manage_members role of the association (_acting_roles), at any time."""
    return [r for r in _acting_roles(s, [association_id], but) if MANAGE_MEMBERS in r.permissions.split()]


def _fully_empowered(roles: list[OfficerRole], now: datetime) -> set[int]:
    """The associations (of these _acting_roles) that can run and hand on themselves: an officer in office manages
    and sees the members, in one role or several (a 会長, who may have shared other permissions out, e.g. export
    to a 会計). Elsewhere (the 会長 stepped down leaving a 総務部長 who manages members only) no one inside can
    grant view_members again, and the city may appoint a 会長."""
    held: dict[tuple[int, int], set[str]] = {}
    for r in roles:
        if role_is_valid(r.valid_from, r.valid_until, None, now):
            held.setdefault((r.association_id, r.membership_id), set()).update(r.permissions.split())
    return {aid for (aid, _mid), perms in held.items() if {MANAGE_MEMBERS, VIEW_MEMBERS} <= perms}


def valid_manager_intervals(s: Session, association_id: int) -> list[tuple[datetime, datetime | None]]:
    """(valid_from, valid_until) of every manager role (manager_roles)."""
    return [(r.valid_from, r.valid_until) for r in manager_roles(s, association_id)]


def lock_officers(s: Session, association_id: int) -> None:
    """Take the association's lock for a change of its officers, until the transaction ends: two changes at
    once (the last two managers ending each other's role) each see the other's roles as they will be, not as
    they were."""
    lock_row(s, Association, association_id)


def first_manager_gap(s: Session, association_id: int, now: datetime) -> datetime | None:
    """The first moment from now on when no manager holds office, or None when there is always one (read under
    lock_officers: every caller goes on to change the officers)."""
    lock_officers(s, association_id)
    intervals = valid_manager_intervals(s, association_id)
    moments = sorted({now, *(u for _f, u in intervals if u is not None and u > now)})
    for t in moments:
        if not any(role_is_valid(f, u, None, t) for f, u in intervals):
            return t
    return None


def gap_came_earlier(before: datetime | None, after: datetime | None) -> bool:
    if after is None:
        return False
    return before is None or after < before


def ensure_manager_remains(s: Session, association_id: int, gap_before: datetime | None, now: datetime) -> None:
    """Refuse a change that would leave the association without a manager sooner than before."""
    s.flush()
    if gap_came_earlier(gap_before, first_manager_gap(s, association_id, now)):
        raise ServiceError("error.last_manager")


# --------------------------------------------------------------------------- areas


@dataclass(frozen=True)
class AreaItem:
    id: int
    name: str
    level: str
    parent_id: int | None
    label: str  # "district / block"
    depth: int


def _area_items(s: Session) -> list[AreaItem]:
    rows = s.exec(select(Area).order_by(Area.sort_order, Area.id)).all()
    by_id = {a.id: a for a in rows}

    def path(a: Area) -> list[str]:
        parts, node, seen = [], a, set()
        while node is not None and node.id not in seen:
            seen.add(node.id)
            parts.append(node.name)
            node = by_id.get(node.parent_id)
        return list(reversed(parts))

    children: dict[int | None, list[Area]] = {}
    for a in rows:
        children.setdefault(a.parent_id if a.parent_id in by_id else None, []).append(a)
    out: list[AreaItem] = []

    def walk(parent: int | None, depth: int) -> None:
        for a in children.get(parent, []):
            out.append(AreaItem(a.id, a.name, a.level, a.parent_id, " / ".join(path(a)), depth))
            walk(a.id, depth + 1)

    walk(None, 0)
    return out


def list_areas(actor: Actor) -> list[AreaItem]:
    """The area tree in display order (public place names; any logged-in person may read it)."""
    require(actor, AUTHENTICATED)
    with session() as s:
        return _area_items(s)


def _descendants(items: list[AreaItem], area_id: int) -> set[int]:
    found = {area_id}
    changed = True
    while changed:
        changed = False
        for a in items:
            if a.parent_id in found and a.id not in found:
                found.add(a.id)
                changed = True
    return found


def _clean_area(s: Session, data: dict, area_id: int | None) -> dict:
    errors: dict = {}
    out: dict = {}
    try:
        out["name"] = validate.text(data.get("name"), "name", max_len=100)
    except ServiceError as e:
        errors["name"] = e
    try:
        out["level"] = validate.choice(data.get("level"), "level", AREA_LEVELS)
    except ServiceError as e:
        errors["level"] = e
    parent = None
    if data.get("parent_id") not in (None, "", 0, "0"):
        try:
            parent = s.get(Area, validate.ident(data.get("parent_id"), "parent_id"))
        except ServiceError as e:
            errors["parent_id"] = e
        else:
            if parent is None:
                errors["parent_id"] = "error.invalid"
    if "level" in out and "parent_id" not in errors:
        wanted = _PARENT_LEVEL[out["level"]]
        if (wanted is None) != (parent is None) or (parent is not None and parent.level != wanted):
            errors["parent_id"] = "cityadmin.error.parent_level"
    if area_id is not None and parent is not None and parent.id in _descendants(_area_items(s), area_id):
        errors["parent_id"] = "cityadmin.error.parent_level"
    if errors:
        raise ValidationErrors(errors)
    out["parent_id"] = parent.id if parent else None
    return out


def create_area(actor: Actor, data: dict) -> int:
    require(actor, CITY_ADMIN)
    if not isinstance(data, dict):
        raise ServiceError("error.invalid")
    with session() as s:
        clean = _clean_area(s, data, None)
        order = s.exec(select(func.coalesce(func.max(Area.sort_order), -1))).one() + 1
        area = Area(**clean, sort_order=order)
        s.add(area)
        s.flush()
        area_id = area.id
    accounts.forget_areas()
    return area_id


def update_area(actor: Actor, area_id: object, data: dict) -> None:
    require(actor, CITY_ADMIN)
    if not isinstance(data, dict):
        raise ServiceError("error.invalid")
    with session() as s:
        area = s.get(Area, validate.ident(area_id, "area_id"))
        if area is None:
            raise NotFound()
        clean = _clean_area(s, data, area.id)
        if clean["level"] != area.level and s.exec(select(Area.id).where(Area.parent_id == area.id)).first():
            # Children rely on this level (a district's blocks); changing it would break the tree.
            raise ValidationErrors({"level": "cityadmin.error.has_children"})
        for k, v in clean.items():
            setattr(area, k, v)
        s.add(area)
    accounts.forget_areas()


# --------------------------------------------------------------------------- associations (city staff)


@dataclass(frozen=True)
class AssociationCounts:
    """What city staff see of an association: its public details and aggregate counts, no member rows."""

    id: int
    name: str
    name_kana: str
    area_id: int
    area_label: str
    description: str
    active: bool
    households: int
    # None for an association of fewer than SMALL_GROUP households: which of a few households use the app
    # (and how many accounts they hold) is about those households, not an aggregate (as the dashboard's rule).
    member_accounts: int | None
    digital_households: int | None
    paper_only_households: int | None
    has_manager: bool  # someone in office manages members
    has_president: bool  # someone in office holds every permission (else the city may appoint a 会長)


def _counts(s: Session, ids: list[int], now: datetime) -> dict[int, tuple[int, int, int, bool, bool]]:
    """households, member accounts, digital households, has-manager, has-president, per association, in four
    queries."""
    if not ids:
        return {}
    households = dict(s.exec(
        select(Household.association_id, func.count(Household.id))
        .where(Household.association_id.in_(ids), Household.removed_at.is_(None))
        .group_by(Household.association_id)
    ).all())
    members = dict(s.exec(
        select(Membership.association_id, func.count(func.distinct(Membership.account_id)))
        .where(Membership.association_id.in_(ids), Membership.status == "active")
        .group_by(Membership.association_id)
    ).all())
    digital = dict(s.exec(
        select(Household.association_id, func.count(func.distinct(Household.id)))
        .join(Membership, and_(Membership.household_id == Household.id, Membership.status == "active"))
        .where(Household.association_id.in_(ids), Household.removed_at.is_(None))
        .group_by(Household.association_id)
    ).all())
    roles = _acting_roles(s, ids)
    managed = {r.association_id for r in roles
               if MANAGE_MEMBERS in r.permissions.split() and role_is_valid(r.valid_from, r.valid_until, None, now)}
    presided = _fully_empowered(roles, now)
    return {i: (households.get(i, 0), members.get(i, 0), digital.get(i, 0), i in managed, i in presided)
            for i in ids}


def _to_counts(a: Association, labels: dict[int, str], c: tuple[int, int, int, bool, bool]) -> AssociationCounts:
    hh, members, digital, managed, presided = c
    if hh < SMALL_GROUP:
        members = digital = paper = None
    else:
        paper = hh - digital
    return AssociationCounts(a.id, a.name, a.name_kana, a.area_id, labels.get(a.area_id, ""), a.description, a.active,
                             hh, members, digital, paper, managed, presided)


def city_associations(actor: Actor, query: object = "", limit: object = PAGE_SIZE,
                      offset: object = 0) -> tuple[list[AssociationCounts], int]:
    """City staff: associations by name (or kana), one page, with counts only."""
    require(actor, CITY_ADMIN)
    q = validate.text(query, "query", max_len=100, required=False)
    lim, off = page_args(limit, offset)
    with session() as s:
        cond = [or_(Association.name.contains(q), Association.name_kana.contains(q))] if q else []
        total = s.exec(select(func.count(Association.id)).where(*cond)).one()
        rows = s.exec(select(Association).where(*cond).order_by(Association.name_kana, Association.id)
                      .offset(off).limit(lim)).all()
        labels = {a.id: a.label for a in _area_items(s)}
        counts = _counts(s, [a.id for a in rows], utcnow())
        return [_to_counts(a, labels, counts[a.id]) for a in rows], total


def city_association(actor: Actor, association_id: object) -> AssociationCounts:
    require(actor, CITY_ADMIN)
    with session() as s:
        a = association_or_404(s, association_id)
        labels = {x.id: x.label for x in _area_items(s)}
        return _to_counts(a, labels, _counts(s, [a.id], utcnow())[a.id])


def _clean_association(s: Session, data: dict) -> dict:
    errors: dict = {}
    out: dict = {}

    def run(field: str, fn) -> None:
        try:
            out[field] = fn()
        except ServiceError as e:
            errors[field] = e

    run("name", lambda: validate.text(data.get("name"), "name", max_len=100))
    run("name_kana", lambda: validate.kana(data.get("name_kana"), "name_kana"))
    run("description", lambda: validate.text(data.get("description"), "description", max_len=2000, required=False,
                                             multiline=True))
    run("area_id", lambda: validate.ident(data.get("area_id"), "area_id"))
    if "area_id" in out and s.get(Area, out["area_id"]) is None:
        errors["area_id"] = "error.invalid"
    if errors:
        raise ValidationErrors(errors)
    return out


def _unique_name(s: Session, name: str, area_id: int, except_id: int | None) -> None:
    q = select(Association.id).where(Association.name == name, Association.area_id == area_id)
    if except_id is not None:
        q = q.where(Association.id != except_id)
    if s.exec(q).first() is not None:
        raise ValidationErrors({"name": "association.error.name_taken"})


def create_association(actor: Actor, data: dict) -> int:
    require(actor, CITY_ADMIN)
    if not isinstance(data, dict):
        raise ServiceError("error.invalid")
    with session() as s:
        clean = _clean_association(s, data)
        _unique_name(s, clean["name"], clean["area_id"], None)
        a = Association(**clean)
        s.add(a)
        s.flush()
        return a.id


def update_association(actor: Actor, association_id: object, data: dict) -> None:
    require(actor, CITY_ADMIN)
    if not isinstance(data, dict):
        raise ServiceError("error.invalid")
    with session() as s:
        a = association_or_404(s, association_id)
        clean = _clean_association(s, data)
        _unique_name(s, clean["name"], clean["area_id"], a.id)
        for k, v in clean.items():
            setattr(a, k, v)
        s.add(a)


def appoint_first_officer(actor: Actor, association_id: object, login_id: object) -> str:
    """City staff delegate an association to its first 会長 (all permissions). Returns the display name.

    Only while no officer in office both manages and sees the members: until then the association hands roles
    over itself, and the city cannot use this to give itself a way into member data (nor appoint a staff
    account). Also when officers who manage members remain but none sees them (the 会長 stepped down, or their
    term ended): no one inside could grant view_members again.
    """
    require(actor, CITY_ADMIN)
    try:
        login = validate.login_id(login_id, "login_id")
    except ServiceError as e:
        raise ValidationErrors({"login_id": e}) from None
    now = utcnow()
    with session() as s:
        a = association_or_404(s, association_id)
        lock_officers(s, a.id)
        if a.id in _fully_empowered(_acting_roles(s, [a.id]), now):
            raise ServiceError("association.error.has_manager")
        acc = s.exec(select(Account).where(Account.login_id == login, Account.deleted_at.is_(None))).first()
        if acc is None:
            raise ValidationErrors({"login_id": "association.error.no_account"})
        if acc.is_city_staff or acc.id == actor.account_id:
            # City staff see counts, never member rows: no staff account may become an officer this way.
            raise ValidationErrors({"login_id": "association.error.staff_appointee"})
        memberships = s.exec(select(Membership).where(Membership.account_id == acc.id,
                                                      Membership.status.in_(("active", "pending")))).all()
        if any(m.association_id != a.id for m in memberships):
            # The refusal tells staff that this login id is a member's of another association: that person sees
            # on their access log that the city looked them up (kept although the appointment is refused).
            audit.record(s, actor, "association.appoint_lookup", association_id=a.id, subjects=[acc.id])
            s.commit()
            raise ValidationErrors({"login_id": "association.error.member_elsewhere"})
        m = memberships[0] if memberships else Membership(account_id=acc.id, association_id=a.id, requested_at=now)
        if m.status != "active":
            m.status, m.decided_at, m.decided_by = "active", now, actor.account_id
        s.add(m)
        s.flush()
        s.add(OfficerRole(association_id=a.id, membership_id=m.id, title="会長",
                          permissions=" ".join(OFFICER_PERMISSIONS), valid_from=now, created_by=actor.account_id))
        if m.household_id:
            from chiiki.services.accounts import refresh_paper_only

            refresh_paper_only(s, m.household_id)
        audit.record(s, actor, "role.change", association_id=a.id, subjects=[acc.id], detail="appoint 会長")
        return acc.display_name


# --------------------------------------------------------------------------- the member's view


@dataclass(frozen=True)
class OfficerLine:
    title: str
    display_name: str
    han_name: str


@dataclass(frozen=True)
class AssociationSummary:
    """What every member may see: name, description, counts, officers' titles and display names."""

    id: int
    name: str
    description: str
    area_label: str
    households: int
    member_accounts: int
    officers: tuple[OfficerLine, ...]


def current_officers(s: Session, association_id: int, now: datetime) -> list[tuple[OfficerRole, str, str]]:
    """(role, holder's display name, han name) of every role in office now, by title then han."""
    rows = s.exec(
        select(OfficerRole, Account.display_name, Han.name)
        .join(Membership, Membership.id == OfficerRole.membership_id)
        .join(Account, Account.id == Membership.account_id)
        .join(Han, Han.id == OfficerRole.han_id, isouter=True)
        .where(OfficerRole.association_id == association_id, OfficerRole.revoked_at.is_(None),
               Membership.status == "active")
    ).all()
    live = [(r, name, han or "") for r, name, han in rows if role_is_valid(r.valid_from, r.valid_until, None, now)]
    from chiiki.services.officers import title_rank

    return sorted(live, key=lambda x: (title_rank(x[0].title), x[2], x[0].id))


def summary(actor: Actor, association_id: object) -> AssociationSummary:
    with session() as s:
        a = association_or_404(s, association_id)
        require(actor, MEMBER, Assoc(a.id))
        now = utcnow()
        hh, members, *_rest = _counts(s, [a.id], now)[a.id]
        labels = {x.id: x.label for x in _area_items(s)}
        officers = tuple(OfficerLine(r.title, name, han) for r, name, han in current_officers(s, a.id, now))
        return AssociationSummary(a.id, a.name, a.description, labels.get(a.area_id, ""), hh, members, officers)


# --------------------------------------------------------------------------- finding an association to join


@dataclass(frozen=True)
class AssociationHit:
    id: int
    name: str
    name_kana: str
    area_label: str
    description: str


def search(actor: Actor, area_id: object = None, query: object = "", limit: object = PAGE_SIZE,
           offset: object = 0) -> tuple[list[AssociationHit], int]:
    """Active associations in an area (and the areas below it) whose name or kana contains the query."""
    require(actor, AUTHENTICATED)
    q = validate.text(query, "query", max_len=100, required=False)
    kana_q = ""
    try:
        kana_q = validate.kana(q, "query", required=False) if q else ""
    except ServiceError:
        pass
    lim, off = page_args(limit, offset)
    with session() as s:
        items = _area_items(s)
        cond = [Association.active.is_(True)]
        if area_id not in (None, "", 0, "0"):
            aid = validate.ident(area_id, "area_id")
            if aid not in {a.id for a in items}:
                raise ValidationErrors({"area_id": "error.invalid"})
            cond.append(Association.area_id.in_(_descendants(items, aid)))
        if q:
            cond.append(or_(Association.name.contains(q), Association.name_kana.contains(kana_q or q)))
        total = s.exec(select(func.count(Association.id)).where(*cond)).one()
        rows = s.exec(select(Association).where(*cond).order_by(Association.name_kana, Association.id)
                      .offset(off).limit(lim)).all()
        labels = {a.id: a.label for a in items}
        return [AssociationHit(a.id, a.name, a.name_kana, labels.get(a.area_id, ""), a.description) for a in rows], total


def today_local() -> date:
    return utcnow().astimezone(TZ).date()
