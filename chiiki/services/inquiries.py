"""Inquiries (市民のこえ): forwarded by SMTP to a department, then stripped of everything personal.

Life of an inquiry:
1. `submit()` validates and stores it (state "pending") with a random reference number, then tries to
   deliver it at once (in the caller's thread — pages call it through run_service, off the event loop).
2. Delivery claims the row with a compare-and-set on `attempts` (state "sending", a lease in
   `next_attempt_at`), so two workers never send the same inquiry. Only after the department's mail server accepted the message are
   sender_name, sender_contact, subject, body and account_id blanked and personal_deleted_at set, in one
   UPDATE. What stays is a receipt: department, times, state, reference.
3. A failed delivery keeps everything (state "failed"), records the error and schedules a retry with
   back-off; `deliver_pending()` (a job every 15 s) retries, for ever: an undelivered inquiry is never
   deleted. City staff see undelivered ones (without their content) and may retry at once or move them to
   another department.

Retention (`purge_expired()`): the city sets a number of days (CitySetting "inquiry_retention_days",
default settings.inquiry_retention_days). Older than that, the purge removes other personal leftovers:
mail already sent from the outbox table (and dead mail that gave up), .eml copies in the outbox folder
(written when no SMTP server is configured, which include inquiry text), login attempts, and expired
sessions. It blanks any delivered inquiry that still holds personal fields. It never touches an
undelivered inquiry: its text exists nowhere else yet.

Sending is limited (`SEND_WINDOW`): every inquiry is mailed to a department, and the form is open to visitors,
so without a limit anyone could flood the city's mailboxes through it. Sendings are counted by the address
the connection comes from (an IPv6 address by its /64, and more loosely by its /48), visitors and residents
together (registering is open, so accounts alone would not do), and a signed-in resident's also by account.
Many people share an address behind a mobile carrier's or an office's gateway, hence its higher number;
behind a reverse proxy, REFLEX_TRUSTED_PROXY_HOPS tells the app which forwarded address is the sender's. Each
count is a LoginAttempt row under a keyed hash with the prefix SEND_KEY_PREFIX (the key lives in the data
folder, not the database), its time to the minute; the purge deletes it once its window has passed.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from chiiki import settings as settings_module
from chiiki.i18n import tr
from chiiki.models import (
    Account,
    AuthSession,
    CitySetting,
    Department,
    Inquiry,
    LoginAttempt,
    OutboxMail,
    utcnow,
)
from chiiki.services import accounts, client_keys, mail, password_reset, validate
from chiiki.services.associations import page_args, require
from chiiki.services.db import lock_name, session
from chiiki.services.errors import NotFound, ServiceError, ValidationErrors
from chiiki.services.notices import run_checks
from chiiki.services.policy import CITY_ADMIN, INQUIRY_ROUTE, INQUIRY_SEND, Actor
from chiiki.services.policy import Department as DepartmentTarget

log = logging.getLogger(__name__)
BODY_MAX = 4000
SUBJECT_MAX = 200
NAME_MAX = 100
CONTACT_MAX = 254
RETENTION_KEY = "inquiry_retention_days"
RETENTION_RANGE = (1, 3650)
PURGE_MARK_KEY = "inquiry_purge_at"
PURGE_INTERVAL = timedelta(hours=1)
# While one worker is talking to the mail server, no other worker may pick the inquiry up.
LEASE = timedelta(minutes=10)
MAX_BACKOFF = timedelta(hours=1)
UNDELIVERED = ("pending", "sending", "failed")
# Inquiries one sender may send within SEND_WINDOW (see the module docstring).
SEND_WINDOW = timedelta(hours=1)
RESIDENT_SENDS = 10  # per account
ADDRESS_SENDS = 20  # per address (an IPv6 /64), visitors and residents together
NETWORK_SENDS = 60  # per IPv6 /48 (a home line's prefix spans many /64s)
SEND_KEY_PREFIX = "q:"  # never the start of a login's key (hex digits only)
SEND_SECRET_FILE = client_keys.SECRET_FILE  # in the data folder
SEND_SECRET_BYTES = client_keys.SECRET_BYTES
# No 0/O, 1/I/L: a reference read out over the phone must not be misheard.
_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"


def new_reference() -> str:
    """12 random characters of a 31-letter alphabet (~59 bits): unguessable, shown as XXXX-XXXX-XXXX."""
    raw = "".join(secrets.choice(_ALPHABET) for _ in range(12))
    return f"{raw[:4]}-{raw[4:8]}-{raw[8:]}"


def backoff(attempts: int) -> timedelta:
    """1, 2, 4 … minutes after each failure, at most an hour; retries never stop."""
    return min(timedelta(minutes=2 ** max(attempts - 1, 0)), MAX_BACKOFF)


# --------------------------------------------------------------------------- departments


@dataclass(frozen=True)
class DepartmentItem:
    id: int
    name: str
    email: str  # an office address, not personal data; "" in the public list
    active: bool


def departments_for_form(actor: Actor) -> list[DepartmentItem]:
    """Active departments, names only: what a resident or visitor chooses from."""
    require(actor, INQUIRY_SEND)
    with session() as s:
        rows = s.exec(select(Department).where(Department.active.is_(True)).order_by(Department.id)).all()
        return [DepartmentItem(d.id, d.name, "", True) for d in rows]


def departments_admin(actor: Actor) -> list[DepartmentItem]:
    require(actor, CITY_ADMIN)
    with session() as s:
        rows = s.exec(select(Department).order_by(Department.id)).all()
        return [DepartmentItem(d.id, d.name, d.email, d.active) for d in rows]


def _clean_department(data: object) -> dict:
    if not isinstance(data, dict):
        raise ServiceError("error.invalid")
    out, errors = run_checks({
        "name": lambda: validate.text(data.get("name"), "name", max_len=100),
        "email": lambda: validate.email(data.get("email"), "email", required=True),
    })
    if errors:
        raise ValidationErrors(errors)
    out["active"] = data.get("active") in (True, "on", "true", "1")
    return out


def save_department(actor: Actor, department_id: object, data: dict) -> int:
    """Create (department_id empty) or change a department; a new address also serves undelivered inquiries."""
    require(actor, CITY_ADMIN)
    clean = _clean_department(data)
    with session() as s:
        if department_id in (None, "", 0, "0"):
            d = Department(**clean)
        else:
            d = s.get(Department, validate.ident(department_id, "department_id"))
            if d is None:
                raise NotFound()
            for k, v in clean.items():
                setattr(d, k, v)
        s.add(d)
        s.flush()
        return d.id


# --------------------------------------------------------------------------- residents and visitors


@dataclass(frozen=True)
class Receipt:
    """What stays of an inquiry: no name, no contact, no text."""

    reference: str
    department: str
    created_at: datetime
    state: str  # pending | sending | failed | delivered
    delivered_at: datetime | None


def _clean_inquiry(s: Session, data: object) -> dict:
    if not isinstance(data, dict):
        raise ServiceError("error.invalid")

    def department() -> int:
        if data.get("department_id") in (None, ""):
            raise ServiceError("error.required", "department_id")
        d = s.get(Department, validate.ident(data.get("department_id"), "department_id"))
        if d is None or not d.active:
            raise ServiceError("inquiry.error.department", "department_id")
        return d.id

    def contact() -> str:
        raw = validate.text(data.get("sender_contact"), "sender_contact", max_len=CONTACT_MAX)
        return validate.email(raw, "sender_contact") if "@" in raw else validate.phone(raw, "sender_contact")

    def body() -> str:
        raw = data.get("body")
        if isinstance(raw, str) and len(raw) > BODY_MAX * 4:  # refuse a huge payload before normalising it
            raise ServiceError("error.too_long", "body", max=BODY_MAX)
        return validate.text(raw, "body", max_len=BODY_MAX, multiline=True)

    out, errors = run_checks({
        "department_id": department,
        "sender_name": lambda: validate.text(data.get("sender_name"), "sender_name", max_len=NAME_MAX),
        "sender_contact": contact,
        "subject": lambda: validate.text(data.get("subject"), "subject", max_len=SUBJECT_MAX),
        "body": body,
    })
    if errors:
        raise ValidationErrors(errors)
    return out


def _networks(client: object) -> list[tuple[str, int]]:
    """(name, limit) of each count a sending from this address takes a place in (client_keys.networks)."""
    return client_keys.networks(client, ADDRESS_SENDS, NETWORK_SENDS)


_send_secret = client_keys.secret  # the key the counts are kept under (in the data folder)


def _send_keys(actor: Actor, client: object) -> list[tuple[str, int]]:
    """(key, limit) of each count a sending takes a place in: its address's (_networks), and a signed-in resident's
    account's (registering is open: accounts alone would let one address send without end)."""
    data_dir = str(settings_module.settings.data_dir)

    def key(who: str) -> str:
        return client_keys.keyed(data_dir, SEND_KEY_PREFIX, who)

    counts = _networks(client)
    if actor.authenticated:
        counts.append((f"account:{actor.account_id}", RESIDENT_SENDS))
    return sorted((key(who), limit) for who, limit in counts)


