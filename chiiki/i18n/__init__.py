"""UI strings in Japanese (default) and English; one module per feature, merged here.

Components call `t(key)` (a Var that follows the chosen language); states call `tr(lang, key, **params)`.
"""

from __future__ import annotations

import importlib
from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

LANGS = ("ja", "en")
_MODULES = ("core", "association", "roster", "circular", "survey", "board", "city", "help")

STRINGS: dict[str, tuple[str, str]] = {}
for _name in _MODULES:
    try:
        _mod = importlib.import_module(f"chiiki.i18n.{_name}")
    except ModuleNotFoundError as _e:  # a feature module not written yet
        if _e.name != f"chiiki.i18n.{_name}":
            raise
        continue
    for _key, _pair in _mod.STRINGS.items():
        if _key in STRINGS:
            raise ValueError(f"duplicate UI string key {_key!r} in chiiki.i18n.{_name}")
        STRINGS[_key] = _pair


TZ = ZoneInfo("Asia/Tokyo")


def fmt_dt(value: datetime | None, lang: str = "ja", *, with_time: bool = True) -> str:
    """A stored UTC time in the city's time zone, the way each language writes dates."""
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    local = value.astimezone(TZ)
    # Formatted by hand: strftime took twice as long, and list pages format a date on every row.
    if lang == "en":
        day = f"{local.year:04d}-{local.month:02d}-{local.day:02d}"
    else:
        day = f"{local.year:04d}年{local.month}月{local.day}日"
    return f"{day} {local.hour:02d}:{local.minute:02d}" if with_time else day


def fmt_date(value: date | None, lang: str = "ja") -> str:
    if value is None:
        return ""
    return value.isoformat() if lang == "en" else f"{value.year}年{value.month}月{value.day}日"


def _format_param(value: object, lang: str) -> object:
    if isinstance(value, datetime):
        return fmt_dt(value, lang)
    if isinstance(value, date):
        return fmt_date(value, lang)
    return value


def tr(lang: str, key: str, **params: object) -> str:
    """The string for a language, formatted; an unknown key shows itself so a test can catch it."""
    pair = STRINGS.get(key)
    if pair is None:
        return key
    text = pair[1] if lang == "en" else pair[0]
    if params:
        try:
            text = text.format(**{k: _format_param(v, lang) for k, v in params.items()})
        except (KeyError, IndexError, ValueError):
            pass
    return text


def t(key: str):
    """A Var choosing the Japanese or English string by the browser's language setting."""
    import reflex as rx

    from chiiki.state import UIState

    if key not in STRINGS:
        raise KeyError(f"missing UI string {key!r}")
    ja, en = STRINGS[key]
    return rx.cond(UIState.lang == "en", en, ja)


def tf(key: str, **params):
    """A component for a string with placeholders filled by Vars, e.g. tf("top.welcome", name=State.name)."""
    import re

    import reflex as rx

    from chiiki.state import UIState

    if key not in STRINGS:
        raise KeyError(f"missing UI string {key!r}")

    def build(text: str):
        parts = []
        for piece in re.split(r"(\{\w+\})", text):
            if piece.startswith("{") and piece.endswith("}") and piece[1:-1] in params:
                parts.append(params[piece[1:-1]])
            elif piece:
                parts.append(piece)
        return rx.fragment(*parts)

    ja, en = STRINGS[key]
    return rx.cond(UIState.lang == "en", build(en), build(ja))
