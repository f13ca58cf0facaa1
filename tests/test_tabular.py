"""Spreadsheet helpers: CSV that Japanese Excel opens, .xlsx that keeps text as text, and tolerant reading."""

import io
import zipfile

import openpyxl
import pytest

from chiiki.services import tabular
from chiiki.services.errors import ServiceError

HEADERS = ["班", "住所", "氏名", "ふりがな", "電話"]
ROWS = [["1班", "旭町1条1丁目1-1", "旭川 花子", "アサヒカワ ハナコ", "0166123456"],
        ["2班", "旭町1条1丁目2-3", "北 太郎", "", "09012345678"]]


def test_csv_starts_with_a_bom_and_round_trips_japanese_text():
    data = tabular.to_csv_bytes(HEADERS, ROWS)
    assert data.startswith(b"\xef\xbb\xbf")
    assert "旭川 花子" in data.decode("utf-8-sig")
    df = tabular.read_table("roster.csv", data)
    assert list(df.columns) == HEADERS
    assert df.iloc[0]["電話"] == "0166123456"  # the leading zero survives
    assert df.iloc[1]["ふりがな"] == ""


def test_csv_cells_that_excel_would_run_as_formulas_are_neutralised():
    data = tabular.to_csv_bytes(["a"], [["=HYPERLINK(\"http://x\")"], ["@SUM(1)"], ["普通"]]).decode("utf-8-sig")
    assert "'=HYPERLINK" in data and "'@SUM" in data and "\r\n普通" in data


def test_xlsx_writes_text_never_formulas_and_keeps_leading_zeros():
    data = tabular.to_xlsx_bytes(["名前", "電話"], [["=1+1", "0166123456"], ["旭川", 3]], sheet_name="名簿/2026")
    ws = openpyxl.load_workbook(io.BytesIO(data)).active
    assert ws.title == "名簿2026"
    assert ws["A2"].value == "=1+1" and ws["A2"].data_type == "s"
    assert ws["B2"].value == "0166123456"
    assert ws["B3"].value == 3
    df = tabular.read_table("x.xlsx", data)
    assert df.iloc[0]["電話"] == "0166123456"


def test_reads_shift_jis_written_by_japanese_excel():
    text = "班,住所,氏名\r\n1班,旭町1条1丁目1-1,旭川 花子\r\n"
    df = tabular.read_table("paper.CSV", text.encode("cp932"))
    assert df.iloc[0]["氏名"] == "旭川 花子"


def test_reads_utf8_without_bom_and_drops_blank_rows():
    df = tabular.read_table("a.csv", "班,住所\n1班,旭町\n,\n\n2班,本町\n".encode())
    assert list(df["住所"]) == ["旭町", "本町"]


def test_full_width_and_padded_headers_are_normalised():
    df = tabular.read_table("a.csv", " 班 ,ＮＡＭＥ\n1,a\n".encode())
    assert list(df.columns) == ["班", "NAME"]


@pytest.mark.parametrize("name,data,key", [
    ("roster.txt", b"a,b\n1,2\n", "tabular.error_type"),
    ("roster", b"a,b\n1,2\n", "tabular.error_type"),
    ("roster.csv", b"", "tabular.error_empty"),
    ("roster.csv", b"\xef\xbb\xbf\r\n", "tabular.error_empty"),
    ("roster.csv", b"a,b\n", "tabular.error_empty"),
    ("roster.csv", b"a,b\n\x00,1\n", "tabular.error_unreadable"),
    ("roster.xlsx", b"not a zip at all", "tabular.error_unreadable"),
    ("roster.xlsx", b"PK\x03\x04broken", "tabular.error_unreadable"),
])
def test_bad_files_give_a_clear_message(name, data, key):
    with pytest.raises(ServiceError) as e:
        tabular.read_table(name, data)
    assert e.value.key == key and e.value.field == "file"


def test_undecodable_csv_is_refused_with_the_encoding_message():
    # Neither UTF-8 nor CP932: 0x81 starts a double-byte character that NUL cannot end.
    with pytest.raises(ServiceError) as e:
        tabular.read_table("a.csv", b"a,b\n\x81\x00,1\n")
    assert e.value.key == "tabular.error_encoding"