def _take_send_places(s: Session, actor: Actor, client: object, now: datetime) -> None:
    """Count this sending, within the caller's transaction (it stores the inquiry: both or neither). Each count is
    locked while it is read and written (lock_name, always in the same order), so sendings at the same moment take
    turns: no more than the limit pass, and the last place goes to one of them. The time is kept to the minute
    only (it does not tell which inquiry was sent). Raises ServiceError("inquiry.error.too_many", until=…), the
    time from which every full count has a place again (exact: the times are whole minutes)."""
    at = now.replace(second=0, microsecond=0)
    untils = []
    for key, limit in _send_keys(actor, client):
        lock_name(s, LoginAttempt, key)
        earlier = s.exec(select(LoginAttempt.at)
                         .where(LoginAttempt.login_key == key, LoginAttempt.at > at - SEND_WINDOW)
                         .order_by(LoginAttempt.at.desc()).limit(limit)).all()
        if len(earlier) >= limit:
            untils.append(earlier[-1] + SEND_WINDOW)
        s.add(LoginAttempt(login_key=key, at=at, success=True))
    if untils:  # the transaction is rolled back: none of these places is taken
        raise ServiceError("inquiry.error.too_many", until=max(untils))


def submit(actor: Actor, data: dict, client: object = "") -> Receipt:
    """Store an inquiry and try to forward it now; the receipt's state says whether that worked. `client`: the
    address the sender's connection comes from (their sendings are counted by it, and by account)."""
    require(actor, INQUIRY_SEND)
    with session() as s:
        clean = _clean_inquiry(s, data)  # a form with mistakes is refused before it counts
        _take_send_places(s, actor, client, utcnow())
        for _ in range(5):
            ref = new_reference()
            if s.exec(select(Inquiry.id).where(Inquiry.reference == ref)).first() is None:
                break
        row = Inquiry(reference=ref, account_id=actor.account_id, state="pending", **clean)
        s.add(row)
        s.flush()
        inquiry_id = row.id
    _deliver_one(inquiry_id, 0, utcnow())
    return lookup(actor, ref)


