"""Officer roles: grant, change, revoke and hand over delegated permissions, never leaving no manager."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_
from sqlmodel import Session, select

from chiiki.i18n import TZ, tr
from chiiki.models import Account, Han, Household, Membership, OfficerRole, as_utc, utcnow
from chiiki.services import audit, validate
from chiiki.services.associations import (
    association_or_404,
    end_day,
    end_moment,
    ensure_manager_remains,
    first_manager_gap,
    han_of,
    in_scope,
    lock_officers,
    moment,
    require_scope,
    shown_end,
    today_local,
)
from chiiki.services.db import session
from chiiki.services.errors import Denied, NotFound, ServiceError, ValidationErrors
from chiiki.services.policy import (
    ALL_HAN,
    MANAGE_MEMBERS,
    OFFICER_PERMISSIONS,
    TITLE_SEP,
    VIEW_MEMBERS,
    Actor,
    han_scope,
)

# Usual titles, in the order officers are listed; any other title is free text.
PRESET_TITLES: tuple[str, ...] = ("会長", "副会長", "会計", "総務部長", "書記", "監事", "班長")


# Each usual title's label, "officer.preset.<name>" in chiiki/i18n.
_PRESET_LABELS = dict(zip(PRESET_TITLES, ("president", "vice_president", "treasurer", "general_affairs",
                                          "secretary", "auditor", "han_leader")))


def title_label(title: str, lang: str) -> str:
    """A title as a reader of `lang` reads it: a usual one named in their language (English keeps the Japanese
    word beside it, as paper documents and neighbours say it); any other title as its association typed it."""
    key = _PRESET_LABELS.get(title)
    return tr(lang, "officer.preset." + key) if key else title


def held_title_label(stored: str, lang: str) -> str:
    """Who acted, as an audit row stored it (audit.record: the city staff's title, or the actor's titles in the
    association joined by TITLE_SEP), as a reader of `lang` reads it: each title by title_label, an English
    reader's joined by a comma."""
    if stored == audit.CITY_STAFF_TITLE:
        return tr(lang, "audit.city_staff")
    sep = TITLE_SEP if lang == "ja" else ", "
    return sep.join(title_label(part, lang) for part in stored.split(TITLE_SEP))


def title_rank(title: str) -> int:
    return PRESET_TITLES.index(title) if title in PRESET_TITLES else len(PRESET_TITLES)


@dataclass(frozen=True)
class RoleView:
    id: int
    membership_id: int
    holder: str  # display name only
    title: str
    permissions: tuple[str, ...]
    han_id: int | None
    han_name: str
    valid_from: datetime
    valid_until: datetime | None
    state: str  # current | future | ended


@dataclass(frozen=True)
class MemberOption:
    membership_id: int
    label: str  # display name and han; the full name only for an actor who may view members there


def _state(r: OfficerRole, now: datetime) -> str:
    if r.revoked_at is not None and r.revoked_at <= now or (r.valid_until is not None and r.valid_until <= now):
        return "ended"
    return "future" if r.valid_from > now else "current"


def list_roles(actor: Actor, association_id: object, *, include_ended: bool = False) -> list[RoleView]:
    """Roles of the association for its managers: current and future ones (and ended ones on request)."""
    with session() as s:
        a = association_or_404(s, association_id)
        require_scope(actor, MANAGE_MEMBERS, a.id)
        now = utcnow()
        q = (select(OfficerRole, Account.display_name, Han.name)
             .join(Membership, Membership.id == OfficerRole.membership_id)
             .join(Account, Account.id == Membership.account_id)
             .join(Han, Han.id == OfficerRole.han_id, isouter=True)
             .where(OfficerRole.association_id == a.id))
        if not include_ended:
            q = q.where(OfficerRole.revoked_at.is_(None), Membership.status == "active")
        out = []
        for r, name, han in s.exec(q).all():
            state = _state(r, now)
            if state == "ended" and not include_ended:
                continue
            out.append(RoleView(r.id, r.membership_id, name, r.title, tuple(p for p in OFFICER_PERMISSIONS
                                                                               if p in r.permissions.split()),
                                r.han_id, han or "", r.valid_from, r.valid_until, state))
        order = {"current": 0, "future": 1, "ended": 2}
        return sorted(out, key=lambda v: (order[v.state], title_rank(v.title), v.han_name, v.valid_from, v.id))


