"""Spreadsheet I/O shared by every feature: CSV (UTF-8 with BOM) and .xlsx out, CSV/.xlsx in as a DataFrame."""

from __future__ import annotations

import csv
import io
import math
import re
import unicodedata
import zipfile
from datetime import datetime, timezone
from xml.sax.saxutils import escape
from typing import Iterable, Sequence

import pandas as pd

from chiiki.services.errors import ServiceError

MAX_BYTES = 5 * 1024 * 1024
MAX_ROWS = 10_000
# An .xlsx is a zip: refuse archives that inflate far beyond any real roster (zip bombs).
MAX_XLSX_UNPACKED = 60 * 1024 * 1024
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_SHEET_BAD = set('[]:*?/\\\t\n\r')


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


# Characters XML 1.0 (and so .xlsx) cannot hold: dropped from cells (Excel refuses a file holding them, and
# lone surrogates cannot be encoded at all).
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
MAX_CELL_TEXT = 32_767  # Excel's limit for one cell
_WIDTH_MAX = 60  # columns wider than this many characters are cut off on screen, not in the cell
_MAX_COLUMNS, _MAX_ROWS = 16_384, 1_048_576  # a sheet's size in Excel (columns A to XFD)
_EXACT = 10**15  # integers up to 15 digits are exact in Excel; longer ones are written as text
_EXCEL_ESCAPE = re.compile("_(x[0-9A-Fa-f]{4}_)")


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
    """What goes into a cell: None stays empty, numbers and booleans stay what they are, the rest is text
    (cut to Excel's limit, counted as Excel counts it: in UTF-16 units, two for an emoji or a rare kanji)."""
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    text = _XML_ILLEGAL.sub("", str(value))[:MAX_CELL_TEXT]
    if len(text) > MAX_CELL_TEXT // 2:
        # "ignore" drops the first half of a pair the cut split.
        text = text.encode("utf-16-le")[:2 * MAX_CELL_TEXT].decode("utf-16-le", "ignore")
    return text


def _sheet_name(sheet_name: object) -> str:
    """A name Excel accepts: no []:*?/\\, no quote at either end, at most 31 UTF-16 units, not "History"."""
    name = _XML_ILLEGAL.sub("", "".join(c for c in str(sheet_name) if c not in _SHEET_BAD))
    # Excel's limit is 31 UTF-16 units (an emoji or a rare kanji such as 𠮷 takes two).
    while len(name.encode("utf-16-le")) > 62:
        name = name[:-1]
    name = name.strip("'") or "Sheet1"
    return "Sheet1" if name.lower() == "history" else name  # a name Excel keeps for itself