def test_too_big_file_is_refused_before_parsing():
    with pytest.raises(ServiceError) as e:
        tabular.read_table("a.csv", b"a\n" + b"x\n" * (tabular.MAX_BYTES // 2 + 1))
    assert e.value.key == "tabular.error_too_big"


def test_too_many_rows_are_refused():
    with pytest.raises(ServiceError) as e:
        tabular.read_table("a.csv", ("a\n" + "x\n" * 11).encode(), max_rows=10)
    assert e.value.key == "tabular.error_too_many_rows"


def test_xlsx_zip_bomb_is_refused():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("xl/worksheets/sheet1.xml", b"0" * (tabular.MAX_XLSX_UNPACKED + 1))
    with pytest.raises(ServiceError) as e:
        tabular.read_table("bomb.xlsx", buf.getvalue())
    assert e.value.key == "tabular.error_too_big"


def test_xlsx_has_a_bold_frozen_header_fitted_widths_and_every_kind_of_value():
    headers = ["氏名", "住所", "数", "比率", "済"] + [f"列{i}" for i in range(25)]
    rows = [["旭川 花子", "旭川市旭町1条1丁目1-1 ＆ <別棟>", 12, 0.5, True] + [f"v{i}" for i in range(25)],
            [None, "  前後に空白  ", -3, 1e-7, False] + [""] * 25,
            ["制御\x07文字", "x" * 40_000, 10**12, 2.25, None]]
    data = tabular.to_xlsx_bytes(headers, rows, sheet_name="回覧 & <一覧>")
    wb = openpyxl.load_workbook(io.BytesIO(data))
    ws = wb.active
    assert ws.title == "回覧 & <一覧>"
    assert [c.value for c in ws[1]] == headers and ws["A1"].font.b and not ws["A2"].font.b
    assert ws.freeze_panes == "A2"
    assert ws["A2"].value == "旭川 花子" and ws["B2"].value == "旭川市旭町1条1丁目1-1 ＆ <別棟>"
    assert (ws["C2"].value, ws["D2"].value, ws["E2"].value) == (12, 0.5, True)
    assert ws["A3"].value is None and ws["B3"].value == "  前後に空白  "
    assert (ws["C3"].value, ws["D3"].value, ws["E3"].value) == (-3, 1e-7, False)
    assert ws["F3"].value is None and ws["F2"].value == "v0"  # "" is an empty cell, as Excel shows it
    assert ws["A4"].value == "制御文字"  # a character XML cannot carry is dropped, not a broken file
    assert len(ws["B4"].value) == tabular.MAX_CELL_TEXT and ws["C4"].value == 10**12
    assert ws["AD2"].value == "v24" and ws.max_column == 30 and ws.max_row == 4
    # Full-width text counts double: the name column is wider than its 5 characters, capped for long text.
    # (Excel stores a width of n characters as n + 0.71 for the cell padding.)
    assert ws.column_dimensions["A"].width >= 10 and ws.column_dimensions["B"].width <= 60.72
    df = tabular.read_table("x.xlsx", data)
    assert list(df.columns) == headers and df.iloc[0]["氏名"] == "旭川 花子"


def test_xlsx_sheet_names_excel_would_refuse_are_made_acceptable():
    cases = {"a" * 30 + "🎍": "a" * 30, "𠮷" * 31: "𠮷" * 15, "'引用'": "引用", "History": "Sheet1",
             "[]:*?/\\": "Sheet1", "アンケート「夏祭り」の結果(2026年度)町内会全体の集計": None}
    for given, expected in cases.items():
        ws = openpyxl.load_workbook(io.BytesIO(tabular.to_xlsx_bytes(["a"], [["b"]], sheet_name=given))).active
        assert len(ws.title.encode("utf-16-le")) <= 62 and ws["A2"].value == "b", given
        if expected is not None:
            assert ws.title == expected, given


def test_xlsx_writes_a_str_subclass_as_its_text_like_any_other_value():
    import enum

    class Kind(str, enum.Enum):
        A = "a"

    ws = openpyxl.load_workbook(io.BytesIO(tabular.to_xlsx_bytes(["k"], [[Kind.A]]))).active
    assert ws["A2"].value == str(Kind.A)


def test_xlsx_of_a_header_only_and_of_thousands_of_rows():
    empty = openpyxl.load_workbook(io.BytesIO(tabular.to_xlsx_bytes(["班", "氏名"], []))).active
    assert [c.value for c in empty[1]] == ["班", "氏名"] and empty.max_row == 1
    rows = [[f"{i % 10 + 1}班", i + 1, f"世帯主 {i}"] for i in range(3000)]
    data = tabular.to_xlsx_bytes(["班", "順", "氏名"], rows)
    ws = openpyxl.load_workbook(io.BytesIO(data), read_only=True).active
    values = list(ws.values)
    assert len(values) == 3001 and values[-1] == ("10班", 3000, "世帯主 2999")
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        assert z.testzip() is None
        assert {"[Content_Types].xml", "xl/workbook.xml", "xl/worksheets/sheet1.xml",
                "xl/styles.xml"} <= set(z.namelist())


def test_display_width_counts_japanese_text_as_unicodedata_does():
    import unicodedata

    def reference(text: str) -> int:
        return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)

    samples = ["旭川市旭町1条1丁目1-1", "アサヒカワ ハナコ", "ｱｻﾋｶﾜ", "０１６６－２３－４５６７", "、。「」・ー〜",
               "한국어", "𠮷野家", "abc def", "Ünïcödé", "👍 了解", ""]
    ranges = [(0x3000, 0x30FF), (0x4E00, 0x4FFF), (0xFF01, 0xFFEE), (0xAC00, 0xAD00)]
    samples += ["".join(chr(i) for i in range(lo, hi) if unicodedata.category(chr(i)) != "Cn") for lo, hi in ranges]
    for text in samples:
        assert tabular._display_width(text) == reference(text), text


def test_xlsx_package_is_well_formed_and_every_part_is_declared_and_linked():
    import posixpath
    import xml.etree.ElementTree as ET

    data = tabular.to_xlsx_bytes(["a & b", "<c>"], [['"quoted"', "x"]], sheet_name='A & "B" <C>')
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        parts = {n: z.read(n) for n in z.namelist()}
    for name, body in parts.items():
        ET.fromstring(body)  # every part parses as XML
    ct = ET.fromstring(parts["[Content_Types].xml"])
    overrides = {e.get("PartName").lstrip("/") for e in ct if e.tag.endswith("Override")}
    assert overrides == {n for n in parts if not n.endswith(".rels") and n != "[Content_Types].xml"}
    # Every relationship points at a part that is in the package.
    for rels in [n for n in parts if n.endswith(".rels")]:
        base = posixpath.dirname(posixpath.dirname(rels))
        for rel in ET.fromstring(parts[rels]):
            assert posixpath.normpath(posixpath.join(base, rel.get("Target"))) in parts, (rels, rel.get("Target"))
    wb = openpyxl.load_workbook(io.BytesIO(data))
    assert wb.active.title == 'A & "B" <C>'
    assert [[c.value for c in row] for row in wb.active.iter_rows()] == [["a & b", "<c>"], ['"quoted"', "x"]]


def test_xlsx_stores_each_text_once_and_reads_back_every_value_as_written():
    import enum
    import random

    class Level(enum.IntEnum):
        HIGH = 3

    rnd = random.Random(7)
    pool = ["既読", "未読", "紙", " 前に空白", "後に空白 ", "改行\nあり", "a&b<c>", "=SUM(A1)", "0166", "🎍𠮷"]
    rows = [[rnd.choice(pool + [None, "", 0, -12, 3.5, 1e20, True, False]) for _ in range(7)] for _ in range(400)]
    rows.append([Level.HIGH, float("inf"), float("nan"), 2**40, -0.0, "x", None])
    data = tabular.to_xlsx_bytes([f"列{i}" for i in range(7)], rows)
    ws = openpyxl.load_workbook(io.BytesIO(data)).active
    got = [[c.value for c in row] for row in ws.iter_rows(min_row=2, max_col=7)]
    expected = [[None if v == "" and isinstance(v, str) else v for v in row] for row in rows[:-1]]
    assert got[:-1] == expected
    assert [[type(v) for v in row] for row in got[:-1]] == [[type(v) for v in row] for row in expected]
    assert got[-1] == [3, "inf", "nan", 2**40, 0, "x", None]
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        shared = z.read("xl/sharedStrings.xml").decode()
    assert shared.count("<si>") == len({v for row in rows for v in row if isinstance(v, str) and v} | {
        f"列{i}" for i in range(7)} | {"inf", "nan"})


def test_xlsx_column_widths_fit_the_widest_text_of_each_column():
    import random

    rnd = random.Random(3)
    alphabet = ["a", "Z", "1", "旭", "川", "カ", "ｶ", "①", "🎍", " "]
    columns = [[("".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 28)))) for _ in range(300)]
               for _ in range(6)]
    columns.append([rnd.randint(-10**9, 10**9) for _ in range(300)])
    rows = [list(r) for r in zip(*columns)]
    ws = openpyxl.load_workbook(io.BytesIO(tabular.to_xlsx_bytes([f"h{i}" for i in range(7)], rows))).active
    for i, column in enumerate(columns):
        widest = max(tabular._display_width(str(v)) for v in column + [f"h{i}"])
        letter = "ABCDEFG"[i]
        assert ws.column_dimensions[letter].width == min(60, max(8, widest + 2)), letter


