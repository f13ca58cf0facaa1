"""Circulars (回覧): compose and send, the resident's inbox, and the coverage ledger of who was reached how."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Iterable, Sequence

from sqlalchemy import (BigInteger, Integer, String, and_, bindparam, case, cast, distinct, exists, func, insert,
                        literal, null, or_, update)
from sqlalchemy.orm import aliased
from sqlmodel import Session, select

from chiiki import settings as settings_module
from chiiki.i18n import TZ, fmt_date, fmt_dt, tr
from chiiki.models import (
    Account,
    Association,
    Attachment,
    Circular,
    CircularAmendment,
    CircularTarget,
    Delivery,
    Han,
    Household,
    Membership,
    as_utc,
    utcnow,
)
from chiiki.services import attachments as attachment_files
from chiiki.services import audit, mail, markup, tabular, validate
from chiiki.services.db import fetch_in, fetch, fetch_one, lock_row, reading, session
from chiiki.services.errors import Denied, NotFound, ServiceError, ValidationErrors
from chiiki.services.policy import (
    ALL_HAN,
    EXPORT,
    MEMBER,
    SEND_CIRCULARS,
    VIEW_MEMBERS,
    Actor,
    Assoc,
    can,
    han_scope,
)

MAX_TITLE = 200
MAX_BODY = 10_000
MAX_AMENDMENT = 5_000
PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
MAX_QUERY = 100
MATRIX_CIRCULARS = 12
# A household's state on one circular; every target household is in exactly one.
CATEGORIES = ("digital_confirmed", "read", "unread", "on_behalf", "paper_confirmed", "paper_delivered",
              "paper_pending")
REACHED = frozenset({"digital_confirmed", "on_behalf", "paper_confirmed"})
INBOX_FILTERS = ("all", "unread", "unconfirmed", "confirmed")


# --------------------------------------------------------------------------- small helpers


def _pages(total: int, size: int) -> int:
    return max(1, math.ceil(total / size)) if total else 1


def _page_args(page: object, page_size: object) -> tuple[int, int]:
    p = validate.integer(page if page not in (None, "") else 1, "page", lo=1, hi=1_000_000)
    size = validate.integer(page_size if page_size not in (None, "") else PAGE_SIZE, "page_size", lo=1,
                            hi=MAX_PAGE_SIZE)
    return p, size


def _like(query: str) -> str:
    return "%" + query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _today() -> date:
    return datetime.now(TZ).date()


def _covers(scope, han_id: int | None) -> bool:
    return scope == ALL_HAN or (han_id is not None and han_id in scope)


def _scope_filter(scope, column):
    """SQL condition limiting rows to a han scope (None when the scope is the whole association)."""
    return None if scope == ALL_HAN else column.in_(list(scope))


_TARGETS = select(CircularTarget.han_id).where(CircularTarget.circular_id == bindparam("t_circular", type_=Integer))
_HAN_NAMES = select(Han.id, Han.route_order, Han.name).where(Han.association_id == bindparam("h_association",
                                                                                           type_=Integer))


def _targets(s: Session, circular_id: int) -> list[int]:
    return fetch_in(s, _TARGETS, {"t_circular": circular_id}).scalars()


def _overlaps(scope, circular: Circular, targets: list[int]) -> bool:
    if not scope:
        return False
    return scope == ALL_HAN or circular.target_all or bool(set(targets) & set(scope))


def _whole(scope, circular: Circular, targets: list[int]) -> bool:
    """The scope covers every household the circular went to (needed to amend it)."""
    return scope == ALL_HAN or (not circular.target_all and bool(targets) and set(targets) <= set(scope))


def _han_names(s: Session, association_id: int) -> dict[int, tuple[int, str]]:
    return {hid: (order, name) for hid, order, name in fetch_in(s, _HAN_NAMES, {"h_association": association_id})}


def _target_label(lang: str, circular: Circular, targets: list[int], names: dict[int, tuple[int, str]]) -> str:
    if circular.target_all:
        return tr(lang, "circular.target_all")
    return "・".join(names[h][1] for h in sorted(targets, key=lambda h: names.get(h, (0, ""))) if h in names)


def _sent_circular(s: Session, circular_id: object) -> Circular:
    cid = validate.ident(circular_id, "circular_id")
    c = s.get(Circular, cid)
    if c is None or c.status != "sent":
        raise NotFound()
    return c


# --------------------------------------------------------------------------- the household counters


# The statements of a change of delivery states (opening, confirming, paper, on behalf), prepared once and run
# as Core on the session's connection: the ORM's update bookkeeping and the building and keying of each
# expression cost more than running them, on every confirmation.
_LOCK_SQLITE = update(Circular).where(Circular.id == bindparam("c_id", type_=Integer)) \
    .values(read_households=Circular.read_households)
_LOCK_POSTGRESQL = select(Circular.id).where(Circular.id == bindparam("c_id", type_=Integer)) \
    .with_for_update(key_share=True)
_HOUSEHOLD_FLAGS = select(
    func.max(case((Delivery.state != "unread", 1), else_=0)),
    func.max(case((Delivery.state == "confirmed", 1), else_=0)),
).where(Delivery.circular_id == bindparam("c_id", type_=Integer),
        Delivery.household_id == bindparam("h_id", type_=Integer))
_COUNT_CHANGE = update(Circular).where(Circular.id == bindparam("c_id", type_=Integer)).values(
    read_households=Circular.read_households + bindparam("d_read", type_=Integer),
    confirmed_households=Circular.confirmed_households + bindparam("d_confirmed", type_=Integer))


def _lock_circular(s: Session, circular_id: int) -> None:
    """Serialise every change of one circular's delivery states, so its household counters stay exact.

    PostgreSQL: the circular's row lock. SQLite: this first write of the transaction takes the database's
    write lock (reads before it ran outside a transaction), so every read after it sees the newest rows.
    Call it before reading the states that decide whether a household changed.
    """
    conn = s.connection()
    # On PostgreSQL, NO KEY UPDATE: does not conflict with the key-share locks that inserting rows referencing
    # the circular take, so it serialises counter changes without deadlocking against them.
    conn.execute(_LOCK_POSTGRESQL if conn.dialect.name == "postgresql" else _LOCK_SQLITE, {"c_id": circular_id})


def _household_flags(s: Session, circular_id: int, household_id: int) -> tuple[int, int]:
    """(any delivery read or confirmed, any confirmed) of one household on one circular, as 0/1, including
    changes made through the session's objects and not yet written."""
    read, confirmed = fetch_in(s, _HOUSEHOLD_FLAGS, {"c_id": circular_id, "h_id": household_id}).one()
    return int(read or 0), int(confirmed or 0)


def _count_change(s: Session, circular_id: int, before: tuple[int, int], after: tuple[int, int]) -> None:
    """Move the circular's counters by how this household changed (read, confirmed: -1, 0 or +1 each).
    The counters of a Circular object loaded in this session are not refreshed: read them from a new one."""
    read, confirmed = after[0] - before[0], after[1] - before[1]
    if read or confirmed:
        s.connection().execute(_COUNT_CHANGE, {"c_id": circular_id, "d_read": read, "d_confirmed": confirmed})


# --------------------------------------------------------------------------- composing and sending


@dataclass(frozen=True)
class HanOption:
    id: int
    name: str


@dataclass(frozen=True)
class ComposeOptions:
    han: list[HanOption]
    may_target_all: bool


def compose_options(actor: Actor, association_id: int) -> ComposeOptions:
    """The han this officer may send to (all of them for an association-wide role)."""
    aid = validate.ident(association_id, "association_id")
    scope = han_scope(actor, SEND_CIRCULARS, aid)
    if not scope:
        raise Denied()
    with session() as s:
        names = _han_names(s, aid)
    han = [HanOption(h, names[h][1]) for h in sorted(names, key=lambda h: names[h]) if _covers(scope, h)]
    return ComposeOptions(han, scope == ALL_HAN)


@dataclass(frozen=True)
class Draft:
    title: str
    body: str
    due_date: date | None
    target_all: bool
    han_ids: tuple[int, ...]


@dataclass(frozen=True)
class Preview:
    title: str
    body: str
    blocks: list[markup.Block]
    due_date: date | None
    target_all: bool
    han_names: list[str]
    households: int
    digital_households: int
    paper_households: int
    attachments: list[attachment_files.AttachmentInfo]


def _clean_draft(s: Session, actor: Actor, aid: int, data: dict) -> Draft:
    if not isinstance(data, dict):
        raise ServiceError("error.invalid")
    scope = han_scope(actor, SEND_CIRCULARS, aid)
    if not scope:
        raise Denied()
    errors: dict[str, ServiceError | str] = {}

    def run(name: str, fn):
        try:
            return fn()
        except ServiceError as e:
            errors[name] = e
            return None

    title = run("title", lambda: validate.text(data.get("title"), "title", max_len=MAX_TITLE))
    body = run("body", lambda: validate.text(data.get("body"), "body", max_len=MAX_BODY, required=False,
                                             multiline=True))
    due = run("due_date", lambda: validate.iso_date(data.get("due_date"), "due_date", required=False))
    if due is not None and due < _today():
        errors["due_date"] = "circular.error_due_past"
    target_all = data.get("target_all") in (True, "on", "true", "1", "all")
    raw_han = data.get("han_ids") or []
    han_ids: tuple[int, ...] = ()
    if target_all:
        if scope != ALL_HAN:
            errors["target"] = "circular.error_target_scope"
    elif not isinstance(raw_han, (list, tuple)) or not raw_han:
        errors["target"] = "circular.error_target_required"
    else:
        try:
            han_ids = tuple(sorted({validate.ident(h, "target") for h in raw_han}))
        except ServiceError:
            errors["target"] = "circular.error_target_han"
        else:
            found = set(s.exec(select(Han.id).where(Han.id.in_(han_ids), Han.association_id == aid)).all())
            if found != set(han_ids):
                errors["target"] = "circular.error_target_han"
            elif not all(_covers(scope, h) for h in han_ids):
                errors["target"] = "circular.error_target_scope"
    if errors:
        raise ValidationErrors(errors)
    return Draft(title, body or "", due, target_all, han_ids)


def _household_filter(aid: int, draft_all: bool, han_ids: Iterable[int]):
    cond = and_(Household.association_id == aid, Household.removed_at.is_(None))
    return cond if draft_all else and_(cond, Household.han_id.in_(list(han_ids)))


