"""Accounts and sessions: register, log in/out, passwords, profile, my data, account deletion."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import secrets
import time
import unicodedata
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Callable

import bcrypt
from sqlalchemy import Boolean, Integer, String, and_, bindparam, delete, func, or_, update
from sqlalchemy.engine import Connection, Row
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from chiiki import settings as settings_module
from chiiki.i18n import TZ, tr
from chiiki.models import (
    Account,
    Area,
    Association,
    AuthSession,
    BoardPost,
    BoardReport,
    BoardThread,
    Delivery,
    Department,
    Han,
    Household,
    Inquiry,
    LoginAttempt,
    Membership,
    OfficerRole,
    OutboxMail,
    SessionHandoff,
    Survey,
    SurveyAnswer,
    SurveyResponse,
    as_utc,
    utcnow,
)
from chiiki.services import audit, client_keys, mail, validate
from chiiki.services.db import fetch_in, fetch, fetch_one, lock_name, lock_row, reading, reading_session, session
from chiiki.services.errors import Denied, ServiceError, ValidationErrors
from chiiki.services.policy import (
    ANONYMOUS,
    Actor,
    MemberOf,
    RoleGrant,
    role_is_valid,
)

log = logging.getLogger("chiiki.accounts")

MIN_PASSWORD = 8
MAX_PASSWORD_BYTES = 72  # bcrypt ignores anything longer; refuse instead of silently truncating
MAX_FAILURES = 5
LOCK_MINUTES = 15
# Failed logins from one address (an IPv6 /64) and one IPv6 /48 within LOCK_MINUTES before its logins are refused
# until the oldest of them is that old: the per-id lock alone lets one client try a few passwords on every id
# (phone numbers are easy to list). Many people share an address behind a carrier's or an office's gateway,
# hence numbers far above one person's mistypes.
ADDRESS_FAILURES = 30
NETWORK_FAILURES = 100
ADDRESS_KEY_PREFIX = "l:"  # a failed login's address count (client_keys.keyed), never the start of an id's key
DELETED_NAME = "退会済み"
_COMMON = {"password", "password1", "12345678", "123456789", "1234567890", "qwertyui", "abcdefgh", "11111111",
           "00000000", "iloveyou", "passw0rd", "asahikawa"}


def _sha(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


@functools.lru_cache(maxsize=4)
def dummy_hash(rounds: int) -> bytes:
    """A hash of a fixed password at the cost new passwords get: a login with an unknown (or deleted) id pays for
    the same bcrypt check as one with a real id, so its answer takes as long (no timing oracle). Made once per
    process (chiiki.chiiki warms it at startup)."""
    return bcrypt.hashpw(b"chiiki-dummy-password", bcrypt.gensalt(rounds))


# How often each process reads the highest cost stored again (a job; it only falls, as accounts log in).
SLOWEST_COST_TTL = 600.0
_slowest: dict[str, tuple[float, int]] = {}  # database URL -> (read at, monotonic clock; cost)


def slowest_cost(s: Session) -> int:
    """The highest bcrypt cost among the stored password hashes, at least the cost new passwords get. After the
    cost setting is lowered, hashes made before keep the old cost until their owner's next login: a failed login
    takes as long as a check at this cost (the stand-in hash of an unknown id has it, a wrong password against
    a cheaper hash waits the difference), so that how long an answer takes tells nothing about the account.
    Read once per process (a pass over every account: 0.2-0.3 s for the city's 324k), then again by the job
    refresh_slowest_cost; a value read a while ago can only be too high, which costs time, not secrecy."""
    url = settings_module.settings.db_url
    if url not in _slowest:
        _read_slowest(s, url)
    return max(_slowest[url][1], settings_module.settings.bcrypt_rounds)


def _read_slowest(s: Session, url: str) -> None:
    # "$2b$12$…": the cost is characters 5-6, two digits, so the greatest string is the greatest cost.
    found = s.exec(select(func.max(func.substr(Account.password_hash, 5, 2)))
                   .where(Account.password_hash.like("$2%"), Account.deleted_at.is_(None))).one()
    _slowest[url] = (time.monotonic(), int(found) if isinstance(found, str) and found.isdigit() else 0)


def refresh_slowest_cost() -> None:
    """A job (chiiki.jobs): read the highest cost stored again once SLOWEST_COST_TTL has passed."""
    url = settings_module.settings.db_url
    if url in _slowest and time.monotonic() - _slowest[url][0] < SLOWEST_COST_TTL:
        return
    with session() as s:
        _read_slowest(s, url)
        dummy_hash(slowest_cost(s))  # made here, not in the next login with an unknown id (it would take longer)


def _wait_as_if(cost: int, checked_at: int, took: float) -> None:
    """A failed check against a hash of cost `checked_at` took `took` seconds: wait what a check at `cost` would
    have taken more (each cost step doubles bcrypt's work, so the wait grows with the machine's load as the
    check itself would)."""
    if 0 < checked_at < cost:
        time.sleep(min(took * (2 ** (cost - checked_at) - 1), 10.0))


def _cost(password_hash: str) -> int:
    """The cost a bcrypt hash was made with ("$2b$12$…" → 12); 0 for anything else."""
    parts = password_hash.split("$")
    return int(parts[2]) if len(parts) > 3 and parts[2].isdigit() else 0


def hash_password(password: str, rounds: int | None = None) -> str:
    rounds = rounds or settings_module.settings.bcrypt_rounds
    return bcrypt.hashpw(_utf8(password), bcrypt.gensalt(rounds)).decode()


def _utf8(password: str) -> bytes:
    """A typed password's bytes; a lone surrogate (no character, but a browser can send one) is encoded as it is
    rather than raising, so that it is simply a wrong password (check_password_strength never accepts one)."""
    return password.encode("utf-8", "surrogatepass")


def check_password_strength(password: object, login_id: str = "", field: str = "password") -> str:
    if not isinstance(password, str) or not password:
        raise ServiceError("error.required", field)
    if any("\ud800" <= c <= "\udfff" for c in password):  # no character at all (a browser can send one)
        raise ServiceError("error.invalid", field)
    if len(password.encode()) > MAX_PASSWORD_BYTES:
        raise ServiceError("error.password_long", field, max=MAX_PASSWORD_BYTES)
    if len(password) < MIN_PASSWORD:
        raise ServiceError("error.password_short", field, min=MIN_PASSWORD)
    if password.lower() in _COMMON or len(set(password)) < 3 or (login_id and _loose(password) == _loose(login_id)):
        raise ServiceError("error.password_weak", field)
    return password


def _loose(value: str) -> str:
    """A login id or password as compared with each other: width, case, spaces and hyphens do not count (a phone
    number typed 090-1234-5678 or in full width is the login id 09012345678)."""
    return "".join(c for c in unicodedata.normalize("NFKC", value).lower() if c not in " -‐‑–—―ー−\t")


@dataclass(frozen=True)
class Profile:
    """What a person sees of themselves (their own data only)."""

    account_id: int
    login_id: str
    name: str
    kana: str
    display_name: str
    address: str
    area_id: int
    area_name: str
    birth_year: int
    email: str
    phone: str
    has_small_children: bool
    email_circulars: bool
    email_notices: bool
    locale: str
    large_text: bool


def _clean_profile(data: dict, *, for_register: bool, s: Session) -> dict:
    errors: dict[str, str] = {}
    out: dict = {}

    def run(field: str, fn):
        try:
            out[field] = fn()
        except ServiceError as e:
            errors[field] = e
            out[field] = None

    run("name", lambda: validate.text(data.get("name"), "name", max_len=100))
    run("kana", lambda: validate.kana(data.get("kana")))
    run("display_name", lambda: validate.text(data.get("display_name"), "display_name", max_len=50, required=False))
    run("address", lambda: validate.text(data.get("address"), "address", max_len=200))
    run("area_id", lambda: validate.ident(data.get("area_id"), "area_id"))
    this_year = utcnow().astimezone(TZ).year  # the city's year: from 1 January 00:00 in Tokyo, not 09:00
    run("birth_year", lambda: validate.integer(data.get("birth_year"), "birth_year", lo=this_year - 120, hi=this_year))
    run("email", lambda: validate.email(data.get("email")))
    run("phone", lambda: validate.phone(data.get("phone")))
    if for_register:
        run("login_id", lambda: validate.login_id(data.get("login_id")))
        run("password", lambda: check_password_strength(data.get("password"), str(data.get("login_id") or "")))
    if out.get("area_id") and s.get(Area, out["area_id"]) is None:
        errors["area_id"] = "error.invalid"
    for flag in ("has_small_children", "email_circulars", "email_notices"):
        out[flag] = bool(data.get(flag)) if isinstance(data.get(flag), (bool, int)) else False
    if out.get("email_circulars") or out.get("email_notices"):
        login = out.get("login_id") or ""
        if not out.get("email") and "@" not in login:
            errors.setdefault("email", "error.email_needed")
    if not out.get("display_name") and out.get("name") and len(out["name"].split()) < 2:
        # Other members see the display name instead of the real name. Without a space (half- or full-width)
        # between family and given name, the family name alone cannot be told apart: ask for one.
        errors.setdefault("display_name", "error.display_name_needed")
    if errors:
        raise ValidationErrors(errors)
    if not out["display_name"]:
        # Default to the family name only.
        out["display_name"] = out["name"].split()[0][:50]
    if for_register and "@" in out["login_id"] and not out["email"]:
        out["email"] = out["login_id"]
    elif for_register and "@" not in out["login_id"] and not out["phone"]:
        out["phone"] = out["login_id"]  # a phone number as the login id is the person's phone, as an email is
    return out


def register(data: dict) -> int:
    """Create an account; all fields are checked first and nothing is written on any error."""
    with session() as s:
        return _register_in(s, data).id


def register_and_sign_in(data: dict, *, now: datetime | None = None) -> LoginResult:
    """register(), and the new account's first session opened in the same transaction: no second password
    check, and no login lock of the id (failed logins typed before registering) to refuse it."""
    with session() as s:
        acc = _register_in(s, data)
        return LoginResult(new_session(acc.id, s, now), acc.id, acc.locale, acc.large_text)


def _register_in(s: Session, data: dict) -> Account:
    clean = _clean_profile(data, for_register=True, s=s)
    if s.exec(select(Account.id).where(Account.login_id == clean["login_id"])).first() is not None:
        raise ValidationErrors({"login_id": "error.login_taken"})
    password = clean.pop("password")
    # The language and text size the form was filled in with: mail goes out in that language.
    locale = data.get("locale") if data.get("locale") in ("ja", "en") else "ja"
    large_text = data.get("large_text") is True
    acc = Account(**clean, locale=locale, large_text=large_text, password_hash=hash_password(password))
    s.add(acc)
    try:
        s.flush()
    except IntegrityError:  # the same login id registered at the same moment (a double tap)
        raise ValidationErrors({"login_id": "error.login_taken"}) from None
    return acc


def _lock_state(s: Session, key: str, now: datetime, exclude: int | None = None) -> tuple[int, datetime | None]:
    """Failures since the last success within the lock window (leaving out the attempt `exclude`); the same for
    known and unknown ids. An attempt still being checked counts as a failure until it succeeds."""
    since = now - timedelta(minutes=LOCK_MINUTES)
    stmt = select(LoginAttempt.success, LoginAttempt.at).where(LoginAttempt.login_key == key, LoginAttempt.at >= since)
    if exclude is not None:
        stmt = stmt.where(LoginAttempt.id != exclude)
    rows = s.exec(stmt.order_by(LoginAttempt.at.desc(), LoginAttempt.id.desc()).limit(MAX_FAILURES)).all()
    failures = 0
    for success, _at in rows:
        if success:
            break
        failures += 1
    if failures >= MAX_FAILURES:
        return failures, rows[0][1] + timedelta(minutes=LOCK_MINUTES)
    return failures, None


@dataclass(frozen=True)
class LoginResult:
    token: str
    account_id: int
    locale: str
    large_text: bool


def login(login_id: object, password: object, *, now: datetime | None = None, client: object = None) -> LoginResult:
    """Check a password and open a session. Unknown id and wrong password give the same answer. `client`: the
    address the attempt came from (a web login), counted when it fails (ADDRESS_FAILURES)."""
    now = now or utcnow()
    try:
        key_id = validate.login_id(login_id)
    except ServiceError:
        raise ServiceError("error.login_failed") from None
    if not isinstance(password, str) or not password or len(_utf8(password)) > 200:
        raise ServiceError("error.login_failed")
    key = _sha("login:" + key_id)
    with session() as s:
        acc = s.exec(select(Account).where(Account.login_id == key_id, Account.deleted_at.is_(None))).first()
        slowest = slowest_cost(s)
        stored = acc.password_hash.encode() if acc and acc.password_hash else dummy_hash(slowest)

        checked: list[bool] = []

        def check() -> bool:
            # The check runs whatever the account: an id without a password (none can log in) takes as long too.
            started = time.perf_counter()
            ok = bcrypt.checkpw(_utf8(password)[:MAX_PASSWORD_BYTES], stored)
            checked.append(True)  # a guess was made (not when the check itself failed)
            if not ok:
                # A wrong password against a hash cheaper than the slowest stored answers as late as that one
                # would (the answer that the id is now locked included).
                _wait_as_if(slowest, _cost(stored.decode()), time.perf_counter() - started)
            return ok and acc is not None and bool(acc.password_hash)

        if client is None:
            ok = _counted_check(s, key, now, check, locked_key="error.locked")
        else:
            ok = _counted_at_address(s, client, now, lambda: _counted_check(s, key, now, check,
                                                                             locked_key="error.locked"),
                                     guessed=lambda: bool(checked))
        if not ok:
            raise ServiceError("error.login_failed")
        rounds = settings_module.settings.bcrypt_rounds
        rehashed = None
        if _cost(acc.password_hash) != rounds:
            # Hashed at another cost than new passwords get (the setting changed since): hashed again now, so
            # that its logins take as long as the stand-in check of an unknown id. The bytes checked above (a
            # longer password typed is cut as bcrypt cuts it); hashed before the lock below, stored under it.
            rehashed = bcrypt.hashpw(_utf8(password)[:MAX_PASSWORD_BYTES], bcrypt.gensalt(rounds)).decode()
        # The password checked must still be the account's when its session opens: a password changed (or the
        # account deleted) during the check ended every session, and this one must not come after that.
        lock_row(s, Account, acc.id)
        if not _still_the_password(s, acc, password):
            raise ServiceError("error.login_failed")
        if rehashed is not None:
            s.exec(update(Account).where(Account.id == acc.id, Account.password_hash == acc.password_hash)
                   .values(password_hash=rehashed))
        token = secrets.token_urlsafe(32)
        s.add(AuthSession(token_hash=_sha(token), account_id=acc.id, created_at=now,
                          expires_at=now + timedelta(hours=settings_module.settings.session_hours)))
        return LoginResult(token, acc.id, acc.locale, acc.large_text)


def _still_the_password(s: Session, acc: Account, password: str) -> bool:
    """Under the account's lock: `password`, checked against acc.password_hash, is still the account's. The hash
    may have changed meanwhile without the password changing (another login hashed it again at a new cost):
    then it is checked once more, against the hash stored now."""
    current = s.exec(select(Account.password_hash).where(Account.id == acc.id, Account.deleted_at.is_(None))).first()
    if not current:
        return False
    return current == acc.password_hash or bcrypt.checkpw(_utf8(password)[:MAX_PASSWORD_BYTES], current.encode())


def new_session(account_id: int, s: Session, now: datetime | None = None) -> str:
    now = now or utcnow()
    token = secrets.token_urlsafe(32)
    s.add(AuthSession(token_hash=_sha(token), account_id=account_id, created_at=now,
                      expires_at=now + timedelta(hours=settings_module.settings.session_hours)))
    return token


def logout(token: object) -> None:
    if not isinstance(token, str) or not token:
        return
    with session() as s:
        row = s.exec(select(AuthSession).where(AuthSession.token_hash == _sha(token))).first()
        if row and row.revoked_at is None:
            row.revoked_at = utcnow()
            s.add(row)


HANDOFF_SECONDS = 60


@dataclass(frozen=True)
class Handoff:
    """What a redeemed ticket hands to the browser: the session cookie ("" clears it) and where to go."""

    token: str
    origin: str
    next_path: str


def _handoff_key(ticket: str, nonce: str) -> str:
    return _sha(f"handoff:{ticket}:{nonce}")


def _seal(data: bytes, ticket: str, nonce: str) -> bytes:
    """XOR with a keystream of the ticket and nonce: seals a token, and unseals it again."""
    stream = hashlib.shake_256(f"chiiki-handoff:{ticket}:{nonce}".encode()).digest(len(data))
    return bytes(a ^ b for a, b in zip(data, stream))


def create_handoff(token: str, origin: str, next_path: str, now: datetime | None = None) -> tuple[str, str]:
    """A one-time ticket (valid HANDOFF_SECONDS) that sets the session cookie to `token` ("" clears it),
    and the nonce the same browser must present with it (as a cookie): a ticket alone, sent to someone
    else's browser, opens nothing.

    The row keeps a hash of both and the token sealed with a keystream of both, so a database reader
    learns no session from it. Expired tickets are swept here."""
    now = now or utcnow()
    ticket, nonce = secrets.token_urlsafe(32), secrets.token_urlsafe(16)
    sealed = _seal(token.encode(), ticket, nonce).hex()
    table = SessionHandoff.__table__
    with session() as s:
        s.execute(table.delete().where(table.c.expires_at < now))
        s.add(SessionHandoff(ticket_hash=_handoff_key(ticket, nonce), sealed_token=sealed, origin=origin[:200],
                             next_path=next_path[:300], expires_at=now + timedelta(seconds=HANDOFF_SECONDS)))
    return ticket, nonce


def redeem_handoff(ticket: object, nonce: object, now: datetime | None = None) -> Handoff | None:
    """The handoff for this ticket and nonce, once: the row is deleted. None when unknown, used, expired
    or presented without its nonce."""
    if not all(isinstance(v, str) and 0 < len(v) <= 100 for v in (ticket, nonce)):
        return None
    now = now or utcnow()
    table = SessionHandoff.__table__
    with session() as s:
        # DELETE … RETURNING: of two requests with the same ticket, only one gets the row.
        row = s.execute(table.delete().where(table.c.ticket_hash == _handoff_key(ticket, nonce))
                        .returning(table.c.sealed_token, table.c.origin, table.c.next_path,
                                   table.c.expires_at)).first()
        if row is None or row.expires_at < now:
            return None
        return Handoff(_seal(bytes.fromhex(row.sealed_token), ticket, nonce).decode(), row.origin, row.next_path)


# The statement behind every page load, built once: executing a prepared statement with parameters skips
# building the expression and computing its cache key each time, and Core rows skip the ORM's objects.
# One query gives the account with its memberships and their unrevoked roles (a row per membership and role):
# a member without a role is one row.
_ACTOR_COLUMNS = (
    Account.id, Account.display_name, Account.is_city_staff, Account.department_id, Account.deleted_at,
    Membership.id.label("m_id"), Membership.association_id.label("m_association"),
    Membership.household_id.label("m_household"), Membership.status.label("m_status"),
    Household.han_id.label("m_han"), OfficerRole.id.label("r_id"), OfficerRole.association_id.label("r_association"),
    OfficerRole.title.label("r_title"), OfficerRole.permissions.label("r_permissions"),
    OfficerRole.han_id.label("r_han"), OfficerRole.valid_from.label("r_from"), OfficerRole.valid_until.label("r_until"),
    OfficerRole.revoked_at.label("r_revoked"),
)


def _with_memberships(q):
    # Two comparisons, not IN (...): a literal IN list is an "expanding" parameter, rendered again at every
    # execution of the prepared statement (a quarter of the time of this query's call).
    return (q.join(Membership, and_(Membership.account_id == Account.id,
                                    or_(Membership.status == "active", Membership.status == "pending")),
                   isouter=True)
            .join(Household, Household.id == Membership.household_id, isouter=True)
            .join(OfficerRole, and_(OfficerRole.membership_id == Membership.id, Membership.status == "active",
                                    OfficerRole.revoked_at.is_(None)), isouter=True)
            .order_by(Membership.id, OfficerRole.id))


_SESSION_ACTOR = _with_memberships(
    select(AuthSession.revoked_at.label("s_revoked"), AuthSession.expires_at.label("s_expires"), *_ACTOR_COLUMNS)
    .select_from(AuthSession).join(Account, Account.id == AuthSession.account_id)
    .where(AuthSession.token_hash == bindparam("token_hash")))
_ACCOUNT_ACTOR = _with_memberships(select(*_ACTOR_COLUMNS).select_from(Account)
                                   .where(Account.id == bindparam("account_id")))


def load_actor_in(s: Session, account_id: int, now: datetime | None = None) -> Actor:
    """The actor of an account as it is now (ANONYMOUS for an unknown or deleted account), including what
    this session has changed and not yet written."""
    return _actor_of(fetch_in(s, _ACCOUNT_ACTOR, {"account_id": account_id}).all(), now or utcnow())


def _actor_of(rows, now: datetime) -> Actor:
    """The actor from the rows of _ACCOUNT_ACTOR or _SESSION_ACTOR: its memberships and the roles valid now."""
    if not rows or rows[0].deleted_at is not None:
        return ANONYMOUS
    account = rows[0]
    active: dict[int, MemberOf] = {}
    pending: dict[int, None] = {}
    roles: list[RoleGrant] = []
    for r in rows:
        if r.m_status == "active":
            active.setdefault(r.m_id, MemberOf(r.m_id, r.m_association, r.m_household, r.m_han))
        elif r.m_status == "pending":
            pending.setdefault(r.m_association)
        if r.r_id is not None and role_is_valid(r.r_from, r.r_until, r.r_revoked, now):
            roles.append(RoleGrant(r.r_id, r.r_association, r.r_title, frozenset(r.r_permissions.split()), r.r_han))
    return Actor(
        account_id=account.id,
        display_name=account.display_name,
        is_city_staff=account.is_city_staff,
        department_id=account.department_id,
        memberships=tuple(active.values()),
        roles=tuple(sorted(roles, key=lambda g: g.role_id)),
        pending=tuple(pending),
    )


def actor_for_token(token: object, now: datetime | None = None) -> Actor:
    """The actor behind a session token, or ANONYMOUS when it is unknown, expired or revoked."""
    if not isinstance(token, str) or not 20 <= len(token) <= 100:
        return ANONYMOUS
    with reading() as conn:
        return actor_for_token_in(conn, token, now)


def actor_for_token_in(conn: Connection, token: str, now: datetime | None = None) -> Actor:
    """actor_for_token on the caller's connection (a page load reads its badges on the same one)."""
    if not isinstance(token, str) or not 20 <= len(token) <= 100:
        return ANONYMOUS
    now = now or utcnow()
    # The session, its account, memberships and roles in one query: this runs for every page a person opens.
    rows = fetch(conn, _SESSION_ACTOR, {"token_hash": _sha(token)})
    if not rows or rows[0].s_revoked is not None or rows[0].s_expires <= now:
        return ANONYMOUS
    return _actor_of(rows, now)


def _counted_check(s: Session, key: str, now: datetime, check: Callable[[], bool], locked_key: str) -> bool:
    """A password check counted against `key`'s lock (login id, or an account's own prompt): the attempt is
    written as a failure and committed BEFORE the slow check, then the others counted, so guesses sent at the
    same time each see the ones written before them and at most MAX_FAILURES are ever checked in a window,
    however many connections send them. Raises ServiceError(locked_key, until=…) while locked; else the check's
    answer, committed."""
    attempt = LoginAttempt(login_key=key, at=now, success=False)
    s.add(attempt)
    s.commit()
    _failures, locked_until = _lock_state(s, key, now, exclude=attempt.id)
    if locked_until is not None:
        s.delete(attempt)  # refused unchecked: it neither counts nor moves the lock on
        s.commit()
        raise ServiceError(locked_key, until=locked_until)
    ok = bool(check())
    attempt.success = ok
    s.add(attempt)
    s.commit()
    if not ok:
        _failures, locked_until = _lock_state(s, key, now)
        if locked_until is not None:
            raise ServiceError(locked_key, until=locked_until)
    return ok


def _address_keys(client: object) -> list[tuple[str, int]]:
    """(key, limit) of each count a login from `client` takes a place in; none when it is not an address (nothing
    to tell clients apart by: one count for all would let anyone lock everyone out) or when the counts' key
    cannot be had (the data folder unwritable: logged, and logins go on with each id's own lock)."""
    data_dir = str(settings_module.settings.data_dir)
    try:
        return sorted((client_keys.keyed(data_dir, ADDRESS_KEY_PREFIX, name), limit)
                      for name, limit in client_keys.networks(client, ADDRESS_FAILURES, NETWORK_FAILURES,
                                                              unknown_shared=False))
    except (OSError, RuntimeError):
        log.exception("failed logins are not counted by address: no key for the counts")
        return []


def _address_waits(s: Session, keys: list[tuple[str, int]], since: datetime) -> list[datetime]:
    """Until when each full count of `keys` refuses (its oldest counted failure within the minutes, plus them)."""
    untils = []
    for key, limit in keys:
        earlier = s.exec(select(LoginAttempt.at).where(LoginAttempt.login_key == key, LoginAttempt.at > since)
                         .order_by(LoginAttempt.at.desc()).limit(limit)).all()
        if len(earlier) >= limit:
            untils.append(as_utc(earlier[-1]) + timedelta(minutes=LOCK_MINUTES))
    return untils


def _counted_at_address(s: Session, client: object, now: datetime, attempt: Callable[[], bool],
                        guessed: Callable[[], bool]) -> bool:
    """Run a login `attempt` (the id's counted check) counted against the address it came from as well. Refused
    unchecked (ServiceError "error.too_many_here", until=…) while the address has had ADDRESS_FAILURES within
    LOCK_MINUTES; nothing is written then. Otherwise a place is taken under the count's lock and committed before
    the check (guesses sent at once take turns: no more than the limit are ever checked), and given back when
    the login succeeds or no guess was made (the id was locked, an error): a count holds only failures (and the
    checks running), and a success does not reset it (one's own account is no key to more guesses)."""
    keys = _address_keys(client)
    if not keys:
        return attempt()
    since = now - timedelta(minutes=LOCK_MINUTES)
    if untils := _address_waits(s, keys, since):  # a client already refused writes nothing
        raise ServiceError("error.too_many_here", until=max(untils))
    for key, _limit in keys:  # always in the same order
        lock_name(s, LoginAttempt, key)
    if untils := _address_waits(s, keys, since):
        s.rollback()
        raise ServiceError("error.too_many_here", until=max(untils))
    places = [LoginAttempt(login_key=key, at=now, success=False) for key, _limit in keys]
    s.add_all(places)
    s.commit()
    ids = [p.id for p in places]
    try:
        ok = attempt()
    except BaseException:
        if not guessed():
            # Nothing of the login's own transaction left holding SQLite's write lock; the login's own error
            # is the one to raise.
            with contextlib.suppress(Exception):
                s.rollback()
            _give_back(ids)
        raise
    if ok:
        s.execute(delete(LoginAttempt).where(LoginAttempt.id.in_(ids)))
        s.commit()
    return ok


def _give_back(ids: list[int]) -> None:
    """Places taken at an address for a login that made no guess (the id locked, an error), given back in a
    session of their own (the login's may be broken); best effort: a place left counts for LOCK_MINUTES."""
    try:
        with session() as s:
            s.execute(delete(LoginAttempt).where(LoginAttempt.id.in_(ids)))
    except Exception:  # noqa: BLE001 - the login's own error is the one to raise
        log.exception("a failed login's place at its address could not be given back")


def _check_own_password(s: Session, acc: Account, password: object, field: str) -> None:
    """A signed-in person's password, asked again before a change that needs it (a new password, deleting the
    account). Wrong guesses are counted and locked per account as logins are, so that a session left open (a
    shared tablet, a stolen cookie) cannot be used to find the password by trying."""
    try:
        ok = _counted_check(s, _sha(f"password:{acc.id}"), utcnow(), lambda: isinstance(password, str)
                            and bool(acc.password_hash)
                            and bcrypt.checkpw(_utf8(password)[:MAX_PASSWORD_BYTES], acc.password_hash.encode()),
                            locked_key="error.password_locked")
    except ServiceError as e:
        raise ValidationErrors({field: e}) from None
    if not ok:
        raise ValidationErrors({field: "error.password_wrong"})


def _own_account(s: Session, account_id: int) -> Account:
    """The signed-in person's account, or Denied when it was deleted since their session was checked (another
    tab or device): nothing personal may be written into a deleted account again."""
    acc = s.get(Account, account_id)
    if acc is None or acc.deleted_at is not None:
        raise Denied()
    return acc


def _require(actor: Actor) -> int:
    if actor is None or not actor.authenticated:
        raise Denied()
    return actor.account_id


def change_password(actor: Actor, old: object, new: object) -> str:
    """Set a new password, revoke every session of the account, and return a fresh token."""
    account_id = _require(actor)
    with session() as s:
        acc = _own_account(s, account_id)
        _check_own_password(s, acc, old, "old_password")
        try:
            check_password_strength(new, acc.login_id or "", "new_password")
        except ServiceError as e:
            raise ValidationErrors({"new_password": e}) from None
        new_hash = hash_password(new)
        # Under the account's lock, and only over the password just checked: of two changes at once, the second
        # finds its old password gone; a login checked meanwhile either opened its session before (revoked
        # below) or finds the new password (accounts.login).
        lock_row(s, Account, account_id)
        if not isinstance(old, str) or not _still_the_password(s, acc, old):
            raise ValidationErrors({"old_password": "error.password_wrong"})
        s.exec(update(Account).where(Account.id == account_id).values(password_hash=new_hash))
        now = utcnow()
        for row in s.exec(select(AuthSession).where(AuthSession.account_id == account_id,
                                                    AuthSession.revoked_at.is_(None))).all():
            row.revoked_at = now
            s.add(row)
        return new_session(account_id, s, now)


# The person's own page (マイページ) on every visit: one prepared Core statement, the area's name joined.
_PROFILE = (select(Account.id, Account.login_id, Account.name, Account.kana, Account.display_name, Account.address,
                   Account.area_id, Area.name.label("area_name"), Account.birth_year, Account.email, Account.phone,
                   Account.has_small_children, Account.email_circulars, Account.email_notices, Account.locale,
                   Account.large_text)
            .join(Area, Area.id == Account.area_id, isouter=True)
            .where(Account.id == bindparam("p_account", type_=Integer)))


def get_profile(actor: Actor) -> Profile:
    account_id = _require(actor)
    with reading() as conn:
        a = fetch_one(conn, _PROFILE, {"p_account": account_id})
        return Profile(a.id, a.login_id or "", a.name, a.kana, a.display_name, a.address, a.area_id or 0,
                       a.area_name or "", a.birth_year or 0, a.email, a.phone, a.has_small_children,
                       a.email_circulars, a.email_notices, a.locale, a.large_text)


def update_profile(actor: Actor, data: dict) -> Profile:
    """Save the person's own details. A new email address needs the current password (data["current_password"]):
    a forgotten-password link goes there, so a session left open (a shared tablet) must not be enough to move
    it; the old address is told of any change (removing it too)."""
    account_id = _require(actor)
    with session() as s:
        acc = _own_account(s, account_id)
        clean = _clean_profile({**data, "login_id": acc.login_id}, for_register=False, s=s)
        old_email = acc.email
        if clean["email"] and clean["email"] != old_email:
            # Counted and locked like a login (it commits the attempt: before the account's lock below).
            _check_own_password(s, acc, data.get("current_password"), "current_password")
        lock_row(s, Account, account_id)  # a deletion at the same moment comes wholly before or after
        acc = _own_account(s, account_id)
        if acc.email != old_email:  # changed by another tab meanwhile: decide again on what it is now
            raise ValidationErrors({"email": "error.changed_meanwhile"})
        for key, value in clean.items():
            setattr(acc, key, value)
        s.add(acc)
        if old_email and clean["email"] != old_email:
            lang = acc.locale if acc.locale in ("ja", "en") else "ja"
            mail.enqueue(s, old_email, tr(lang, "mypage.email_changed_subject"),
                         tr(lang, "mypage.email_changed_body", email=clean["email"] or "-"), kind="account")
    return get_profile(actor)


# A language or text size switch (any page): one prepared UPDATE; a value not given (NULL) stays as it is.
_SET_PREFERENCES = (update(Account).where(Account.id == bindparam("p_account", type_=Integer))
                    .values(locale=func.coalesce(bindparam("p_locale", type_=String), Account.locale),
                            large_text=func.coalesce(bindparam("p_large", type_=Boolean), Account.large_text)))


def set_preferences(actor: Actor, *, locale: str | None = None, large_text: bool | None = None) -> None:
    if not actor.authenticated:
        return
    params = {"p_account": actor.account_id, "p_locale": locale if locale in ("ja", "en") else None,
              "p_large": large_text if isinstance(large_text, bool) else None}
    if params["p_locale"] is None and params["p_large"] is None:
        return
    with session() as s:
        s.connection().execute(_SET_PREFERENCES, params)


def end_other_sessions(actor: Actor, token: object) -> int:
    """Log out every other device (a phone lost, a shared computer): every session of the account but the one
    holding `token` is revoked. Returns how many were ended."""
    account_id = _require(actor)
    keep = _sha(token) if isinstance(token, str) and token else ""
    with session() as s:
        lock_row(s, Account, account_id)  # a login finishing meanwhile comes wholly before or after
        return s.exec(update(AuthSession).where(AuthSession.account_id == account_id, AuthSession.revoked_at.is_(None),
                                                AuthSession.token_hash != keep)
                      .values(revoked_at=utcnow())).rowcount


def make_city_staff(login_id: object, department: object = None) -> str:
    """The operator's command (python -m chiiki.cli make-staff): a registered account becomes city staff, with
    the department whose inquiries it routes when given (by name). No actor: whoever runs it on the server is
    the operator; a new city's first staff member registers in the app, then is made staff this way. Refused for
    an account in an association (staff hold no officer role and see no member rows). Returns the display
    name."""
    key = validate.login_id(login_id)
    with session() as s:
        acc = s.exec(select(Account).where(Account.login_id == key, Account.deleted_at.is_(None))).first()
        if acc is None:
            raise ServiceError("reset.error.no_account")
        from chiiki.services.membership import _open_membership

        if _open_membership(s, acc.id) is not None:
            raise ServiceError("association.error.staff_member")
        if department not in (None, ""):
            dept = s.exec(select(Department).where(Department.name == str(department).strip(),
                                                   Department.active.is_(True))).first()
            if dept is None:
                raise ServiceError("inquiry.error.department")
            acc.department_id = dept.id
        acc.is_city_staff = True
        s.add(acc)
        return acc.display_name


def my_accesses(actor: Actor, limit: int = 30, offset: int = 0) -> list[audit.AccessEntry]:
    """Who accessed the signed-in person's data (their access log page), newest first: their own entries only."""
    account_id = _require(actor)
    with reading_session() as s:
        return audit.accesses_to(s, account_id, limit=limit, offset=offset)


def export_my_data(actor: Actor) -> dict:
    """Everything stored about the person, as one JSON-ready document (their right of access)."""
    account_id = _require(actor)
    with session() as s:
        profile = asdict(get_profile(actor))
        memberships = []
        for m, assoc_name in s.exec(
            select(Membership, Association.name).join(Association, Association.id == Membership.association_id)
            .where(Membership.account_id == account_id)
        ).all():
            household = s.get(Household, m.household_id) if m.household_id else None
            han = s.get(Han, household.han_id) if household and household.han_id else None
            roles = s.exec(select(OfficerRole).where(OfficerRole.membership_id == m.id)).all()
            memberships.append({
                "household_id": m.household_id,
                "association": assoc_name, "status": m.status, "requested_at": m.requested_at,
                "consented_at": m.consented_at, "left_at": m.left_at,
                "message": m.message, "decision_note": m.decision_note,
                "household_address": household.address if household else "", "han": han.name if han else "",
                # What the officers noted about the household the person lives in (the edit form tells them its
                # members can read it); not after leaving: it is then about whoever lives there now.
                "household_note": household.note if household and m.status == "active" else "",
                "officer_roles": [{"title": r.title, "permissions": r.permissions.split(), "valid_from": r.valid_from,
                                   "valid_until": r.valid_until, "revoked_at": r.revoked_at} for r in roles],
            })
        deliveries = s.exec(
            select(func.count()).select_from(Delivery).where(Delivery.account_id == account_id)
        ).one()
        confirmed = s.exec(
            select(func.count()).select_from(Delivery)
            .where(Delivery.account_id == account_id, Delivery.state == "confirmed")
        ).one()
        responses = s.exec(select(SurveyResponse).where(SurveyResponse.respondent_account_id == account_id)).all()
        # Their household's answers an officer recorded (after a visit or a call), while they live there.
        homes = [m["household_id"] for m in memberships if m["status"] == "active" and m["household_id"]]
        recorded = s.exec(select(SurveyResponse).where(SurveyResponse.household_id.in_(homes),
                                                       SurveyResponse.recorded_by.is_not(None))).all() if homes else []
        answers, household_answers = [], []
        for r in (*responses, *recorded):
            for a in s.exec(select(SurveyAnswer).where(SurveyAnswer.response_id == r.id)).all():
                (answers if r.recorded_by is None else household_answers).append({
                    "survey_id": r.survey_id, "question_id": a.question_id, "option_id": a.option_id,
                    "text": a.text_value, "number": a.number_value})
        posts = s.exec(select(BoardPost).where(BoardPost.author_account_id == account_id,
                                                BoardPost.deleted_at.is_(None))).all()
        threads = s.exec(select(BoardThread).where(BoardThread.author_account_id == account_id)).all()
        reports = s.exec(select(BoardReport).where(BoardReport.reporter_account_id == account_id)).all()
        # Inquiries not yet delivered still hold what was written (a delivered one holds nothing personal).
        inquiries = s.exec(select(Inquiry).where(Inquiry.account_id == account_id)).all()
        logins = s.exec(select(AuthSession).where(AuthSession.account_id == account_id)
                        .order_by(AuthSession.created_at.desc())).all()
        created_at = s.exec(select(Account.created_at).where(Account.id == account_id)).one()
        accesses = audit.accesses_to(s, account_id, limit=1000)
        audit.record(s, actor, "self.export", subjects=[account_id], count=1)
        return {
            "exported_at": utcnow(),
            "profile": profile,
            "memberships": memberships,
            "circulars": {"received": deliveries, "confirmed": confirmed},
            "survey_answers": answers,
            "household_answers_recorded_by_officers": household_answers,
            "account_created_at": created_at,
            "logins": [{"at": x.created_at, "expires_at": x.expires_at, "ended_at": x.revoked_at} for x in logins],
            "board_threads": [{"id": t.id, "title": t.title, "created_at": t.created_at} for t in threads],
            "board_posts": [{"id": p.id, "thread_id": p.thread_id, "created_at": p.created_at, "body": p.body}
                            for p in posts],
            "board_reports": [{"post_id": r.post_id, "reason": r.reason, "created_at": r.created_at,
                               "resolution": r.resolution} for r in reports],
            "inquiries": [{"reference": q.reference, "state": q.state, "created_at": q.created_at,
                           "sender_name": q.sender_name, "sender_contact": q.sender_contact, "subject": q.subject,
                           "body": q.body} for q in inquiries],
            "accesses_to_my_data": [asdict(a) for a in accesses],
        }


def delete_account(actor: Actor, password: object) -> None:
    """Erase every personal field; rows that anonymous counts rely on stay, pointing at no one."""
    account_id = _require(actor)
    with session() as s:
        acc = _own_account(s, account_id)
        _check_own_password(s, acc, password, "password")
        lock_row(s, Account, account_id)  # a profile change at the same moment comes wholly before
        from chiiki.services.membership import end_in  # membership builds on this module

        now = utcnow()
        memberships = s.exec(select(Membership).where(Membership.account_id == account_id,
                                                      Membership.status.in_(("active", "pending")))).all()
        for m in memberships:
            end_in(s, m, now)  # as leaving: refused when it would leave the association without a manager
        for row in s.exec(select(AuthSession).where(AuthSession.account_id == account_id)).all():
            row.revoked_at = row.revoked_at or now
            s.add(row)
        for p in s.exec(select(BoardPost).where(BoardPost.author_account_id == account_id)).all():
            p.body = ""
            p.deleted_at = p.deleted_at or now
            s.add(p)
        # The titles of the threads they opened, as deleting the opening post does.
        s.execute(update(BoardThread).where(BoardThread.author_account_id == account_id).values(title=""))
        # What they wrote to the officers when asking to join, and what an officer noted on deciding it.
        s.execute(update(Membership).where(Membership.account_id == account_id).values(message="", decision_note=""))
        _forget_answers(s, account_id)
        # What they wrote when reporting a post: the moderators' queue keeps the report, not their words.
        s.execute(update(BoardReport).where(BoardReport.reporter_account_id == account_id).values(reason=""))
        # Mail to them, sent or not, goes with their address (unless another account still uses it): mail not
        # yet sent is not sent, and the copies of mail sent are not kept until the retention purge.
        addresses = {a for a in (acc.email, acc.login_id) if a and "@" in a}
        shared = set(s.exec(select(Account.email).where(Account.id != account_id, Account.deleted_at.is_(None),
                                                        Account.email.in_(sorted(addresses)))).all()) if addresses else set()
        gone = addresses - shared
        if gone:
            s.execute(delete(OutboxMail).where(OutboxMail.to_address.in_(sorted(gone))))
        acc.login_id = None
        acc.password_hash = ""
        acc.name = acc.kana = acc.address = acc.email = acc.phone = ""
        acc.display_name = DELETED_NAME
        acc.birth_year = None
        acc.area_id = None
        acc.has_small_children = acc.email_circulars = acc.email_notices = False
        acc.deleted_at = now
        s.add(acc)
        audit.record(s, actor, "self.delete", count=1)
    if gone:  # committed: the copies the outbox folder holds when no mail server is set go too
        mail.forget_outbox_copies(gone)


def _forget_answers(s: Session, account_id: int) -> None:
    """Their named survey answers stop pointing at them; the choices stay, so every count stays as it was. An
    answer of their own loses its free text and its household (officers saw the address beside it); a
    household's answer (per-household surveys) stays the household's, only no longer theirs."""
    rows = s.exec(select(SurveyResponse.id, Survey.per_household).join(Survey, Survey.id == SurveyResponse.survey_id)
                  .where(SurveyResponse.respondent_account_id == account_id)).all()
    own = [rid for rid, per_household in rows if not per_household]
    if own:
        s.execute(update(SurveyAnswer).where(SurveyAnswer.response_id.in_(own)).values(text_value=""))
        s.execute(update(SurveyResponse).where(SurveyResponse.id.in_(own)).values(household_id=None))
    if rows:
        s.execute(update(SurveyResponse).where(SurveyResponse.id.in_([rid for rid, _ in rows]))
                  .values(respondent_account_id=None))


def refresh_paper_only(s: Session, household_id: int) -> None:
    """A household is paper-only while no active member account is linked to it."""
    q = select(Membership.id).where(Membership.household_id == household_id, Membership.status == "active")
    household = s.get(Household, household_id)
    if household is not None:
        paper = s.exec(q).first() is None
        becomes_paper = paper and not household.paper_only
        if becomes_paper:
            # The association's lock before the household's row, as a roster change takes them (lock_roster):
            # its paper copies are added under that lock.
            lock_row(s, Association, household.association_id)
        household.paper_only = paper
        s.add(household)
        if becomes_paper:
            from chiiki.services.circulars import paper_for_new_paper_household

            paper_for_new_paper_household(s, household)


@dataclass(frozen=True)
class _AreaTree:
    labels: list[tuple[int, str]]  # (id, "district / block") of every area but the city, in display order
    parents: dict[int, int | None]  # id -> parent id, for every area

    @functools.cached_property
    def options(self) -> tuple[str, tuple[tuple[str, str], ...]]:
        """The labels as a form's select options (id as text, label), with a key that changes when they do."""
        opts = tuple((str(i), label) for i, label in self.labels)
        return hashlib.sha256(repr(opts).encode()).hexdigest()[:16], opts


_AREAS: dict[str, tuple[float, _AreaTree]] = {}
_AREAS_TTL = 60.0  # seconds; areas change rarely, and this process forgets them at once when it changes one


_AREAS_GENERATION = [0]  # bumped by forget_areas: a lookup that began before a change is not kept


_AREA_ROWS = select(Area.id, Area.name, Area.level, Area.parent_id).order_by(Area.sort_order, Area.id)


def _area_tree(conn: Connection | None = None) -> _AreaTree:
    """The areas (public reference data), kept for a minute per process: the profile form lists them and
    every notice feed walks them, on every visit. Read through the caller's connection when it has one open
    (no second connection from the pool), else on a connection of its own."""
    key = settings_module.settings.db_url
    hit = _AREAS.get(key)
    if hit is not None and time.monotonic() - hit[0] < _AREAS_TTL:
        return hit[1]
    generation = _AREAS_GENERATION[0]
    if conn is None:
        with reading() as own:
            rows = own.execute(_AREA_ROWS).all()
    else:
        rows = conn.execute(_AREA_ROWS).all()
    by_id = {a.id: a for a in rows}

    def label(a: Row) -> str:
        parts, node = [], a
        while node is not None and node.level != "city":
            parts.append(node.name)
            node = by_id.get(node.parent_id)
        return " / ".join(reversed(parts))

    tree = _AreaTree([(a.id, label(a)) for a in rows if a.level != "city"], {a.id: a.parent_id for a in rows})
    if generation == _AREAS_GENERATION[0]:
        _AREAS[key] = (time.monotonic(), tree)
    return tree


def areas() -> list[tuple[int, str]]:
    """Areas for the registration and profile forms, as 'district / block' labels."""
    return list(_area_tree().labels)


def area_options() -> tuple[str, tuple[tuple[str, str], ...]]:
    """areas() as select options [id, label], and a key that changes when they do: a page that keeps the key
    sends the options again only when they changed, without building and comparing them on every visit."""
    return _area_tree().options


def area_chain(area_id: int | None, conn: Connection | None = None) -> list[int]:
    """The area and every area above it, nearest first (read through `conn` when the areas must be read)."""
    parents = _area_tree(conn).parents
    chain: list[int] = []
    node = area_id
    while node is not None and node not in chain:
        chain.append(node)
        node = parents.get(node)
    return chain


def forget_areas() -> None:
    """Called after areas change, so that this process shows the new list at once."""
    _AREAS_GENERATION[0] += 1
    _AREAS.clear()