def test_xlsx_keeps_texts_excel_would_otherwise_decode_or_change():
    texts = ["_x0041_B", "改行\r\nCR", "ただの_x", "_X004a_", "🎍" * 20_000, "=1+1"]
    data = tabular.to_xlsx_bytes(["t"], [[t] for t in texts] + [[10**15], [-(10**15) + 1], [(-12)]])
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        shared = z.read("xl/sharedStrings.xml").decode()
    # Excel reads "_xHHHH_" as a character: the text's own underscore is written as "_x005F_", and a
    # carriage return (which XML would turn into a line feed) as "_x000D_".
    assert "_x005F_x0041_B" in shared and "改行_x000D_\nCR" in shared
    assert "<t xml:space=\"preserve\">_X004a_<" in shared  # only a lower-case x makes an escape
    assert "ただの_x<" in shared
    ws = openpyxl.load_workbook(io.BytesIO(data)).active
    # Excel's limit of 32,767 characters counts UTF-16 units: an emoji takes two.
    assert ws["A6"].value == "🎍" * (tabular.MAX_CELL_TEXT // 2)
    # Integers beyond Excel's 15 exact digits stay whole as text; smaller ones are numbers.
    assert (ws["A8"].value, ws["A9"].value, ws["A10"].value) == ("1000000000000000", -(10**15) + 1, -12)


def test_xlsx_takes_rows_of_any_iterable_and_refuses_more_columns_than_a_sheet_holds():
    ws = openpyxl.load_workbook(io.BytesIO(tabular.to_xlsx_bytes(("a", "b"), ((x for x in (1, "y")),)))).active
    assert [c.value for c in ws[2]] == [1, "y"]
    with pytest.raises(ValueError):
        tabular.to_xlsx_bytes(["h"] * 16_385, [])


def test_csv_blank_lines_do_not_make_read_table_drop_data_rows_silently():
    """max_rows=3: two blank lines and three data rows are three rows (not too many); with skip_blank_lines=False
    the blank lines use up nrows=max_rows+1, and the third data row is silently left out."""
    df = tabular.read_table("p.csv", b"han,address,name\n\n\n1,a,b\n2,c,d\n3,e,f\n", max_rows=3)
    assert df["name"].tolist() == ["b", "d", "f"]



def test_csv_blank_lines_do_not_hide_too_many_rows():
    """max_rows=3 and four data rows with a blank line among them: refused as too many, not cut to three."""
    with pytest.raises(ServiceError) as e:
        tabular.read_table("p.csv", b"han,address,name\n1,a,b\n2,c,d\n\n3,e,f\n4,g,h\n", max_rows=3)
    assert e.value.key == "tabular.error_too_many_rows"



def test_csv_with_a_blank_line_before_its_header_is_still_read():
    """Before 5e4c61a blank lines before the header were skipped; now the file is refused as empty."""
    df = tabular.read_table("p.csv", b"\nhan,address,name\n1,a,b\n")
    assert list(df.columns) == ["han", "address", "name"] and df["name"].tolist() == ["b"]