def _active_member_of(household_col):
    # Filtered by household only: an association filter here makes SQLite pick the (association, status)
    # index and scan every membership once per household.
    return (
        select(Membership.account_id)
        .join(Account, Account.id == Membership.account_id)
        .where(Membership.household_id == household_col, Membership.status == "active", Account.deleted_at.is_(None))
    )


def _wants_no_paper(household):
    """Rows only for a household that goes without paper: one with an active member and no paper copy.

    NOT EXISTS of this, not "no member OR paper_copy": under an OR, PostgreSQL cannot plan the NOT EXISTS
    as an anti-join and hashes every active member of the city instead (230 ms against 45 for a send to
    3,000 households)."""
    return _active_member_of(household.id).where(household.paper_copy.is_(False))


def _counts(s: Session, aid: int, draft: Draft) -> tuple[int, int, int]:
    """(households, digital households, paper households) a draft would reach, as fan_out will send it (a
    household with a paper copy counts in both)."""
    cond = _household_filter(aid, draft.target_all, draft.han_ids)
    total, digital, paper = s.execute(select(
        func.count(), func.count(case((exists(_active_member_of(Household.id)), 1))),
        func.count(case((~exists(_wants_no_paper(Household)), 1)))).select_from(Household).where(cond)).one()
    return int(total), int(digital), int(paper)


def preview(actor: Actor, association_id: int, data: dict, attachment_ids: list | None = None,
            lang: str = "ja") -> Preview:
    """Check a draft and show it as residents will see it, with how many households it will reach."""
    aid = validate.ident(association_id, "association_id")
    with session() as s:
        draft = _clean_draft(s, actor, aid, data)
        files = attachment_files.pending(s, actor, attachment_files.parse_ids(attachment_ids))
        total, digital, paper = _counts(s, aid, draft)
        names = _han_names(s, aid)
    han_names = [tr(lang, "circular.target_all")] if draft.target_all else [names[h][1] for h in draft.han_ids]
    return Preview(draft.title, draft.body, markup.parse(draft.body), draft.due_date, draft.target_all, han_names,
                   total, digital, paper, [attachment_files.info(f) for f in files])


@dataclass(frozen=True)
class SendResult:
    circular_id: int
    households: int
    digital_households: int
    paper_households: int
    member_accounts: int
    mails: int


@dataclass(frozen=True)
class FanOut:
    members: int  # digital deliveries, one per member account
    papers: int  # paper deliveries, one per household
    digital_homes: int  # households with at least one digital delivery
    households: int  # households reached at all


def fan_out(s: Session, circular_id: int, aid: int, target_all: bool, han_ids: Iterable[int],
            now: datetime) -> FanOut:
    """One delivery per target household and member account, in two bulk INSERT … SELECT statements: digital
    ones for the member accounts, a paper one for each household without any (paper-only) or whose officers
    asked for a paper copy too (Household.paper_copy).

    Returns what was written, counted in one statement. Used by send() and by the demo seeder.
    """
    cond = _household_filter(aid, target_all, han_ids)
    cols = ["circular_id", "household_id", "account_id", "han_id", "channel", "state", "on_behalf", "notified_at"]
    digital = (
        select(literal(circular_id), Household.id, Membership.account_id, Household.han_id, literal("digital"),
               literal("unread"), literal(False), literal(now))
        .select_from(Household)
        .join(Membership, and_(Membership.household_id == Household.id, Membership.status == "active",
                               Membership.association_id == aid))
        .join(Account, and_(Account.id == Membership.account_id, Account.deleted_at.is_(None)))
        .where(cond)
    )
    paper = (
        select(literal(circular_id), Household.id, null(), Household.han_id, literal("paper"), literal("unread"),
               literal(False), null())
        .where(cond, ~exists(_wants_no_paper(Household)))
    )
    s.execute(insert(Delivery).from_select(cols, digital))
    s.execute(insert(Delivery).from_select(cols, paper))
    # Counted, not taken from rowcount: psycopg reports -1 for INSERT … SELECT through SQLAlchemy.
    digital = Delivery.channel == "digital"
    members, papers, homes, households = s.execute(
        select(func.count(case((digital, 1))), func.count(case((Delivery.channel == "paper", 1))),
               func.count(distinct(case((digital, Delivery.household_id)))), func.count(distinct(Delivery.household_id)))
        .where(Delivery.circular_id == circular_id)).one()
    return FanOut(int(members), int(papers), int(homes), int(households))


# A circular without a due date still travels this long after its sending (paper_for_new_paper_household).
TRAVELLING_DAYS = 14


def paper_for_new_paper_household(s: Session, household: Household, now: datetime | None = None) -> int:
    """The household's last member has gone (left, taken off, deleted their account) and it stays on the
    roster, or a household of members asked for paper copies too (roster.save_household): the circulars sent
    to it that still travel (due today or later, or sent within TRAVELLING_DAYS when they have no due date)
    and that nobody of it has read get a paper delivery, in the han they were sent
    through (the household may have moved since: the 班長 who carries that circular carries it), so that the
    print sheet and the status page count it among those reached on paper. Returns how many were added.

    ORM rows: a handful at most, recounted into the circulars' counters at flush (models)."""
    now = now or utcnow()
    if household.removed_at is not None:
        return 0
    # After a send that began before: it commits first, and its circular is seen here (send takes this lock).
    lock_row(s, Association, household.association_id)
    travelling = or_(Circular.due_date >= now.astimezone(TZ).date(),
                     and_(Circular.due_date.is_(None), Circular.sent_at >= now - timedelta(days=TRAVELLING_DAYS)))
    rows = s.exec(
        select(Delivery.circular_id, func.min(Delivery.han_id))
        .join(Circular, Circular.id == Delivery.circular_id)
        .where(Delivery.household_id == household.id, Circular.association_id == household.association_id,
               Circular.status == "sent", travelling)
        .group_by(Delivery.circular_id)
        .having(func.sum(case((Delivery.channel == "paper", 1), else_=0)) == 0,
                func.sum(case((Delivery.state != "unread", 1), else_=0)) == 0)).all()
    for cid, han_id in rows:
        s.add(Delivery(circular_id=cid, household_id=household.id, account_id=None, han_id=han_id,
                       channel="paper", state="unread"))
    return len(rows)


def _circular_url(circular: Circular) -> str:
    return settings_module.settings.public_url.rstrip("/") + f"/circulars/view?id={circular.id}"


# A mail about a corrected circular carries the corrections' text when all of them together are at most this
# long (as plain text); longer ones are named by their dates and read through the link.
MAIL_AMENDMENTS_MAX = 1_000


def _local_day(lang: str, moment: datetime) -> str:
    return fmt_date(as_utc(moment).astimezone(TZ).date(), lang)


def _with_amendments(lang: str, text: str, amendments: Sequence[AmendmentView]) -> str:
    """The circular's text with a line above it saying when it was corrected, and the corrections after it (or,
    when too long for a mail, where to read them). Only what every reader of the circular sees: the dates and
    the text, never who wrote them."""
    dates = tr(lang, "circular.list_sep").join(dict.fromkeys(_local_day(lang, a.created_at) for a in amendments))
    corrections = _mail_texts(amendments)
    if corrections is None:
        return tr(lang, "circular.mail_amended_see_link", dates=dates) + "\n\n" + text
    return "\n\n".join([tr(lang, "circular.mail_amended_below", dates=dates), text]
                       + [tr(lang, "circular.mail_amendment", date=_local_day(lang, a.created_at), text=body)
                          for a, body in zip(amendments, corrections)])


def _mail_texts(amendments: Sequence[AmendmentView]) -> list[str] | None:
    """The corrections as plain text for a mail; None when together they are too long for one (the mail then
    sends the reader to the link)."""
    texts = [markup.plain(a.body) for a in amendments]
    return None if sum(map(len, texts)) > MAIL_AMENDMENTS_MAX else texts


def notice_mail(lang: str, circular: Circular, association_name: str,
                amendments: Sequence[AmendmentView] = ()) -> tuple[str, str]:
    """The mail that brings a circular: its text, due date and link. Composed after a correction (a reminder),
    it says so in the subject and above the text: a member who reads only the mail must not be left with the
    uncorrected text."""
    url = _circular_url(circular)
    text = markup.plain(circular.body)
    subject_key = "circular.mail_subject"
    if amendments:
        subject_key = "circular.mail_subject_amended"
        text = _with_amendments(lang, text, amendments)
    subject = tr(lang, subject_key, association=association_name, title=circular.title)
    due = tr(lang, "circular.mail_due", due=fmt_date(circular.due_date, lang)) if circular.due_date else ""
    body = tr(lang, "circular.mail_body", association=association_name, title=circular.title, due=due,
              body=text, url=url)
    return subject, body


def amendment_mail(lang: str, circular: Circular, association_name: str, amendments: Sequence[AmendmentView],
                   since: datetime | None = None) -> tuple[str, str]:
    """The mail saying the circular was corrected: the corrections the member has not been mailed yet (those
    made after `since`, their last mail about the circular; all of them when None), each under the day and time
    it was made, then the earlier ones, and the link: a member who reads only the mail has every correction.
    Only the link when they are too long for a mail. The times and texts only, never who wrote them."""
    sent = _local_day(lang, circular.sent_at)
    subject = tr(lang, "circular.amend_mail_subject", association=association_name, title=circular.title)
    texts = _mail_texts(amendments)
    fields = dict(association=association_name, title=circular.title, sent=sent, url=_circular_url(circular))
    if texts is None:
        return subject, tr(lang, "circular.amend_mail_body_link", **fields)
    new, earlier = [], []
    for a, text in zip(amendments, texts):
        is_new = since is None or as_utc(a.created_at) > as_utc(since)
        (new if is_new else earlier).append(tr(lang, "circular.mail_amendment_new" if is_new else
                                               "circular.mail_amendment_earlier",
                                               date=fmt_dt(a.created_at, lang), text=text))
    corrections = "\n\n".join(new)
    if earlier:
        corrections += "\n\n" + tr(lang, "circular.mail_amendments_earlier") + "\n\n" + "\n\n".join(earlier)
    return subject, tr(lang, "circular.amend_mail_body", corrections=corrections, **fields)


