"""SQLModel tables for the whole Chiiki domain (see DESIGN.md); services are the only writers."""

from __future__ import annotations

import functools
from datetime import date, datetime, timedelta, timezone

from typing import Iterable

from sqlalchemy import (Column, Index, Text, UniqueConstraint, and_, bindparam, distinct, event, func, inspect,
                        select, update)
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    """Aware UTC timestamps everywhere (timestamptz on PostgreSQL); pages show the city's local time."""
    return datetime.now(timezone.utc)


def as_utc(value: datetime | None) -> datetime | None:
    """A stored time as an aware UTC one: SQLite gives back naive UTC, PostgreSQL aware times."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value


CITY_UTC_OFFSET = timedelta(hours=9)  # Asia/Tokyo: UTC+9 all year, no daylight saving


def city_month(moment: datetime | None) -> str:
    """YYYY-MM of a stored time (aware, or naive UTC as SQLite returns it) in the city's time; "" for None."""
    if moment is None:
        return ""
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return (moment + CITY_UTC_OFFSET).strftime("%Y-%m")


# --------------------------------------------------------------------------- places and people


class Area(SQLModel, table=True):
    """地区: city -> district -> block; notices target any node of this tree."""

    id: int | None = Field(default=None, primary_key=True)
    parent_id: int | None = Field(default=None, foreign_key="area.id", index=True)
    name: str = Field(max_length=100)
    level: str = Field(default="district", max_length=20)  # city | district | block
    sort_order: int = Field(default=0)


class Association(SQLModel, table=True):
    """町内会: a members-only space inside the city."""

    id: int | None = Field(default=None, primary_key=True)
    area_id: int = Field(foreign_key="area.id", index=True)
    name: str = Field(max_length=100, index=True)
    name_kana: str = Field(default="", max_length=200)
    description: str = Field(default="", max_length=2000)
    created_at: datetime = Field(default_factory=utcnow)
    active: bool = Field(default=True)


class Han(SQLModel, table=True):
    """班: a subdivision; circulars travel han by han in route order."""

    __table_args__ = (UniqueConstraint("association_id", "name", name="uq_han_name"),)
    id: int | None = Field(default=None, primary_key=True)
    association_id: int = Field(foreign_key="association.id", index=True)
    name: str = Field(max_length=50)
    route_order: int = Field(default=0)


class Household(SQLModel, table=True):
    """世帯: an address in an association; may have no account at all (paper-only)."""

    __table_args__ = (
        Index("ix_household_assoc_han_route", "association_id", "han_id", "route_position"),
        Index("ix_household_assoc_address", "association_id", "address"),
        # Covers the dashboard's count of households per association (no table reads).
        Index("ix_household_assoc_removed_paper", "association_id", "removed_at", "paper_only"),
    )
    id: int | None = Field(default=None, primary_key=True)
    association_id: int = Field(foreign_key="association.id")
    han_id: int | None = Field(default=None, foreign_key="han.id", index=True)
    route_position: int = Field(default=0)
    address: str = Field(default="", max_length=200)
    # Personal data of a paper-only household's representative; erased with the household.
    head_name: str = Field(default="", max_length=100)
    head_kana: str = Field(default="", max_length=200)
    phone: str = Field(default="", max_length=30)
    note: str = Field(default="", max_length=500)
    # True while no account is linked: circulars go on paper.
    paper_only: bool = Field(default=True, index=True)
    # A household with member accounts that still gets the paper circular too (an officer's choice, e.g. an
    # elderly household whose only account is a relative's).
    paper_copy: bool = Field(default=False)
    created_at: datetime = Field(default_factory=utcnow)
    removed_at: datetime | None = Field(default=None)


