"""Circular attachments: type checked by content, kept in the private data folder, served only when allowed."""

from __future__ import annotations

import os
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from sqlalchemy import delete
from sqlmodel import Session, select

from chiiki import settings as settings_module
from chiiki.models import Attachment, utcnow
from chiiki.services import validate
from chiiki.services.db import session
from chiiki.services.errors import Denied, NotFound, ServiceError
from chiiki.services.policy import SEND_CIRCULARS, Actor, han_scope

MAX_BYTES = 10 * 1024 * 1024
MAX_PER_CIRCULAR = 5
# Extension to write in the download name, by the type the content really has.
TYPES = {"application/pdf": "pdf", "image/png": "png", "image/jpeg": "jpg", "image/gif": "gif", "image/webp": "webp"}
ORPHAN_HOURS = 24


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
    if not isinstance(data, (bytes, bytearray)):
        raise ServiceError("error.invalid", "attachments")
    if len(data) > MAX_BYTES:
        raise ServiceError("circular.error_file_too_big", "attachments", max_mb=MAX_BYTES // (1024 * 1024))
    if not data:
        raise ServiceError("circular.error_file_empty", "attachments")
    content_type = sniff(data)
    if not content_type:
        raise ServiceError("circular.error_file_type", "attachments")
    key = secrets.token_hex(20)
    folder = settings_module.settings.attachment_dir
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{key}.part"
    tmp.write_bytes(bytes(data))
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


def pending(s: Session, actor: Actor, ids: list[int]) -> list[Attachment]:
    """The actor's own uploads not yet linked to anything; any other id is refused."""
    if not ids:
        return []
    if len(set(ids)) > MAX_PER_CIRCULAR:
        raise ServiceError("circular.error_too_many_files", "attachments", max=MAX_PER_CIRCULAR)
    rows = s.exec(select(Attachment).where(Attachment.id.in_(set(ids)))).all()
    if len(rows) != len(set(ids)) or any(
        r.uploaded_by != actor.account_id or r.circular_id is not None or r.notice_id is not None for r in rows
    ):
        raise ServiceError("circular.error_file_gone", "attachments")
    return sorted(rows, key=lambda r: r.id)


def discard(actor: Actor, attachment_id: object) -> None:
    """Remove one of the actor's own uploads that was not sent."""
    aid = validate.ident(attachment_id, "attachment_id")
    with session() as s:
        row = s.get(Attachment, aid)
        if row is None or row.uploaded_by != actor.account_id or row.circular_id is not None or row.notice_id:
            raise NotFound()
        key = row.storage_key
        s.delete(row)
    _path(key).unlink(missing_ok=True)


def file_path(storage_key: str) -> Path | None:
    path = _path(storage_key)
    return path if path.is_file() else None


def purge_orphans(hours: int = ORPHAN_HOURS) -> int:
    """Uploads never sent with a circular are deleted after a day (background job)."""
    cutoff = utcnow() - timedelta(hours=hours)
    with session() as s:
        rows = s.exec(select(Attachment.id, Attachment.storage_key).where(
            Attachment.circular_id.is_(None), Attachment.notice_id.is_(None), Attachment.created_at < cutoff)).all()
        if rows:
            s.execute(delete(Attachment).where(Attachment.id.in_([r[0] for r in rows])))
    for _id, key in rows:
        _path(key).unlink(missing_ok=True)
    return len(rows)
