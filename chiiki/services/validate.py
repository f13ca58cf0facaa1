"""Input checks shared by every service; each returns the cleaned value or raises ServiceError."""

from __future__ import annotations

import re
import unicodedata
from datetime import date

from chiiki.services.errors import ServiceError

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_KANA = re.compile(r"^[\u3040-\u309F\u30A0-\u30FF\u30FC\s・ー]+$")


def text(value: object, field: str, *, max_len: int, required: bool = True, multiline: bool = False) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise ServiceError("error.invalid", field)
    cleaned = unicodedata.normalize("NFC", value).strip()
    if not multiline:
        cleaned = " ".join(cleaned.split())
    # Control characters other than newlines and tabs have no business in any field; nor has a lone surrogate
    # (no character at all: a browser can send one, and no database can store it).
    if any(unicodedata.category(c) in ("Cc", "Cs") and c not in "\n\t" for c in cleaned):
        raise ServiceError("error.invalid", field)
    if required and not cleaned:
        raise ServiceError("error.required", field)
    if len(cleaned) > max_len:
        raise ServiceError("error.too_long", field, max=max_len)
    return cleaned


def _nfkc(value: object) -> object:
    """NFKC before any length check: one character can become several ("ヿ" is "コト", "㌖" six), and what is
    stored must fit its column."""
    return unicodedata.normalize("NFKC", value) if isinstance(value, str) else value


def kana(value: object, field: str = "kana", *, required: bool = True) -> str:
    cleaned = text(_nfkc(value), field, max_len=200, required=required)
    # Residents type either script; store katakana so sorting and search are consistent.
    cleaned = "".join(chr(ord(c) + 0x60) if "\u3041" <= c <= "\u3096" else c for c in cleaned)
    if cleaned and not _KANA.match(cleaned):
        raise ServiceError("error.kana", field)
    return cleaned


def email(value: object, field: str = "email", *, required: bool = False) -> str:
    cleaned = text(_nfkc(value), field, max_len=254, required=required).lower()
    if len(cleaned) > 254:  # lower() too can lengthen a text ("İ")
        raise ServiceError("error.too_long", field, max=254)
    if cleaned and not _EMAIL.match(cleaned):
        raise ServiceError("error.email", field)
    return cleaned


def phone(value: object, field: str = "phone", *, required: bool = False) -> str:
    raw = text(_nfkc(value), field, max_len=30, required=required)
    # People write phone numbers with many kinds of dashes (including the long-vowel mark).
    digits = re.sub(r"[\s\-()+\u2010-\u2015\u2212\u30fc\uff70]", "", raw)
    if digits and (not (digits.isascii() and digits.isdigit()) or not 9 <= len(digits) <= 15):
        raise ServiceError("error.phone", field)
    return digits


def login_id(value: object, field: str = "login_id") -> str:
    """A login id is an email address or a phone number, normalised so both spellings match."""
    raw = text(_nfkc(value), field, max_len=254)
    if "@" in raw:
        return email(raw, field, required=True)
    return phone(raw, field, required=True)


def integer(value: object, field: str, *, lo: int, hi: int, required: bool = True) -> int | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise ServiceError("error.required", field)
        return None
    if isinstance(value, bool):
        raise ServiceError("error.invalid", field)
    try:
        number = int(unicodedata.normalize("NFKC", value).strip()) if isinstance(value, str) else int(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: infinity
        raise ServiceError("error.number", field) from None
    if isinstance(value, float) and value != number:
        raise ServiceError("error.number", field)
    if not lo <= number <= hi:
        raise ServiceError("error.range", field, lo=lo, hi=hi)
    return number


def ident(value: object, field: str = "id") -> int:
    """An id sent by a browser: a positive integer or the request is refused."""
    if isinstance(value, bool):
        raise ServiceError("error.invalid", field)
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        value = int(value.strip())
    if not isinstance(value, int) or value <= 0 or value > 2**62:
        raise ServiceError("error.invalid", field)
    return value


def iso_date(value: object, field: str, *, required: bool = True) -> date | None:
    if value in (None, ""):
        if required:
            raise ServiceError("error.required", field)
        return None
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise ServiceError("error.date", field) from None


def choice(value: object, field: str, allowed: tuple[str, ...] | list[str] | set[str]) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise ServiceError("error.invalid", field)
    return value
