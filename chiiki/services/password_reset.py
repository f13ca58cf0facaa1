"""Forgotten passwords: a one-time link to set a new one.

Someone who forgot their password asks for a link with their login id; when the account has an email address
(its login id, or the address on My page) the link is mailed there. The answer is the same whether or not the
id exists (privacy rule 8). Someone without an email address (a phone number as the login id and no address)
asks at the city's counter: an administrator prints a link for them after checking who they are
(`python -m chiiki.cli reset-link LOGIN_ID`).

A link works once, for RESET_MINUTES; the database keeps only the SHA-256 of its token once the mail is sent
(mail.SECRET_KINDS: the queued mail's body is blanked then; without a mail server configured, the outbox
folder's copy is the delivered mail). Using it sets the new password,
ends every session of the account (a phone left logged in elsewhere) and every other link, and lifts a login
lock. Requests are counted per login id (RESET_REQUESTS an hour): nobody can flood an inbox with links.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, func, update
from sqlmodel import Session, select

from chiiki import settings as settings_module
from chiiki.routes import PASSWORD_RESET
from chiiki.i18n import fmt_dt, tr
from chiiki.models import Account, AuthSession, LoginAttempt, PasswordReset, utcnow
from chiiki.services import mail, validate
from chiiki.services.accounts import _sha, check_password_strength, hash_password
from chiiki.services.db import lock_name, lock_row, session
from chiiki.services.errors import ServiceError, ValidationErrors

RESET_MINUTES = 60
RESET_REQUESTS = 3  # links asked for per login id within RESET_WINDOW (mailed or not)
RESET_WINDOW = timedelta(hours=1)
KEY_PREFIX = "reset:"  # LoginAttempt.login_key of a request: this, then a hash of the login id


def _request_key(login_id: str) -> str:
    """A request's mark: kept only for RESET_WINDOW (the purge removes the marks with this prefix after it)."""
    return KEY_PREFIX + _sha(KEY_PREFIX + login_id)[:58]


def _new_link(s: Session, account_id: int, now: datetime) -> tuple[str, datetime]:
    token = secrets.token_urlsafe(32)
    expires = now + timedelta(minutes=RESET_MINUTES)
    s.add(PasswordReset(token_hash=_sha(token), account_id=account_id, created_at=now, expires_at=expires))
    return settings_module.settings.public_url.rstrip("/") + PASSWORD_RESET + "?token=" + token, expires


def request_link(login_id: object, *, now: datetime | None = None) -> None:
    """Mail a reset link to the account of `login_id` when it has an email address. Silent otherwise: the
    caller shows the same message whatever happened. A login id that is not one (neither an email address nor
    a phone number) is a field error."""
    now = now or utcnow()
    key_id = validate.login_id(login_id)
    key = _request_key(key_id)
    with session() as s:
        lock_name(s, LoginAttempt, key)  # requests for one id at the same moment are counted one by one
        asked = s.exec(select(func.count()).select_from(LoginAttempt)
                       .where(LoginAttempt.login_key == key, LoginAttempt.at > now - RESET_WINDOW)).one()
        if asked >= RESET_REQUESTS:
            return
        s.add(LoginAttempt(login_key=key, at=now, success=True))
        acc = s.exec(select(Account).where(Account.login_id == key_id, Account.deleted_at.is_(None))).first()
        to = (acc.email or (key_id if "@" in key_id else "")) if acc is not None else ""
        if not to:
            return
        link, expires = _new_link(s, acc.id, now)
        lang = acc.locale if acc.locale in ("ja", "en") else "ja"
        mail.enqueue(s, to, tr(lang, "reset.mail_subject"),
                     tr(lang, "reset.mail_body", link=link, until=fmt_dt(expires, lang)), kind="reset")


def link_for_counter(login_id: object, *, now: datetime | None = None) -> tuple[str, datetime]:
    """An administrator's link for someone who came to the counter (identity checked there): (link, expiry).
    The account's owner is told by mail (when the account has an address) that such a link was made, without
    the link: a link made for someone else at the counter does not go unnoticed. Raises ServiceError when no
    such account exists."""
    now = now or utcnow()
    key_id = validate.login_id(login_id)
    with session() as s:
        acc = s.exec(select(Account).where(Account.login_id == key_id, Account.deleted_at.is_(None))).first()
        if acc is None:
            raise ServiceError("reset.error.no_account")
        link, expires = _new_link(s, acc.id, now)
        to = acc.email or (key_id if "@" in key_id else "")
        if to:
            lang = acc.locale if acc.locale in ("ja", "en") else "ja"
            mail.enqueue(s, to, tr(lang, "reset.counter_subject"),
                         tr(lang, "reset.counter_body", made=fmt_dt(now, lang), until=fmt_dt(expires, lang)),
                         kind="reset")
        return link, expires


def _live_link(s: Session, token: object, now: datetime) -> PasswordReset | None:
    if not isinstance(token, str) or not 20 <= len(token) <= 100:
        return None
    row = s.exec(select(PasswordReset).where(PasswordReset.token_hash == _sha(token))).first()
    if row is None or row.used_at is not None or row.expires_at <= now:
        return None
    acc = s.get(Account, row.account_id)
    return row if acc is not None and acc.deleted_at is None else None


def link_is_valid(token: object, *, now: datetime | None = None) -> bool:
    """Whether the page may show the form for a new password (the link unused, in time, its account alive)."""
    with session() as s:
        return _live_link(s, token, now or utcnow()) is not None


def set_new_password(token: object, new_password: object, *, now: datetime | None = None) -> str:
    """Set the password through a link; returns the account's login id (for the login form). All or nothing:
    a used, expired or unknown link, or a weak password, writes nothing."""
    now = now or utcnow()
    with session() as s:
        row = _live_link(s, token, now)
        if row is None:
            raise ServiceError("reset.error.invalid_link")
        acc = s.get(Account, row.account_id)
        try:
            check_password_strength(new_password, acc.login_id or "", "new_password")
        except ServiceError as e:
            raise ValidationErrors({"new_password": e}) from None
        new_hash = hash_password(new_password)
        lock_row(s, Account, acc.id)
        # The link once: of two uses at the same moment, the second finds it used.
        if s.exec(update(PasswordReset).where(PasswordReset.id == row.id, PasswordReset.used_at.is_(None))
                  .values(used_at=now)).rowcount != 1:
            raise ServiceError("reset.error.invalid_link")
        s.exec(update(PasswordReset).where(PasswordReset.account_id == acc.id, PasswordReset.used_at.is_(None))
               .values(used_at=now))
        if s.exec(update(Account).where(Account.id == acc.id, Account.deleted_at.is_(None))
                  .values(password_hash=new_hash)).rowcount != 1:  # deleted while the link was checked
            raise ServiceError("reset.error.invalid_link")
        s.exec(update(AuthSession).where(AuthSession.account_id == acc.id, AuthSession.revoked_at.is_(None))
               .values(revoked_at=now))
        # A success ends the failures counted against the login id (accounts._lock_state): not locked out.
        s.add(LoginAttempt(login_key=_sha("login:" + (acc.login_id or "")), at=now, success=True))
        return acc.login_id or ""


def purge(s: Session, now: datetime) -> int:
    """Links past their time or used (the purge job): how many were removed."""
    return s.exec(delete(PasswordReset).where((PasswordReset.expires_at < now)
                                              | PasswordReset.used_at.is_not(None))).rowcount