def _takes_mail() -> tuple:
    """Conditions on Account: it gave an email and asked for circulars by mail."""
    return Account.email != "", Account.email_circulars.is_(True), Account.deleted_at.is_(None)


def _notify(s: Session, circular: Circular, association_name: str, account_filter,
            compose=notice_mail) -> int:
    """Queue a mail to each member who takes circulars by mail (_takes_mail); returns how many.

    compose(lang, circular, association_name) -> (subject, body): the notice of a new circular by default."""
    recipients = (
        select(Account.email, Account.locale)
        .join(Delivery, Delivery.account_id == Account.id)
        .where(Delivery.circular_id == circular.id, Delivery.channel == "digital", *_takes_mail(), account_filter)
    )
    texts = {lang: compose(lang, circular, association_name) for lang in ("ja", "en")}
    return mail.enqueue_select(s, recipients, texts, "circular")


def send(actor: Actor, association_id: int, data: dict, attachment_ids: list | None = None) -> SendResult:
    """Send a circular: the circular, its targets, attachments, every delivery and the mail, in ONE transaction."""
    aid = validate.ident(association_id, "association_id")
    now = utcnow()
    with session() as s:
        draft = _clean_draft(s, actor, aid, data)
        files = attachment_files.pending(s, actor, attachment_files.parse_ids(attachment_ids))
        assoc = s.get(Association, aid)
        c = Circular(association_id=aid, title=draft.title, body=draft.body, due_date=draft.due_date,
                     target_all=draft.target_all, status="sent", created_by=actor.account_id, created_at=now,
                     sent_at=now)
        s.add(c)
        s.flush()
        if draft.han_ids:
            s.execute(insert(CircularTarget), [{"circular_id": c.id, "han_id": h} for h in draft.han_ids])
        attachment_files.link(s, actor, files, attachment_files.CIRCULAR, c.id)
        # A household whose last member goes at this moment gets this circular on paper either way: its paper
        # pass (paper_for_new_paper_household) and this send take the association's lock one after the other.
        lock_row(s, Association, aid)
        sent = fan_out(s, c.id, aid, draft.target_all, draft.han_ids, now)
        if sent.households == 0:
            raise ServiceError("circular.error_no_households", "target")
        c.household_count = sent.households  # every delivery starts unread: read and confirmed stay 0
        s.add(c)
        mails = _notify(s, c, assoc.name if assoc else "", literal(True))
        return SendResult(c.id, sent.households, sent.digital_homes, sent.papers, sent.members, mails)


# --------------------------------------------------------------------------- the resident's side


# The unread badge on every page, prepared once and executed with unread_params() (no expression to build
# and no cache key to compute per page load).
UNREAD_COUNT = (select(func.count()).select_from(Delivery).join(Circular, Circular.id == Delivery.circular_id)
                .where(Delivery.account_id == bindparam("unread_account", type_=Integer), Delivery.state == "unread",
                       Circular.association_id == bindparam("unread_association", type_=Integer)))


def unread_params(actor: Actor, association_id: object) -> dict | None:
    """Parameters of UNREAD_COUNT for this member in this association (None: not a member there)."""
    if not isinstance(association_id, int) or not can(actor, MEMBER, Assoc(association_id)):
        return None
    return {"unread_account": actor.account_id, "unread_association": association_id}


def unread_count(actor: Actor, association_id: int) -> int:
    """Unread circulars of this member in this association (the badge on every page)."""
    params = unread_params(actor, association_id)
    if params is None:
        return 0
    with session() as s:
        return s.connection().execute(UNREAD_COUNT, params).scalar_one()


@dataclass(frozen=True)
class InboxItem:
    circular_id: int
    delivery_id: int
    title: str
    sent_at: datetime
    due_date: date | None
    state: str
    on_behalf: bool
    attachments: int
    amended: bool


@dataclass(frozen=True)
class InboxPage:
    items: list[InboxItem]
    total: int
    page: int
    pages: int
    unread: int
    years: list[int]


def _year_range(year: int) -> tuple[datetime, datetime]:
    start = datetime.combine(date(year, 1, 1), time(), TZ).astimezone(timezone.utc)
    end = datetime.combine(date(year + 1, 1, 1), time(), TZ).astimezone(timezone.utc)
    return start, end


_INBOX_FIRST = (select(Circular.sent_at).join(Delivery, Delivery.circular_id == Circular.id)
                .where(Delivery.account_id == bindparam("account", type_=Integer),
                       Circular.association_id == bindparam("association", type_=Integer))
                .order_by(Circular.sent_at).limit(1))


@functools.lru_cache(maxsize=None)
def _inbox_statements(state: str, searching: bool, by_year: bool):
    """The inbox's two statements for one shape of filter, prepared once and executed with parameters: the inbox
    is the page members open most, and building and keying these expressions cost more than running them.

    The head: how many circulars the filter finds, the member's first circular (the years to choose from) and
    their unread ones (all circulars, whatever the filter). The rows: one page, each with its number of files
    and whether it was amended."""
    conds = [Delivery.account_id == bindparam("account", type_=Integer),
             Circular.association_id == bindparam("association", type_=Integer)]
    if state == "unread":
        conds.append(Delivery.state == "unread")
    elif state == "unconfirmed":
        conds.append(Delivery.state != "confirmed")
    elif state == "confirmed":
        conds.append(Delivery.state == "confirmed")
    if searching:
        pattern = bindparam("pattern", type_=String)
        conds.append(or_(
            Circular.title.like(pattern, escape="\\"), Circular.body.like(pattern, escape="\\"),
            exists(select(CircularAmendment.id).where(CircularAmendment.circular_id == Circular.id,
                                                      CircularAmendment.body.like(pattern, escape="\\"))),
        ))
    if by_year:
        sent_type = Circular.__table__.c.sent_at.type
        conds.append(and_(Circular.sent_at >= bindparam("start", type_=sent_type),
                          Circular.sent_at < bindparam("end", type_=sent_type)))
    joined = select(Delivery.id).join(Circular, Circular.id == Delivery.circular_id).where(*conds)
    head = select(select(func.count()).select_from(joined.subquery()).scalar_subquery().label("total"),
                  _INBOX_FIRST.scalar_subquery().label("first"), UNREAD_COUNT.scalar_subquery().label("unread"))
    files = (select(func.count()).select_from(Attachment).where(Attachment.circular_id == Circular.id)
             .correlate(Circular).scalar_subquery())
    amended = exists().where(CircularAmendment.circular_id == Circular.id).correlate(Circular)
    rows = (select(Delivery.id, Delivery.state, Delivery.on_behalf, Circular.id, Circular.title, Circular.sent_at,
                   Circular.due_date, files.label("files"), amended.label("amended"))
            .join(Circular, Circular.id == Delivery.circular_id).where(*conds)
            .order_by(Circular.sent_at.desc(), Circular.id.desc())
            .offset(bindparam("offset", type_=Integer)).limit(bindparam("limit", type_=Integer)))
    return head, rows


def inbox(actor: Actor, association_id: int, *, query: object = "", state: object = "all", year: object = None,
          page: object = 1, page_size: object = PAGE_SIZE) -> InboxPage:
    """The member's own circulars, newest first, searchable over the whole archive (title, body, amendments)."""
    aid = validate.ident(association_id, "association_id")
    if not can(actor, MEMBER, Assoc(aid)):
        raise Denied()
    q = validate.text(query, "query", max_len=MAX_QUERY, required=False)
    st = validate.choice(state or "all", "state", INBOX_FILTERS)
    yr = validate.integer(year, "year", lo=2000, hi=2100, required=False)
    p, size = _page_args(page, page_size)
    params = {"account": actor.account_id, "association": aid, "offset": (p - 1) * size, "limit": size,
              **unread_params(actor, aid)}
    if q:
        params["pattern"] = _like(q)
    if yr:
        params["start"], params["end"] = _year_range(yr)
    head_stmt, rows_stmt = _inbox_statements(st, bool(q), bool(yr))
    with reading() as conn:  # two prepared Core statements: no ORM session
        total, first, unread = fetch_one(conn, head_stmt, params)
        rows = fetch(conn, rows_stmt, params)
    items = [InboxItem(cid, did, title, as_utc(sent), due, state_, behalf, files, bool(amended))
             for did, state_, behalf, cid, title, sent, due, files, amended in rows]
    this_year = _today().year
    years = list(range(this_year, as_utc(first).astimezone(TZ).year - 1, -1)) if first else []
    return InboxPage(items, total, p, _pages(total, size), unread, years)


@dataclass(frozen=True)
class AmendmentView:
    id: int
    body: str
    blocks: list[markup.Block]
    created_at: datetime


@dataclass(frozen=True)
class CircularView:
    id: int
    association_id: int
    title: str
    body: str
    blocks: list[markup.Block]
    sent_at: datetime
    due_date: date | None
    target_label: str
    attachments: list[attachment_files.AttachmentInfo]
    amendments: list[AmendmentView]
    delivery_id: int = 0
    state: str = ""
    on_behalf: bool = False
    confirmed_at: datetime | None = None
    household_confirmed: bool = False
    officer_view: bool = False
    marked_read: bool = False  # this opening marked the member's delivery read (their unread count changed)


# What every opening of a circular reads besides the circular: prepared once, Core rows.
_AMENDMENTS = (select(CircularAmendment.id, CircularAmendment.body, CircularAmendment.created_at)
               .where(CircularAmendment.circular_id == bindparam("c_id", type_=Integer))
               .order_by(CircularAmendment.created_at, CircularAmendment.id))
_FILES = (select(Attachment.id, Attachment.filename, Attachment.content_type, Attachment.size)
          .where(Attachment.circular_id == bindparam("c_id", type_=Integer)).order_by(Attachment.id))


def _amendments(s: Session, circular_id: int) -> list[AmendmentView]:
    rows = fetch_in(s, _AMENDMENTS, {"c_id": circular_id})
    return [AmendmentView(aid, body, markup.parse(body), as_utc(at)) for aid, body, at in rows]


def _files(s: Session, circular_id: int) -> list[attachment_files.AttachmentInfo]:
    return [attachment_files.AttachmentInfo(*row) for row in fetch_in(s, _FILES, {"c_id": circular_id})]


