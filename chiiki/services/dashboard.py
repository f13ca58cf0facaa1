"""The city's dashboard: aggregates over every association, computed by SQL GROUP BY, never a person's row.

Definitions (all over the last `MONTHS` months of circulars and surveys, membership as it is today):
- member households: households (not removed) with at least one active member account;
- reachable digitally: households not paper-only (an active member account is linked), as a share of all;
- read / confirmed rate: per circular x household (a household counts once, whichever member read it, and
  paper deliveries count as confirmed when an officer confirmed them), over all targeted households;
- survey participation: answers (per account, or per household for per-household surveys) over the active
  members (or member households) in the survey's target han at the time the dashboard is computed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, distinct, func
from sqlmodel import Session, select

from chiiki.models import (
    Account,
    Association,
    Circular,
    Delivery,
    Household,
    Membership,
    Survey,
    SurveyParticipation,
    SurveyTarget,
    utcnow,
)
from chiiki.services import validate
from chiiki.services.associations import _area_items, require
from chiiki.services.db import session
from chiiki.services.errors import NotFound
from chiiki.services.policy import CITY_ADMIN, Actor

MONTHS = 12


def rate(part: int, whole: int) -> float | None:
    """A percentage with one decimal, or None when there is nothing to divide by."""
    return round(100.0 * part / whole, 1) if whole else None


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
    households: int
    member_households: int
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
    """YYYY-MM of a stored UTC time in the city's time zone (Asia/Tokyo has no daylight saving)."""
    if s.get_bind().dialect.name == "postgresql":
        return func.to_char(func.timezone("Asia/Tokyo", column), "YYYY-MM")
    return func.strftime("%Y-%m", column, "+9 hours")


def _household_counts(s: Session) -> dict[int, tuple[int, int, int]]:
    """association id -> (households, member households, digitally reachable households)."""
    members = (select(Membership.household_id).where(Membership.status == "active",
                                                     Membership.household_id.is_not(None))
               .distinct().subquery())
    rows = s.exec(
        select(Household.association_id, func.count(Household.id),
               func.count(members.c.household_id),
               func.sum(case((Household.paper_only.is_(False), 1), else_=0)))
        .join(members, members.c.household_id == Household.id, isouter=True)
        .where(Household.removed_at.is_(None)).group_by(Household.association_id)
    ).all()
    return {a: (int(n), int(m or 0), int(d or 0)) for a, n, m, d in rows}


def _circular_counts(s: Session, since: datetime) -> dict:
    """(association id, month) -> (circulars, household deliveries, read, confirmed).

    One streaming pass over Delivery in (circular, household, state) index order: a household counts once per
    circular, as read when any of its rows is read or confirmed, as confirmed when any row is confirmed.
    """
    cond = [Circular.status == "sent", Circular.sent_at >= since]
    household = Delivery.household_id
    per_circular = (
        select(Delivery.circular_id, func.count(distinct(household)).label("t"),
               func.count(distinct(household)).filter(Delivery.state.in_(("read", "confirmed"))).label("r"),
               func.count(distinct(household)).filter(Delivery.state == "confirmed").label("c"))
        .where(Delivery.circular_id.in_(select(Circular.id).where(*cond)))
        .group_by(Delivery.circular_id).subquery()
    )
    month = _month(s, Circular.sent_at)
    rows = s.exec(
        select(Circular.association_id, month, func.count(Circular.id), func.coalesce(func.sum(per_circular.c.t), 0),
               func.coalesce(func.sum(per_circular.c.r), 0), func.coalesce(func.sum(per_circular.c.c), 0))
        .join(per_circular, per_circular.c.circular_id == Circular.id, isouter=True)
        .where(*cond).group_by(Circular.association_id, month)
    ).all()
    return {(a, m): (int(n), int(t), int(r), int(c)) for a, m, n, t, r, c in rows}


