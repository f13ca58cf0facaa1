"""Spreadsheet I/O shared by every feature: CSV (UTF-8 with BOM) and .xlsx out, CSV/.xlsx in as a DataFrame."""

from __future__ import annotations

import csv
import io
import itertools
import math
import re
import unicodedata
import zipfile
from typing import Iterable, Sequence

import pandas as pd
import xlsxwriter

from chiiki.services.errors import ServiceError

MAX_BYTES = 5 * 1024 * 1024
MAX_ROWS = 10_000
# An .xlsx is a zip: refuse archives that inflate far beyond any real roster (zip bombs).
MAX_XLSX_UNPACKED = 60 * 1024 * 1024
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_SHEET_BAD = set('[]:*?/\\')


def _safe_row(row: Iterable[object]) -> list[object]:
    """Text a spreadsheet would run as a formula gets a leading apostrophe (CSV injection); csv writes None
    as an empty field. One list comprehension per row: an export writes tens of thousands of cells."""
    return ["'" + v if isinstance(v, str) and v.startswith(_FORMULA_START) else v for v in row]


def to_csv_bytes(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> bytes:
    """UTF-8 with a BOM and CRLF line ends, so Excel in Japan opens it without mojibake."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(_safe_row(headers))
    writer.writerows(map(_safe_row, rows))
    return b"\xef\xbb\xbf" + buf.getvalue().encode("utf-8")


# Characters XML 1.0 (and so .xlsx) cannot hold: dropped from cells (XlsxWriter would write the control
# characters as "_x0007_" codes, which Excel shows as such, and lone surrogates cannot be encoded at all).
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
MAX_CELL_TEXT = 32_767  # Excel's limit for one cell
_WIDTH_MAX = 60  # columns wider than this many characters are cut off on screen, not in the cell


# East Asian Wide and Fullwidth characters (kana, kanji, hangul, full-width forms, CJK extensions, common
# emoji): they take two columns. One regex pass instead of a unicodedata lookup per character (24,000 cells
# in a roster); it only sizes columns, so the rarer wide symbols it leaves out cost nothing but a narrow column.
_WIDE = re.compile("[\u1100-\u115f\u2e80-\u303e\u3041-\u33ff\u3400-\u4dbf\u4e00-\u9fff\ua000-\ua4cf"
                   "\uac00-\ud7a3\uf900-\ufaff\ufe30-\ufe4f\uff00-\uff60\uffe0-\uffe6"
                   "\U0001f300-\U0001f64f\U0001f900-\U0001f9ff\U00020000-\U0003fffd]")


def _display_width(text: str) -> int:
    """Columns a text takes in a spreadsheet: full-width (Japanese) characters count twice."""
    return len(text) if text.isascii() else len(text) + len(_WIDE.findall(text))


def _cell_value(value: object) -> object:
    """What goes into a cell: None stays empty, numbers and booleans stay what they are, the rest is text."""
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    return _XML_ILLEGAL.sub("", str(value))[:MAX_CELL_TEXT]


def to_xlsx_bytes(headers: Sequence[str], rows: Iterable[Sequence[object]], sheet_name: str = "Sheet1") -> bytes:
    """One sheet with a bold, frozen header row and fitted column widths; every str is written as text.

    Written with XlsxWriter, which writes a 3,000-household roster (24,000 cells) in about 60 % of openpyxl's
    time. Each value is written by its type (typed write calls, never the writer's guessing `write`):
    "=1+1" and "0166…" stay text as typed, numbers and booleans stay what they are, None and "" are empty
    cells, anything else is written as its text.
    """
    name = _XML_ILLEGAL.sub("", "".join(c for c in str(sheet_name) if c not in _SHEET_BAD))
    # Excel's limit is 31 UTF-16 units (an emoji or a rare kanji such as 𠮷 takes two); XlsxWriter refuses more.
    while len(name.encode("utf-16-le")) > 62:
        name = name[:-1]
    name = name.strip("'") or "Sheet1"
    if name.lower() == "history":  # a name Excel keeps for itself
        name = "Sheet1"
    table = [list(row) for row in itertools.chain([headers], rows)]
    # Most exports hold no character XML cannot carry: one search over all the text, then the per-cell
    # clean-up only where needed. Other values (numbers, None) go through _cell_value's rules either way.
    texts = [v for row in table for v in row if isinstance(v, str)]
    clean = any(len(v) > MAX_CELL_TEXT for v in texts) or _XML_ILLEGAL.search("\n".join(texts)) is not None
    table = [[_cell_value(v) if clean or type(v) is not str else v for v in row] for row in table]
    widths: list[int] = []
    for row in table:
        for i, v in enumerate(row):
            if i >= len(widths):
                widths.append(0)
            if v is None:
                continue
            if isinstance(v, str):
                # A text is at most twice its length wide: most cells cannot widen their column.
                if 2 * min(len(v), 100) > widths[i] and widths[i] < _WIDTH_MAX:
                    widths[i] = max(widths[i], _display_width(v[:100]))
            else:
                widths[i] = max(widths[i], 5 if isinstance(v, bool) else len(str(v)))
    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(buf, {"in_memory": True})
    ws = wb.add_worksheet(name)
    for i, w in enumerate(widths):
        ws.set_column(i, i, min(_WIDTH_MAX, max(8, w + 2)))
    if len(table) > 1:
        ws.freeze_panes(1, 0)
    bold = wb.add_format({"bold": True})
    write_string, write_number, write_boolean = ws.write_string, ws.write_number, ws.write_boolean
    for r, row in enumerate(table):
        style = bold if r == 0 else None
        for c, v in enumerate(row):
            # None and "" are empty cells, written only to carry the header's bold (a read matrix is
            # mostly empty cells).
            if v is None or v == "":
                if style is not None:
                    ws.write_blank(r, c, None, style)
            elif isinstance(v, str):
                write_string(r, c, v, style)
            elif isinstance(v, bool):
                write_boolean(r, c, v, style)
            else:
                write_number(r, c, v, style)
    wb.close()
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
