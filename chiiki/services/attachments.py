"""Attachments of circulars and city notices: type checked by content, kept in the private data folder,
served only when allowed.

An upload is kept unlinked while its circular or notice is being written (a draft upload); sending the
circular or publishing the notice links it in the same transaction. Each kind of document authorizes its own
uploads and downloads (chiiki.services.circulars, chiiki.services.notices); the checks on the file are here.
"""

from __future__ import annotations

import os
import secrets
import stat
import time
import unicodedata
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from sqlalchemy import delete, update
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, select

from chiiki import settings as settings_module
from chiiki.models import Attachment, utcnow
from chiiki.services import validate
from chiiki.services.db import session
from chiiki.services.errors import Denied, NotFound, ServiceError
from chiiki.services.policy import SEND_CIRCULARS, Actor, han_scope

MAX_BYTES = 10 * 1024 * 1024
MAX_PER_CIRCULAR = 5
MAX_PER_NOTICE = 5
# Extension to write in the download name, by the type the content really has.
TYPES = {"application/pdf": "pdf", "image/png": "png", "image/jpeg": "jpg", "image/gif": "gif", "image/webp": "webp"}
ORPHAN_HOURS = 24


@dataclass(frozen=True)
class Kind:
    """What the files are attached to: how many it may carry and where its error messages live.

    `name` + "_id" is the Attachment column linking a file to it. Message keys are
    `errors` + file_too_big | file_empty | file_type | too_many_files | file_gone.
    """

    name: str
    max_files: int
    errors: str

    def error(self, what: str, **params: object) -> ServiceError:
        return ServiceError(self.errors + what, "attachments", **params)


CIRCULAR = Kind("circular", MAX_PER_CIRCULAR, "circular.error_")
NOTICE = Kind("notice", MAX_PER_NOTICE, "notice.error.")


def sniff(data: bytes) -> str:
    """The content type from the file's first bytes, or "" when it is none of the allowed kinds."""
    head = bytes(data[:16])
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return ""


def clean_filename(name: object, content_type: str) -> str:
    """A display name without folders or control characters, ending in the extension of its real type."""
    raw = name if isinstance(name, str) else ""
    raw = unicodedata.normalize("NFC", raw.replace("\\", "/").rsplit("/", 1)[-1])
    raw = "".join(c for c in raw if unicodedata.category(c)[0] != "C" and c not in '"<>|:*?').strip(" .")
    stem = raw.rsplit(".", 1)[0] if "." in raw else raw
    ext = TYPES[content_type]
    return f"{(stem or 'attachment')[:150]}.{ext}"


@dataclass(frozen=True)
class AttachmentInfo:
    id: int
    filename: str
    content_type: str
    size: int


def info(a: Attachment) -> AttachmentInfo:
    return AttachmentInfo(a.id, a.filename, a.content_type, a.size)


def _path(storage_key: str) -> Path:
    return settings_module.settings.attachment_dir / storage_key


def upload(actor: Actor, association_id: int, filename: object, data: object) -> AttachmentInfo:
    """Keep an uploaded file for a circular being composed (linked to it when the circular is sent)."""
    aid = validate.ident(association_id, "association_id")
    if not han_scope(actor, SEND_CIRCULARS, aid):
        raise Denied()
    return store(actor, CIRCULAR, filename, data)