def _survey_counts(s: Session, since: datetime) -> dict:
    """(association id, month) -> (eligible, participated), see the module definition."""
    members = s.exec(
        select(Membership.association_id, Household.han_id, func.count(distinct(Membership.account_id)),
               func.count(distinct(Membership.household_id)))
        .join(Household, Household.id == Membership.household_id, isouter=True)
        .where(Membership.status == "active").group_by(Membership.association_id, Household.han_id)
    ).all()
    by_han: dict[int, dict[int | None, tuple[int, int]]] = {}
    for aid, han, accounts, households in members:
        by_han.setdefault(aid, {})[han] = (int(accounts), int(households))
    recent = Survey.created_at >= since
    surveys = s.exec(select(Survey.id, Survey.association_id, Survey.target_all, Survey.per_household,
                            _month(s, Survey.created_at)).where(recent)).all()
    targets: dict[int, set[int]] = {}
    for sid, han in s.exec(select(SurveyTarget.survey_id, SurveyTarget.han_id)
                           .join(Survey, Survey.id == SurveyTarget.survey_id).where(recent)).all():
        targets.setdefault(sid, set()).add(han)
    answered = {sid: (int(n), int(h)) for sid, n, h in s.exec(
        select(SurveyParticipation.survey_id, func.count(SurveyParticipation.id),
               func.count(distinct(SurveyParticipation.household_id)))
        .join(Survey, Survey.id == SurveyParticipation.survey_id).where(recent)
        .group_by(SurveyParticipation.survey_id)).all()}
    out: dict = {}
    for sid, aid, target_all, per_household, month in surveys:
        idx = 1 if per_household else 0
        hans = by_han.get(aid, {})
        eligible = sum(v[idx] for h, v in hans.items() if target_all or h in targets.get(sid, ()))
        done = answered.get(sid, (0, 0))[idx]
        e, d = out.get((aid, month), (0, 0))
        out[(aid, month)] = (e + eligible, d + min(done, eligible) if eligible else d)
    return out


def _roll_up(counts: dict, part: int, keep=lambda key: True) -> dict:
    """Sum (association id, month)-keyed tuples by one part of the key (0 = association, 1 = month)."""
    out: dict = {}
    for key, values in counts.items():
        if keep(key):
            prev = out.get(key[part])
            out[key[part]] = values if prev is None else tuple(a + b for a, b in zip(prev, values))
    return out


def _overview(s: Session, households: dict, circ: dict, surveys: dict, active: set[int]) -> Overview:
    hh = [v for a, v in households.items() if a in active]
    n, m, d = (sum(v[i] for v in hh) for i in range(3))
    c = [v for a, v in circ.items() if a in active]
    total, read, conf = (sum(v[i] for v in c) for i in (1, 2, 3))
    sv = [v for a, v in surveys.items() if a in active]
    residents = s.exec(select(func.count(Account.id)).where(Account.deleted_at.is_(None))).one()
    return Overview(len(active), n, m, d, rate(d, n), residents, sum(v[0] for v in c), rate(read, total),
                    rate(conf, total), rate(sum(v[1] for v in sv), sum(v[0] for v in sv)))


def _months(circ: dict, surveys: dict, association_id: int | None) -> list[MonthPoint]:
    def keep(key) -> bool:
        return association_id is None or key[0] == association_id

    circ, surveys = _roll_up(circ, 1, keep), _roll_up(surveys, 1, keep)
    out = []
    for month in sorted(set(circ) | set(surveys)):
        n, t, r, c = circ.get(month, (0, 0, 0, 0))
        e, d = surveys.get(month, (0, 0))
        out.append(MonthPoint(month, n, rate(r, t), rate(c, t), rate(d, e)))
    return out


def dashboard(actor: Actor, *, association_id: object = None, now: datetime | None = None) -> Dashboard:
    """Everything the dashboard shows; the monthly series is for one association when one is given."""
    require(actor, CITY_ADMIN)
    now = now or utcnow()
    since = now - timedelta(days=31 * MONTHS)
    with session() as s:
        aid = None
        if association_id not in (None, "", 0, "0"):
            aid = validate.ident(association_id, "association_id")
            if s.get(Association, aid) is None:
                raise NotFound()
        assocs = s.exec(select(Association.id, Association.name, Association.area_id)
                        .where(Association.active.is_(True)).order_by(Association.name_kana, Association.id)).all()
        labels = {a.id: a.label for a in _area_items(s)}
        households = _household_counts(s)
        circ_months, survey_months = _circular_counts(s, since), _survey_counts(s, since)
        circ, surveys = _roll_up(circ_months, 0), _roll_up(survey_months, 0)
        rows = []
        for a_id, name, area_id in assocs:
            n, m, d = households.get(a_id, (0, 0, 0))
            c, t, r, cf = circ.get(a_id, (0, 0, 0, 0))
            e, p = surveys.get(a_id, (0, 0))
            rows.append(AssociationRow(a_id, name, labels.get(area_id, ""), n, m, rate(d, n), c, rate(r, t),
                                       rate(cf, t), rate(p, e)))
        overview = _overview(s, households, circ, surveys, {a[0] for a in assocs})
        return Dashboard(overview, rows, _months(circ_months, survey_months, aid))
