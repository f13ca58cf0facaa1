"""Outgoing mail: queued in the database, sent by SMTP (or written to a local outbox folder) off the page."""

from __future__ import annotations

import contextlib
import os
import smtplib
import ssl
import uuid
from dataclasses import dataclass
from datetime import timedelta
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Iterable

from sqlalchemy import case, func, insert, literal, update
from sqlalchemy.sql import Select
from sqlmodel import Session, select

from chiiki import settings as settings_module
from chiiki.models import OutboxMail, utcnow
from chiiki.services.db import session

MAX_ATTEMPTS = 8


class MailError(Exception):
    """The mail server did not accept the message (it may be retried)."""


def _message(to: str, subject: str, body: str) -> EmailMessage:
    cfg = settings_module.settings
    msg = EmailMessage()
    msg["From"] = cfg.mail_from
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain=cfg.mail_from.split("@")[-1] or "localhost")
    msg.set_content(body, charset="utf-8")
    return msg


def send_now(to: str, subject: str, body: str) -> str:
    """Hand one message to the mail server and return only when it accepted it (raises MailError).

    With no SMTP host configured (the default), the message is written to the outbox folder, where
    an operator can read it; that counts as accepted.
    """
    cfg = settings_module.settings
    msg = _message(to, subject, body)
    if not cfg.smtp_host:
        return str(_write_outbox(cfg.outbox_dir, bytes(msg)))
    smtp = None
    try:
        smtp = smtplib.SMTP(cfg.smtp_host, cfg.smtp_port, timeout=15)
        if cfg.smtp_starttls:
            smtp.starttls(context=ssl.create_default_context())
        if cfg.smtp_user:
            smtp.login(cfg.smtp_user, cfg.smtp_password)
        refused = smtp.send_message(msg)
    except (OSError, smtplib.SMTPException) as e:
        if smtp is not None:
            smtp.close()
        raise MailError(f"{type(e).__name__}: {e}"[:400]) from e
    try:
        # The server has the message: a QUIT it answers badly must not make the caller send it again (and keep
        # an inquiry's personal data for a retry).
        smtp.quit()
    except (OSError, smtplib.SMTPException):
        pass
    finally:
        smtp.close()
    if refused:
        raise MailError(f"refused: {', '.join(refused)}"[:400])
    return msg["Message-ID"]


def _write_outbox(folder: Path, data: bytes) -> Path:
    """Write one message to the outbox folder, readable by the app's own user only, whole or not at all (a
    full disk leaves no half message); a folder that cannot be written is a MailError, retried later."""
    path = folder / f"{utcnow():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}.eml"
    part = path.with_suffix(".part")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(part, path)
    except OSError as e:
        with contextlib.suppress(OSError):
            part.unlink()
        raise MailError(f"{type(e).__name__}: {e}"[:400]) from e
    return path


def enqueue(s: Session, to: str, subject: str, body: str, kind: str = "") -> None:
    """Queue a message inside the caller's transaction; the worker sends it later."""
    enqueue_many(s, [(to, subject, body)], kind)


def enqueue_many(s: Session, messages: Iterable[tuple[str, str, str]], kind: str = "") -> int:
    """Queue (to, subject, body) messages in the caller's transaction with one executemany (a circular to
    3,000 households queues hundreds); returns how many."""
    now = utcnow()
    rows = [{"to_address": to[:254], "subject": subject[:300], "body": body, "kind": kind[:20], "created_at": now,
             "sent_at": None, "attempts": 0, "last_error": ""} for to, subject, body in messages]
    if rows:
        s.execute(insert(OutboxMail), rows)
    return len(rows)