def store(actor: Actor, kind: Kind, filename: object, data: object) -> AttachmentInfo:
    """Check a file by its size and content and keep it as the actor's draft upload.

    Callers authorize first: circular uploads through upload(), notice uploads through
    chiiki.services.notices.upload_file(). Nothing is kept when any check fails.
    """
    if not actor.authenticated:
        raise Denied()
    if not isinstance(data, (bytes, bytearray)):
        raise ServiceError("error.invalid", "attachments")
    if len(data) > MAX_BYTES:
        raise kind.error("file_too_big", max_mb=MAX_BYTES // (1024 * 1024))
    if not data:
        raise kind.error("file_empty")
    content_type = sniff(data)
    if not content_type:
        raise kind.error("file_type")
    key = secrets.token_hex(20)
    folder = settings_module.settings.attachment_dir
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = folder / f".{key}.part"
    # Only the app's own user may read an attachment (a circular's list of names, a photo of someone's home).
    with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as f:
        f.write(bytes(data))
    os.replace(tmp, _path(key))
    try:
        with session() as s:
            row = Attachment(filename=clean_filename(filename, content_type), content_type=content_type,
                             size=len(data), storage_key=key, uploaded_by=actor.account_id)
            s.add(row)
            s.flush()
            return info(row)
    except BaseException:
        _path(key).unlink(missing_ok=True)
        raise


def parse_ids(values: object) -> list[int]:
    """Attachment ids as a form or state sends them; anything but a list of ids is refused."""
    if values in (None, ""):
        return []
    if not isinstance(values, (list, tuple)) or len(values) > 100:
        raise ServiceError("error.invalid", "attachments")
    return [validate.ident(v, "attachments") for v in values]


def pending(s: Session, actor: Actor, ids: list[int], kind: Kind = CIRCULAR) -> list[Attachment]:
    """The actor's own uploads not yet linked to anything; any other id is refused."""
    if not ids:
        return []
    if len(set(ids)) > kind.max_files:
        raise kind.error("too_many_files", max=kind.max_files)
    rows = s.exec(select(Attachment).where(Attachment.id.in_(set(ids)))).all()
    if len(rows) != len(set(ids)) or any(
        r.uploaded_by != actor.account_id or r.circular_id is not None or r.notice_id is not None for r in rows
    ):
        raise kind.error("file_gone")
    return sorted(rows, key=lambda r: r.id)


def link(s: Session, actor: Actor, files: list[Attachment], kind: Kind, owner_id: int) -> None:
    """Link checked draft uploads (from pending()) to their circular or notice, in the caller's transaction.

    One conditional UPDATE: if another request linked or removed one of them since pending() read it, the
    count differs and the whole transaction is refused, so a file never silently moves to a second document.
    """
    if not files:
        return
    done = s.execute(
        update(Attachment)
        .where(Attachment.id.in_([f.id for f in files]), Attachment.uploaded_by == actor.account_id,
               Attachment.circular_id.is_(None), Attachment.notice_id.is_(None))
        .values({f"{kind.name}_id": owner_id})
        .execution_options(synchronize_session=False)
    ).rowcount
    if done != len(files):
        raise kind.error("file_gone")
    for f in files:  # the loaded rows say what the database now holds, without a second write
        set_committed_value(f, f"{kind.name}_id", owner_id)


def discard(actor: Actor, attachment_id: object) -> None:
    """Remove one of the actor's own uploads not yet linked to a circular or a notice."""
    aid = validate.ident(attachment_id, "attachment_id")
    with session() as s:
        # Guarded like link(): a file linked meanwhile (publishing in another tab) is not deleted.
        key = s.execute(delete(Attachment).where(
            Attachment.id == aid, Attachment.uploaded_by == actor.account_id, Attachment.circular_id.is_(None),
            Attachment.notice_id.is_(None)).returning(Attachment.storage_key)).scalar()
        if key is None:
            raise NotFound()
    _path(key).unlink(missing_ok=True)


def file_path(storage_key: str) -> Path | None:
    path = _path(storage_key)
    return path if path.is_file() else None


def purge_orphans(hours: int = ORPHAN_HOURS) -> int:
    """Uploads never sent with a circular nor published with a notice are deleted after a day (background job)."""
    cutoff = utcnow() - timedelta(hours=hours)
    with session() as s:
        rows = s.exec(select(Attachment.id, Attachment.storage_key).where(
            Attachment.circular_id.is_(None), Attachment.notice_id.is_(None), Attachment.created_at < cutoff)).all()
        if rows:
            # Still unlinked at the moment of deleting: one linked since the read above is kept.
            rows = s.execute(delete(Attachment).where(
                Attachment.id.in_([r[0] for r in rows]), Attachment.circular_id.is_(None),
                Attachment.notice_id.is_(None)).returning(Attachment.id, Attachment.storage_key)).all()
    for _id, key in rows:
        _path(key).unlink(missing_ok=True)
    return len(rows)


_STRAY_SCAN_EVERY = 3600.0  # seconds between two looks at the whole folder, in each worker
_next_stray_scan = 0.0


def purge_stray_files(hours: int = ORPHAN_HOURS, *, force: bool = False) -> int:
    """Background job (the folder is looked through at most hourly): files in the attachment folder older than
    an unsent upload may grow that no attachment row names, left by a worker stopped between writing an
    upload and committing its row, or in the middle of writing it (a .part file). The folder and files that
    others than the app's user may read (stored before uploads were made private) are made private on the way.
    Returns how many went."""
    global _next_stray_scan
    if not force and time.monotonic() < _next_stray_scan:
        return 0
    _next_stray_scan = time.monotonic() + _STRAY_SCAN_EVERY
    folder = settings_module.settings.attachment_dir
    if not folder.is_dir():
        return 0
    limit = (utcnow() - timedelta(hours=hours)).timestamp()
    old = []
    for p in [folder, *folder.iterdir()]:
        try:
            st = p.stat()
            if st.st_mode & 0o077 and st.st_uid == os.geteuid():
                p.chmod(st.st_mode & 0o700)
        except OSError:  # gone meanwhile, or not ours
            continue
        if p != folder and stat.S_ISREG(st.st_mode) and st.st_mtime < limit:
            old.append(p)
    keys = sorted(p.name for p in old if not p.name.startswith("."))
    known: set[str] = set()
    with session() as s:
        for i in range(0, len(keys), 500):
            known.update(s.exec(select(Attachment.storage_key).where(Attachment.storage_key.in_(keys[i:i + 500]))))
    stray = [p for p in old if p.name not in known]
    for p in stray:
        p.unlink(missing_ok=True)
    return len(stray)