_MARK_READ = update(Delivery).where(Delivery.id == bindparam("d_id", type_=Integer), Delivery.state == "unread") \
    .values(state="read", read_at=bindparam("at", type_=Delivery.read_at.type))


# Opening a circular (every member, every circular): the circular and the member's own delivery, one statement.
_OPENING = (select(Circular.id, Circular.association_id, Circular.title, Circular.body, Circular.sent_at,
                   Circular.due_date, Circular.target_all, Circular.status, Delivery.id.label("d_id"),
                   Delivery.state.label("d_state"), Delivery.household_id.label("d_household"),
                   Delivery.on_behalf.label("d_on_behalf"), Delivery.confirmed_at.label("d_confirmed_at"),
                   # Most circulars have neither: then opening one reads no more than this.
                   exists().where(Attachment.circular_id == Circular.id).correlate(Circular).label("has_files"),
                   exists().where(CircularAmendment.circular_id == Circular.id).correlate(Circular)
                   .label("amended"))
            .join(Delivery, and_(Delivery.circular_id == Circular.id,
                                 Delivery.account_id == bindparam("a_id", type_=Integer)), isouter=True)
            .where(Circular.id == bindparam("c_id", type_=Integer)).order_by(Delivery.id).limit(1))
_DELIVERY_NOW = select(Delivery.state, Delivery.on_behalf, Delivery.confirmed_at).where(
    Delivery.id == bindparam("d_id", type_=Integer))


def _visible(s: Session, actor: Actor, circular_id: int):
    """(the sent circular with the actor's own delivery as d_* columns, its target han when they had to be
    read) when the actor may see it; NotFound otherwise. A member sees the circulars delivered to them, an
    officer those sent within their han scope."""
    if actor is None or not actor.authenticated:
        raise NotFound()
    c = fetch_in(s, _OPENING, {"c_id": circular_id, "a_id": actor.account_id}).first()
    if c is None or c.status != "sent" or not can(actor, MEMBER, Assoc(c.association_id)):
        raise NotFound()
    targets = None
    if c.d_id is None:
        targets = _targets(s, circular_id)
        if not _overlaps(han_scope(actor, SEND_CIRCULARS, c.association_id), c, targets):
            raise NotFound()
    return c, targets


def open_circular(actor: Actor, circular_id: object, lang: str = "ja") -> CircularView:
    """Show one circular; opening it marks the member's delivery as read."""
    cid = validate.ident(circular_id, "circular_id")
    now = utcnow()
    with session() as s:
        conn = s.connection()
        c, targets = _visible(s, actor, cid)
        mine = c.d_id is not None
        state, on_behalf, confirmed_at = c.d_state, c.d_on_behalf, c.d_confirmed_at
        marked = False
        household_done = None
        if state == "unread":
            _lock_circular(s, cid)
            before = _household_flags(s, cid, c.d_household)
            if conn.execute(_MARK_READ, {"d_id": c.d_id, "at": now}).rowcount:
                _count_change(s, cid, before, (1, before[1]))
                marked, state = True, "read"
                household_done = bool(before[1])  # reading does not change whether the household confirmed
            else:  # read or confirmed meanwhile, under the lock now taken: as it is now
                state, on_behalf, confirmed_at = fetch(conn, _DELIVERY_NOW, {"d_id": c.d_id}).one()
        if mine and household_done is None:
            household_done = state == "confirmed" or bool(_household_flags(s, cid, c.d_household)[1])
        # A circular to everyone needs neither its target han nor their names for its label.
        label = tr(lang, "circular.target_all") if c.target_all else _target_label(
            lang, c, _targets(s, cid) if targets is None else targets, _han_names(s, c.association_id))
        return CircularView(
            c.id, c.association_id, c.title, c.body, markup.parse(c.body), as_utc(c.sent_at), c.due_date, label,
            _files(s, cid) if c.has_files else [], _amendments(s, cid) if c.amended else [],
            delivery_id=c.d_id or 0, state=state or "", on_behalf=bool(mine and on_behalf),
            confirmed_at=as_utc(confirmed_at) if mine else None, household_confirmed=bool(household_done),
            officer_view=not mine, marked_read=marked,
        )


@dataclass(frozen=True)
class Confirmed:
    delivery_id: int
    confirmed_at: datetime


def confirm(actor: Actor, delivery_id: object) -> Confirmed:
    """The member's 確認しました: only their own delivery, only once."""
    did = validate.ident(delivery_id, "delivery_id")
    now = utcnow()
    with session() as s:
        conn = s.connection()
        row = fetch(conn, _CONFIRMING, {"d_id": did}).first()
        if row is None or actor is None or not actor.authenticated or row.account_id != actor.account_id:
            raise Denied()
        cid, hid = row.circular_id, row.household_id
        if not can(actor, MEMBER, Assoc(row.association_id)):
            raise Denied()
        _lock_circular(s, cid)
        before = _household_flags(s, cid, hid)
        done = conn.execute(_CONFIRM, {"d_id": did, "at": now, "by": actor.account_id}).rowcount
        if not done:
            raise ServiceError("circular.error_already_confirmed")
        _count_change(s, cid, before, (1, 1))
        return Confirmed(did, now)


# A member's confirmation: whose delivery it is and of which association, then the change (prepared once).
_CONFIRMING = select(Delivery.account_id, Delivery.circular_id, Delivery.household_id, Circular.association_id) \
    .join(Circular, Circular.id == Delivery.circular_id).where(Delivery.id == bindparam("d_id", type_=Integer))
_CONFIRM = update(Delivery).where(Delivery.id == bindparam("d_id", type_=Integer), Delivery.state != "confirmed") \
    .values(state="confirmed", confirmed_at=bindparam("at", type_=Delivery.confirmed_at.type),
            confirmed_by=bindparam("by", type_=Integer), on_behalf=False,
            read_at=func.coalesce(Delivery.read_at, bindparam("at", type_=Delivery.read_at.type)))


def attachment_for(actor: Actor, attachment_id: object) -> tuple[attachment_files.AttachmentInfo, str]:
    """An attachment the actor may download, with its storage key; NotFound for anything else."""
    try:
        aid = validate.ident(attachment_id, "attachment_id")
    except ServiceError:
        raise NotFound() from None
    with session() as s:
        a = s.get(Attachment, aid)
        if a is None or a.circular_id is None:
            raise NotFound()
        _visible(s, actor, a.circular_id)
        return attachment_files.info(a), a.storage_key


# --------------------------------------------------------------------------- the officer's side


def _officer_circular(s: Session, actor: Actor, circular_id: object, permission: str = SEND_CIRCULARS):
    """(circular, targets, scope) when the actor holds the permission somewhere the circular went."""
    c = _sent_circular(s, circular_id)
    scope = han_scope(actor, permission, c.association_id)
    targets = _targets(s, c.id)
    if not _overlaps(scope, c, targets):
        raise NotFound()
    return c, targets, scope


def _reader_circular(s: Session, actor: Actor, circular_id: object):
    """(circular, targets, scope, acts): as _officer_circular for an officer who sends circulars where it went
    (acts: True); an officer who only exports there (a 会計) reads its status and households, to export its
    read list, and acts on nothing (acts: False)."""
    try:
        return (*_officer_circular(s, actor, circular_id), True)
    except NotFound:
        return (*_officer_circular(s, actor, circular_id, EXPORT), False)


@dataclass(frozen=True)
class SentItem:
    id: int
    title: str
    sent_at: datetime
    due_date: date | None
    target_label: str
    households: int
    reached: int
    amendments: int


@dataclass(frozen=True)
class SentPage:
    items: list[SentItem]
    total: int
    page: int
    pages: int


def _visible_to_scope(scope):
    if scope == ALL_HAN:
        return None
    return or_(Circular.target_all.is_(True),
               exists(select(CircularTarget.id).where(CircularTarget.circular_id == Circular.id,
                                                      CircularTarget.han_id.in_(list(scope)))))


def _reached_household():
    """Households of a circular with at least one confirmed delivery (self, on behalf or paper)."""
    return func.count(func.distinct(case((Delivery.state == "confirmed", Delivery.household_id))))


def sent_list(actor: Actor, association_id: int, *, query: object = "", page: object = 1,
              page_size: object = PAGE_SIZE, lang: str = "ja") -> SentPage:
    """Circulars sent in the association (within the officer's han), newest first, with reach counts."""
    aid = validate.ident(association_id, "association_id")
    scope = han_scope(actor, SEND_CIRCULARS, aid) or han_scope(actor, EXPORT, aid)
    if not scope:
        raise Denied()
    q = validate.text(query, "query", max_len=MAX_QUERY, required=False)
    p, size = _page_args(page, page_size)
    conds = [Circular.association_id == aid, Circular.status == "sent"]
    vis = _visible_to_scope(scope)
    if vis is not None:
        conds.append(vis)
    if q:
        conds.append(Circular.title.like(_like(q), escape="\\"))
    with session() as s:
        total = s.exec(select(func.count()).select_from(Circular).where(*conds)).one()
        rows = s.exec(select(Circular).where(*conds).order_by(Circular.sent_at.desc(), Circular.id.desc())
                      .offset((p - 1) * size).limit(size)).all()
        ids = [c.id for c in rows]
        han_cond = _scope_filter(scope, Delivery.han_id)
        if han_cond is None:
            # The whole association: the circulars' own counters (reached = any delivery confirmed).
            counts = {c.id: (c.household_count, c.confirmed_households) for c in rows}
        else:
            agg = (select(Delivery.circular_id, func.count(func.distinct(Delivery.household_id)),
                          _reached_household()).where(Delivery.circular_id.in_(ids), han_cond))
            counts = {cid: (n, r) for cid, n, r in s.exec(agg.group_by(Delivery.circular_id)).all()} if ids else {}
        targets: dict[int, list[int]] = {}
        for cid, hid in s.exec(select(CircularTarget.circular_id, CircularTarget.han_id)
                               .where(CircularTarget.circular_id.in_(ids))).all() if ids else []:
            targets.setdefault(cid, []).append(hid)
        amends = dict(s.exec(select(CircularAmendment.circular_id, func.count()).where(
            CircularAmendment.circular_id.in_(ids)).group_by(CircularAmendment.circular_id)).all()) if ids else {}
        names = _han_names(s, aid)
    items = [SentItem(c.id, c.title, as_utc(c.sent_at), c.due_date,
                      _target_label(lang, c, targets.get(c.id, []), names), counts.get(c.id, (0, 0))[0],
                      counts.get(c.id, (0, 0))[1], amends.get(c.id, 0)) for c in rows]
    return SentPage(items, total, p, _pages(total, size))


