"""The append-only audit trail of access to personal data, and what a person may read of it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Iterable

from sqlalchemy import Integer, cast, func, insert, literal
from sqlalchemy.dialects.postgresql import ARRAY
from sqlmodel import Session, select

from chiiki.models import Account, AuditAccess, AuditEvent, utcnow
from chiiki.services.policy import Actor


# The title stored for city staff (officer titles are the association's own words, kept as written); shown
# as the "audit.city_staff" string in the reader's language.
CITY_STAFF_TITLE = "市職員"


def month_of(at: datetime) -> int:
    """The month an audit event falls in (AuditEvent.period): year * 12 + month - 1, in UTC."""
    if at.tzinfo is not None:
        at = at.astimezone(timezone.utc)
    return at.year * 12 + at.month - 1


def record(
    s: Session,
    actor: Actor,
    action: str,
    *,
    association_id: int | None = None,
    subjects: Iterable[int] = (),
    household_ids: Iterable[int] = (),
    count: int | None = None,
    detail: str = "",
) -> None:
    """Write the access (one AuditAccess row: what city staff's trail lists), and one AuditEvent per person or
    paper-only household whose data was read, so that each person can see it."""
    # City staff act as the city wherever they act (they hold no officer role: policy.han_scope).
    title = CITY_STAFF_TITLE if actor.is_city_staff else (actor.title_in(association_id) if association_id else "")
    subjects = list(dict.fromkeys(subjects))
    household_ids = list(dict.fromkeys(household_ids))
    total = count if count is not None else len(subjects) + len(household_ids)
    access = {"at": utcnow(), "actor_account_id": actor.account_id, "actor_title": title[:50], "action": action,
              "association_id": association_id, "record_count": total, "detail": detail[:300]}
    s.execute(insert(AuditAccess), [access])
    base = {**access, "period": month_of(access["at"]), "subject_account_id": None, "subject_household_id": None}
    # One INSERT ... SELECT per kind of subject, the ids passed as one array: a 3,000-household export
    # writes its 3,000+ rows without a parameter set (or an ORM object) per row.
    for column, ids in (("subject_account_id", subjects), ("subject_household_id", household_ids)):
        if ids:
            _insert_each(s, base, column, ids)


_SMALL = 8  # up to this many rows, a plain executemany is as quick and works on every database


def _insert_each(s: Session, base: dict, column: str, ids: list[int]) -> None:
    """Insert `base` once per id, with the id in `column`."""
    if len(ids) <= _SMALL:
        s.execute(insert(AuditEvent), [{**base, column: i} for i in ids])
        return
    table = AuditEvent.__table__
    if s.get_bind().dialect.name == "postgresql":
        each = func.unnest(literal([int(i) for i in ids], ARRAY(Integer))).table_valued("value").render_derived()
        value = each.c.value
    else:
        each = func.json_each(json.dumps([int(i) for i in ids])).table_valued("value")
        value = cast(each.c.value, Integer)
    names = [k for k in base if k != column]
    source = select(*(literal(base[k], table.c[k].type).label(k) for k in names), value.label(column))
    s.execute(table.insert().from_select([*names, column], source))


@dataclass(frozen=True)
class AccessEntry:
    at: datetime
    actor_title: str
    actor_name: str
    action: str
    record_count: int


def accesses_to(s: Session, account_id: int, *, limit: int = 50, offset: int = 0) -> list[AccessEntry]:
    """Who accessed this person's data, newest first; the person's own actions are not listed.

    The officer is named by title and display name: privacy rule 1 lets members see display names only.
    """
    # The person's rows are found month by month (the index leads with the month): every month from the
    # first event's to the last one's, each looked up directly (SQLite and PostgreSQL both take an IN on the
    # index's first column as one lookup per value), then sorted by time.
    first, last = s.exec(select(select(func.min(AuditEvent.period)).scalar_subquery(),
                                select(func.max(AuditEvent.period)).scalar_subquery())).one()
    if first is None:
        return []
    rows = s.exec(
        select(AuditEvent, Account.display_name)
        .join(Account, Account.id == AuditEvent.actor_account_id, isouter=True)
        .where(AuditEvent.period.in_(list(range(first, last + 1))), AuditEvent.subject_account_id == account_id)
        .where((AuditEvent.actor_account_id != account_id) | (AuditEvent.actor_account_id.is_(None)))
        .order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
        .offset(offset)
        .limit(limit)
    ).all()
    return [AccessEntry(e.at, e.actor_title, name or "", e.action, e.record_count) for e, name in rows]


@dataclass(frozen=True)
class TrailEntry:
    """One access as city staff see it: who by title, which association, what, how many — no person."""

    at: datetime
    association: str
    actor_title: str
    action: str
    record_count: int


def city_trail(actor: Actor, *, limit: int = 50, offset: int = 0) -> tuple[list[TrailEntry], bool]:
    """The audit trail for city staff (city_admin): accesses per association, newest first, never whose data
    or who by name; and whether older accesses follow. A page reads `limit` + 1 accesses down the (at, id)
    index, never the whole log, which grows by every access of every association."""
    from chiiki.models import Association
    from chiiki.services.db import session
    from chiiki.services.errors import Denied
    from chiiki.services.policy import CITY_ADMIN, can

    if not can(actor, CITY_ADMIN):
        raise Denied()
    limit = max(1, min(int(limit), 200))
    offset = max(0, int(offset))
    with session() as s:
        rows = s.connection().execute(
            select(AuditAccess.at, Association.name, AuditAccess.actor_title, AuditAccess.action,
                   AuditAccess.record_count)
            .join(Association, Association.id == AuditAccess.association_id, isouter=True)
            .where(AuditAccess.action.not_like("self.%"))
            .order_by(AuditAccess.at.desc(), AuditAccess.id.desc())
            .offset(offset)
            .limit(limit + 1)
        ).all()
    entries = [TrailEntry(at, name or "", title or "", action, n or 0) for at, name, title, action, n in rows]
    return entries[:limit], len(entries) > limit