class Department(SQLModel, table=True):
    """A city department that receives inquiries (市民のこえ)."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100)
    email: str = Field(max_length=254)
    active: bool = Field(default=True)


class Account(SQLModel, table=True):
    """A person who logs in. Every personal field is erased when the account is deleted."""

    # How many residents a city notice reaches (services/notices._resident_filter: not deleted, in these
    # areas, in these age bands or life stages) is counted from one of these indexes alone, never the table:
    # 225 -> 13 ms for the 152,000 residents of 65 and over on SQLite (migration 0013).
    __table_args__ = (
        Index("ix_account_area_reach", "area_id", "deleted_at", "birth_year"),
        Index("ix_account_birth_year_reach", "birth_year", "deleted_at", "area_id"),
        Index("ix_account_small_children_reach", "has_small_children", "deleted_at", "area_id"),
    )
    id: int | None = Field(default=None, primary_key=True)
    # Normalised email (lower case) or phone number (digits only); None after deletion.
    login_id: str | None = Field(default=None, max_length=254, unique=True, index=True)
    password_hash: str = Field(default="", max_length=100)
    name: str = Field(default="", max_length=100)
    kana: str = Field(default="", max_length=200)
    display_name: str = Field(default="", max_length=50)
    address: str = Field(default="", max_length=200)
    area_id: int | None = Field(default=None, foreign_key="area.id")
    birth_year: int | None = Field(default=None)
    email: str = Field(default="", max_length=254)
    phone: str = Field(default="", max_length=30)
    # Life stage for notice targeting, chosen by the resident.
    has_small_children: bool = Field(default=False)
    locale: str = Field(default="ja", max_length=5)
    large_text: bool = Field(default=False)
    email_circulars: bool = Field(default=False)
    email_notices: bool = Field(default=False)
    is_city_staff: bool = Field(default=False)
    department_id: int | None = Field(default=None, foreign_key="department.id")
    failed_logins: int = Field(default=0)
    locked_until: datetime | None = Field(default=None)
    created_at: datetime = Field(default_factory=utcnow)
    # Indexed so that counting the deleted accounts (the dashboard's residents figure) reads no table.
    deleted_at: datetime | None = Field(default=None, index=True)


class Membership(SQLModel, table=True):
    """A resident's link to an association and household: pending -> active -> left (or rejected)."""

    __table_args__ = (Index("ix_membership_assoc_status", "association_id", "status"),)
    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="account.id", index=True)
    association_id: int = Field(foreign_key="association.id")
    household_id: int | None = Field(default=None, foreign_key="household.id", index=True)
    status: str = Field(default="pending", max_length=10)  # pending | active | left | rejected
    consent_version: str = Field(default="", max_length=20)
    consented_at: datetime | None = Field(default=None)
    message: str = Field(default="", max_length=500)
    # The officer's optional reason when a request is rejected; shown to the applicant only.
    decision_note: str = Field(default="", max_length=500)
    requested_at: datetime = Field(default_factory=utcnow)
    decided_at: datetime | None = Field(default=None)
    decided_by: int | None = Field(default=None, foreign_key="account.id")
    left_at: datetime | None = Field(default=None)


class OfficerRole(SQLModel, table=True):
    """役員: a title plus delegated permissions, optionally limited to one han, valid for a period."""

    __table_args__ = (Index("ix_officer_assoc", "association_id", "revoked_at"),)
    id: int | None = Field(default=None, primary_key=True)
    association_id: int = Field(foreign_key="association.id")
    membership_id: int = Field(foreign_key="membership.id", index=True)
    title: str = Field(max_length=50)
    # Space-separated permission names from chiiki.services.policy.OFFICER_PERMISSIONS.
    permissions: str = Field(default="", max_length=200)
    han_id: int | None = Field(default=None, foreign_key="han.id")
    valid_from: datetime = Field(default_factory=utcnow)
    valid_until: datetime | None = Field(default=None)
    created_by: int | None = Field(default=None, foreign_key="account.id")
    created_at: datetime = Field(default_factory=utcnow)
    revoked_at: datetime | None = Field(default=None)


class InviteCode(SQLModel, table=True):
    """An officer-made code or link that lets a resident join directly."""

    id: int | None = Field(default=None, primary_key=True)
    association_id: int = Field(foreign_key="association.id", index=True)
    code_hash: str = Field(max_length=64, unique=True)
    household_id: int | None = Field(default=None, foreign_key="household.id")
    han_id: int | None = Field(default=None, foreign_key="han.id")
    expires_at: datetime
    max_uses: int = Field(default=1)
    uses: int = Field(default=0)
    created_by: int | None = Field(default=None, foreign_key="account.id")
    created_at: datetime = Field(default_factory=utcnow)
    revoked_at: datetime | None = Field(default=None)