def lookup(actor: Actor, reference: object) -> Receipt:
    """Anyone holding the reference number may see the receipt; it carries nothing personal."""
    require(actor, INQUIRY_SEND)
    ref = validate.text(reference, "reference", max_len=20).upper().replace(" ", "")
    if len(ref) == 12 and "-" not in ref:
        ref = f"{ref[:4]}-{ref[4:8]}-{ref[8:]}"
    with session() as s:
        row = s.exec(select(Inquiry, Department.name).join(Department, Department.id == Inquiry.department_id)
                     .where(Inquiry.reference == ref)).first()
        if row is None:
            raise NotFound()
        q, dept = row
        return Receipt(q.reference, dept, q.created_at, q.state, q.delivered_at)


def sender_defaults(actor: Actor) -> tuple[str, str]:
    """A logged-in resident's own name and email (or phone), to prefill their own form."""
    require(actor, INQUIRY_SEND)
    if not actor.authenticated:
        return "", ""
    with session() as s:
        acc = s.get(Account, actor.account_id)
        return (acc.name, acc.email or acc.phone) if acc else ("", "")


# --------------------------------------------------------------------------- delivery


def _message(lang: str, q: Inquiry, department: str) -> tuple[str, str]:
    subject = tr(lang, "inquiry.mail_subject", reference=q.reference, subject=q.subject)
    body = tr(lang, "inquiry.mail_body", reference=q.reference, department=department, name=q.sender_name,
              contact=q.sender_contact, subject=q.subject, body=q.body,
              kind=tr(lang, "inquiry.mail_resident" if q.account_id else "inquiry.mail_visitor"))
    return subject, body