def member_options(actor: Actor, association_id: object, query: object = "", limit: int = 20) -> list[MemberOption]:
    """Active members a manager may pick as a role holder, searched by display name (or name when allowed)."""
    q = validate.text(query, "query", max_len=100, required=False)
    with session() as s:
        a = association_or_404(s, association_id)
        scope = require_scope(actor, MANAGE_MEMBERS, a.id)
        view = han_scope(actor, VIEW_MEMBERS, a.id)
        stmt = (select(Membership.id, Account.id, Account.display_name, Account.name, Han.id, Han.name)
                .join(Account, Account.id == Membership.account_id)
                .join(Household, Household.id == Membership.household_id, isouter=True)
                .join(Han, Han.id == Household.han_id, isouter=True)
                .where(Membership.association_id == a.id, Membership.status == "active"))
        if scope != ALL_HAN:
            stmt = stmt.where(Household.han_id.in_(scope))
        if q:
            # Only someone allowed to read names may search by them.
            stmt = stmt.where(or_(Account.display_name.contains(q), Account.name.contains(q)) if view
                              else Account.display_name.contains(q))
        rows = s.exec(stmt.order_by(Han.route_order, Account.display_name, Membership.id).limit(max(1, min(limit, 50)))
                      ).all()
        shown: list[int] = []
        out = []
        for mid, account_id, display, name, han_id, han_name in rows:
            full = bool(view) and in_scope(view, han_id)
            if q and not full and q not in display:
                continue  # matched only on a name this actor may not read
            if full:
                shown.append(account_id)
            label = f"{display}({name})" if full else display
            out.append(MemberOption(mid, f"{label} — {han_name or '-'} #{mid}"))
        if shown:
            audit.record(s, actor, "member.view", association_id=a.id, subjects=shown, detail="officer picker")
        return out


@dataclass(frozen=True)
class _RoleInput:
    title: str
    permissions: tuple[str, ...]
    han_id: int | None
    valid_from: datetime
    valid_until: datetime | None


def _clean_role(s: Session, actor: Actor, association_id: int, scope, data: dict, now: datetime) -> _RoleInput:
    errors: dict = {}
    title = han = None
    try:
        title = validate.text(data.get("title"), "title", max_len=50)
    except ServiceError as e:
        errors["title"] = e
    perms = data.get("permissions")
    if not isinstance(perms, (list, tuple, set, frozenset)) or not all(isinstance(p, str) for p in perms):
        errors["permissions"] = "error.invalid"
        perms = ()
    elif not perms:
        errors["permissions"] = "officer.error.no_permission"
    elif any(p not in OFFICER_PERMISSIONS for p in perms):
        errors["permissions"] = "error.invalid"
    han = han_of(s, association_id, data.get("han_id"))
    han_id = han.id if han else None
    if not in_scope(scope, han_id):
        # A han-scoped manager can only grant roles within their own han.
        raise ServiceError("officer.error.scope", "han_id")
    try:
        valid_from = moment(data.get("valid_from"), data.get("valid_from_time"), "valid_from", required=False) or now
    except ServiceError as e:
        errors["valid_from"] = e
        valid_from = now
    try:
        # An end date without a time: the role runs to the end of that day (a term 4/1〜3/31 covers 3/31).
        valid_until = end_moment(data.get("valid_until"), data.get("valid_until_time"), "valid_until")
    except ServiceError as e:
        errors["valid_until"] = e
        valid_until = None
    if valid_until is not None and valid_until <= valid_from:
        errors["valid_until"] = "officer.error.until_before_from"
    if errors:
        raise ValidationErrors(errors)
    ordered = tuple(p for p in OFFICER_PERMISSIONS if p in set(perms))
    _require_held(actor, association_id, han_id, ordered)
    limit = _own_term_end(s, actor, association_id, han_id, ordered)
    if limit is not None and (valid_until is None or valid_until > limit):
        # One delegates only for as long as one holds the permissions oneself: no officer outlasts their own
        # term by appointing themselves (or a friend) again.
        raise ValidationErrors({"valid_until": ServiceError("officer.error.beyond_own_term", "valid_until",
                                                            until=shown_end(limit))})
    return _RoleInput(title, ordered, han_id, valid_from, valid_until)