# --------------------------------------------------------------------------- circulars


class Circular(SQLModel, table=True):
    """回覧: fixed once sent; corrections are amendments."""

    # An association's circulars by date (inbox, lists) and, covering status, the month and the household
    # counters, the dashboard's sums per association and per month without reading the table. The second
    # index holds the same in month order: SQLite sums the city's months in one pass over it instead of
    # sorting a year of circulars by month (42 -> 20 ms for 45,000 circulars; PostgreSQL groups both ways in
    # one pass over the first).
    __table_args__ = (Index("ix_circular_assoc_sent_month_counters", "association_id", "sent_at", "status",
                            "sent_month", "household_count", "read_households", "confirmed_households"),
                      Index("ix_circular_month_counters", "sent_month", "status", "sent_at", "household_count",
                            "read_households", "confirmed_households"))
    id: int | None = Field(default=None, primary_key=True)
    association_id: int = Field(foreign_key="association.id")
    title: str = Field(max_length=200)
    body: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    due_date: date | None = Field(default=None)
    target_all: bool = Field(default=True)
    status: str = Field(default="draft", max_length=10)  # draft | sending | sent
    created_by: int | None = Field(default=None, foreign_key="account.id")
    created_at: datetime = Field(default_factory=utcnow)
    sent_at: datetime | None = Field(default=None)
    # YYYY-MM of sent_at in the city's time ("" until sent), for the dashboard's monthly series; set on every
    # ORM write (see _set_sent_month) and by the bulk generator.
    sent_month: str = Field(default="", max_length=7)
    # Household counters of a sent circular, a cache of its deliveries for the city dashboard (one row per
    # circular instead of millions of deliveries): households it went to; households where any delivery is
    # read or confirmed; households where any is confirmed (by a member, on behalf, or a paper 確認印).
    # services/circulars.py changes them in the transaction that changes the states, under the circular's
    # lock; Delivery rows written as ORM objects (seeders, tests) are recounted at flush (see below).
    household_count: int = Field(default=0)
    read_households: int = Field(default=0)
    confirmed_households: int = Field(default=0)


class CircularTarget(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("circular_id", "han_id", name="uq_circular_target"),)
    id: int | None = Field(default=None, primary_key=True)
    circular_id: int = Field(foreign_key="circular.id", index=True)
    han_id: int = Field(foreign_key="han.id")


