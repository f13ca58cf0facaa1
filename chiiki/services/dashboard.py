"""The city's dashboard: aggregates over every association, computed by SQL GROUP BY, never a person's row.

Definitions (all over the last `MONTHS` months of circulars and surveys, membership as it is today):
- member households: households (not removed) with at least one active member account;
- reachable digitally: households not paper-only (an active member account is linked), as a share of all
  (the same households: Household.paper_only is kept False exactly while an active member is linked);
- read / confirmed rate: per circular x household (a household counts once, whichever member read it, and
  paper deliveries count as confirmed when an officer confirmed them), over all targeted households;
- survey participation: answers (per account, or per household for per-household surveys) over the active
  members (or member households) in the survey's target han at the time the dashboard is computed.

Small groups (SMALL_GROUP) are left out of every figure, not only hidden in their own cell: a circular sent to
fewer households, a survey asking fewer people (or households), and an association with fewer households
count in no row, month or city total. Hidden in one cell but summed into the others, a month's or an
association's figure would follow from the difference of two shown totals.

Cost at city scale: a pass over the households, an index of the memberships, and the circulars and surveys of
the period with their counters (never the millions of deliveries), in a fixed number of queries, read side by
side. Choosing one association's monthly series reads only that association's rows (association_months).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, func
from sqlmodel import Session, select

from chiiki.models import (
    CITY_UTC_OFFSET,
    Account,
    Association,
    Circular,
    Household,
    Membership,
    Survey,
    SurveyTarget,
    utcnow,
)
from chiiki.services import validate
from chiiki.services.associations import _area_items, require
from chiiki.services.db import gather, session
from chiiki.services.errors import NotFound
from chiiki.services.policy import CITY_ADMIN, SMALL_GROUP, Actor

MONTHS = 12
# A rate over fewer than SMALL_GROUP (households × circulars, people × surveys) is not shown: a safety check
# sent to a han of one household would show staff whether that one person answered.


def rate(part: int, whole: int) -> float | None:
    """A percentage with one decimal, or None (shown as "—") when fewer than SMALL_GROUP are counted."""
    return round(100.0 * part / whole, 1) if whole >= max(1, SMALL_GROUP) else None


@dataclass(frozen=True)
class Overview:
    associations: int
    households: int
    member_households: int
    digital_households: int
    digital_share: float | None
    residents: int
    circulars: int
    read_rate: float | None
    confirm_rate: float | None
    survey_rate: float | None


@dataclass(frozen=True)
class AssociationRow:
    id: int
    name: str
    area: str
    households: int | None  # None (shown as "—") with member_households for fewer than SMALL_GROUP households
    member_households: int | None
    digital_share: float | None
    circulars: int
    read_rate: float | None
    confirm_rate: float | None
    survey_rate: float | None


@dataclass(frozen=True)
class MonthPoint:
    month: str  # YYYY-MM in city time
    circulars: int
    read_rate: float | None
    confirm_rate: float | None
    survey_rate: float | None


@dataclass(frozen=True)
class Dashboard:
    overview: Overview
    associations: list[AssociationRow]
    months: list[MonthPoint]


def _month(s: Session, column):
    """The month of a stored UTC time in the city's time zone, Asia/Tokyo: UTC+9 all year (no daylight saving).

    PostgreSQL groups by date_trunc (a timestamp, cheaper than formatting every row; a fixed offset is cheaper
    than a time zone lookup per row); see _label.
    """
    if s.get_bind().dialect.name == "postgresql":
        return func.date_trunc("month", func.timezone("UTC", column) + CITY_UTC_OFFSET)
    return func.strftime("%Y-%m", column, f"+{CITY_UTC_OFFSET.total_seconds() / 3600:g} hours")


def _label(month) -> str:
    """YYYY-MM of what _month gave."""
    return month.strftime("%Y-%m") if isinstance(month, datetime) else str(month)


@dataclass(frozen=True)
class _Roster:
    """Households and active memberships as they are today."""

    households: dict[int, tuple[int, int, int]]  # association -> (households, member households, digital)
    members: dict[int, int]  # association -> active memberships


def _roster_counts(s: Session, association_id: int | None = None) -> _Roster:
    """One pass over the households and one over an index of the memberships (of one association when given).

    A household has an active member account exactly when it is not paper-only: every membership change
    keeps Household.paper_only so (accounts.refresh_paper_only), which spares a join of 100,000 households
    with their memberships.
    """
    homes = (select(Household.association_id, func.count(),
                    func.sum(case((Household.paper_only.is_(False), 1), else_=0)))
             .where(Household.removed_at.is_(None)))
    members = select(Membership.association_id, func.count()).where(Membership.status == "active")
    if association_id is not None:
        homes = homes.where(Household.association_id == association_id)
        members = members.where(Membership.association_id == association_id)
    rows = s.exec(homes.group_by(Household.association_id)).all()
    households = {aid: (int(n), int(d or 0), int(d or 0)) for aid, n, d in rows}
    return _Roster(households, dict(s.exec(members.group_by(Membership.association_id)).all()))


def _in_han(s: Session, han_ids: set[int]) -> dict[int, tuple[int, int]]:
    """han -> (active memberships, member households), for the few han that surveys were limited to."""
    if not han_ids:
        return {}
    ids = sorted(han_ids)
    members = dict(s.exec(
        select(Household.han_id, func.count()).join(Membership, Membership.household_id == Household.id)
        .where(Household.han_id.in_(ids), Membership.status == "active").group_by(Household.han_id)).all())
    homes = dict(s.exec(
        select(Household.han_id, func.count())
        .where(Household.han_id.in_(ids), Household.removed_at.is_(None), Household.paper_only.is_(False))
        .group_by(Household.han_id)).all())
    return {h: (int(members.get(h, 0)), int(homes.get(h, 0))) for h in ids}


def _sent(since: datetime) -> tuple:
    """The circulars the dashboard counts: sent in the period to at least SMALL_GROUP households (a filter on the
    counter column the dashboard's indexes already cover)."""
    return (Circular.status == "sent", Circular.sent_at >= since, Circular.household_count >= SMALL_GROUP)


def _sums():
    """circulars, household deliveries, read, confirmed."""
    return (func.count(Circular.id), func.coalesce(func.sum(Circular.household_count), 0),
            func.coalesce(func.sum(Circular.read_households), 0),
            func.coalesce(func.sum(Circular.confirmed_households), 0))


def _counts(n, t, r, c) -> tuple[int, int, int, int]:
    return int(n), int(t), int(r), int(c)


def _circular_counts(s: Session, since: datetime, city_months: bool = True) -> tuple[dict, dict]:
    """({association id: counts}, {month: counts}) for the city, with counts = (circulars, household deliveries,
    read, confirmed).

    From each circular's household counters (chiiki.models.Circular, kept by services/circulars.py): a
    household counts once per circular, as read when any of its rows is read or confirmed, as confirmed when
    any row is confirmed. One pass over the circulars of the period, never over the deliveries (on PostgreSQL
    one pass for both groupings). The month is the city's, kept with the circular (chiiki.models.city_month).
    """
    sent = _sent(since)
    if s.get_bind().dialect.name == "postgresql":
        rows = s.exec(select(Circular.association_id, Circular.sent_month, *_sums()).where(*sent)
                      .group_by(func.grouping_sets(Circular.association_id, Circular.sent_month))).all()
        by_assoc = {a: _counts(*v) for a, m, *v in rows if a is not None}
        return by_assoc, {_label(m): _counts(*v) for a, m, *v in rows if a is None and m is not None}
    rows = s.exec(select(Circular.association_id, *_sums()).where(*sent).group_by(Circular.association_id)).all()
    return {a: _counts(*v) for a, *v in rows}, _circular_months(s, since, None) if city_months else {}


def _circular_months(s: Session, since: datetime, association_id: int | None) -> dict:
    """{month: counts} of the city's circulars, or of one association's (read through its index)."""
    q = select(Circular.sent_month, *_sums()).where(*_sent(since))
    if association_id is not None:
        q = q.where(Circular.association_id == association_id)
    return {_label(m): _counts(*v) for m, *v in s.exec(q.group_by(Circular.sent_month)).all()}


@dataclass(frozen=True)
class _Surveys:
    """The surveys of the period with their answer counters, their target han, and the people in those han."""

    rows: list  # (id, association id, target_all, per_household, month, answered accounts, answered households)
    targets: dict[int, set[int]]  # survey id -> target han ids (surveys not addressed to everyone)
    in_han: dict[int, tuple[int, int]]  # han id -> (active memberships, member households)


def _survey_reads(s: Session, since: datetime, association_id: int | None = None) -> _Surveys:
    """Who answered, from each survey's counters (chiiki.models.Survey, recounted whenever a participation is
    written): accounts, and households for per-household surveys."""
    recent = [Survey.created_at >= since]
    if association_id is not None:
        recent.append(Survey.association_id == association_id)
    rows = s.exec(select(Survey.id, Survey.association_id, Survey.target_all, Survey.per_household,
                         _month(s, Survey.created_at), Survey.answered_accounts, Survey.answered_households)
                  .where(*recent)).all()
    targets: dict[int, set[int]] = {}
    for sid, han in s.exec(select(SurveyTarget.survey_id, SurveyTarget.han_id)
                           .join(Survey, Survey.id == SurveyTarget.survey_id).where(*recent)).all():
        targets.setdefault(sid, set()).add(han)
    in_han = _in_han(s, {h for sid, _aid, target_all, *_rest in rows if not target_all
                         for h in targets.get(sid, ())})
    return _Surveys(rows, targets, in_han)


def _survey_counts(surveys: _Surveys, roster: _Roster) -> dict:
    """(association id, month) -> (eligible, participated), see the module definition."""
    out: dict = {}
    labels: dict = {}
    for sid, aid, target_all, per_household, month, accounts, homes_answered in surveys.rows:
        month = labels.get(month) or labels.setdefault(month, _label(month))
        idx = 1 if per_household else 0
        if target_all:
            eligible = roster.households.get(aid, (0, 0, 0))[1] if per_household else roster.members.get(aid, 0)
        else:
            eligible = sum(surveys.in_han.get(h, (0, 0))[idx] for h in surveys.targets.get(sid, ()))
        if eligible < SMALL_GROUP:
            continue  # left out of every total (see the module's definitions)
        done = homes_answered if per_household else accounts
        e, d = out.get((aid, month), (0, 0))
        out[(aid, month)] = (e + eligible, d + min(done, eligible))
    return out


def _roll_up(counts: dict, part: int, keep=None) -> dict:
    """Sum (association id, month)-keyed (eligible, participated) pairs by one part of the key (0 = association,
    1 = month), optionally only the keys that `keep` accepts."""
    out: dict = {}
    for key, (eligible, done) in counts.items():
        if keep is None or keep(key):
            e, d = out.get(key[part], (0, 0))
            out[key[part]] = (e + eligible, d + done)
    return out


def _residents(s: Session) -> int:
    """Accounts not deleted: all of them less the deleted ones (both counts read an index, not the table)."""
    total = s.exec(select(func.count()).select_from(Account)).one()
    deleted = s.exec(select(func.count()).select_from(Account).where(Account.deleted_at.is_not(None))).one()
    return int(total) - int(deleted)


def _associations(s: Session) -> tuple[list, dict[int, str]]:
    """The active associations in name order, and the label of every area."""
    assocs = s.exec(select(Association.id, Association.name, Association.area_id)
                    .where(Association.active.is_(True)).order_by(Association.name_kana, Association.id)).all()
    return assocs, {a.id: a.label for a in _area_items(s)}


def _overview(households: dict, circ: dict, surveys: dict, active: set[int], residents: int) -> Overview:
    hh = [v for a, v in households.items() if a in active]
    n, m, d = (sum(v[i] for v in hh) for i in range(3))
    c = [v for a, v in circ.items() if a in active]
    total, read, conf = (sum(v[i] for v in c) for i in (1, 2, 3))
    sv = [v for a, v in surveys.items() if a in active]
    return Overview(len(active), n, m, d, rate(d, n), residents, sum(v[0] for v in c), rate(read, total),
                    rate(conf, total), rate(sum(v[1] for v in sv), sum(v[0] for v in sv)))


def _months(circ: dict, surveys: dict, association_id: int | None) -> list[MonthPoint]:
    """circ: month -> counts (already for the city or the association); surveys: (association, month) -> counts."""
    surveys = _roll_up(surveys, 1, lambda key: association_id is None or key[0] == association_id)
    out = []
    for month in sorted(set(circ) | set(surveys)):
        n, t, r, c = circ.get(month, (0, 0, 0, 0))
        e, d = surveys.get(month, (0, 0))
        out.append(MonthPoint(month, n, rate(r, t), rate(c, t), rate(d, e)))
    return out


def _association(association_id: object) -> int | None:
    """The id of an existing association, or None for the whole city."""
    if association_id in (None, "", 0, "0"):
        return None
    aid = validate.ident(association_id, "association_id")
    with session() as s:
        if s.get(Association, aid) is None:
            raise NotFound()
    return aid


def _since(now: datetime | None) -> datetime:
    return (now or utcnow()) - timedelta(days=31 * MONTHS)


def _activity(s: Session, since: datetime, association_id: int | None) -> tuple:
    """The associations, their circulars and surveys of the period (and the chosen association's months)."""
    circ, circ_months = _circular_counts(s, since, city_months=association_id is None)
    if association_id is not None:
        circ_months = _circular_months(s, since, association_id)
    return _associations(s), circ, circ_months, _survey_reads(s, since)


def _people(s: Session) -> tuple[_Roster, int]:
    """Households, memberships and residents as they are today."""
    return _roster_counts(s), _residents(s)


def dashboard(actor: Actor, *, association_id: object = None, now: datetime | None = None) -> Dashboard:
    """Everything the dashboard shows; the monthly series is for one association when one is given.

    Its reads fall in two halves of about the same cost that do not depend on each other, read side by side
    on two connections (db.gather): on PostgreSQL each is a server process of its own, so both cores work,
    and SQLite runs its statements without holding Python's lock. (More, smaller parts were slower on SQLite:
    their Python work queued for that lock.) Each half is a consistent read of its own; together they are as
    of the same moment to within the few tens of milliseconds they take.
    """
    require(actor, CITY_ADMIN)
    aid = _association(association_id)
    since = _since(now)
    ((assocs, labels), circ, circ_months, survey_reads), (roster, residents) = gather(
        (_activity, since, aid), _people)
    survey_months = _survey_counts(survey_reads, roster)
    surveys = _roll_up(survey_months, 0)
    # An association of fewer than SMALL_GROUP households shows neither count (its member households over its
    # households is the share rate() hides) and is left out of the city's (or the rest would give both).
    households = {a: v for a, v in roster.households.items() if v[0] >= SMALL_GROUP}
    rows = []
    for a_id, name, area_id in assocs:
        n, m, d = households.get(a_id, (0, 0, 0))
        small = a_id in roster.households and a_id not in households
        c, t, r, cf = circ.get(a_id, (0, 0, 0, 0))
        e, p = surveys.get(a_id, (0, 0))
        rows.append(AssociationRow(a_id, name, labels.get(area_id, ""), None if small else n, None if small else m,
                                   rate(d, n), c, rate(r, t), rate(cf, t), rate(p, e)))
    overview = _overview(households, circ, surveys, {a[0] for a in assocs}, residents)
    return Dashboard(overview, rows, _months(circ_months, survey_months, aid))


def association_months(actor: Actor, association_id: object, *, now: datetime | None = None) -> list[MonthPoint]:
    """The monthly series of one association alone (what the dashboard shows when one is chosen), from that
    association's circulars, surveys, households and memberships only: choosing one does not recompute the
    city."""
    require(actor, CITY_ADMIN)
    aid = _association(association_id)
    if aid is None:
        raise NotFound()
    since = _since(now)
    with session() as s:
        survey_months = _survey_counts(_survey_reads(s, since, aid), _roster_counts(s, aid))
        return _months(_circular_months(s, since, aid), survey_months, aid)
