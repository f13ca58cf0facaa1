"""Spreadsheet I/O shared by every feature: CSV (UTF-8 with BOM) and .xlsx out, CSV/.xlsx in as a DataFrame."""

from __future__ import annotations

import csv
import io
import itertools
import math
import numbers
import re
import unicodedata
import zipfile
from typing import Iterable, Sequence
from xml.sax.saxutils import escape, quoteattr

import pandas as pd

from chiiki.services.errors import ServiceError

MAX_BYTES = 5 * 1024 * 1024
MAX_ROWS = 10_000
# An .xlsx is a zip: refuse archives that inflate far beyond any real roster (zip bombs).
MAX_XLSX_UNPACKED = 60 * 1024 * 1024
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_SHEET_BAD = set('[]:*?/\\')


def _safe_cell(value: object) -> object:
    """Text a spreadsheet would run as a formula gets a leading apostrophe (CSV injection)."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def to_csv_bytes(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> bytes:
    """UTF-8 with a BOM and CRLF line ends, so Excel in Japan opens it without mojibake."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow([_safe_cell(h) for h in headers])
    for row in rows:
        writer.writerow([_safe_cell(v) for v in row])
    return b"\xef\xbb\xbf" + buf.getvalue().encode("utf-8")


_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
MAX_CELL_TEXT = 32_767  # Excel's limit for one cell
_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG_REL = "http://schemas.openxmlformats.org/package/2006/relationships"
_HEAD = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
_CONTENT_TYPES = _HEAD + (
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/worksheets/sheet1.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
    '<Override PartName="/xl/styles.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
    '<Override PartName="/xl/sharedStrings.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>'
    '</Types>')
_ROOT_RELS = _HEAD + (
    f'<Relationships xmlns="{_PKG_REL}"><Relationship Id="rId1" '
    'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" '
    'Target="xl/workbook.xml"/></Relationships>')
_WORKBOOK_RELS = _HEAD + (
    f'<Relationships xmlns="{_PKG_REL}">'
    f'<Relationship Id="rId1" Type="{_REL}/worksheet" Target="worksheets/sheet1.xml"/>'
    f'<Relationship Id="rId2" Type="{_REL}/styles" Target="styles.xml"/>'
    f'<Relationship Id="rId3" Type="{_REL}/sharedStrings" Target="sharedStrings.xml"/>'
    '</Relationships>')
# Style 0: normal; style 1: bold (the header row).
_STYLES = _HEAD + (
    f'<styleSheet xmlns="{_MAIN}">'
    '<fonts count="2"><font><sz val="11"/><name val="Calibri"/><family val="2"/></font>'
    '<font><b/><sz val="11"/><name val="Calibri"/><family val="2"/></font></fonts>'
    '<fills count="2"><fill><patternFill patternType="none"/></fill>'
    '<fill><patternFill patternType="gray125"/></fill></fills>'
    '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    '<cellXfs count="2"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
    '<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/></cellXfs>'
    '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
    '</styleSheet>')


def _column(index: int) -> str:
    """0 -> A, 25 -> Z, 26 -> AA."""
    name = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        name = chr(65 + rest) + name
    return name


def _display_width(text: str) -> int:
    """Columns a text takes in a spreadsheet: full-width (Japanese) characters count twice."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _number(value: object) -> str | None:
    """The XML form of a numeric cell, or None when the value is not a (finite) number."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    if isinstance(value, numbers.Integral):
        return str(int(value))
    f = float(value)
    return repr(f) if math.isfinite(f) else None


