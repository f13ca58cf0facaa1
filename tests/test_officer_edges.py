"""Officers' circulars and the roster import at their edges: who left, empty rows, removed households, a
household with members that also gets paper, spaces and 「ー」 in what is typed."""

from __future__ import annotations

from sqlalchemy import update
from sqlmodel import select

from chiiki.models import Account, Delivery, Membership, OutboxMail
from chiiki.services import circulars, membership, roster
from chiiki.services.db import session
from tests.conftest import DemoCity
from tests.test_circular_services import send_to
from tests.test_roster_services import csv_bytes


def test_renotify_does_not_mail_a_member_who_left_the_association(demo):
    with session() as s:
        s.exec(update(Account).where(Account.email != "").values(email_circulars=True))
    kaicho = demo.actor("kaicho@example.jp")
    cid = send_to(demo, target_all=True, han_ids=[]).circular_id
    gone = demo.account_id("member@example.jp")
    membership.leave(demo.actor("member@example.jp"), demo.association_id(DemoCity.A1))
    with session() as s:
        addr = s.get(Account, gone).email
        before = len(s.exec(select(OutboxMail).where(OutboxMail.to_address == addr)).all())
    circulars.renotify(kaicho, cid)
    with session() as s:
        after = len(s.exec(select(OutboxMail).where(OutboxMail.to_address == addr)).all())
    assert after == before, "a reminder went to someone who is no longer a member"


def test_import_preview_line_numbers_match_the_spreadsheet_after_a_blank_row(demo):
    a1 = demo.association_id(DemoCity.A1)
    data = ("班,住所,氏名,ふりがな,電話\r\n"
            "1班,旭川市緑町5条8丁目1-1,紙野 一郎,,\r\n"
            ",,,,\r\n"                                   # line 3: an empty row Excel left behind
            "1班,旭川市緑町5条8丁目1-1,紙野 二郎,,\r\n").encode("utf-8-sig")  # line 4: a duplicate of line 2
    preview = roster.preview_import(demo.actor("kaicho@example.jp"), a1, "p.csv", data)
    bad = [r for r in preview.rows if r.errors][0]
    assert bad.line == 4, f"the officer is sent to line {bad.line}, the duplicate is on line 4"


def test_print_sheet_leaves_out_a_paper_household_that_left_the_roster(demo):
    """A paper-only household taken off the roster (moved away) after the circular was sent is no stop on the
    paper route any more: the 回覧表 printed afterwards must not send the circular to its door."""
    from chiiki.models import Household
    kaicho = demo.actor("kaicho@example.jp")
    cid = send_to(demo, han_nos=(1,)).circular_id
    before = circulars.print_sheet(kaicho, cid)
    assert len(before.rows) >= 2
    with session() as s:
        gone = s.exec(select(Household).join(Delivery, Delivery.household_id == Household.id).where(
            Delivery.circular_id == cid, Delivery.channel == "paper", Household.paper_only.is_(True))
            .order_by(Household.route_position)).first()
        gone_address = gone.address
    roster.remove_household(kaicho, gone.id)
    sheet = circulars.print_sheet(kaicho, cid)
    assert gone_address not in [r.address for r in sheet.rows]


def test_readlist_names_the_paper_copy_of_a_member_household_as_the_status_page_does(demo):
    """A household with members that also asked for paper (paper_copy): the status page and the print sheet name
    it by its members; the read list's paper row must too (not the stale or empty head_name)."""
    import csv
    import io
    from chiiki.models import Household
    kaicho = demo.actor("kaicho@example.jp")
    a1 = demo.association_id(DemoCity.A1)
    me = demo.account_id("member@example.jp")
    # A paper-only household on the roster (紙野 ふみ), into which the officer later links a member who registered.
    from tests.test_roster_services import form
    han1 = demo.han_ids(DemoCity.A1)[0]
    hid = roster.save_household(kaicho, a1, form(han1))
    with session() as s:
        mid = s.exec(select(Membership.id).where(Membership.account_id == me, Membership.association_id == a1)).one()
    roster.link_household(kaicho, hid, mid)
    with session() as s:  # and the family still wants the paper circular too
        home = s.get(Household, hid)
        home.paper_copy = True
        s.add(home)
        address = home.address
    han_no = 1
    cid = send_to(demo, han_nos=(han_no,)).circular_id
    status_rows = circulars.households(kaicho, cid, page_size=100).rows
    shown = next(r for r in status_rows if r.household_id == hid)
    assert shown.channel == "paper" and shown.name  # the members' names on the status page
    f = circulars.export_readlist(kaicho, cid, "csv")
    rows = list(csv.reader(io.StringIO(f.data.decode("utf-8-sig"))))
    paper_row = next(r for r in rows[1:] if r[3] == address and r[4] == "紙")
    assert paper_row[2] == shown.name, (paper_row, shown.name)