def enqueue_select(s: Session, recipients: Select, texts: dict[str, tuple[str, str]], kind: str = "") -> int:
    """Queue one message per (email, locale) row of `recipients`, in that locale's (subject, body) of `texts`
    ("ja" for any locale it has no text for), with ONE INSERT … SELECT in the caller's transaction: a circular
    to 3,000 households queues hundreds of the same few texts, which need not go to the database row by row.
    Returns how many were queued."""
    email, locale = recipients.selected_columns[:2]
    texts = {lang: (subject[:300], body) for lang, (subject, body) in texts.items()}
    default_subject, default_body = texts["ja"]
    others = [lang for lang in texts if lang != "ja"]

    def pick(i: int, default: str):
        if not others:
            return literal(default)
        return case(*((locale == lang, literal(texts[lang][i])) for lang in others), else_=literal(default))

    rows = recipients.with_only_columns(
        func.substr(email, 1, 254), pick(0, default_subject), pick(1, default_body), literal(kind[:20]),
        literal(utcnow(), OutboxMail.__table__.c.created_at.type), literal(0), literal(""), maintain_column_froms=True)
    # Counted from RETURNING: psycopg reports no row count for INSERT … SELECT through SQLAlchemy.
    queued = s.execute(insert(OutboxMail).from_select(
        ["to_address", "subject", "body", "kind", "created_at", "attempts", "last_error"], rows)
        .returning(OutboxMail.id))
    return len(queued.all())


# Kinds of mail whose body carries a secret (a one-time link): the body is blanked once the mail is sent.
SECRET_KINDS = frozenset({"reset"})


@dataclass(frozen=True)
class SendReport:
    sent: int
    failed: int


def deliver_queued(limit: int = 200) -> SendReport:
    """Send queued mail; failures stay queued and are retried with back-off (at most MAX_ATTEMPTS)."""
    now = utcnow()
    with session() as s:
        rows = s.exec(
            select(OutboxMail).where(OutboxMail.sent_at.is_(None), OutboxMail.attempts < MAX_ATTEMPTS)
            .order_by(OutboxMail.id).limit(limit)
        ).all()
        todo = [(r.id, r.to_address, r.subject, r.body, r.attempts, r.created_at, r.kind) for r in rows]
    sent = failed = 0
    for mail_id, to, subject, body, attempts, created_at, kind in todo:
        # Back-off: wait 2^attempts minutes after creation before trying again.
        if attempts and created_at + timedelta(minutes=2 ** attempts) > now:
            continue
        # Claim the row first, so several workers never send the same message twice.
        with session() as s:
            claimed = s.execute(
                update(OutboxMail)
                .where(OutboxMail.id == mail_id, OutboxMail.attempts == attempts, OutboxMail.sent_at.is_(None))
                .values(attempts=attempts + 1)
            ).rowcount
        if not claimed:
            continue
        try:
            send_now(to, subject, body)
        except MailError as e:
            failed += 1
            with session() as s:
                s.execute(update(OutboxMail).where(OutboxMail.id == mail_id).values(last_error=str(e)[:500]))
            continue
        sent += 1
        done = {"sent_at": utcnow(), "last_error": ""}
        if kind in SECRET_KINDS:
            done["body"] = ""  # what it carried works for its reader only: not kept once it is on its way
        with session() as s:
            s.execute(update(OutboxMail).where(OutboxMail.id == mail_id).values(**done))
    return SendReport(sent, failed)


def outbox_files() -> list[Path]:
    folder = settings_module.settings.outbox_dir
    return sorted(folder.glob("*.eml")) if folder.exists() else []


def forget_outbox_copies(addresses: set[str]) -> int:
    """Remove the outbox folder's messages to these addresses (an account deleted: its mail goes with it);
    returns how many. Only the headers are read."""
    from email.parser import BytesHeaderParser

    wanted = {a.lower() for a in addresses}
    removed = 0
    for path in outbox_files():
        with contextlib.suppress(OSError):
            with path.open("rb") as f:
                to = (BytesHeaderParser().parse(f)["To"] or "").strip().lower()
            if to in wanted:
                path.unlink()
                removed += 1
    return removed