def _own_term_end(s: Session, actor: Actor, association_id: int, han_id: int | None,
                  perms: tuple[str, ...]) -> datetime | None:
    """The latest moment until which the actor holds every one of `perms` there without a break, counting
    their roles of later terms that start where one ends (None: without an end)."""
    rows = s.exec(select(OfficerRole.permissions, OfficerRole.han_id, OfficerRole.valid_from, OfficerRole.valid_until)
                  .join(Membership, Membership.id == OfficerRole.membership_id)
                  .where(Membership.account_id == actor.account_id, Membership.status == "active",
                         OfficerRole.association_id == association_id, OfficerRole.revoked_at.is_(None))).all()
    now = utcnow()
    limit: datetime | None = None
    for p in perms:
        spans = [(as_utc(start), as_utc(until) if until is not None else None)
                 for permissions, role_han, start, until in rows
                 if p in permissions.split() and (role_han is None or role_han == han_id)]
        spans.sort(key=lambda span: span[0])  # by start only: an open end (None) does not compare with a date
        reach: datetime | None = now
        for start, until in spans:  # each span starting before the covered time runs out extends it
            if reach is None or start > reach:
                continue
            reach = None if until is None else max(reach, until)
        if reach is None:
            continue  # held without an end
        limit = reach if limit is None else min(limit, reach)
    return limit


def _require_held(actor: Actor, association_id: int, han_id: int | None, perms: tuple[str, ...]) -> None:
    """One can only delegate what one holds there oneself."""
    for p in perms:
        if not in_scope(han_scope(actor, p, association_id), han_id):
            raise ValidationErrors({"permissions": ServiceError("officer.error.not_held", "permissions", perm=p)})


def _member_in_scope(s: Session, association_id: int, scope, membership_id: object, field: str) -> Membership:
    m = s.get(Membership, validate.ident(membership_id, field))
    if m is None or m.association_id != association_id or m.status != "active":
        raise Denied()
    han_id = s.get(Household, m.household_id).han_id if m.household_id else None
    if not in_scope(scope, han_id):
        raise Denied()
    return m


def _future_holder(s: Session, association_id: int, scope, membership_id: object, field: str) -> Membership:
    """The member a role is given or handed over to: never a city staff account (staff see aggregates only,
    and a role held by one would count as a manager who cannot act)."""
    m = _member_in_scope(s, association_id, scope, membership_id, field)
    if s.get(Account, m.account_id).is_city_staff:
        raise ValidationErrors({field: "association.error.staff_appointee"})
    return m


def _role_in_scope(s: Session, actor: Actor, role_id: object) -> tuple[OfficerRole, object]:
    role = s.get(OfficerRole, validate.ident(role_id, "role_id"))
    if role is None:
        raise NotFound()
    may_change(actor, role)  # before any lock: someone who may not gets no lock either
    # Read again under the association's lock: a second change of the same role at the same moment (two
    # handovers) sees what the first one did.
    lock_officers(s, role.association_id)
    s.refresh(role)
    return role, may_change(actor, role)


def may_change(actor: Actor, role: OfficerRole):
    """The actor's manage_members scope where it covers the role; Denied otherwise."""
    scope = han_scope(actor, MANAGE_MEMBERS, role.association_id)
    if not scope or not in_scope(scope, role.han_id):
        raise Denied()
    # Changing, revoking or handing over a role is for someone who holds all it grants: a manager without them
    # could otherwise end the 会長's role, and with it permissions no one left could grant again.
    if any(not in_scope(han_scope(actor, p, role.association_id), role.han_id) for p in role.permissions.split()):
        raise Denied()
    return scope


def _holder(s: Session, role: OfficerRole) -> int:
    return s.get(Membership, role.membership_id).account_id


def grant_role(actor: Actor, association_id: object, data: dict) -> int:
    """A new role for an active member: title, permissions, optional han, validity period."""
    if not isinstance(data, dict):
        raise ServiceError("error.invalid")
    now = utcnow()
    with session() as s:
        a = association_or_404(s, association_id)
        scope = require_scope(actor, MANAGE_MEMBERS, a.id)
        m = _future_holder(s, a.id, scope, data.get("membership_id"), "membership_id")
        clean = _clean_role(s, actor, a.id, scope, data, now)
        role = OfficerRole(association_id=a.id, membership_id=m.id, title=clean.title,
                           permissions=" ".join(clean.permissions), han_id=clean.han_id, valid_from=clean.valid_from,
                           valid_until=clean.valid_until, created_by=actor.account_id, created_at=now)
        s.add(role)
        s.flush()
        audit.record(s, actor, "role.change", association_id=a.id, subjects=[m.account_id],
                     detail=f"grant {clean.title}: {' '.join(clean.permissions)}")
        return role.id