def test_import_keeps_the_whole_name_of_a_cell_with_spaces_around_it(demo):
    """What the preview validated is what confirm writes: a cell Excel left padded with spaces loses no letter."""
    from chiiki.models import Household
    a1 = demo.association_id(DemoCity.A1)
    kaicho = demo.actor("kaicho@example.jp")
    name = "紙野" + "あ" * 98                     # 100 characters: the longest name the roster takes
    data = csv_bytes([("1班", "旭川市緑町5条8丁目7-7", "  " + name, "", "")])
    preview = roster.preview_import(kaicho, a1, "p.csv", data)
    assert preview.ok
    roster.confirm_import(kaicho, a1, preview.raw())
    with session() as s:
        stored = s.exec(select(Household.head_name).where(Household.address == "旭川市緑町5条8丁目7-7")).one()
    assert stored == name, f"stored {len(stored)} characters of {len(name)}"


def test_import_sees_an_address_written_with_the_long_vowel_dash_as_the_same_address(demo):
    """People type 「1ー17」 for 1-17 (the phone check already reads ー as a dash): a second import of the roster
    typed that way must not add every house again."""
    from chiiki.models import Household
    a1 = demo.association_id(DemoCity.A1)
    with session() as s:
        existing = s.exec(select(Household.address).where(Household.association_id == a1,
                                                           Household.address.like("%-%"))).first()
    typed = existing.replace("-", "ー")
    preview = roster.preview_import(demo.actor("kaicho@example.jp"), a1, "p.csv",
                                    csv_bytes([("1班", typed, "紙野 一郎", "", "")]))
    assert [k for k, _p in preview.rows[0].errors] == ["roster.import.dup_existing"], (existing, typed)


def test_the_status_page_counts_among_those_to_remind_only_who_are_still_members(demo):
    kaicho = demo.actor("kaicho@example.jp")
    cid = send_to(demo, target_all=True, han_ids=[]).circular_id
    before = circulars.status(kaicho, cid).unread_members
    membership.leave(demo.actor("member@example.jp"), demo.association_id(DemoCity.A1))
    assert circulars.status(kaicho, cid).unread_members == before - 1


def test_a_phone_number_whose_leading_zero_the_spreadsheet_dropped_gets_it_back(demo):
    """A number cell in .xlsx (or a CSV Excel saved) holds 166112222 for 0166-11-2222."""
    from chiiki.models import Household
    from chiiki.services import tabular

    kaicho, a1 = demo.actor("kaicho@example.jp"), demo.association_id(DemoCity.A1)
    xlsx = tabular.to_xlsx_bytes(["班", "住所", "氏名", "ふりがな", "電話"],
                                 [["1班", "旭川市緑町5条8丁目3-1", "紙野 一郎", "", 166112222],
                                  ["1班", "旭川市緑町5条8丁目3-2", "紙野 二郎", "", 9012345678]])
    import io

    import openpyxl

    wb = openpyxl.load_workbook(io.BytesIO(xlsx))
    wb.active["E2"], wb.active["E3"] = 166112222, 9012345678  # number cells, as Excel keeps a typed number
    out = io.BytesIO()
    wb.save(out)
    preview = roster.preview_import(kaicho, a1, "p.xlsx", out.getvalue())
    assert preview.ok, preview.rows
    roster.confirm_import(kaicho, a1, preview.raw())
    with session() as s:
        phones = s.exec(select(Household.phone).where(Household.address.startswith("旭川市緑町5条8丁目3-"))
                        .order_by(Household.address)).all()
    assert phones == ["0166112222", "09012345678"]
    data = csv_bytes([("1班", "旭川市緑町5条8丁目3-3", "紙野 三郎", "", "166112223"),
                      ("1班", "旭川市緑町5条8丁目3-4", "紙野 四郎", "", "0166-11-2224")])
    assert [r.errors for r in roster.preview_import(kaicho, a1, "p.csv", data).rows] == [(), ()]
    assert roster._imported_phone("0166-11-2224") == "0166112224" and roster._imported_phone("") == ""


def test_an_international_number_is_not_given_a_leading_zero():
    """「+65 6123 4567」 (Singapore, 10 digits without the +) is accepted as is by validate.phone (and by the
    roster form); the import makes it 06561234567, a different number."""
    from chiiki.services import roster, validate

    assert validate.phone("+65 6123 4567") == "6561234567"
    assert roster._imported_phone("+65 6123 4567") == validate.phone("+65 6123 4567")