def to_xlsx_bytes(headers: Sequence[str], rows: Iterable[Sequence[object]], sheet_name: str = "Sheet1") -> bytes:
    """One sheet with a bold, frozen header row and fitted column widths; every str is written as text.

    The package is written directly (shared strings, one worksheet, styles): about 20x faster than building
    cell objects, and text is always a string cell, never a formula, so "=1+1" and "0166…" stay as typed.
    Numbers and booleans stay what they are; None is an empty cell; anything else is written as its text.
    """
    name = "".join(c for c in str(sheet_name) if c not in _SHEET_BAD).strip("'")[:31] or "Sheet1"
    name = _XML_ILLEGAL.sub("", name) or "Sheet1"
    strings: dict[str, int] = {}  # shared string -> its index
    text_widths: list[int] = []  # by shared string index
    widths: list[int] = []  # by column
    refs: list[str] = []
    body: list[str] = []
    string_cells = 0
    last = 0
    for r, row in enumerate(itertools.chain([headers], rows), start=1):
        style = ' s="1"' if r == 1 else ""
        cells: list[str] = []
        for i, value in enumerate(row):
            if i >= len(refs):
                refs.append(_column(i))
                widths.append(0)
            if value is None or value == "":
                continue
            ref = f"{refs[i]}{r}"
            number = None if type(value) is str else _number(value)
            if isinstance(value, bool):
                cells.append(f'<c r="{ref}"{style} t="b"><v>{int(value)}</v></c>')
                width = 5
            elif number is not None:
                cells.append(f'<c r="{ref}"{style}><v>{number}</v></c>')
                width = len(number)
            else:
                text = _XML_ILLEGAL.sub("", str(value))[:MAX_CELL_TEXT]
                index = strings.get(text)
                if index is None:
                    index = strings[text] = len(strings)
                    text_widths.append(_display_width(text[:100]))
                string_cells += 1
                cells.append(f'<c r="{ref}"{style} t="s"><v>{index}</v></c>')
                width = text_widths[index]
            if width > widths[i]:
                widths[i] = width
        body.append(f'<row r="{r}">{"".join(cells)}</row>')
        last = r
    cols = "".join(f'<col min="{i + 1}" max="{i + 1}" width="{min(60, max(8, w + 2))}" customWidth="1"/>'
                   for i, w in enumerate(widths))
    dimension = f"A1:{refs[-1]}{last}" if refs else "A1"
    sheet = "".join((
        _HEAD, f'<worksheet xmlns="{_MAIN}"><dimension ref="{dimension}"/>',
        '<sheetViews><sheetView workbookViewId="0">',
        '<pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/>' if last > 1 else "",
        '</sheetView></sheetViews><sheetFormatPr defaultRowHeight="15"/>',
        f"<cols>{cols}</cols>" if cols else "", "<sheetData>", "".join(body), "</sheetData></worksheet>"))
    shared = "".join((
        _HEAD, f'<sst xmlns="{_MAIN}" count="{string_cells}" uniqueCount="{len(strings)}">',
        "".join(f'<si><t xml:space="preserve">{escape(t)}</t></si>' for t in strings), "</sst>"))
    workbook = (f'{_HEAD}<workbook xmlns="{_MAIN}" xmlns:r="{_REL}"><sheets>'
                f'<sheet name={quoteattr(name)} sheetId="1" r:id="rId1"/></sheets></workbook>')
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for part, text in (("[Content_Types].xml", _CONTENT_TYPES), ("_rels/.rels", _ROOT_RELS),
                           ("xl/workbook.xml", workbook), ("xl/_rels/workbook.xml.rels", _WORKBOOK_RELS),
                           ("xl/styles.xml", _STYLES), ("xl/sharedStrings.xml", shared),
                           ("xl/worksheets/sheet1.xml", sheet)):
            z.writestr(part, text.encode("utf-8"))
    return buf.getvalue()


def _decode_csv(data: bytes) -> str:
    """UTF-8 (with or without BOM) first; then Shift_JIS/CP932, which Japanese Excel writes."""
    for encoding in ("utf-8-sig", "cp932"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise ServiceError("tabular.error_encoding", "file")


def _check_xlsx(data: bytes) -> None:
    if not data.startswith(b"PK\x03\x04"):
        raise ServiceError("tabular.error_unreadable", "file")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            if sum(i.file_size for i in z.infolist()) > MAX_XLSX_UNPACKED:
                raise ServiceError("tabular.error_too_big", "file", max_mb=MAX_BYTES // (1024 * 1024))
    except zipfile.BadZipFile:
        raise ServiceError("tabular.error_unreadable", "file") from None


def _clean_frame(df: pd.DataFrame) -> pd.DataFrame:
    df = df.fillna("").astype(str)
    df.columns = [unicodedata.normalize("NFKC", str(c)).strip() for c in df.columns]
    # Rows Excel leaves behind with nothing in them are not rows.
    df = df[df.apply(lambda r: any(v.strip() for v in r), axis=1)] if len(df) else df
    return df.reset_index(drop=True)


def read_table(filename: str, data: bytes, *, max_rows: int = MAX_ROWS) -> pd.DataFrame:
    """Parse an uploaded .csv or .xlsx (first sheet) into a DataFrame of str cells ("" when empty).

    Raises ServiceError (field "file") for a wrong type, too big, undecodable, empty or unreadable file.
    Column names are NFKC-normalised and stripped; cells are kept as text so "090..." keeps its zero.
    """
    if not isinstance(filename, str) or not isinstance(data, (bytes, bytearray)):
        raise ServiceError("tabular.error_type", "file")
    data = bytes(data)
    if len(data) > MAX_BYTES:
        raise ServiceError("tabular.error_too_big", "file", max_mb=MAX_BYTES // (1024 * 1024))
    if not data.strip(b"\xef\xbb\xbf \r\n\t"):
        raise ServiceError("tabular.error_empty", "file")
    ext = filename.lower().rsplit(".", 1)[-1] if "." in filename else ""
    try:
        if ext == "csv":
            text = _decode_csv(data)
            if "\x00" in text:
                raise ServiceError("tabular.error_unreadable", "file")
            df = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, skip_blank_lines=True,
                             nrows=max_rows + 1)
        elif ext == "xlsx":
            _check_xlsx(data)
            df = pd.read_excel(io.BytesIO(data), dtype=str, keep_default_na=False, engine="openpyxl",
                               nrows=max_rows + 1)
        else:
            raise ServiceError("tabular.error_type", "file")
    except ServiceError:
        raise
    except pd.errors.EmptyDataError:
        raise ServiceError("tabular.error_empty", "file") from None
    except Exception:  # pandas/openpyxl raise many kinds for a broken file; all mean the same to the user
        raise ServiceError("tabular.error_unreadable", "file") from None
    df = _clean_frame(df)
    if len(df.columns) == 0 or len(df) == 0:
        raise ServiceError("tabular.error_empty", "file")
    if len(df) > max_rows:
        raise ServiceError("tabular.error_too_many_rows", "file", max=max_rows)
    return df