def change_role(actor: Actor, role_id: object, data: dict) -> None:
    """Edit a role in place (title, permissions, han, period); refused if no manager would remain."""
    if not isinstance(data, dict):
        raise ServiceError("error.invalid")
    now = utcnow()
    with session() as s:
        role, scope = _role_in_scope(s, actor, role_id)
        if _state(role, now) == "ended":
            raise ServiceError("officer.error.ended")
        gap = first_manager_gap(s, role.association_id, now)
        if data.get("valid_from") in (None, ""):
            data = {**data, "valid_from": role.valid_from}  # an empty start keeps the current one
        shown = {"valid_from": as_utc(role.valid_from).astimezone(TZ).date(),
                 "valid_until": end_day(role.valid_until)}
        for key, stored in (("valid_from", role.valid_from), ("valid_until", role.valid_until)):
            # The edit form shows dates only: a date left as it was keeps the stored moment (a handover at 10:00).
            if stored is not None and data.get(key + "_time") in (None, "") and isinstance(data.get(key), str) \
                    and data[key].strip() == shown[key].isoformat():
                data = {**data, key: as_utc(stored)}
        clean = _clean_role(s, actor, role.association_id, scope, data, now)
        role.title, role.permissions, role.han_id = clean.title, " ".join(clean.permissions), clean.han_id
        role.valid_from, role.valid_until = clean.valid_from, clean.valid_until
        s.add(role)
        ensure_manager_remains(s, role.association_id, gap, now)
        audit.record(s, actor, "role.change", association_id=role.association_id, subjects=[_holder(s, role)],
                     detail=f"change {clean.title}: {' '.join(clean.permissions)}")


def revoke_role(actor: Actor, role_id: object) -> None:
    now = utcnow()
    with session() as s:
        role, _scope = _role_in_scope(s, actor, role_id)
        if _state(role, now) == "ended":
            raise ServiceError("officer.error.ended")
        gap = first_manager_gap(s, role.association_id, now)
        role.revoked_at = now
        s.add(role)
        ensure_manager_remains(s, role.association_id, gap, now)
        audit.record(s, actor, "role.change", association_id=role.association_id, subjects=[_holder(s, role)],
                     detail=f"revoke {role.title}")


def handover_role(actor: Actor, role_id: object, to_membership_id: object, day: object, clock: object = "") -> int:
    """Annual rotation in one step: the old role ends exactly when the new holder's begins."""
    now = utcnow()
    with session() as s:
        role, scope = _role_in_scope(s, actor, role_id)
        if _state(role, now) == "ended":
            raise ServiceError("officer.error.ended")
        try:
            at = moment(day, clock, "handover_at") or now
        except ServiceError as e:
            raise ValidationErrors({"handover_at": e}) from None
        if clock in (None, "") and at.astimezone(TZ).date() == today_local():
            at = now  # "today" without a time means at once
        if at < now.replace(second=0, microsecond=0) or at <= role.valid_from:
            raise ValidationErrors({"handover_at": "officer.error.handover_past"})
        if role.valid_until is not None and at >= role.valid_until:
            raise ValidationErrors({"handover_at": "officer.error.handover_after_end"})
        to = _future_holder(s, role.association_id, scope, to_membership_id, "to_membership_id")
        if to.id == role.membership_id:
            raise ValidationErrors({"to_membership_id": "officer.error.same_holder"})
        _require_held(actor, role.association_id, role.han_id, tuple(role.permissions.split()))
        limit = _own_term_end(s, actor, role.association_id, role.han_id, tuple(role.permissions.split()))
        if limit is not None and (role.valid_until is None or as_utc(role.valid_until) > limit):
            # The role passed on keeps its end: no longer than the officer passing it on holds it themselves.
            raise ValidationErrors({"to_membership_id": ServiceError("officer.error.beyond_own_term",
                                                                     "to_membership_id", until=shown_end(limit))})
        gap = first_manager_gap(s, role.association_id, now)
        new = OfficerRole(association_id=role.association_id, membership_id=to.id, title=role.title,
                          permissions=role.permissions, han_id=role.han_id, valid_from=at,
                          valid_until=role.valid_until, created_by=actor.account_id, created_at=now)
        role.valid_until = at
        s.add(role)
        s.add(new)
        ensure_manager_remains(s, role.association_id, gap, now)
        audit.record(s, actor, "role.change", association_id=role.association_id,
                     subjects=[_holder(s, role), to.account_id], detail=f"handover {role.title}")
        return new.id
