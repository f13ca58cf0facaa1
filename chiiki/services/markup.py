"""A small, safe text format for circular bodies: paragraphs, line breaks, **bold**, lists, http(s) links.

The text is never turned into HTML: it is parsed into plain data (blocks -> lines -> segments) that the
page renders as components, so markup a user types (<script>, <img onerror>, javascript: links) can only
ever appear as visible text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

_BULLET = re.compile(r"^\s*(?:[-*]\s+|[・•]\s*)(.*)$")
# "1. 集合", "2) 解散", "3）会計報告": a number, its mark, then a space (none needed after a bracket), never a
# digit, so that 「1.5リットルの水」 or 「3.5kmのコース」 stay sentences. The number typed is kept (Block.start).
_NUMBERED = re.compile(r"^\s*(\d{1,3})(?:[.)）]\s+|[)）](?!\d))(.*)$")
# A bare http(s) URL, in ASCII URL characters only, so Japanese text written right after it (「…/kosodateを
# ご覧ください」) is not swallowed into it; trim_url then drops the punctuation that ends the sentence. Shared
# with the board (chiiki.services.board).
URL = re.compile(r"(?i:https?)://[A-Za-z0-9\-._~:/?#\[\]@!$&()*+,;=%]+")
_TRAILING = ".,;:!?'"
# One pattern for every inline element; the first group that matched says which one.
_INLINE = re.compile(
    r"\*\*(?P<bold>[^*\n]+?)\*\*"
    r"|\[(?P<label>[^\]\n]{1,200})\]\((?P<target>[^)\s]{1,2000})\)"
    rf"|(?P<url>{URL.pattern})"
)
MAX_URL = 2000


@dataclass
class Seg:
    """kind: text | b (bold) | a (link: href is always http or https)."""

    kind: str = "text"
    text: str = ""
    href: str = ""


@dataclass
class Line:
    segs: list[Seg] = field(default_factory=list)


@dataclass
class Block:
    """kind: p (lines are joined by line breaks) | ul | ol (each line is one item; the first is numbered
    `start`, as typed: 「3. 会計報告」 stays 3)."""

    kind: str = "p"
    lines: list[Line] = field(default_factory=list)
    start: int = 1


def safe_url(url: str) -> str:
    """The URL when it is a plain http(s) link to a host, else "" (javascript:, data:, relative …)."""
    if not url or len(url) > MAX_URL or any(c.isspace() or ord(c) < 32 for c in url):
        return ""
    try:
        parts = urlsplit(url)
    except ValueError:
        return ""
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return ""
    return url


def trim_url(url: str) -> str:
    """Drop punctuation that ends the sentence rather than the URL, and an unbalanced closing bracket."""
    while url:
        if url[-1] in _TRAILING:
            url = url[:-1]
        elif url[-1] == ")" and url.count(")") > url.count("("):
            url = url[:-1]
        elif url[-1] == "]" and url.count("]") > url.count("["):
            url = url[:-1]
        else:
            break
    return url


def inline(text: str) -> Line:
    segs: list[Seg] = []

    def add_text(value: str) -> None:
        if not value:
            return
        if segs and segs[-1].kind == "text":
            segs[-1].text += value
        else:
            segs.append(Seg("text", value))

    pos = 0
    for m in _INLINE.finditer(text):
        add_text(text[pos:m.start()])
        pos = m.end()
        if m.group("bold") is not None:
            segs.append(Seg("b", m.group("bold")))
        elif m.group("label") is not None:
            href = safe_url(m.group("target"))
            if href:
                segs.append(Seg("a", m.group("label"), href))
            else:  # not a web link: show exactly what was typed, as text
                add_text(m.group(0))
        else:
            url = trim_url(m.group("url"))
            pos = m.start() + len(url)  # what was trimmed is text again, read with what follows
            href = safe_url(url)
            if href:
                segs.append(Seg("a", url, href))
            else:
                add_text(url)
    add_text(text[pos:])
    return Line(segs)


def _kind_of(line: str) -> tuple[str, str, int]:
    """The block kind a line belongs to, its content, and the number typed (for a numbered item)."""
    m = _NUMBERED.match(line)
    if m:
        return "ol", m.group(2), int(m.group(1))
    m = _BULLET.match(line)
    if m:
        return "ul", m.group(1), 1
    return "p", line, 1


def parse(text: str) -> list[Block]:
    """Blank lines separate paragraphs; consecutive list lines form one list."""
    blocks: list[Block] = []
    current: Block | None = None
    for raw in (text or "").replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        line = raw.rstrip()
        if not line.strip():
            current = None
            continue
        kind, content, number = _kind_of(line)
        if current is None or current.kind != kind:
            current = Block(kind, start=number)
            blocks.append(current)
        current.lines.append(inline(content if kind != "p" else line.strip()))
    return blocks


def plain(text: str) -> str:
    """The body as plain text (for mail): bold marks dropped, links as 'label (url)'."""
    out = []
    for raw in (text or "").replace("\r\n", "\n").split("\n"):
        parts = []
        for seg in inline(raw).segs:
            if seg.kind == "a" and seg.text != seg.href:
                parts.append(f"{seg.text} ({seg.href})")
            else:
                parts.append(seg.text)
        out.append("".join(parts))
    return "\n".join(out).strip()


def as_data(blocks: list[Block]) -> list[dict]:
    """Plain dicts (for state vars and JSON)."""
    return [{"kind": b.kind, "start": b.start,
             "lines": [{"segs": [{"kind": s.kind, "text": s.text, "href": s.href} for s in ln.segs]}
                       for ln in b.lines]} for b in blocks]