def _due(now: datetime):
    """Waiting and past its back-off, or "sending" on a worker that died (its lease ran out)."""
    return or_(
        Inquiry.state.in_(("pending", "failed"))
        & or_(Inquiry.next_attempt_at.is_(None), Inquiry.next_attempt_at <= now),
        (Inquiry.state == "sending") & (Inquiry.next_attempt_at <= now),
    )


def _deliver_one(inquiry_id: int, attempts: int, now: datetime) -> bool | None:
    """Claim, send and settle one inquiry. None: another worker has it; True/False: sent or not."""
    with session() as s:
        claimed = s.execute(
            update(Inquiry)
            .where(Inquiry.id == inquiry_id, Inquiry.attempts == attempts, _due(now))
            .values(state="sending", attempts=attempts + 1, next_attempt_at=now + LEASE)
        ).rowcount
    if not claimed:
        return None
    with session() as s:
        q = s.get(Inquiry, inquiry_id)
        dept = s.get(Department, q.department_id)
        to, (subject, body) = dept.email, _message("ja", q, dept.name)
    try:
        mail.send_now(to, subject, body)
    except mail.MailError as e:
        with session() as s:
            s.execute(update(Inquiry).where(Inquiry.id == inquiry_id, Inquiry.attempts == attempts + 1)
                      .values(state="failed", last_error=str(e)[:500],
                              next_attempt_at=utcnow() + backoff(attempts + 1)))
        return False
    done = utcnow()
    with session() as s:
        # Accepted by the department's server: nothing personal stays.
        s.execute(update(Inquiry).where(Inquiry.id == inquiry_id)
                  .values(state="delivered", delivered_at=done, personal_deleted_at=done, sender_name="",
                          sender_contact="", subject="", body="", account_id=None, last_error="",
                          next_attempt_at=None))
    return True


@dataclass(frozen=True)
class DeliveryReport:
    sent: int
    failed: int


def deliver_pending(limit: int = 50, *, now: datetime | None = None) -> DeliveryReport:
    """Job: retry every undelivered inquiry whose back-off has passed."""
    now = now or utcnow()
    with session() as s:
        due = s.exec(
            select(Inquiry.id, Inquiry.attempts).where(_due(now))
            .order_by(Inquiry.next_attempt_at, Inquiry.id).limit(limit)
        ).all()
    sent = failed = 0
    for inquiry_id, attempts in due:
        try:
            result = _deliver_one(inquiry_id, attempts, now)
        except Exception:  # noqa: BLE001 (one inquiry's fault must not hold up the others; its lease runs out)
            log.exception("inquiry %s: delivery failed unexpectedly", inquiry_id)
            result = False
        sent += result is True
        failed += result is False
    return DeliveryReport(sent, failed)