@dataclass
class HouseholdState:
    household_id: int
    han_id: int | None
    category: str
    confirmed_at: datetime | None = None
    route_position: int = 0


def _category(paper: int, self_conf: int, behalf: int, read: int, delivered: int, paper_conf: int) -> str:
    """A household's category from its deliveries' flags, in the order of _RANKED."""
    if paper_conf:
        return "paper_confirmed"
    if self_conf:
        return "digital_confirmed"
    if behalf:
        return "on_behalf"
    if paper:
        return "paper_delivered" if delivered else "paper_pending"
    return "read" if read else "unread"


def household_states(s: Session, circular_ids: list[int], scope,
                     positions: bool = False) -> dict[tuple[int, int], HouseholdState]:
    """(circular id, household id) -> its category, from one GROUP BY over the deliveries.

    With positions, each household's route position too (a join the counts alone do not need)."""
    yes = lambda cond: func.max(case((cond, 1), else_=0))  # noqa: E731
    q = select(
        Delivery.circular_id, Delivery.household_id, func.max(Delivery.han_id),
        yes(Delivery.channel == "paper"),
        yes(and_(Delivery.state == "confirmed", Delivery.on_behalf.is_(False), Delivery.channel == "digital")),
        yes(and_(Delivery.state == "confirmed", Delivery.on_behalf.is_(True))),
        yes(Delivery.state != "unread"),
        yes(Delivery.paper_delivered_at.is_not(None)),
        yes(and_(Delivery.state == "confirmed", Delivery.channel == "paper")),
        func.min(Delivery.confirmed_at), func.max(Household.route_position) if positions else literal(0),
    ).where(
        Delivery.circular_id == circular_ids[0] if len(circular_ids) == 1 else Delivery.circular_id.in_(circular_ids))
    if positions:
        q = q.join(Household, Household.id == Delivery.household_id)
    cond = _scope_filter(scope, Delivery.han_id)
    if cond is not None:
        q = q.where(cond)
    out = {}
    for cid, hid, han, paper, self_c, behalf, read, delivered, paper_c, conf_at, pos in s.exec(
            q.group_by(Delivery.circular_id, Delivery.household_id)).all():
        out[(cid, hid)] = HouseholdState(hid, han, _category(paper, self_c, behalf, read, delivered, paper_c),
                                         as_utc(conf_at), pos or 0)
    return out


# A household's category is the one of its highest-ranked delivery (as _category decides from flags): confirmed
# first, whichever way (a paper 確認印, the member, an officer on their behalf), then the paper circular's round
# (delivered, pending) where the household gets one, then read, unread. A household on one channel gets the same
# answer in any order; one with members that also gets paper (Household.paper_copy) is reached as soon as anyone
# confirms, and until then shows where its paper copy is.
_RANKED = ("paper_confirmed", "digital_confirmed", "on_behalf", "paper_delivered", "paper_pending", "read")


def _rank():
    """One delivery's rank: 0 = unread … len(_RANKED) = paper_confirmed. A household's category is the
    maximum over its deliveries (one CASE per row instead of six flags aggregated separately). Nested by
    channel, so that a digital delivery (most of them) is ranked after one test of its channel instead of three."""
    confirmed = Delivery.state == "confirmed"
    rank = {name: len(_RANKED) - i for i, name in enumerate(_RANKED)}
    return case(
        (Delivery.channel == "paper", case((confirmed, rank["paper_confirmed"]),
                                           (Delivery.paper_delivered_at.is_not(None), rank["paper_delivered"]),
                                           else_=rank["paper_pending"])),
        (confirmed, case((Delivery.on_behalf.is_(False), rank["digital_confirmed"]), else_=rank["on_behalf"])),
        (Delivery.state != "unread", rank["read"]),
        else_=0)


def _categorised(circular_id: int, scope):
    """Subquery: one row per household of a circular (within the scope): circular_id, household_id, han_id,
    category, confirmed_at. The category is decided in SQL (as _category does), so pages get counts or one
    page of rows instead of thousands of objects."""
    n = len(_RANKED)
    top = func.max(_rank())
    category = case(*[(top == n - i, name) for i, name in enumerate(_RANKED)], else_="unread").label("category")
    q = select(Delivery.circular_id.label("circular_id"), Delivery.household_id.label("household_id"),
               func.max(Delivery.han_id).label("han_id"), category,
               func.min(Delivery.confirmed_at).label("confirmed_at")).where(Delivery.circular_id == circular_id)
    if (cond := _scope_filter(scope, Delivery.han_id)) is not None:
        q = q.where(cond)
    return q.group_by(Delivery.circular_id, Delivery.household_id).subquery()


_RANK_BITS = 3  # a rank (0 … 6) + 1 in three bits, 0 = not sent to the household
_PER_SUM = 63 // _RANK_BITS  # circulars packed into one 64-bit sum
assert len(_RANKED) + 1 < 1 << _RANK_BITS, "a rank + 1 must fit in _RANK_BITS"