def _column_letters(index: int) -> str:
    """0 -> A, 25 -> Z, 26 -> AA: a column's name in a cell reference."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


# The parts of a one-sheet workbook besides the sheet and its shared strings (ECMA-376 Part 1, SpreadsheetML).
_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG_REL = "http://schemas.openxmlformats.org/package/2006/relationships"
_CT_MAIN = "application/vnd.openxmlformats-officedocument.spreadsheetml"
_XML_HEAD = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
_CONTENT_TYPES = (
    _XML_HEAD + '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    f'<Override PartName="/xl/workbook.xml" ContentType="{_CT_MAIN}.sheet.main+xml"/>'
    f'<Override PartName="/xl/worksheets/sheet1.xml" ContentType="{_CT_MAIN}.worksheet+xml"/>'
    f'<Override PartName="/xl/styles.xml" ContentType="{_CT_MAIN}.styles+xml"/>'
    f'<Override PartName="/xl/sharedStrings.xml" ContentType="{_CT_MAIN}.sharedStrings+xml"/>'
    '<Override PartName="/docProps/core.xml" ContentType="application/vnd.openxmlformats-package.core-properties+xml"/>'
    '<Override PartName="/docProps/app.xml" ContentType="application/vnd.openxmlformats-officedocument.extended-properties+xml"/>'
    '</Types>')
_ROOT_RELS = (
    _XML_HEAD + f'<Relationships xmlns="{_PKG_REL}">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/>'
    '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/package/2006/relationships/metadata/core-properties" Target="docProps/core.xml"/>'
    '<Relationship Id="rId3" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/extended-properties" Target="docProps/app.xml"/>'
    '</Relationships>')
_WORKBOOK_RELS = (
    _XML_HEAD + f'<Relationships xmlns="{_PKG_REL}">'
    f'<Relationship Id="rId1" Type="{_REL}/worksheet" Target="worksheets/sheet1.xml"/>'
    f'<Relationship Id="rId2" Type="{_REL}/styles" Target="styles.xml"/>'
    f'<Relationship Id="rId3" Type="{_REL}/sharedStrings" Target="sharedStrings.xml"/>'
    '</Relationships>')
# Style 0 is the default cell, style 1 the bold header. Excel needs the two built-in fills and one border.
_STYLES = (
    _XML_HEAD + f'<styleSheet xmlns="{_NS}">'
    '<fonts count="2"><font><sz val="11"/><name val="Calibri"/><family val="2"/></font>'
    '<font><b/><sz val="11"/><name val="Calibri"/><family val="2"/></font></fonts>'
    '<fills count="2"><fill><patternFill patternType="none"/></fill><fill><patternFill patternType="gray125"/></fill></fills>'
    '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    '<cellXfs count="2"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
    '<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/></cellXfs>'
    '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
    '</styleSheet>')
_APP = (_XML_HEAD + '<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/extended-properties">'
        '<Application>Chiiki</Application></Properties>')


def _core_props() -> str:
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return (_XML_HEAD + '<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" '
            'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:dcterms="http://purl.org/dc/terms/" '
            'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><dc:creator>Chiiki</dc:creator>'
            f'<dcterms:created xsi:type="dcterms:W3CDTF">{now}</dcterms:created>'
            f'<dcterms:modified xsi:type="dcterms:W3CDTF">{now}</dcterms:modified></cp:coreProperties>')


def to_xlsx_bytes(headers: Sequence[str], rows: Iterable[Sequence[object]], sheet_name: str = "Sheet1") -> bytes:
    """One sheet with a bold, frozen header row and fitted column widths; every str is written as text.

    The sheet's XML is written here, one string per row, rather than through a writing library's cell objects:
    XlsxWriter took 224 ms for a 3,000-household roster (24,000 cells), most of the export's time at city
    scale; this takes 46 ms. Texts go to the shared-string table as Excel writes them, so "=1+1" and "0166…"
    stay text as typed; numbers and booleans stay what they are; None and "" are empty cells; anything else
    is written as its text. The tests read every file back with openpyxl.
    """
    name = _sheet_name(sheet_name)
    table = [list(headers), *map(list, rows)]
    # Most exports hold no character XML cannot carry and no text over Excel's limit: one search over all the
    # text, then the per-cell clean-up only where needed.
    texts = [v for row in table for v in row if type(v) is str]
    if max(map(len, texts), default=0) > MAX_CELL_TEXT // 2 or _XML_ILLEGAL.search("\n".join(texts)):
        table = [[_cell_value(v) for v in row] for row in table]
    ncols = max(map(len, table))
    if ncols > _MAX_COLUMNS or len(table) > _MAX_ROWS:  # no export comes near; Excel would refuse the file
        raise ValueError(f"{len(table)} rows x {ncols} columns is more than a sheet holds")
    letters = [_column_letters(i) for i in range(ncols)]
    widths = [0] * ncols
    strings: dict[str, int] = {}  # the shared-string table: each text once, cells refer to it by number
    references = 0
    column_texts: list[set[str]] = [set() for _ in range(ncols)]
    out: list[str] = []
    for r, row in enumerate(table, 1):
        style = ' s="1"' if r == 1 else ""  # the header row is bold, its empty cells included
        cells = []
        for c, v in enumerate(row):
            if type(v) is not str and v is not None:
                if isinstance(v, bool):
                    cells.append(f'<c r="{letters[c]}{r}"{style} t="b"><v>{int(v)}</v></c>')
                    widths[c] = max(widths[c], 5)
                    continue
                if (isinstance(v, int) and -_EXACT < v < _EXACT) or (isinstance(v, float) and math.isfinite(v)):
                    number = str(int(v)) if isinstance(v, int) else repr(float(v))
                    cells.append(f'<c r="{letters[c]}{r}"{style}><v>{number}</v></c>')
                    widths[c] = max(widths[c], len(number))
                    continue
                # A str subclass (an enum member), inf, an integer of more digits than Excel keeps (its
                # numbers are doubles: 15 digits), a date, anything else: its text.
                v = str(int(v)) if isinstance(v, int) else _cell_value(v)
            if not v:  # None and "" are empty cells, written only to carry the header's bold
                if style:
                    cells.append(f'<c r="{letters[c]}1"{style}/>')
                continue
            k = strings.get(v)
            if k is None:
                k = strings[v] = len(strings)
            references += 1
            cells.append(f'<c r="{letters[c]}{r}"{style} t="s"><v>{k}</v></c>')
            column_texts[c].add(v)
        if cells:
            out.append(f'<row r="{r}">{"".join(cells)}</row>')
    for c, texts_here in enumerate(column_texts):
        # The widest text is among the longest (a text is one to two columns a character): measure from the
        # longest down until no shorter text could be wider.
        for text in sorted(texts_here, key=len, reverse=True):
            if widths[c] >= _WIDTH_MAX or 2 * min(len(text), 100) <= widths[c]:
                break
            widths[c] = max(widths[c], _display_width(text[:100]))
    frozen = ('<pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/>'
              '<selection pane="bottomLeft" activeCell="A2" sqref="A2"/>') if len(table) > 1 else ""
    cols = "".join(f'<col min="{i + 1}" max="{i + 1}" width="{min(_WIDTH_MAX, max(8, w + 2))}" customWidth="1"/>'
                   for i, w in enumerate(widths))
    sheet = (f'{_XML_HEAD}<worksheet xmlns="{_NS}" xmlns:r="{_REL}">'
             f'<dimension ref="A1:{letters[-1] if ncols else "A"}{len(table)}"/>'
             f'<sheetViews><sheetView tabSelected="1" workbookViewId="0">{frozen}</sheetView></sheetViews>'
             f'<sheetFormatPr defaultRowHeight="15"/>{f"<cols>{cols}</cols>" if cols else ""}'
             f'<sheetData>{"".join(out)}</sheetData>'
             '<pageMargins left="0.7" right="0.7" top="0.75" bottom="0.75" header="0.3" footer="0.3"/></worksheet>')
    # One escape over all the texts (none holds a NUL: _XML_ILLEGAL took those out). Excel reads "_xHHHH_"
    # in a text as the character HHHH, so a text's own "_x" gets its underscore escaped as "_x005F_"; a
    # carriage return, which an XML reader turns into a line feed, is written as "_x000D_". Every <t>
    # keeps its spaces, which Excel would otherwise trim at either end.
    joined = _EXCEL_ESCAPE.sub(r"_x005F_\1", "\0".join(strings)).replace("\r", "_x000D_")
    bodies = escape(joined).split("\0") if strings else []
    shared = (f'{_XML_HEAD}<sst xmlns="{_NS}" count="{references}" uniqueCount="{len(strings)}">'
              + "".join(f'<si><t xml:space="preserve">{b}</t></si>' for b in bodies) + "</sst>")
    workbook = (f'{_XML_HEAD}<workbook xmlns="{_NS}" xmlns:r="{_REL}"><bookViews><workbookView/></bookViews>'
                f'<sheets><sheet name="{escape(name, {chr(34): "&quot;"})}" sheetId="1" r:id="rId1"/></sheets></workbook>')
    buf = io.BytesIO()
    # Deflate level 1: the sheet is repetitive markup, so the fastest level still packs it about tenfold.
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        for part, text in (("[Content_Types].xml", _CONTENT_TYPES), ("_rels/.rels", _ROOT_RELS),
                           ("docProps/app.xml", _APP), ("docProps/core.xml", _core_props()),
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
    df = df[df.apply(lambda col: col.str.strip() != "").any(axis=1)] if len(df) else df
    return df  # the index stays the data row's place in the file (line = index + 2)


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
            # Blank lines before the header are skipped (the index still counts them: line = index + 2).
            body = text.lstrip("\r\n")
            skipped = text[:len(text) - len(body)].count("\n")
            # Blank lines stay rows (their place keeps the line numbers) but do not count towards max_rows:
            # read on until more than max_rows rows with something in them, or the end of the file.
            parts, kept = [], 0
            with pd.read_csv(io.StringIO(body), dtype=str, keep_default_na=False, skip_blank_lines=False,
                             chunksize=max_rows + 1) as reader:
                for chunk in reader:
                    parts.append(_clean_frame(chunk))
                    kept += len(parts[-1])
                    if kept > max_rows:
                        break
            df = pd.concat(parts) if parts else pd.DataFrame()  # each part cleaned as it was read
            df.index = df.index + skipped
        elif ext == "xlsx":
            _check_xlsx(data)
            df = _clean_frame(pd.read_excel(io.BytesIO(data), dtype=str, keep_default_na=False, engine="openpyxl",
                                            nrows=max_rows + 1))
        else:
            raise ServiceError("tabular.error_type", "file")
    except ServiceError:
        raise
    except pd.errors.EmptyDataError:
        raise ServiceError("tabular.error_empty", "file") from None
    except Exception:  # pandas/openpyxl raise many kinds for a broken file; all mean the same to the user
        raise ServiceError("tabular.error_unreadable", "file") from None
    if len(df.columns) == 0 or len(df) == 0:
        raise ServiceError("tabular.error_empty", "file")
    if len(df) > max_rows:
        raise ServiceError("tabular.error_too_many_rows", "file", max=max_rows)
    return df