# --------------------------------------------------------------------------- city staff


@dataclass(frozen=True)
class StaffItem:
    """An inquiry as city staff see it: never the sender or the text."""

    id: int
    reference: str
    department_id: int
    department: str
    created_at: datetime
    state: str
    attempts: int
    last_error: str
    next_attempt_at: datetime | None
    delivered_at: datetime | None


def staff_list(actor: Actor, undelivered: bool, limit: object = 20, offset: object = 0) -> tuple[list[StaffItem], int]:
    """Receipts (newest first) or undelivered inquiries (oldest first), without any personal field."""
    require(actor, INQUIRY_ROUTE)
    lim, off = page_args(limit, offset)
    cond = Inquiry.state.in_(UNDELIVERED) if undelivered else Inquiry.state == "delivered"
    order = (Inquiry.created_at, Inquiry.id) if undelivered else (Inquiry.created_at.desc(), Inquiry.id.desc())
    with session() as s:
        total = s.exec(select(func.count(Inquiry.id)).where(cond)).one()
        rows = s.exec(
            select(Inquiry.id, Inquiry.reference, Inquiry.department_id, Department.name, Inquiry.created_at,
                   Inquiry.state, Inquiry.attempts, Inquiry.last_error, Inquiry.next_attempt_at, Inquiry.delivered_at)
            .join(Department, Department.id == Inquiry.department_id).where(cond)
            .order_by(*order).offset(off).limit(lim)
        ).all()
        return [StaffItem(*r) for r in rows], total


def _undelivered_or_404(s: Session, actor: Actor, inquiry_id: object) -> Inquiry:
    q = s.get(Inquiry, validate.ident(inquiry_id, "inquiry_id"))
    if q is None or q.state not in UNDELIVERED:
        raise NotFound()
    require(actor, INQUIRY_ROUTE, DepartmentTarget(q.department_id))
    return q


def retry_now(actor: Actor, inquiry_id: object) -> bool:
    """City staff: try an undelivered inquiry again at once (e.g. after fixing a department's address)."""
    require(actor, INQUIRY_ROUTE)
    with session() as s:
        q = _undelivered_or_404(s, actor, inquiry_id)
        if q.state == "sending":
            raise ServiceError("inquiry.error.busy")  # a worker is talking to the mail server right now
        attempts, qid = q.attempts, q.id
        s.execute(update(Inquiry).where(Inquiry.id == qid, Inquiry.attempts == attempts)
                  .values(next_attempt_at=None))
    return _deliver_one(qid, attempts, utcnow()) is True


def reroute(actor: Actor, inquiry_id: object, department_id: object) -> None:
    """City staff: send an undelivered inquiry to another (active) department instead."""
    require(actor, INQUIRY_ROUTE)
    with session() as s:
        q = _undelivered_or_404(s, actor, inquiry_id)
        d = s.get(Department, validate.ident(department_id, "department_id"))
        if d is None or not d.active:
            raise ServiceError("inquiry.error.department", "department_id")
        require(actor, INQUIRY_ROUTE, DepartmentTarget(d.id))
        changed = s.execute(update(Inquiry).where(Inquiry.id == q.id, Inquiry.attempts == q.attempts,
                                                  Inquiry.state.in_(("pending", "failed")))
                            .values(department_id=d.id, next_attempt_at=None)).rowcount
        if not changed:
            raise ServiceError("inquiry.error.busy")


# --------------------------------------------------------------------------- retention


def _retention_in(s: Session) -> int:
    row = s.get(CitySetting, RETENTION_KEY)
    if row is not None:
        try:
            days = int(row.value)
        except ValueError:
            days = 0
        if RETENTION_RANGE[0] <= days <= RETENTION_RANGE[1]:
            return days
    return settings_module.settings.inquiry_retention_days