def _matrix_ranks(conn, circular_ids: list[int], scope) -> dict[int, list[int | None]]:
    """Household id -> each circular's rank for that household (None where it was not sent to it), for every
    household reached by any of the circulars, within the scope.

    PostgreSQL aggregates by hash: one maximum per circular, each over its own rows (FILTER), in one pass.
    SQLite sorts to group, and evaluating an aggregate per circular on every delivery was most of the time
    (12 × 43,000 for the read matrix of a 3,000-household association: 49 ms): there each (household,
    circular)'s rank is grouped first (one aggregate per delivery), then per household the ranks + 1 are
    shifted into one integer per 21 circulars (30 ms, the unpacking included). The other way round, each took
    1.2–1.6 times as long."""
    rank = _rank()
    where = [Delivery.circular_id.in_(circular_ids)]
    if (cond := _scope_filter(scope, Delivery.han_id)) is not None:
        where.append(cond)
    if conn.dialect.name == "postgresql":
        q = select(Delivery.household_id, *[func.max(rank).filter(Delivery.circular_id == cid) for cid in circular_ids])
        return {hid: list(ranks) for hid, *ranks in conn.execute(q.where(*where).group_by(Delivery.household_id))}
    # Each circular's place: which sum, and its three bits' shift within it.
    places = {cid: (i // _PER_SUM, i % _PER_SUM * _RANK_BITS) for i, cid in enumerate(circular_ids)}
    parts = (len(circular_ids) + _PER_SUM - 1) // _PER_SUM
    columns = [Delivery.household_id.label("household_id"), func.max(rank).label("rank"),
               case({cid: at for cid, (_part, at) in places.items()}, value=Delivery.circular_id).label("shift")]
    if parts > 1:
        columns.append(case({cid: part for cid, (part, _at) in places.items()}, value=Delivery.circular_id)
                       .label("part"))
    each = select(*columns).where(*where).group_by(Delivery.household_id, Delivery.circular_id).subquery()
    packed = cast(each.c.rank + 1, BigInteger).op("<<")(each.c.shift)
    sums = [func.sum(packed)] if parts == 1 else [func.sum(case((each.c.part == k, packed))) for k in range(parts)]
    mask = (1 << _RANK_BITS) - 1
    rank_of = [None, *range(mask)]  # three bits -> the rank they hold
    rows = conn.execute(select(each.c.household_id, *sums).group_by(each.c.household_id)).all()
    return {hid: [rank_of[(packs[part] or 0) >> at & mask] for part, at in places.values()] for hid, *packs in rows}


@dataclass(frozen=True)
class HanCounts:
    han_id: int
    han_name: str
    households: int
    reached: int
    counts: dict[str, int]


@dataclass(frozen=True)
class CircularStatus:
    id: int
    title: str
    sent_at: datetime
    due_date: date | None
    target_label: str
    days_since: int
    households: int
    reached: int
    counts: dict[str, int]
    by_han: list[HanCounts]
    unread_members: int
    may_manage: bool
    may_export: bool
    may_view_names: bool
    amendments: list[AmendmentView] = field(default_factory=list)
    may_act: bool = True  # sends circulars there: reminders, print, paper and on-behalf records (else reads only)


def _still_member(c: Circular):
    """A condition on Delivery: its member is still an active member of the circular's association (one who left
    since is not reminded of it, nor counted among those who could be)."""
    return exists(select(Membership.id).where(Membership.account_id == Delivery.account_id,
                                              Membership.association_id == c.association_id,
                                              Membership.status == "active"))


_OPENED_IN_HOUSEHOLD = aliased(Delivery)


def _to_remind(c: Circular, scope) -> list:
    """Conditions on Delivery: the members a reminder goes to (within the scope), as the status page counts them.

    Unread, still members, and in a household nobody of which has opened the circular yet: a 回覧板 goes to the
    household, and once anyone of it read or confirmed it (a paper 確認印 and an officer's on-behalf record
    included) it has reached them, the household's read flag as Circular.read_households counts it. Correlated
    on the household's deliveries of this circular (ix_delivery_circular_household_state)."""
    other = _OPENED_IN_HOUSEHOLD
    opened = exists(select(other.id).where(other.circular_id == Delivery.circular_id,
                                           other.household_id == Delivery.household_id, other.state != "unread"))
    conds = [Delivery.circular_id == c.id, Delivery.channel == "digital", Delivery.state == "unread",
             _still_member(c), ~opened]
    if (hc := _scope_filter(scope, Delivery.han_id)) is not None:
        conds.append(hc)
    return conds


def status(actor: Actor, circular_id: object, lang: str = "ja") -> CircularStatus:
    """Counts per category, overall and per han, within the officer's han scope (no names here)."""
    with session() as s:
        c, targets, scope, acts = _reader_circular(s, actor, circular_id)
        hs = _categorised(c.id, scope)
        per_han: dict[int | None, dict[str, int]] = {}
        for han_id, category, n in s.exec(select(hs.c.han_id, hs.c.category, func.count())
                                          .group_by(hs.c.han_id, hs.c.category)).all():
            per_han.setdefault(han_id, dict.fromkeys(CATEGORIES, 0))[category] = int(n)
        names = _han_names(s, c.association_id)
        unread_members = s.exec(select(func.count()).select_from(Delivery).where(*_to_remind(c, scope))).one()
        amendments = _amendments(s, c.id)
        label = _target_label(lang, c, targets, names)
    by_han = []
    for han_id in sorted(per_han, key=lambda h: names.get(h, (10**6, ""))):
        counts = per_han[han_id]
        by_han.append(HanCounts(han_id or 0, names.get(han_id, (0, tr(lang, "circular.no_han")))[1],
                                sum(counts.values()), sum(counts[k] for k in REACHED), counts))
    counts = {k: sum(h[k] for h in per_han.values()) for k in CATEGORIES}
    sent = as_utc(c.sent_at)
    aid = c.association_id
    return CircularStatus(
        c.id, c.title, sent, c.due_date, label, (utcnow() - sent).days, sum(counts.values()),
        sum(counts[k] for k in REACHED), counts, by_han, unread_members, acts and _whole(scope, c, targets),
        bool(han_scope(actor, EXPORT, aid)), bool(han_scope(actor, VIEW_MEMBERS, aid)), amendments, acts,
    )


@dataclass(frozen=True)
class HouseholdRow:
    household_id: int
    han_name: str
    route_position: int
    channel: str
    category: str
    name: str
    address: str
    confirmed_at: datetime | None
    removed: bool = False  # taken off the roster since the sending: no name, no route number, nothing to record


@dataclass(frozen=True)
class HouseholdPage:
    rows: list[HouseholdRow]
    total: int
    page: int
    pages: int
    too_early: bool = False


def _people(s: Session, household_ids: list[int], aid: int) -> tuple[dict[int, Household], dict[int, list]]:
    """Households and their active member accounts (id, name) for the rows shown."""
    hh = {h.id: h for h in s.exec(select(Household).where(Household.id.in_(household_ids))).all()}
    return hh, _members(s, household_ids, aid)


def _members(s: Session, household_ids: list[int], aid: int) -> dict[int, list]:
    """The active member accounts (id, name) of each of these households."""
    members: dict[int, list] = {}
    for hid, acc_id, name in s.exec(
        select(Membership.household_id, Account.id, Account.name).join(Account, Account.id == Membership.account_id)
        .where(Membership.household_id.in_(household_ids), Membership.status == "active",
               Membership.association_id == aid, Account.deleted_at.is_(None)).order_by(Account.id)
    ).all():
        members.setdefault(hid, []).append((acc_id, name))
    return members


def households(actor: Actor, circular_id: object, *, category: object = "", han_id: object = None,
               not_reached_days: object = None, page: object = 1, page_size: object = 50,
               lang: str = "ja") -> HouseholdPage:
    """Households of a circular in route order, filtered by category or 'not reached after N days'.

    Names and addresses only for officers who may view members there; each view is audited.
    """
    cat = validate.choice(category, "category", ("", *CATEGORIES)) if category else ""
    days = validate.integer(not_reached_days, "days", lo=0, hi=365, required=False)
    p, size = _page_args(page, page_size)
    with session() as s:
        c, _targets_, scope, _acts = _reader_circular(s, actor, circular_id)
        han = validate.ident(han_id, "han_id") if han_id not in (None, "", 0, "0") else None
        if han is not None and not _covers(scope, han):
            raise Denied()
        if days is not None and (utcnow() - as_utc(c.sent_at)).days < days:
            return HouseholdPage([], 0, 1, 1, too_early=True)
        hs = _categorised(c.id, scope)
        conds = []
        if han is not None:
            conds.append(hs.c.han_id == han)
        if cat:
            conds.append(hs.c.category == cat)
        if days is not None:  # households still to reach: not those taken off the roster since
            conds += [hs.c.category.not_in(sorted(REACHED)), Household.removed_at.is_(None)]
        found = s.exec(
            select(hs.c.household_id, hs.c.han_id, hs.c.category, hs.c.confirmed_at, Household.route_position,
                   func.count().over().label("total"))  # the count of all matches, in the same pass
            .join(Household, Household.id == hs.c.household_id)
            .join(Han, Han.id == hs.c.han_id, isouter=True).where(*conds)
            .order_by(func.coalesce(Han.route_order, 10**6), Household.route_position, hs.c.household_id)
            .offset((p - 1) * size).limit(size)).all()
        if found:
            total = found[0][-1]
        else:
            total = s.exec(select(func.count()).select_from(hs).where(*conds)).one() if p > 1 else 0
        shown = [HouseholdState(hid, han_id, category, as_utc(confirmed_at), pos or 0)
                 for hid, han_id, category, confirmed_at, pos, _n in found]
        names = _han_names(s, c.association_id)
        hh, members = _people(s, [st.household_id for st in shown], c.association_id)
        # The households sent a paper copy (paper-only ones, and those with members that also get paper): their
        # rows keep the paper buttons whatever their category.
        on_paper = set(s.exec(select(Delivery.household_id).where(
            Delivery.circular_id == c.id, Delivery.channel == "paper",
            Delivery.household_id.in_([st.household_id for st in shown]))).all()) if shown else set()
        view_scope = han_scope(actor, VIEW_MEMBERS, c.association_id)
        rows, subjects, paper_ids = [], [], []
        for st in shown:
            h = hh.get(st.household_id)
            # Names and addresses are read as they are now: shown where the officer may see the household both
            # in the han it was sent to and in the han it is in now (it may have moved since).
            named = (_covers(view_scope, st.han_id) and h is not None and h.removed_at is None
                     and _covers(view_scope, h.han_id))
            people = members.get(st.household_id, [])
            paper = st.household_id in on_paper
            name = ""
            if named:
                # The members by name; a household without any by the representative kept on the roster.
                name = "・".join(n for _i, n in people) if people else (h.head_name if h else "")
                subjects += [i for i, _n in people]
                if not people:
                    paper_ids.append(st.household_id)
            removed = h is not None and h.removed_at is not None
            rows.append(HouseholdRow(st.household_id, names.get(st.han_id, (0, ""))[1],
                                     h.route_position if h and not removed else 0, "paper" if paper else "digital",
                                     st.category, name, (h.address if h else "") if named else "", st.confirmed_at,
                                     removed))
        if subjects or paper_ids:
            audit.record(s, actor, "circular.readlist", association_id=c.association_id, subjects=subjects,
                         household_ids=paper_ids, count=len(rows), detail=f"circular {c.id}")
    return HouseholdPage(rows, total, p, _pages(total, size))


@dataclass(frozen=True)
class Renotified:
    members: int
    mails: int


# A member is reminded of a circular at most once in this time after any notice of it but the one at sending (a
# reminder, or the mail about a correction), and mailed about a correction at most once in it after the mail
# about an earlier one (amend; mail_held_corrections' mail counts too).
RENOTIFY_INTERVAL = timedelta(hours=1)


def _claim_notice(s: Session, c: Circular, conds: list, now: datetime) -> list[int]:
    """The deliveries matching `conds` whose member may be mailed about the circular now, marked as notified now;
    their ids. Claimed by the UPDATE itself (PostgreSQL re-checks a row another request changed meanwhile): a
    second tap, or a second officer at the same moment, does not mail them twice."""
    due = or_(Delivery.notified_at.is_(None), Delivery.notified_at <= c.sent_at,
              Delivery.notified_at < now - RENOTIFY_INTERVAL)
    return list(s.execute(update(Delivery).where(*conds, due).values(notified_at=now)
                          .returning(Delivery.id).execution_options(synchronize_session=False)).scalars())


def renotify(actor: Actor, circular_id: object) -> Renotified:
    """Notify again the members (within the officer's han) of households nobody of which has opened the circular
    yet (_to_remind), each at most once an hour: a second tap (or a second officer at the same moment) does not
    mail them twice."""
    now = utcnow()
    with session() as s:
        c, _t, scope = _officer_circular(s, actor, circular_id)
        # A correction marks the same rows notified: one after the other (the circular's lock, as amend takes it),
        # so neither waits on rows the other locked in another order.
        lock_row(s, Circular, c.id)
        conds = _to_remind(c, scope)
        ids = _claim_notice(s, c, conds, now)
        if not ids:
            # Each was notified within the hour: the first of them may be reminded again an hour after their notice
            # (those told of a correction since a reminder were notified later than the others).
            first = s.exec(select(func.min(Delivery.notified_at)).where(*conds)).one()
            if first is None or as_utc(first) <= as_utc(c.sent_at):
                raise ServiceError("circular.error_nobody_unread")
            raise ServiceError("circular.error_renotified_soon", when=as_utc(first) + RENOTIFY_INTERVAL)
        assoc = s.get(Association, c.association_id)
        amendments = _amendments(s, c.id)
        mails = _notify(s, c, assoc.name if assoc else "", Delivery.id.in_(ids),
                        functools.partial(notice_mail, amendments=amendments))
        return Renotified(len(ids), mails)


def _household_rows(s: Session, actor: Actor, circular_id: object, household_id: object):
    """(circular, the household's deliveries) read under the circular's lock, for a change of their states."""
    c, _t, scope = _officer_circular(s, actor, circular_id)
    hid = validate.ident(household_id, "household_id")
    _lock_circular(s, c.id)
    rows = s.exec(select(Delivery).where(Delivery.circular_id == c.id, Delivery.household_id == hid)
                  .execution_options(populate_existing=True)).all()
    if not rows or not all(_covers(scope, d.han_id) for d in rows):
        raise NotFound()
    hh = s.get(Household, hid)
    if hh is None or hh.removed_at is not None:
        raise ServiceError("circular.error_household_removed")
    return c, rows


PAPER_ACTIONS = ("delivered", "confirmed", "clear")


def record_paper(actor: Actor, circular_id: object, household_id: object, action: object) -> str:
    """The 班長 records that the paper circular reached a household, or its 確認印, or clears that; returns the
    new category. Audited like a confirmation on someone's behalf: the household's members (a household with
    members that also gets paper) see it on their access page, a paper-only household is named by id."""
    act = validate.choice(action, "action", PAPER_ACTIONS)
    now = utcnow()
    with session() as s:
        c, rows = _household_rows(s, actor, circular_id, household_id)
        paper = [d for d in rows if d.channel == "paper"]
        if not paper:
            raise ServiceError("circular.error_not_paper")
        d = paper[0]
        members = list(s.exec(_active_member_of(d.household_id)).all())
        audit.record(s, actor, "circular.paper_record", association_id=c.association_id, subjects=members,
                     household_ids=[] if members else [d.household_id], count=1, detail=f"circular {c.id} {act}")
        before = _household_flags(s, c.id, d.household_id)
        if act == "confirmed":
            done = s.execute(update(Delivery).where(Delivery.id == d.id, Delivery.state != "confirmed").values(
                state="confirmed", confirmed_at=now, confirmed_by=actor.account_id,
                paper_delivered_at=func.coalesce(Delivery.paper_delivered_at, now))).rowcount
            if not done:
                raise ServiceError("circular.error_already_confirmed")
            _count_change(s, c.id, before, (1, 1))
            return "paper_confirmed"
        if act == "delivered":
            if d.state == "confirmed" or d.paper_delivered_at is not None:
                raise ServiceError("circular.error_already_delivered")
            s.execute(update(Delivery).where(Delivery.id == d.id).values(paper_delivered_at=now))
            return "paper_delivered"
        s.execute(update(Delivery).where(Delivery.id == d.id).values(
            state="unread", confirmed_at=None, confirmed_by=None, paper_delivered_at=None))
        _count_change(s, c.id, before, _household_flags(s, c.id, d.household_id))
        return "paper_pending"


def confirm_on_behalf(actor: Actor, circular_id: object, household_id: object) -> int:
    """After a doorstep visit: the officer confirms for a member household (audited, shown as on behalf)."""
    now = utcnow()
    with session() as s:
        c, rows = _household_rows(s, actor, circular_id, household_id)
        digital = [d for d in rows if d.channel == "digital"]
        if not digital:
            raise ServiceError("circular.error_not_digital")
        if any(d.state == "confirmed" for d in digital):
            raise ServiceError("circular.error_already_confirmed")
        ids = [d.id for d in digital]
        before = _household_flags(s, c.id, digital[0].household_id)
        s.execute(update(Delivery).where(Delivery.id.in_(ids), Delivery.state != "confirmed").values(
            state="confirmed", on_behalf=True, confirmed_at=now, confirmed_by=actor.account_id))
        _count_change(s, c.id, before, (1, 1))
        audit.record(s, actor, "circular.confirm_on_behalf", association_id=c.association_id,
                     subjects=[d.account_id for d in digital], count=len(ids), detail=f"circular {c.id}")
        return len(ids)


@dataclass(frozen=True)
class Amended:
    amendment: AmendmentView
    mails: int  # members told of it by mail now
    held: int  # members who take mail, not told again: a correction of it was mailed to them within RENOTIFY_INTERVAL
    repeated: bool = False  # the same correction sent again at once: nothing was written


# The same correction by the same officer again within this time is one tap sent twice (or a tap repeated while
# the page was slow to answer), not a second correction.
SAME_AMENDMENT_AGAIN = timedelta(seconds=60)


def amend(actor: Actor, circular_id: object, body: object) -> Amended:
    """A correction after sending: the original stays as sent, readers see the amendment below it.

    Every member it was delivered to (still a member) who takes circulars by mail gets a mail with the
    corrections, whether they opened it yet or not: the mail at sending carried the original text. A reminder
    sent shortly before holds none of these mails back (what they were reminded of has changed); a mail about
    another correction of the circular within RENOTIFY_INTERVAL does, for those it went to, so corrections made
    one after another mail once (the held ones go later: mail_held_corrections). Those mailed count as notified
    for the reminders' hourly limit. The correction and its mail are one transaction."""
    text = validate.text(body, "amendment", max_len=MAX_AMENDMENT, multiline=True)
    with session() as s:
        c, targets, scope = _officer_circular(s, actor, circular_id)
        if not _whole(scope, c, targets):
            raise Denied()
        # Two taps at once: the second waits here for the first's commit, then finds its correction.
        lock_row(s, Circular, c.id)
        # Its time is taken under the lock: corrections' times are in the order they were made (two officers
        # correcting at once), which the mails' holding back and mail_held_corrections count on.
        now = utcnow()
        last = s.exec(select(CircularAmendment).where(CircularAmendment.circular_id == c.id)
                      .order_by(CircularAmendment.id.desc()).limit(1)).first()
        if last is not None and last.body == text and last.created_by == actor.account_id \
                and as_utc(last.created_at) > now - SAME_AMENDMENT_AGAIN:
            return Amended(AmendmentView(last.id, last.body, markup.parse(last.body), as_utc(last.created_at)),
                           0, 0, repeated=True)
        a = CircularAmendment(circular_id=c.id, body=text, created_by=actor.account_id, created_at=now)
        s.add(a)
        s.flush()
        told = [Delivery.circular_id == c.id, Delivery.channel == "digital", _still_member(c),
                exists(select(Account.id).where(Account.id == Delivery.account_id, *_takes_mail()))]
        # Held back: those mailed about a correction within the hour (by an officer's correction or by
        # mail_held_corrections) and not reminded since (a reminder sets notified_at later and lists the
        # corrections: what it reminded of has changed).
        # (is_not(None) first: NOT of a NULL comparison would leave out those never mailed a correction.)
        # A mark later than now (another worker's clock ahead) holds nothing back: a mail more, not one lost.
        told_lately = and_(Delivery.correction_mailed_at.is_not(None), Delivery.correction_mailed_at < now,
                           Delivery.correction_mailed_at > now - RENOTIFY_INTERVAL,
                           Delivery.correction_mailed_at == Delivery.notified_at)
        # Only those it mails are marked notified: a reminder still goes to the others as before.
        due = s.exec(select(Delivery.id, Delivery.notified_at).where(*told, ~told_lately)).all()
        held = s.exec(select(func.count()).select_from(Delivery).where(*told)).one() - len(due)
        mails = _mail_corrections(s, c, due, now)
        view = AmendmentView(a.id, a.body, markup.parse(a.body), as_utc(a.created_at))
        return Amended(view, mails, held)


def _mail_corrections(s: Session, c: Circular, due: Sequence, now: datetime) -> int:
    """Mail the corrections of `c` to the deliveries `due` ((id, notified_at before) rows, under the circular's
    lock), marking them notified and mailed about a correction `now`; each member's mail puts first the
    corrections made since their last mail about the circular. Returns the mails queued."""
    if not due:
        return 0
    s.execute(update(Delivery).where(Delivery.id.in_([d for d, _ in due]))
              .values(notified_at=now, correction_mailed_at=now).execution_options(synchronize_session=False))
    assoc = s.get(Association, c.association_id)
    so_far = _amendments(s, c.id)
    by_since: dict[datetime | None, list[int]] = {}
    for did, before in due:  # a few groups: the moments the circular's mails went out
        # The mail at sending carried the text without any correction.
        by_since.setdefault(before if before is not None and as_utc(before) > as_utc(c.sent_at) else None,
                            []).append(did)
    mails = 0
    for since, ids in by_since.items():
        mails += _notify(s, c, assoc.name if assoc else "", Delivery.id.in_(ids),
                         lambda lang, circ, name, since=since: amendment_mail(lang, circ, name, so_far, since))
    return mails


# How far back the job looks for corrections held back (a day and more of the job not running, e.g. the site down).
HELD_CORRECTIONS_WITHIN = timedelta(days=3)


def mail_held_corrections(now: datetime | None = None) -> int:
    """A job (chiiki.jobs): the corrections held back from members mailed about an earlier correction within
    RENOTIFY_INTERVAL, mailed together once that interval has passed since that mail, unless a reminder or a
    later correction's mail has brought them. Each circular under its lock, so that two workers running the
    job, or an officer's correction or reminder at that moment, mail each member once. `now` picks who is due;
    those mailed are marked at the mail's own time. Returns the mails queued."""
    now = now or utcnow()
    latest = (select(CircularAmendment.circular_id)
              .where(CircularAmendment.created_at > now - HELD_CORRECTIONS_WITHIN)
              .group_by(CircularAmendment.circular_id).having(func.count() > 1))
    with reading() as conn:
        candidates = conn.execute(latest).scalars().all()
    mails = 0
    for cid in candidates:
        with session() as s:
            c = s.get(Circular, cid)
            if c is None or c.status != "sent":
                continue
            # Mailed about a correction an interval ago, and told nothing since.
            conds = [Delivery.circular_id == c.id, Delivery.channel == "digital", _still_member(c),
                     exists(select(Account.id).where(Account.id == Delivery.account_id, *_takes_mail())),
                     Delivery.correction_mailed_at == Delivery.notified_at,
                     Delivery.correction_mailed_at <= now - RENOTIFY_INTERVAL]
            last = select(func.max(CircularAmendment.created_at)).where(CircularAmendment.circular_id == c.id)
            if s.exec(select(Delivery.id).where(*conds, Delivery.correction_mailed_at < last.scalar_subquery())
                      .limit(1)).first() is None:
                continue  # nothing due: no lock taken
            lock_row(s, Circular, c.id)
            # Read again under the lock: a correction made since the candidates were read is in this mail, and
            # the members are marked as told of it.
            made = [as_utc(t) for t in s.exec(select(CircularAmendment.created_at).where(
                CircularAmendment.circular_id == c.id).order_by(CircularAmendment.created_at)).all()]
            # Held: a correction came within the interval after their correction mail (one made later than that
            # was mailed to them, or they did not take mail then and were never to be told of it by mail).
            due = [(d, at) for d, at in s.exec(select(Delivery.id, Delivery.notified_at).where(*conds)).all()
                   if any(as_utc(at) < m <= as_utc(at) + RENOTIFY_INTERVAL for m in made)]
            # Marked at the mail's own time (taken under the lock, so after every correction it carries): a
            # correction soon after it waits for the job's next turn an hour later.
            mails += _mail_corrections(s, c, due, max(utcnow(), made[-1]))
    return mails


# --------------------------------------------------------------------------- paper: the print view


@dataclass(frozen=True)
class PrintRow:
    position: int
    name: str
    address: str


@dataclass(frozen=True)
class PrintSheet:
    circular: CircularView
    association_name: str
    han_id: int
    han_name: str
    rows: list[PrintRow]
    han_options: list[HanOption]


def print_sheet(actor: Actor, circular_id: object, han_id: object = None, lang: str = "ja") -> PrintSheet:
    """The circular and its 回覧表: that han's paper households in route order (names with view_members)."""
    with session() as s:
        c, targets, scope = _officer_circular(s, actor, circular_id)
        names = _han_names(s, c.association_id)
        options = [HanOption(h, names[h][1]) for h in sorted(names, key=lambda h: names[h])
                   if _covers(scope, h) and (c.target_all or h in targets)]
        if not options:
            raise NotFound()
        han = validate.ident(han_id, "han_id") if han_id not in (None, "", 0, "0") else options[0].id
        if han not in {o.id for o in options}:
            raise NotFound()
        paper = s.exec(
            select(Household).join(Delivery, Delivery.household_id == Household.id)
            .where(Delivery.circular_id == c.id, Delivery.channel == "paper", Delivery.han_id == han,
                   Household.removed_at.is_(None))
            .order_by(Household.route_position, Household.id)
        ).all()
        view_scope = han_scope(actor, VIEW_MEMBERS, c.association_id)
        # Named where the officer may see the household in this han and in the han it is in now (it may have
        # moved since the circular was sent: its names and address are read as they are now).
        named = {h.id for h in paper if _covers(view_scope, han) and _covers(view_scope, h.han_id)}
        # A household with members that also gets paper (paper_copy) is listed by its members' names; a
        # paper-only one by the representative kept on the roster.
        members = _members(s, sorted(named), c.association_id) if named else {}
        rows = [PrintRow(h.route_position + 1,
                         ("・".join(n for _i, n in members[h.id]) if h.id in members else h.head_name)
                         if h.id in named else "",
                         h.address if h.id in named else "")
                for h in paper]
        if named:
            audit.record(s, actor, "circular.print", association_id=c.association_id,
                         subjects=[i for people in members.values() for i, _n in people],
                         household_ids=[hid for hid in named if hid not in members], count=len(paper),
                         detail=f"circular {c.id}")
        assoc = s.get(Association, c.association_id)
        view = CircularView(c.id, c.association_id, c.title, c.body, markup.parse(c.body), as_utc(c.sent_at),
                            c.due_date, _target_label(lang, c, targets, names), _files(s, c.id),
                            _amendments(s, c.id), officer_view=True)
    return PrintSheet(view, assoc.name if assoc else "", han, names[han][1], rows, options)


# --------------------------------------------------------------------------- exports


@dataclass(frozen=True)
class ExportFile:
    filename: str
    data: bytes
    mime: str


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _file(fmt: str, stem: str, headers: list[str], rows: list[list], sheet: str) -> ExportFile:
    if fmt == "xlsx":
        return ExportFile(f"{stem}.xlsx", tabular.to_xlsx_bytes(headers, rows, sheet), XLSX)
    return ExportFile(f"{stem}.csv", tabular.to_csv_bytes(headers, rows), "text/csv")


def _local(value: datetime | None, lang: str) -> str:
    return fmt_dt(as_utc(value), lang) if value else ""


def export_readlist(actor: Actor, circular_id: object, fmt: object = "csv", lang: str = "ja") -> ExportFile:
    """One row per delivery (member, or paper household) in route order; needs `export` (audited)."""
    kind = validate.choice(fmt, "format", ("csv", "xlsx"))
    with session() as s:
        c, _t, scope = _officer_circular(s, actor, circular_id, EXPORT)
        view_scope = han_scope(actor, VIEW_MEMBERS, c.association_id)
        # A member's row is named while they are a member (as on the status page: who has left is no longer the
        # association's to name), and no row of a household taken off the roster since: both read in the pass.
        q = (select(Delivery.account_id, Delivery.household_id, Delivery.han_id, Delivery.channel, Delivery.state,
                    Delivery.paper_delivered_at, Delivery.read_at, Delivery.confirmed_at, Delivery.on_behalf,
                    Household.route_position, Household.head_name, Household.address, Han.name, Account.name,
                    Household.han_id, Household.removed_at.is_not(None), Membership.id.is_not(None))
             .join(Household, Household.id == Delivery.household_id)
             .join(Han, Han.id == Delivery.han_id, isouter=True)
             .join(Account, Account.id == Delivery.account_id, isouter=True)
             .join(Membership, and_(Membership.account_id == Delivery.account_id, Membership.status == "active",
                                    Membership.association_id == c.association_id), isouter=True)
             .where(Delivery.circular_id == c.id))
        if (hc := _scope_filter(scope, Delivery.han_id)) is not None:
            q = q.where(hc)
        data = s.exec(q.order_by(Han.route_order, Household.route_position, Delivery.household_id,
                                 Delivery.id)).all()
        # A paper row of a household with members (paper_copy) is named by its members, as on the status page.
        people = _members(s, sorted({r[1] for r in data if r[0] is None}), c.association_id)
        headers = [tr(lang, k) for k in ("circular.col_han", "circular.col_route", "circular.col_name",
                                         "circular.col_address", "circular.col_channel", "circular.col_state",
                                         "circular.col_read_at", "circular.col_confirmed_at",
                                         "circular.col_on_behalf")]
        rows, subjects, paper_ids = [], [], []
        # The labels, looked up once per export rather than once per row (3,800 rows for a big circular).
        labels: dict[tuple, str] = {}
        channels = {k: tr(lang, f"circular.channel.{k}") for k in ("digital", "paper")}
        yes = tr(lang, "common.yes")
        for (account_id, household_id, han_id, channel, state, delivered, read_at, confirmed_at, on_behalf, pos,
             head, address, han_name, acc_name, han_now, removed, member) in data:
            # As on the status page: named where the household is the officer's to see, then and now.
            named = (_covers(view_scope, han_id) and _covers(view_scope, han_now) and not removed
                     and (account_id is None or member))
            if named and account_id:
                subjects.append(account_id)
            elif named and household_id in people:
                subjects += [i for i, _n in people[household_id]]
                head = "・".join(n for _i, n in people[household_id])
            elif named:
                paper_ids.append(household_id)
            key = (channel, state, channel != "digital" and bool(delivered))
            label = labels.get(key)
            if label is None:
                label = labels[key] = tr(lang, f"circular.state.{state}") if channel == "digital" else tr(
                    lang, "circular.cat." + ("paper_confirmed" if state == "confirmed" else
                                             "paper_delivered" if delivered else "paper_pending"))
            rows.append([han_name or "", "" if removed else pos + 1,
                         (acc_name if account_id else head) if named else "",
                         address if named else "", channels.get(channel) or tr(lang, f"circular.channel.{channel}"),
                         label, _local(read_at, lang), _local(confirmed_at, lang), yes if on_behalf else ""])
        audit.record(s, actor, "circular.export", association_id=c.association_id, subjects=subjects,
                         household_ids=paper_ids, count=len(rows), detail=f"circular {c.id} {kind}")
    return _file(kind, f"circular-{c.id}-readlist", headers, rows, tr(lang, "circular.readlist"))


def export_matrix(actor: Actor, association_id: int, fmt: object = "csv", lang: str = "ja",
                  count: int = MATRIX_CIRCULARS) -> ExportFile:
    """Households x the most recent circulars: each cell is how that household was reached (audited)."""
    aid = validate.ident(association_id, "association_id")
    kind = validate.choice(fmt, "format", ("csv", "xlsx"))
    scope = han_scope(actor, EXPORT, aid)
    if not scope:
        raise Denied()
    with session() as s:
        conds = [Circular.association_id == aid, Circular.status == "sent"]
        if (vis := _visible_to_scope(scope)) is not None:
            conds.append(vis)
        recent = s.exec(select(Circular).where(*conds).order_by(Circular.sent_at.desc(), Circular.id.desc())
                        .limit(count)).all()[::-1]
        # Household id -> the short labels of its categories, one per circular ("" where it was not sent to it).
        # The categories come as ranks aggregated in SQL: one row per household.
        short = {k: tr(lang, f"circular.short.{k}") for k in CATEGORIES}
        by_rank = {None: "", **{i: short[k] for i, k in enumerate(("unread", *reversed(_RANKED)))}}
        cells: dict[int, list[str]] = {}
        if recent:
            for hid, ranks in _matrix_ranks(s.connection(), [c.id for c in recent], scope).items():
                cells[hid] = [by_rank[r] for r in ranks]
        blank = [""] * len(recent)
        hq = select(Household.id, Household.han_id, Household.route_position, Household.head_name).where(
            Household.association_id == aid, Household.removed_at.is_(None))
        if (hc := _scope_filter(scope, Household.han_id)) is not None:
            hq = hq.where(hc)
        # Plain tuples: a Row's attribute lookup costs about a microsecond, and this loops over every household.
        homes = [tuple(h) for h in s.exec(hq).all()]
        names = _han_names(s, aid)
        homes.sort(key=lambda h: (names.get(h[1], (10**6, ""))[0], h[2], h[0]))
        view_scope = han_scope(actor, VIEW_MEMBERS, aid)
        members: dict[int, list] = {}
        for hid, acc_id, name in s.exec(
            select(Membership.household_id, Account.id, Account.name).join(Account, Account.id == Membership.account_id)
            .join(Household, Household.id == Membership.household_id)
            .where(Household.association_id == aid, Membership.status == "active", Membership.association_id == aid,
                   Account.deleted_at.is_(None)).order_by(Account.id)
        ).all():
            members.setdefault(hid, []).append((acc_id, name))
        headers = [tr(lang, "circular.col_han"), tr(lang, "circular.col_route"), tr(lang, "circular.col_name")]
        headers += [f"{fmt_date(as_utc(c.sent_at).astimezone(TZ).date(), lang)} {c.title}"[:80] for c in recent]
        rows, subjects, paper_ids = [], [], []
        for hid, han_id, position, head_name in homes:
            named = _covers(view_scope, han_id)
            people = members.get(hid, [])
            label = ""
            if named:
                label = "・".join(n for _i, n in people) if people else head_name
                subjects += [i for i, _n in people]
                if not people:
                    paper_ids.append(hid)
            rows.append([names.get(han_id, (0, ""))[1], position + 1, label, *cells.get(hid, blank)])
        audit.record(s, actor, "circular.matrix_export", association_id=aid, subjects=subjects, household_ids=paper_ids, count=len(rows), detail=kind)
    return _file(kind, "circulars-matrix", headers, rows, tr(lang, "circular.matrix"))