class CircularAmendment(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    circular_id: int = Field(foreign_key="circular.id", index=True)
    body: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    created_by: int | None = Field(default=None, foreign_key="account.id")
    created_at: datetime = Field(default_factory=utcnow)


class Attachment(SQLModel, table=True):
    """A file kept under the private data folder, served only through an authorised route."""

    id: int | None = Field(default=None, primary_key=True)
    circular_id: int | None = Field(default=None, foreign_key="circular.id", index=True)
    notice_id: int | None = Field(default=None, foreign_key="notice.id", index=True)
    filename: str = Field(max_length=200)
    content_type: str = Field(max_length=100)
    size: int = Field(default=0)
    storage_key: str = Field(max_length=100, unique=True)
    uploaded_by: int | None = Field(default=None, foreign_key="account.id")
    created_at: datetime = Field(default_factory=utcnow)


class Delivery(SQLModel, table=True):
    """The coverage ledger: one row per circular x household (x member account when digital).

    The household, account and han are plain ids, not foreign keys: only services/circulars writes deliveries,
    from those rows in the same transaction (fan_out with INSERT ... SELECT at the sending, and
    paper_for_new_paper_household when a household's last member goes), and none of them is ever deleted
    (only marked). A check per row was about half of a send to 3,000 households on PostgreSQL
    (migration 0011). The circular and confirmed_by stay foreign keys.
    """

    # Every read of deliveries names the circular or the member account. The indexes led by the circular take
    # a send's rows at their end; the member's index (the inbox, the badge) takes each of them at the end of
    # that person's own history, a page of its own once a member has had a few hundred circulars. An index
    # led by the household had the same cost and no reader (migration 0016 dropped it): with five years of
    # circulars, it was 30 of the 43 ms of a send's INSERT to 3,000 households on SQLite.
    __table_args__ = (
        UniqueConstraint("circular_id", "household_id", "account_id", name="uq_delivery"),
        Index("ix_delivery_account_circular", "account_id", "circular_id"),
        Index("ix_delivery_circular_state", "circular_id", "state"),
        # A household's states in one circular (the counters' checks, the status page's categories).
        Index("ix_delivery_circular_household_state", "circular_id", "household_id", "state"),
    )
    id: int | None = Field(default=None, primary_key=True)
    circular_id: int = Field(foreign_key="circular.id")
    household_id: int = Field()
    account_id: int | None = Field(default=None)
    han_id: int | None = Field(default=None)
    channel: str = Field(default="digital", max_length=10)  # digital | paper
    state: str = Field(default="unread", max_length=10)  # unread | read | confirmed
    read_at: datetime | None = Field(default=None)
    confirmed_at: datetime | None = Field(default=None)
    confirmed_by: int | None = Field(default=None, foreign_key="account.id")
    on_behalf: bool = Field(default=False)
    paper_delivered_at: datetime | None = Field(default=None)
    # The member's last mail about it (at its sending, a reminder, a correction).
    notified_at: datetime | None = Field(default=None)
    # The member's last mail about a correction of it: a correction within RENOTIFY_INTERVAL after it is held
    # back by circulars.amend for mail_held_corrections, unless notified since (a reminder: notified_at later).
    correction_mailed_at: datetime | None = Field(default=None)


def recount_circular_households(conn: Connection, circular_ids: Iterable[int]) -> None:
    """Set the household counters of these circulars from their deliveries (exact, whatever wrote them).

    Takes the circulars' row locks on PostgreSQL. Called after a flush, the delivery rows are already
    written (and locked) by then, the reverse of the services' order (circular first): do not run scripts
    that write deliveries as ORM objects against circulars people are confirming at that moment.
    """
    ids = sorted({int(i) for i in circular_ids if i is not None})
    if not ids:
        return
    c, d = Circular.__table__, Delivery.__table__

    def households(*where):
        return (select(func.count(distinct(d.c.household_id))).where(d.c.circular_id == c.c.id, *where)
                .scalar_subquery())

    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        if conn.dialect.name == "postgresql":
            conn.execute(select(c.c.id).where(c.c.id.in_(chunk)).order_by(c.c.id).with_for_update(key_share=True))
        conn.execute(update(c).where(c.c.id.in_(chunk)).values(
            household_count=households(), read_households=households(d.c.state != "unread"),
            confirmed_households=households(d.c.state == "confirmed")))


# --------------------------------------------------------------------------- surveys


class Survey(SQLModel, table=True):
    """アンケート; kind general | attendance (出欠) | safety (安否確認)."""

    __table_args__ = (Index("ix_survey_assoc_created", "association_id", "created_at"),)
    id: int | None = Field(default=None, primary_key=True)
    association_id: int = Field(foreign_key="association.id")
    title: str = Field(max_length=200)
    description: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    kind: str = Field(default="general", max_length=12)
    deadline: datetime
    target_all: bool = Field(default=True)
    anonymous: bool = Field(default=False)
    per_household: bool = Field(default=False)
    created_by: int | None = Field(default=None, foreign_key="account.id")
    created_at: datetime = Field(default_factory=utcnow)
    closed_at: datetime | None = Field(default=None)
    # When officers last sent a reminder (reminders are rate-limited).
    reminded_at: datetime | None = Field(default=None)
    # Who answered, counted for the city dashboard (a cache of SurveyParticipation: members' answers, and
    # distinct households among them; an answer an officer recorded for a household is no member's
    # participation); recounted at every flush that writes a participation (see below).
    answered_accounts: int = Field(default=0)
    answered_households: int = Field(default=0)


class SurveyTarget(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("survey_id", "han_id", name="uq_survey_target"),)
    id: int | None = Field(default=None, primary_key=True)
    survey_id: int = Field(foreign_key="survey.id", index=True)
    han_id: int = Field(foreign_key="han.id")


class SurveyQuestion(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    survey_id: int = Field(foreign_key="survey.id", index=True)
    position: int = Field(default=0)
    kind: str = Field(max_length=10)  # single | multiple | text | number
    text: str = Field(max_length=500)
    required: bool = Field(default=True)
    # Allowed range of a number question (e.g. a head count of 0..20).
    min_value: int = Field(default=0)
    max_value: int = Field(default=999)


class SurveyOption(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    question_id: int = Field(foreign_key="surveyquestion.id", index=True)
    position: int = Field(default=0)
    label: str = Field(max_length=200)


class SurveyParticipation(SQLModel, table=True):
    """Who has answered (for one-answer rules and non-responder lists); never which answer.

    For anonymous surveys no column links this row to a SurveyResponse, and neither row carries a
    time finer than the day, so the two cannot be joined by timestamp either.
    """

    __table_args__ = (
        UniqueConstraint("survey_id", "account_id", name="uq_participation_account"),
        Index("ix_participation_survey_household", "survey_id", "household_id"),
        # The answering unit ("a<account id>" or "h<household id>"): one answer per unit, even under races.
        UniqueConstraint("survey_id", "unit_key", name="uq_participation_unit"),
    )
    id: int | None = Field(default=None, primary_key=True)
    survey_id: int = Field(foreign_key="survey.id")
    # NULL when an officer recorded the household's answer (after a visit or a call): no member answered.
    account_id: int | None = Field(default=None, foreign_key="account.id")
    household_id: int | None = Field(default=None, foreign_key="household.id")
    answered_on: date
    unit_key: str | None = Field(default=None, max_length=24)


class SurveyResponse(SQLModel, table=True):
    """One set of answers. respondent/household are NULL for anonymous surveys; an answer an officer recorded for
    a household (per-household surveys) has no respondent and names the officer in recorded_by."""

    __table_args__ = (Index("ix_response_survey_account", "survey_id", "respondent_account_id"),)
    id: int | None = Field(default=None, primary_key=True)
    survey_id: int = Field(foreign_key="survey.id")
    respondent_account_id: int | None = Field(default=None, foreign_key="account.id")
    household_id: int | None = Field(default=None, foreign_key="household.id")
    han_id: int | None = Field(default=None, foreign_key="han.id")
    submitted_on: date
    updated_at: datetime | None = Field(default=None)
    recorded_by: int | None = Field(default=None, foreign_key="account.id")


class SurveyAnswer(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    response_id: int = Field(foreign_key="surveyresponse.id", index=True)
    question_id: int = Field(foreign_key="surveyquestion.id", index=True)
    option_id: int | None = Field(default=None, foreign_key="surveyoption.id")
    text_value: str = Field(default="", max_length=2000)
    number_value: int | None = Field(default=None)


def recount_survey_answers(conn: Connection, survey_ids: Iterable[int]) -> None:
    """Set the answer counters of these surveys from their participations, under the surveys' row locks.

    FOR NO KEY UPDATE (key_share): the participation rows inserted before this hold FOR KEY SHARE on the
    survey through their foreign key; a plain FOR UPDATE would wait on every other answering transaction's
    key share while they wait on ours, a deadlock.
    """
    ids = sorted({int(i) for i in survey_ids if i is not None})
    if not ids:
        return
    lock, recount = _survey_recount_statements()
    for start in range(0, len(ids), 500):
        chunk = {"r_surveys": ids[start:start + 500]}
        if conn.dialect.name == "postgresql":
            conn.execute(lock, chunk)
        conn.execute(recount, chunk)


@functools.cache
def _survey_recount_statements():
    """recount_survey_answers' lock and update, built once (every new answer runs them)."""
    sv, p = Survey.__table__, SurveyParticipation.__table__
    ids = bindparam("r_surveys", expanding=True)
    lock = select(sv.c.id).where(sv.c.id.in_(ids)).order_by(sv.c.id).with_for_update(key_share=True)
    answered = and_(p.c.survey_id == sv.c.id, p.c.account_id.is_not(None))
    recount = update(sv).where(sv.c.id.in_(ids)).values(
        answered_accounts=select(func.count()).where(answered).scalar_subquery(),
        answered_households=select(func.count(distinct(p.c.household_id))).where(answered).scalar_subquery())
    return lock, recount


# The counted columns of each cached table, and the counters kept from it.
_COUNTED = {"Delivery": ("circular_id", "household_id", "state"),
            "SurveyParticipation": ("survey_id", "household_id", "account_id")}
_COUNTERS = {"Circular": ("household_count", "read_households", "confirmed_households"),
             "Survey": ("answered_accounts", "answered_households")}


def _touched(session: OrmSession, model: type, parent: str) -> set[int]:
    """Parents (circulars, surveys) of the rows of `model` this flush inserts, deletes, or changes a counted
    column of."""
    ids: set[int] = set()
    for obj in (*session.new, *session.deleted):
        if isinstance(obj, model):
            ids.add(getattr(obj, parent))
    for obj in session.dirty:
        if isinstance(obj, model):
            attrs = inspect(obj).attrs
            if any(attrs[name].history.has_changes() for name in _COUNTED[model.__name__]):
                ids.add(getattr(obj, parent))
                ids.update(attrs[parent].history.deleted)  # moved away from another parent
    ids.discard(None)
    return ids


@event.listens_for(Circular, "before_insert")
@event.listens_for(Circular, "before_update")
def _set_sent_month(_mapper, _connection, target: Circular) -> None:
    """A circular written as an ORM object carries the month of its sending."""
    month = city_month(target.sent_at)
    if target.sent_month != month:
        target.sent_month = month


@event.listens_for(OrmSession, "after_flush")
def _recount_after_orm_writes(session: OrmSession, _context) -> None:
    """Deliveries and participations written as ORM objects are recounted into their parents' counters.

    The circular services write deliveries with bulk statements (never through here) and keep the counters
    themselves; survey answers, seeders, scripts and tests add ORM objects, which land here.
    """
    circular_ids = _touched(session, Delivery, "circular_id")
    survey_ids = _touched(session, SurveyParticipation, "survey_id")
    if not circular_ids and not survey_ids:
        return
    conn = session.connection()
    recount_circular_households(conn, circular_ids)
    recount_survey_answers(conn, survey_ids)
    session.info.setdefault("chiiki_recounted", []).extend(
        [(Circular, i) for i in circular_ids] + [(Survey, i) for i in survey_ids])


@event.listens_for(OrmSession, "after_flush_postexec")
def _expire_recounted(session: OrmSession, _context) -> None:
    """Objects of the recounted rows in this session show the new counters, not the old ones."""
    for model, pk in session.info.pop("chiiki_recounted", ()):
        obj = session.identity_map.get(session.identity_key(model, pk))
        if obj is not None:
            session.expire(obj, list(_COUNTERS[model.__name__]))


# --------------------------------------------------------------------------- board


class BoardThread(SQLModel, table=True):
    __table_args__ = (Index("ix_thread_assoc_last", "association_id", "last_post_at"),)
    id: int | None = Field(default=None, primary_key=True)
    association_id: int = Field(foreign_key="association.id")
    author_account_id: int | None = Field(default=None, foreign_key="account.id")
    title: str = Field(max_length=200)
    created_at: datetime = Field(default_factory=utcnow)
    last_post_at: datetime = Field(default_factory=utcnow)


class BoardPost(SQLModel, table=True):
    __table_args__ = (Index("ix_post_thread_created", "thread_id", "created_at"),)
    id: int | None = Field(default=None, primary_key=True)
    thread_id: int = Field(foreign_key="boardthread.id")
    author_account_id: int | None = Field(default=None, foreign_key="account.id", index=True)
    body: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    created_at: datetime = Field(default_factory=utcnow)
    edited_at: datetime | None = Field(default=None)
    deleted_at: datetime | None = Field(default=None)
    hidden_at: datetime | None = Field(default=None)
    hidden_by: int | None = Field(default=None, foreign_key="account.id")
    hidden_reason: str = Field(default="", max_length=500)


class BoardReport(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("post_id", "reporter_account_id", name="uq_report"),)
    id: int | None = Field(default=None, primary_key=True)
    post_id: int = Field(foreign_key="boardpost.id", index=True)
    reporter_account_id: int = Field(foreign_key="account.id")
    reason: str = Field(default="", max_length=500)
    created_at: datetime = Field(default_factory=utcnow)
    resolved_at: datetime | None = Field(default=None)
    resolved_by: int | None = Field(default=None, foreign_key="account.id")
    resolution: str = Field(default="", max_length=20)


# --------------------------------------------------------------------------- city


class Notice(SQLModel, table=True):
    """お知らせ from the city, targeted by area and age band / life stage."""

    __table_args__ = (Index("ix_notice_window", "publish_from", "publish_until"),)
    id: int | None = Field(default=None, primary_key=True)
    title: str = Field(max_length=200)
    body: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    publish_from: datetime
    publish_until: datetime | None = Field(default=None)
    urgent: bool = Field(default=False)
    target_everyone: bool = Field(default=False)
    # Space-separated band names from chiiki.services.notices.BANDS; empty = any age.
    bands: str = Field(default="", max_length=200)
    created_by: int | None = Field(default=None, foreign_key="account.id")
    created_at: datetime = Field(default_factory=utcnow)


class NoticeArea(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("notice_id", "area_id", name="uq_notice_area"),)
    id: int | None = Field(default=None, primary_key=True)
    notice_id: int = Field(foreign_key="notice.id", index=True)
    area_id: int = Field(foreign_key="area.id", index=True)


class NoticeRead(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("notice_id", "account_id", name="uq_notice_read"),)
    id: int | None = Field(default=None, primary_key=True)
    notice_id: int = Field(foreign_key="notice.id")
    account_id: int = Field(foreign_key="account.id", index=True)
    read_at: datetime = Field(default_factory=utcnow)


class Inquiry(SQLModel, table=True):
    """市民のこえ: personal fields are blanked right after the department's server accepted it."""

    id: int | None = Field(default=None, primary_key=True)
    reference: str = Field(max_length=20, unique=True, index=True)
    department_id: int = Field(foreign_key="department.id", index=True)
    account_id: int | None = Field(default=None, foreign_key="account.id")
    sender_name: str = Field(default="", max_length=100)
    sender_contact: str = Field(default="", max_length=254)
    subject: str = Field(default="", max_length=200)
    body: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    state: str = Field(default="pending", max_length=12, index=True)  # pending | delivered | failed
    attempts: int = Field(default=0)
    next_attempt_at: datetime | None = Field(default=None)
    last_error: str = Field(default="", max_length=500)
    created_at: datetime = Field(default_factory=utcnow)
    delivered_at: datetime | None = Field(default=None)
    personal_deleted_at: datetime | None = Field(default=None)


class OutboxMail(SQLModel, table=True):
    """Mail waiting to be sent, so that no page ever waits on a mail server."""

    id: int | None = Field(default=None, primary_key=True)
    to_address: str = Field(max_length=254)
    subject: str = Field(max_length=300)
    body: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    kind: str = Field(default="", max_length=20)
    created_at: datetime = Field(default_factory=utcnow)
    sent_at: datetime | None = Field(default=None, index=True)
    attempts: int = Field(default=0)
    last_error: str = Field(default="", max_length=500)


class CitySetting(SQLModel, table=True):
    key: str = Field(primary_key=True, max_length=50)
    value: str = Field(default="", max_length=500)


# --------------------------------------------------------------------------- security


class AuditFields(SQLModel):
    """What every audit row says of its access: when, who by id and by the title they held then (e.g. 会長,
    shown to the person whose data it was), what, in which association, how many records."""

    at: datetime = Field(default_factory=utcnow)
    actor_account_id: int | None = Field(default=None)
    actor_title: str = Field(default="", max_length=50)
    action: str = Field(max_length=40)
    association_id: int | None = Field(default=None)
    record_count: int = Field(default=0)
    detail: str = Field(default="", max_length=300)


class AuditAccess(AuditFields, table=True):
    """Append-only: one row per access to personal data (one call of services/audit.record): who by title,
    what, in which association, how many records. City staff's audit trail lists these, newest first, never
    whose data it was. The people whose data was read each get an AuditEvent of the same access.
    """

    __table_args__ = (Index("ix_auditaccess_at_id", "at", "id"),)
    id: int | None = Field(default=None, primary_key=True)


class AuditEvent(AuditFields, table=True):
    """Append-only: one row per person (or paper-only household) whose data an access read, so that each
    person can see who read it (services/audit.accesses_to); the access itself is an AuditAccess.

    Read only by subject: its one index besides the key is (period, subject_account_id, at), the month first.
    An export writes 5,000 of these rows, and every index more is one more B-tree insert for each (migration
    0012 dropped two). Indexed by (subject, at) alone, each of those inserts went to the end of its person's
    own history, a page of its own once a person had been listed a hundred times or so: an export of 1,778
    people wrote 1,778 index pages (20 ms, and 24 ms more to commit them). Within the month, the rows of one
    export sit side by side in as many pages as a month of accesses fills (3.6 ms, migration 0015); a person's
    access log reads each month's short run of its rows (services/audit.accesses_to).

    No column is a foreign key. The actor and the association are the same two rows for every event an export
    writes (one per person listed), checked when the actor authenticated and the association was read; each
    subject is a person or household that the same transaction has just read (services/audit.record is
    given the rows that were shown). Accounts and households are never deleted, only marked, so no event
    outlives its subject. Checking those rows again per event cost a quarter (actor, association) and then
    half (subjects) of the audit INSERT of a 3,000-household export on PostgreSQL (migrations 0007, 0010).
    """

    __table_args__ = (Index("ix_audit_period_subject_at", "period", "subject_account_id", "at"),)
    id: int | None = Field(default=None, primary_key=True)
    subject_account_id: int | None = Field(default=None)
    subject_household_id: int | None = Field(default=None)
    # The month of `at` in UTC, as year * 12 + month - 1 (services/audit.month_of); no default: every writer
    # sets it from the row's own time.
    period: int


class AuthSession(SQLModel, table=True):
    """A login: only the SHA-256 of the random token is stored."""

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True, index=True)
    account_id: int = Field(foreign_key="account.id", index=True)
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    revoked_at: datetime | None = Field(default=None)


class PasswordReset(SQLModel, table=True):
    """A one-time link for setting a new password (mailed to the account's address, or printed by an
    administrator for someone without one): only the SHA-256 of its random token is stored."""

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True, index=True)
    account_id: int = Field(foreign_key="account.id", index=True)
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    used_at: datetime | None = Field(default=None)


class SessionHandoff(SQLModel, table=True):
    """A one-time ticket that hands a session cookie (HttpOnly) to the browser by one page load.

    The websocket cannot set an HttpOnly cookie, so a handler that opens, replaces or ends a session
    stores a ticket here and sends the browser to the handoff endpoint, which sets (or clears) the
    cookie and redirects on. Only the SHA-256 of the ticket is stored, and the session token only
    sealed with the ticket itself: this row alone opens nothing. Redeemed or expired rows are deleted.
    """

    ticket_hash: str = Field(primary_key=True, max_length=64)
    # The session token XOR a keystream derived from the ticket (hex); empty when the cookie is cleared.
    sealed_token: str = Field(default="", max_length=200)
    # The page's origin (from the websocket's Origin header) and the path to land on.
    origin: str = Field(default="", max_length=200)
    next_path: str = Field(default="/", max_length=300)
    expires_at: datetime = Field(index=True)


class LoginAttempt(SQLModel, table=True):
    """Counted attempts, keyed by a hash (no personal data): logins and password prompts, failed and successful
    (a hash of the login id or account), and inquiries sent (chiiki.services.inquiries.SEND_KEY_PREFIX)."""

    id: int | None = Field(default=None, primary_key=True)
    login_key: str = Field(max_length=64, index=True)
    at: datetime = Field(default_factory=utcnow)
    success: bool = Field(default=False)