def retention_days(actor: Actor) -> int:
    require(actor, CITY_ADMIN)
    with session() as s:
        return _retention_in(s)


def set_retention_days(actor: Actor, days: object) -> int:
    require(actor, CITY_ADMIN)
    value = validate.integer(days, "retention_days", lo=RETENTION_RANGE[0], hi=RETENTION_RANGE[1])
    with session() as s:
        row = s.get(CitySetting, RETENTION_KEY) or CitySetting(key=RETENTION_KEY)
        row.value = str(value)
        s.add(row)
    return value


@dataclass(frozen=True)
class PurgeReport:
    inquiries: int
    outbox_rows: int
    outbox_files: int
    login_attempts: int
    sessions: int
    password_links: int = 0


def _claim_purge(s: Session, now: datetime) -> bool:
    """At most one purge per PURGE_INTERVAL across all workers (compare-and-set on a CitySetting)."""
    row = s.get(CitySetting, PURGE_MARK_KEY)
    if row is None:
        try:
            with s.begin_nested():  # the first run of several workers at once: one of them purges
                s.add(CitySetting(key=PURGE_MARK_KEY, value=now.isoformat()))
        except IntegrityError:
            return False
        return True
    if datetime.fromisoformat(row.value) + PURGE_INTERVAL > now:
        return False
    return bool(s.execute(update(CitySetting).where(CitySetting.key == PURGE_MARK_KEY,
                                                    CitySetting.value == row.value)
                          .values(value=now.isoformat())).rowcount)


def purge_expired(*, now: datetime | None = None, force: bool = False) -> PurgeReport | None:
    """Job: remove personal data older than the retention period (see the module docstring)."""
    now = now or utcnow()
    with session() as s:
        if not _claim_purge(s, now) and not force:
            return None
        cutoff = now - timedelta(days=_retention_in(s))
        leftovers = s.execute(
            update(Inquiry).where(Inquiry.state == "delivered", Inquiry.personal_deleted_at.is_(None))
            .values(sender_name="", sender_contact="", subject="", body="", account_id=None, personal_deleted_at=now)
        ).rowcount
        outbox = s.execute(delete(OutboxMail).where(or_(
            OutboxMail.sent_at < cutoff,
            (OutboxMail.sent_at.is_(None)) & (OutboxMail.attempts >= mail.MAX_ATTEMPTS)
            & (OutboxMail.created_at < cutoff),
        ))).rowcount
        attempts = s.execute(delete(LoginAttempt).where(or_(
            LoginAttempt.at < cutoff,
            # An inquiry's sending counts only within its window; after it, nothing is kept of who sent when.
            LoginAttempt.login_key.startswith(SEND_KEY_PREFIX, autoescape=True)
            & (LoginAttempt.at <= now - SEND_WINDOW),
            # Nor of the addresses failed logins came from, after the minutes that count them.
            LoginAttempt.login_key.startswith(accounts.ADDRESS_KEY_PREFIX, autoescape=True)
            & (LoginAttempt.at <= now - timedelta(minutes=accounts.LOCK_MINUTES)),
            # Nor of who asked for a password link, after the hour that counts them.
            LoginAttempt.login_key.startswith(password_reset.KEY_PREFIX, autoescape=True)
            & (LoginAttempt.at <= now - password_reset.RESET_WINDOW),
        ))).rowcount
        sessions = s.execute(delete(AuthSession).where(AuthSession.expires_at < cutoff)).rowcount
        links = password_reset.purge(s, now)
    files = 0
    limit = cutoff.timestamp()
    for path in mail.outbox_files():
        try:
            if path.stat().st_mtime < limit:
                path.unlink()
                files += 1
        except FileNotFoundError:  # another worker removed it first
            continue
    return PurgeReport(leftovers, outbox, files, attempts, sessions, links)
