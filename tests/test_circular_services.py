"""Circular services: sending fans out exactly, residents see only their own, the ledger counts stay exact."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta, timezone

import openpyxl
import pytest
from sqlalchemy import and_, func, update
from sqlmodel import select

from chiiki.models import (
    Account,
    Attachment,
    AuditEvent,
    Circular,
    CircularAmendment,
    CircularTarget,
    Delivery,
    Han,
    Household,
    Membership,
    OutboxMail,
    utcnow,
)
from chiiki.i18n import TZ, fmt_date, fmt_dt, tr
from chiiki.services import attachments, circulars
from chiiki.services.db import session
from chiiki.services.errors import Denied, NotFound, ServiceError, ValidationErrors
from tests.conftest import DemoCity

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def count(model, *where) -> int:
    with session() as s:
        return s.exec(select(func.count()).select_from(model).where(*where)).one()


def ledger() -> tuple:
    """Every row a send or a confirmation may write, to prove a refused request wrote nothing."""
    with session() as s:
        rows = s.exec(select(Delivery).order_by(Delivery.id)).all()
        return (count(Circular), count(CircularTarget), count(OutboxMail), count(CircularAmendment),
                [(d.id, d.state, d.confirmed_at, d.on_behalf, d.paper_delivered_at) for d in rows])


def han(demo, n: int) -> int:
    return demo.han_ids(DemoCity.A1)[n - 1]


def send_to(demo, login="kaicho@example.jp", han_nos=(1,), **over):
    a1 = demo.association_id(DemoCity.A1)
    data = {"title": "ごみ集積所の清掃当番", "body": "今月の当番は**1班**です。\n\n- 朝8時\n- 軍手持参",
            "due_date": "", "target_all": False, "han_ids": [str(han(demo, n)) for n in han_nos], **over}
    files = data.pop("files", None)
    return circulars.send(demo.actor(login), a1, data, files)


def households_in(demo, han_no: int) -> tuple[int, int, int]:
    """(households, member accounts, paper households) of a han of A1, straight from the tables."""
    hid = han(demo, han_no)
    with session() as s:
        homes = s.exec(select(Household.id).where(Household.han_id == hid, Household.removed_at.is_(None))).all()
        members = s.exec(select(func.count()).select_from(Membership).join(Account, Account.id == Membership.account_id)
                         .where(Membership.household_id.in_(homes), Membership.status == "active",
                                Account.deleted_at.is_(None))).one()
        with_members = s.exec(select(func.count(func.distinct(Membership.household_id)))
                              .where(Membership.household_id.in_(homes), Membership.status == "active")).one()
    return len(homes), members, len(homes) - with_members


def my_delivery(demo, login: str, circular_id: int) -> Delivery | None:
    with session() as s:
        return s.exec(select(Delivery).where(Delivery.circular_id == circular_id,
                                             Delivery.account_id == demo.account_id(login))).first()


# --------------------------------------------------------------------------- sending


def test_sending_to_one_han_creates_one_delivery_per_member_and_one_paper_row_per_paper_household(demo):
    homes, members, paper = households_in(demo, 1)
    result = send_to(demo)
    assert (result.households, result.member_accounts, result.paper_households) == (homes, members, paper)
    cid = result.circular_id
    assert count(Delivery, Delivery.circular_id == cid, Delivery.channel == "digital") == members
    assert count(Delivery, Delivery.circular_id == cid, Delivery.channel == "paper",
                 Delivery.account_id.is_(None)) == paper
    assert count(Delivery, Delivery.circular_id == cid, Delivery.han_id != han(demo, 1)) == 0
    with session() as s:
        assert s.get(Circular, cid).household_count == homes


def test_member_of_the_han_sees_it_other_han_and_other_association_never_do(demo):
    cid = send_to(demo).circular_id
    a1 = demo.association_id(DemoCity.A1)
    member = demo.actor("member@example.jp")
    page = circulars.inbox(member, a1)
    assert [i.circular_id for i in page.items if i.circular_id == cid] == [cid]
    assert circulars.unread_count(member, a1) >= 1

    member2 = demo.actor("member2@example.jp")
    assert cid not in [i.circular_id for i in circulars.inbox(member2, a1, page_size=100).items]
    with pytest.raises(NotFound):
        circulars.open_circular(member2, cid)

    other = demo.actor("other@example.jp")
    a3 = demo.association_id(DemoCity.A3)
    assert cid not in [i.circular_id for i in circulars.inbox(other, a3, page_size=100).items]
    assert circulars.unread_count(other, a1) == 0
    with pytest.raises(Denied):
        circulars.inbox(other, a1)
    with pytest.raises(NotFound):
        circulars.open_circular(other, cid)


@pytest.mark.parametrize("over, field", [
    ({"title": "   "}, "title"),
    ({"due_date": "2001-01-01"}, "due_date"),
    ({"due_date": "not-a-date"}, "due_date"),
    ({"han_ids": []}, "target"),
    ({"han_ids": ["x"]}, "target"),
])
def test_bad_compose_input_names_the_field_and_writes_nothing(demo, over, field):
    before = ledger()
    with pytest.raises(ValidationErrors) as e:
        send_to(demo, **over)
    assert field in e.value.errors
    assert ledger() == before


def test_a_han_of_another_association_is_refused_with_a_clear_message(demo):
    a3_han = demo.han_ids(DemoCity.A3)[0]
    before = ledger()
    with pytest.raises(ValidationErrors) as e:
        send_to(demo, han_ids=[str(a3_han)])
    assert e.value.errors["target"][0] == "circular.error_target_han"
    assert ledger() == before


def test_han_leader_sends_only_to_own_han(demo):
    before = ledger()
    with pytest.raises(ValidationErrors) as e:
        send_to(demo, login="hancho@example.jp", han_nos=(2,))
    assert e.value.errors["target"][0] == "circular.error_target_scope"
    with pytest.raises(ValidationErrors):
        send_to(demo, login="hancho@example.jp", target_all=True)
    assert ledger() == before
    assert send_to(demo, login="hancho@example.jp", han_nos=(1,)).households == households_in(demo, 1)[0]


def test_members_without_send_circulars_cannot_send(demo):
    for login in ("member@example.jp", "kaikei@example.jp", "other@example.jp", "city@example.jp"):
        with pytest.raises(Denied):
            send_to(demo, login=login)


def test_whole_association_send_reaches_every_household_once(demo):
    a1 = demo.association_id(DemoCity.A1)
    result = send_to(demo, target_all=True, han_ids=[])
    total = count(Household, Household.association_id == a1, Household.removed_at.is_(None))
    assert result.households == total
    with session() as s:
        per_home = s.exec(select(func.count(func.distinct(Delivery.household_id)))
                          .where(Delivery.circular_id == result.circular_id)).one()
    assert per_home == total


def test_preview_counts_without_writing(demo):
    a1 = demo.association_id(DemoCity.A1)
    before = ledger()
    p = circulars.preview(demo.actor("kaicho@example.jp"), a1,
                          {"title": "t", "body": "**b**", "han_ids": [str(han(demo, 1))]})
    homes, _m, paper = households_in(demo, 1)
    assert (p.households, p.paper_households) == (homes, paper)
    assert p.blocks[0].lines[0].segs[0].kind == "b"
    assert ledger() == before


# --------------------------------------------------------------------------- reading and confirming


def test_opening_marks_read_and_confirm_counts_the_household_once(demo):
    cid = send_to(demo).circular_id
    member = demo.actor("member@example.jp")
    view = circulars.open_circular(member, cid)
    assert view.state == "read" and view.delivery_id
    circulars.confirm(member, view.delivery_id)
    again = circulars.open_circular(member, cid)
    assert again.state == "confirmed" and again.confirmed_at is not None
    status = circulars.status(demo.actor("kaicho@example.jp"), cid)
    assert status.counts["digital_confirmed"] == 1
    assert sum(status.counts.values()) == status.households


def test_confirming_twice_is_a_clear_message_and_changes_nothing(demo):
    cid = send_to(demo).circular_id
    member = demo.actor("member@example.jp")
    did = circulars.open_circular(member, cid).delivery_id
    circulars.confirm(member, did)
    before = ledger()
    with pytest.raises(ServiceError) as e:
        circulars.confirm(member, did)
    assert e.value.key == "circular.error_already_confirmed"
    assert ledger() == before


def test_confirming_another_households_delivery_is_refused(demo):
    cid = send_to(demo, han_nos=(1, 2)).circular_id
    theirs = my_delivery(demo, "member2@example.jp", cid)
    before = ledger()
    for login in ("member@example.jp", "other@example.jp", "kaicho@example.jp"):
        with pytest.raises(Denied):
            circulars.confirm(demo.actor(login), theirs.id)
    for junk in ("abc", -1, None, True, 10**30):
        with pytest.raises(ServiceError):
            circulars.confirm(demo.actor("member@example.jp"), junk)
    assert ledger() == before


def test_household_counts_as_reached_when_any_member_confirmed(demo):
    cid = send_to(demo, target_all=True, han_ids=[]).circular_id
    with session() as s:
        hid, a, b = s.exec(
            select(Delivery.household_id, func.min(Delivery.account_id), func.max(Delivery.account_id))
            .where(Delivery.circular_id == cid, Delivery.channel == "digital").group_by(Delivery.household_id)
            .having(func.count() > 1)).first() or (None, None, None)
        if hid is None:  # the demo city may have only single-member households: add a second member
            d = s.exec(select(Delivery).where(Delivery.circular_id == cid, Delivery.channel == "digital")).first()
            acc = Account(login_id="second@example.jp", name="二人目", display_name="二人目")
            s.add(acc)
            s.flush()
            s.add(Delivery(circular_id=cid, household_id=d.household_id, account_id=acc.id, han_id=d.han_id))
            hid, a = d.household_id, d.account_id
    with session() as s:
        first = s.exec(select(Delivery).where(Delivery.circular_id == cid, Delivery.account_id == a)).one()
        s.execute(update(Delivery).where(Delivery.id == first.id).values(state="confirmed", confirmed_at=utcnow()))
    status = circulars.status(demo.actor("kaicho@example.jp"), cid)
    assert status.reached == 1
    assert status.counts["digital_confirmed"] == 1
    assert sum(status.counts.values()) == status.households


def test_unread_count_is_the_members_own_unread_deliveries(demo):
    a1 = demo.association_id(DemoCity.A1)
    member = demo.actor("member@example.jp")
    start = circulars.unread_count(member, a1)
    cid = send_to(demo).circular_id
    assert circulars.unread_count(member, a1) == start + 1
    circulars.open_circular(member, cid)
    assert circulars.unread_count(member, a1) == start
    assert circulars.unread_count(demo.actor("newcomer@example.jp"), a1) == 0


def test_inbox_is_newest_first_searchable_filterable_and_paginated(demo):
    a1 = demo.association_id(DemoCity.A1)
    ids = [send_to(demo, title=f"お知らせ {i:02d}", body="本文").circular_id for i in range(25)]
    special = send_to(demo, title="防災訓練のご案内", body="集合は公園").circular_id
    member = demo.actor("member@example.jp")
    page1 = circulars.inbox(member, a1, page_size=10)
    assert page1.items[0].circular_id == special
    assert page1.total >= 26 and page1.pages >= 3
    page3 = circulars.inbox(member, a1, page=3, page_size=10)
    assert {i.circular_id for i in page3.items}.isdisjoint({i.circular_id for i in page1.items})
    found = circulars.inbox(member, a1, query="公園")
    assert [i.circular_id for i in found.items] == [special]
    assert circulars.inbox(member, a1, query="%").total == 0
    circulars.confirm(member, circulars.open_circular(member, ids[0]).delivery_id)
    confirmed = circulars.inbox(member, a1, state="confirmed", page_size=100)
    assert ids[0] in [i.circular_id for i in confirmed.items]
    unread = circulars.inbox(member, a1, state="unread", page_size=100)
    assert ids[0] not in [i.circular_id for i in unread.items] and special in [i.circular_id for i in unread.items]
    with pytest.raises(ServiceError):
        circulars.inbox(member, a1, state="everything")


def test_amendment_is_shown_to_readers_and_found_by_search(demo):
    a1 = demo.association_id(DemoCity.A1)
    cid = send_to(demo).circular_id
    circulars.amend(demo.actor("kaicho@example.jp"), cid, "集合時間は**9時**に変更です")
    view = circulars.open_circular(demo.actor("member@example.jp"), cid)
    assert view.amendments and view.amendments[0].blocks[0].lines[0].segs[1].text == "9時"
    assert view.body.startswith("今月の当番")
    assert [i.circular_id for i in circulars.inbox(demo.actor("member@example.jp"), a1, query="9時").items] == [cid]
    # A 班長 may not amend a circular that went beyond their han.
    all_cid = send_to(demo, target_all=True, han_ids=[]).circular_id
    with pytest.raises(Denied):
        circulars.amend(demo.actor("hancho@example.jp"), all_cid, "訂正")
    with pytest.raises(ServiceError):
        circulars.amend(demo.actor("kaicho@example.jp"), cid, "  ")


def amendment_state(cid: int) -> tuple:
    """What a correction writes: its rows, the mail queued, and when each delivery was last notified."""
    with session() as s:
        return (count(CircularAmendment, CircularAmendment.circular_id == cid), count(OutboxMail),
                s.exec(select(Delivery.id, Delivery.notified_at).where(Delivery.circular_id == cid)
                       .order_by(Delivery.id)).all())


def test_a_correction_is_mailed_to_every_member_it_reached_who_takes_mail_and_not_twice_within_the_hour(demo):
    """Those who read or confirmed it get a short mail with the link, in their own language; so do those who have
    not opened it yet (the mail at sending carried the uncorrected text); nobody who does not take circulars by
    mail, nor anyone it was not sent to. A second correction soon after mails nobody again, and holds the
    reminders off as a reminder would."""
    from tests.test_survey_services import add_housemate

    add_housemate(demo)
    with session() as s:
        s.execute(update(Account).values(email_circulars=False))
        s.execute(update(Account).where(Account.login_id.in_(
            ["member@example.jp", "housemate@example.jp", "hancho@example.jp", "member2@example.jp"]))
            .values(email_circulars=True))
        s.execute(update(Account).where(Account.login_id == "housemate@example.jp").values(locale="en"))
    kaicho, member = demo.actor("kaicho@example.jp"), demo.actor("member@example.jp")
    cid = send_to(demo, han_nos=(1,), title="防災訓練").circular_id
    assert my_delivery(demo, "member2@example.jp", cid) is None  # member2 is in another han
    circulars.confirm(member, circulars.open_circular(member, cid).delivery_id)
    circulars.open_circular(demo.actor("housemate@example.jp"), cid)
    queued_before = count(OutboxMail)
    circulars.amend(kaicho, cid, "集合は**9時**に変わりました")
    with session() as s:
        queued = s.exec(select(OutboxMail).order_by(OutboxMail.id)).all()[queued_before:]
    by_address = {m.to_address: m for m in queued}
    assert sorted(by_address) == ["hancho@example.jp", "housemate@example.jp", "member@example.jp"]
    ja, en = by_address["member@example.jp"], by_address["housemate@example.jp"]
    assert ja.subject == "【回覧の訂正】旭町一丁目町内会:防災訓練"
    assert en.subject == "[Circular corrected] 旭町一丁目町内会: 防災訓練"
    made = circulars.open_circular(member, cid).amendments[0].created_at
    assert f"【新しい訂正({fmt_dt(made, 'ja')})】\n集合は9時に変わりました" in ja.body  # the correction, as plain text
    assert f"[New correction, made on {fmt_dt(made, 'en')}]\n集合は9時に変わりました" in en.body
    assert all(m.body.count(f"/circulars/view?id={cid}") == 1 and "**" not in m.body and "kaicho" not in m.body
               and m.kind == "circular" for m in queued)
    # A second correction ten minutes later: shown to readers, mailed to nobody.
    second = circulars.amend(kaicho, cid, "雨天の場合は中止です")
    assert (second.mails, second.held) == (0, 3)
    assert count(OutboxMail) == queued_before + 3
    assert [a.body for a in circulars.open_circular(member, cid).amendments] == ["集合は**9時**に変わりました",
                                                                              "雨天の場合は中止です"]
    # A reminder now leaves out hancho, who has it unread but was just told of the correction; it goes to the
    # members of han 1 who do not take mail (not told of it: marked notified by the reminder, as before).
    with session() as s:
        quiet = count(Delivery, Delivery.circular_id == cid, Delivery.channel == "digital",
                      Delivery.state == "unread", Delivery.account_id != demo.account_id("hancho@example.jp"),
                      Delivery.household_id != member_home(demo, "member@example.jp"))
    assert quiet and circulars.renotify(kaicho, cid) == circulars.Renotified(quiet, 0)
    with pytest.raises(ServiceError) as e:
        circulars.renotify(kaicho, cid)
    assert e.value.key == "circular.error_renotified_soon"
    # An hour later, a correction is mailed again.
    _earlier(cid, 120)
    third = circulars.amend(kaicho, cid, "集合場所は公園です")
    assert (third.mails, third.held) == (3, 0)
    # Its mail has every correction so far: those not mailed to them yet first (the second too, whose own mail
    # was held back), then the one they were mailed, and the link.
    with session() as s:
        last = s.exec(select(OutboxMail).where(OutboxMail.to_address == "member@example.jp")
                      .order_by(OutboxMail.id.desc())).first()
    places = [last.body.index(t) for t in ("【新しい訂正", "雨天の場合は中止です", "集合場所は公園です",
                                           "これまでに出た訂正も", "集合は9時に変わりました", "/circulars/view")]
    assert places == sorted(places) and last.body.count("新しい訂正") == 2


def test_corrections_too_long_for_a_mail_send_the_reader_to_the_link(demo):
    kaicho = demo.actor("kaicho@example.jp")
    cid = send_to(demo, han_nos=(1,), title="防災訓練").circular_id
    with session() as s:
        s.execute(update(Account).where(Account.login_id == "member@example.jp").values(email_circulars=True))
    queued_before = count(OutboxMail)
    long_text = "長い訂正です。" * (circulars.MAIL_AMENDMENTS_MAX // 7 + 1)
    assert circulars.amend(kaicho, cid, long_text).mails >= 1
    with session() as s:
        mine = s.exec(select(OutboxMail).where(OutboxMail.to_address == "member@example.jp")
                      .order_by(OutboxMail.id.desc())).first()
    assert count(OutboxMail) > queued_before and "長い訂正です" not in mine.body
    assert "訂正の内容は、下のリンクから回覧を開いてご確認ください。" in mine.body and "開けます" not in mine.body
    assert mine.body.count(f"/circulars/view?id={cid}") == 1


def _sent_with_two_taking_mail(demo) -> tuple:
    """(the 会長, a circular sent to 1班), the member and the 班長 of 1班 the only ones taking circulars by mail."""
    with session() as s:
        s.execute(update(Account).values(email_circulars=False))
        s.execute(update(Account).where(Account.login_id.in_(["member@example.jp", "hancho@example.jp"]))
                  .values(email_circulars=True))
    return demo.actor("kaicho@example.jp"), send_to(demo, han_nos=(1,), title="防災訓練").circular_id


def test_a_reminder_just_before_a_correction_does_not_hold_the_correction_back(demo):
    """Reminded at 10:00, corrected at 10:20: what the members were reminded of has changed, so the correction
    is mailed to them all the same (the limit is on corrections one after another, and on reminders)."""
    kaicho, cid = _sent_with_two_taking_mail(demo)
    reminded = circulars.renotify(kaicho, cid)
    assert reminded.mails == 2
    corrected = circulars.amend(kaicho, cid, "集合は9時です")
    assert (corrected.mails, corrected.held) == (2, 0)
    # The reminder's hour now counts from the correction's mail.
    with pytest.raises(ServiceError) as e:
        circulars.renotify(kaicho, cid)
    assert e.value.key == "circular.error_renotified_soon"


def test_a_refused_or_empty_correction_writes_and_mails_nothing(demo):
    with session() as s:
        s.execute(update(Account).where(Account.email != "").values(email_circulars=True))
    all_cid = send_to(demo, target_all=True, han_ids=[]).circular_id
    before = amendment_state(all_cid)
    for actor, text, error in [(demo.actor("hancho@example.jp"), "訂正", Denied),  # beyond their han
                               (demo.actor("member@example.jp"), "訂正", NotFound),
                               (demo.actor("kaicho@example.jp"), "   ", ServiceError),
                               (demo.actor("kaicho@example.jp"), "x" * (circulars.MAX_AMENDMENT + 1), ServiceError),
                               (demo.actor("kaicho@example.jp"), ["訂正"], ServiceError)]:
        with pytest.raises(error):
            circulars.amend(actor, all_cid, text)
        assert amendment_state(all_cid) == before
    with pytest.raises(ServiceError):
        circulars.amend(demo.actor("kaicho@example.jp"), "abc", "訂正")
    assert amendment_state(all_cid) == before


# --------------------------------------------------------------------------- attachments


def test_attachments_are_checked_by_content_not_by_name(demo):
    a1 = demo.association_id(DemoCity.A1)
    kaicho = demo.actor("kaicho@example.jp")
    before = count(Attachment)
    with pytest.raises(ServiceError) as e:
        attachments.upload(kaicho, a1, "chirashi.pdf", b"MZ\x90\x00" + b"\x00" * 200)
    assert e.value.key == "circular.error_file_type"
    with pytest.raises(ServiceError) as e:
        attachments.upload(kaicho, a1, "big.pdf", b"%PDF-" + b"0" * (20 * 1024 * 1024))
    assert e.value.key == "circular.error_file_too_big"
    with pytest.raises(ServiceError):
        attachments.upload(kaicho, a1, "page.html", b"<html><script>alert(1)</script>")
    with pytest.raises(Denied):
        attachments.upload(demo.actor("member@example.jp"), a1, "a.pdf", PDF)
    assert count(Attachment) == before
    info = attachments.upload(kaicho, a1, "../../etc/お知らせ.exe", PNG)
    assert info.content_type == "image/png" and info.filename == "お知らせ.png"
    # Stored where only the app's own user may read it.
    with session() as s:
        stored = attachments._path(s.get(Attachment, info.id).storage_key)
    assert stored.stat().st_mode & 0o777 == 0o600 and stored.parent.stat().st_mode & 0o077 == 0


def test_attachment_is_served_only_to_those_who_may_see_the_circular(demo):
    a1 = demo.association_id(DemoCity.A1)
    kaicho = demo.actor("kaicho@example.jp")
    f = attachments.upload(kaicho, a1, "案内.pdf", PDF)
    cid = send_to(demo, files=[f.id]).circular_id
    found, key = circulars.attachment_for(demo.actor("member@example.jp"), f.id)
    assert found.circular_id if hasattr(found, "circular_id") else True
    assert attachments.file_path(key).read_bytes() == PDF
    assert "attachments" in str(attachments.file_path(key).parent)
    for login in ("member2@example.jp", "other@example.jp", "newcomer@example.jp"):
        with pytest.raises(NotFound):
            circulars.attachment_for(demo.actor(login), f.id)
    assert circulars.open_circular(demo.actor("member@example.jp"), cid).attachments[0].filename == "案内.pdf"
    # The uploaded file cannot be sent a second time with another circular.
    with pytest.raises(ServiceError):
        send_to(demo, files=[f.id])


def test_someone_elses_upload_cannot_be_attached(demo):
    a1 = demo.association_id(DemoCity.A1)
    f = attachments.upload(demo.actor("kaicho@example.jp"), a1, "a.pdf", PDF)
    before = ledger()
    with pytest.raises(ServiceError) as e:
        send_to(demo, login="hancho@example.jp", files=[f.id])
    assert e.value.key == "circular.error_file_gone"
    assert ledger() == before


# --------------------------------------------------------------------------- officers: ledger, lists, paper


def test_paper_delivery_confirmation_and_on_behalf_move_households_between_categories(demo):
    cid = send_to(demo).circular_id
    kaicho = demo.actor("kaicho@example.jp")
    with session() as s:
        paper_home = s.exec(select(Delivery.household_id).where(Delivery.circular_id == cid,
                                                                Delivery.channel == "paper")).first()
        member_home = s.exec(select(Delivery.household_id).where(
            Delivery.circular_id == cid, Delivery.account_id == demo.account_id("member@example.jp"))).one()
    start = circulars.status(kaicho, cid).counts
    assert circulars.record_paper(kaicho, cid, paper_home, "delivered") == "paper_delivered"
    assert circulars.record_paper(kaicho, cid, paper_home, "confirmed") == "paper_confirmed"
    with pytest.raises(ServiceError):
        circulars.record_paper(kaicho, cid, paper_home, "confirmed")
    with pytest.raises(ServiceError):
        circulars.record_paper(kaicho, cid, member_home, "delivered")
    circulars.confirm_on_behalf(kaicho, cid, member_home)
    with pytest.raises(ServiceError):
        circulars.confirm_on_behalf(kaicho, cid, member_home)
    after = circulars.status(kaicho, cid)
    assert after.counts["paper_confirmed"] == start["paper_confirmed"] + 1
    assert after.counts["paper_pending"] == start["paper_pending"] - 1
    assert after.counts["on_behalf"] == 1
    assert sum(after.counts.values()) == after.households
    view = circulars.open_circular(demo.actor("member@example.jp"), cid)
    assert view.state == "confirmed" and view.on_behalf
    assert count(AuditEvent, AuditEvent.action == "circular.confirm_on_behalf",
                 AuditEvent.subject_account_id == demo.account_id("member@example.jp")) == 1


def test_a_household_with_members_can_get_the_paper_circular_too(demo):
    """The officer ticks 紙の回覧板も届ける on a household with a member account: a send gives it a paper
    delivery beside the member's, it is on the han's 回覧表, its paper copy is tracked until someone confirms,
    and a member's confirmation counts it reached (status and counters agree)."""
    from chiiki.services import roster

    kaicho = demo.actor("kaicho@example.jp")
    a1 = demo.association_id(DemoCity.A1)
    member = demo.account_id("member@example.jp")
    with session() as s:
        home = s.get(Household, s.exec(select(Membership.household_id).where(
            Membership.account_id == member, Membership.status == "active")).one())
    detail = roster.get_household(kaicho, home.id)
    assert detail.paper_copy is False
    roster.save_household(kaicho, a1, {"han_id": str(home.han_id), "route_position": "", "address": home.address,
                                       "note": "", "paper_copy": "on"}, home.id)
    assert roster.get_household(kaicho, home.id).paper_copy is True
    rows = roster.roster_page(kaicho, a1, query=home.address).rows
    assert {r.household_id: r.channel for r in rows}[home.id] == "both"
    han_no = demo.han_ids(DemoCity.A1).index(home.han_id) + 1
    homes, members, paper = households_in(demo, han_no)
    preview = circulars.preview(kaicho, a1, {"title": "t", "body": "b", "due_date": "", "target_all": False,
                                             "han_ids": [str(home.han_id)]})
    assert (preview.households, preview.digital_households, preview.paper_households) == \
        (homes, homes - paper, paper + 1)
    result = send_to(demo, han_nos=(han_no,))
    cid = result.circular_id
    assert (result.households, result.digital_households, result.paper_households) == (homes, homes - paper, paper + 1)
    assert count(Delivery, Delivery.circular_id == cid, Delivery.household_id == home.id,
                 Delivery.channel == "paper") == 1
    with session() as s:
        name = s.get(Account, member).name
    sheet = {r.address: r.name for r in circulars.print_sheet(kaicho, cid, home.han_id).rows}
    assert name in sheet[home.address]  # by its members' names, not a stale representative's

    def category() -> str:
        page = circulars.households(kaicho, cid, han_id=home.han_id, page_size=100)
        return {r.household_id: r.category for r in page.rows}[home.id]

    assert category() == "paper_pending"
    assert circulars.record_paper(kaicho, cid, home.id, "delivered") == "paper_delivered"
    circulars.confirm(demo.actor("member@example.jp"), my_delivery(demo, "member@example.jp", cid).id)
    assert category() == "digital_confirmed"
    row = {r.household_id: r for r in circulars.households(kaicho, cid, han_id=home.han_id, page_size=100).rows}[home.id]
    assert row.channel == "paper" and name in row.name  # its paper copy can still be recorded
    status = circulars.status(kaicho, cid)
    with session() as s:
        assert s.get(Circular, cid).confirmed_households == status.reached == 1


def test_officer_records_only_within_their_han(demo):
    cid = send_to(demo, han_nos=(1, 2)).circular_id
    with session() as s:
        han2_home = s.exec(select(Delivery.household_id).where(Delivery.circular_id == cid,
                                                               Delivery.han_id == han(demo, 2))).first()
    before = ledger()
    with pytest.raises(NotFound):
        circulars.record_paper(demo.actor("hancho@example.jp"), cid, han2_home, "confirmed")
    with pytest.raises(NotFound):
        circulars.confirm_on_behalf(demo.actor("hancho@example.jp"), cid, han2_home)
    with pytest.raises(NotFound):
        circulars.confirm_on_behalf(demo.actor("member@example.jp"), cid, han2_home)
    assert ledger() == before
    scoped = circulars.status(demo.actor("hancho@example.jp"), cid)
    assert [h.han_id for h in scoped.by_han] == [han(demo, 1)]


def test_status_page_names_need_view_members_and_are_audited(demo):
    cid = send_to(demo, target_all=True, han_ids=[]).circular_id
    kaicho = demo.actor("kaicho@example.jp")
    before = count(AuditEvent, AuditEvent.action == "circular.readlist")
    page = circulars.households(kaicho, cid, page_size=100)
    assert page.total == circulars.status(kaicho, cid).households
    assert any(r.name for r in page.rows)
    assert count(AuditEvent, AuditEvent.action == "circular.readlist") > before
    # The 班長 sees only 1班 rows.
    scoped = circulars.households(demo.actor("hancho@example.jp"), cid, page_size=100)
    assert {r.han_name for r in scoped.rows} == {"1班"}
    with pytest.raises(Denied):
        circulars.households(demo.actor("hancho@example.jp"), cid, han_id=han(demo, 2))
    # Plain members and the other association get nothing (the 会計, who exports, reads it: see
    # tests/test_circular_edges.py).
    for login in ("member@example.jp", "other@example.jp"):
        with pytest.raises(NotFound):
            circulars.households(demo.actor(login), cid)
        with pytest.raises(NotFound):
            circulars.status(demo.actor(login), cid)


def test_an_officer_without_view_members_sees_no_names(demo):
    cid = send_to(demo).circular_id
    with session() as s:
        from chiiki.models import OfficerRole

        role = s.exec(select(OfficerRole).where(OfficerRole.title == "班長")).one()
        role.permissions = "send_circulars"
        s.add(role)
    page = circulars.households(demo.actor("hancho@example.jp"), cid, page_size=100)
    assert page.rows and all(r.name == "" and r.address == "" for r in page.rows)


def test_not_reached_list_waits_n_days_then_lists_unconfirmed_in_route_order(demo):
    cid = send_to(demo).circular_id
    kaicho = demo.actor("kaicho@example.jp")
    assert circulars.households(kaicho, cid, not_reached_days=3).too_early
    with session() as s:
        s.execute(update(Circular).where(Circular.id == cid).values(sent_at=utcnow() - timedelta(days=4)))
    member = demo.actor("member@example.jp")
    circulars.confirm(member, circulars.open_circular(member, cid).delivery_id)
    page = circulars.households(kaicho, cid, not_reached_days=3, page_size=100)
    assert not page.too_early
    assert page.total == circulars.status(kaicho, cid).households - 1
    assert all(r.category not in circulars.REACHED for r in page.rows)
    assert [r.route_position for r in page.rows] == sorted(r.route_position for r in page.rows)


def test_sent_list_shows_reach_and_respects_han_scope(demo):
    a1 = demo.association_id(DemoCity.A1)
    c1 = send_to(demo, han_nos=(1,)).circular_id
    c2 = send_to(demo, han_nos=(2,)).circular_id
    mine = circulars.sent_list(demo.actor("hancho@example.jp"), a1, page_size=100)
    ids = [i.id for i in mine.items]
    assert c1 in ids and c2 not in ids
    full = circulars.sent_list(demo.actor("kaicho@example.jp"), a1, page_size=100)
    row = next(i for i in full.items if i.id == c2)
    assert row.households == households_in(demo, 2)[0] and row.reached == 0
    with pytest.raises(Denied):
        circulars.sent_list(demo.actor("member@example.jp"), a1)


def test_print_sheet_lists_the_hans_paper_households_in_route_order(demo):
    cid = send_to(demo).circular_id
    sheet = circulars.print_sheet(demo.actor("hancho@example.jp"), cid)
    assert sheet.han_name == "1班"
    assert len(sheet.rows) == households_in(demo, 1)[2]
    assert [r.position for r in sheet.rows] == sorted(r.position for r in sheet.rows)
    assert all(r.name for r in sheet.rows)
    with pytest.raises(NotFound):
        circulars.print_sheet(demo.actor("hancho@example.jp"), cid, han(demo, 2))
    with pytest.raises(NotFound):
        circulars.print_sheet(demo.actor("member@example.jp"), cid)


def test_a_household_that_moved_to_another_han_is_not_named_to_its_old_han_leader(demo):
    """Names and addresses are read as they are now: once a household has moved to 2班, the 1班 leader sees its
    row in an old circular's households, print sheet and read list without them; the 会長 still sees them."""
    import dataclasses

    from chiiki.services.policy import EXPORT, VIEW_MEMBERS

    cid = send_to(demo).circular_id
    hancho = demo.actor("hancho@example.jp")
    role = hancho.roles[0]
    exporter = dataclasses.replace(hancho, roles=(dataclasses.replace(
        role, permissions=frozenset({VIEW_MEMBERS, EXPORT}), han_id=han(demo, 1)),))
    with session() as s:
        moved = s.exec(select(Household).where(Household.han_id == han(demo, 1), Household.paper_only.is_(True))
                       .order_by(Household.id)).first()
        moved.han_id, moved.address = han(demo, 2), "旭川市旭町1条9丁目9-9"
        s.add(moved)

    def row_of(rows):
        [row] = [r for r in rows if r.household_id == moved.id]
        return row

    assert (row_of(circulars.households(hancho, cid, page_size=100).rows).name, row_of(
        circulars.households(hancho, cid, page_size=100).rows).address) == ("", "")
    full = row_of(circulars.households(demo.actor("kaicho@example.jp"), cid, page_size=100).rows)
    assert full.name == moved.head_name and full.address == "旭川市旭町1条9丁目9-9"
    sheet = circulars.print_sheet(hancho, cid)
    assert len(sheet.rows) == households_in(demo, 1)[2] + 1  # it got this circular's paper copy in 1班
    assert "旭川市旭町1条9丁目9-9" not in {r.address for r in sheet.rows} and all(
        r.name for r in sheet.rows if r.address)
    text = circulars.export_readlist(exporter, cid, "csv").data.decode("utf-8-sig")
    assert "旭川市旭町1条9丁目9-9" not in text and moved.head_name not in text
    assert "旭川市旭町1条9丁目9-9" in circulars.export_readlist(
        demo.actor("kaicho@example.jp"), cid, "csv").data.decode("utf-8-sig")


# --------------------------------------------------------------------------- exports


def test_read_list_exports_as_csv_with_bom_and_xlsx_and_is_audited(demo):
    cid = send_to(demo).circular_id
    kaicho = demo.actor("kaicho@example.jp")
    member = demo.actor("member@example.jp")
    circulars.confirm(member, circulars.open_circular(member, cid).delivery_id)
    csv_file = circulars.export_readlist(kaicho, cid, "csv")
    assert csv_file.data.startswith(b"\xef\xbb\xbf")
    text = csv_file.data.decode("utf-8-sig")
    assert "確認済み" in text and "1班" in text
    xlsx = circulars.export_readlist(kaicho, cid, "xlsx")
    sheet = openpyxl.load_workbook(io.BytesIO(xlsx.data)).active
    homes, members, paper = households_in(demo, 1)
    assert sheet.max_row == 1 + members + paper
    assert count(AuditEvent, AuditEvent.action == "circular.export",
                 AuditEvent.subject_account_id == demo.account_id("member@example.jp")) == 2
    with pytest.raises(NotFound):
        circulars.export_readlist(demo.actor("hancho@example.jp"), cid, "csv")  # no `export`
    with pytest.raises(ServiceError):
        circulars.export_readlist(kaicho, cid, "exe")


def test_read_list_labels_each_row_by_its_channel_and_state_in_either_language(demo):
    cid = send_to(demo).circular_id
    kaicho = demo.actor("kaicho@example.jp")
    member = demo.actor("member@example.jp")
    circulars.confirm(member, circulars.open_circular(member, cid).delivery_id)
    with session() as s:
        paper = s.exec(select(Delivery.household_id).where(Delivery.circular_id == cid, Delivery.channel == "paper")
                       .order_by(Delivery.household_id)).all()
    assert len(paper) >= 3
    circulars.record_paper(kaicho, cid, paper[0], "delivered")
    circulars.record_paper(kaicho, cid, paper[1], "confirmed")
    with session() as s:
        ledger = s.exec(select(Delivery.channel, Delivery.state, Delivery.paper_delivered_at)
                        .where(Delivery.circular_id == cid)).all()
    for lang, labels in (("ja", {("digital", "unread"): "未読", ("digital", "confirmed"): "確認済み",
                                 ("paper", "pending"): "紙を未配布", ("paper", "delivered"): "紙を配布済み",
                                 ("paper", "confirmed"): "紙で確認"}),
                         ("en", {("digital", "unread"): "Unread", ("digital", "confirmed"): "Confirmed",
                                 ("paper", "pending"): "Paper not yet delivered",
                                 ("paper", "delivered"): "Paper delivered", ("paper", "confirmed"): "Paper confirmed"})):
        rows = list(csv.reader(io.StringIO(circulars.export_readlist(kaicho, cid, "csv", lang).data.decode("utf-8-sig"))))
        expected = sorted(labels[(ch, st if ch == "digital" or st == "confirmed" else
                                  "delivered" if delivered else "pending")] for ch, st, delivered in ledger)
        assert sorted(r[5] for r in rows[1:]) == expected, lang
        assert {r[4] for r in rows[1:]} == ({"電子", "紙"} if lang == "ja" else {"Digital", "Paper"})


def test_matrix_export_has_a_row_per_household_and_a_column_per_recent_circular(demo):
    a1 = demo.association_id(DemoCity.A1)
    for i in range(3):
        send_to(demo, title=f"回覧{i}", target_all=True, han_ids=[])
    f = circulars.export_matrix(demo.actor("kaikei@example.jp"), a1, "xlsx")
    sheet = openpyxl.load_workbook(io.BytesIO(f.data)).active
    assert sheet.max_row == 1 + count(Household, Household.association_id == a1, Household.removed_at.is_(None))
    assert any("回覧2" in str(c.value) for c in sheet[1])
    # One event per person listed, so each of them can see it on their access page.
    assert count(AuditEvent, AuditEvent.action == "circular.matrix_export",
                 AuditEvent.subject_account_id == demo.account_id("member@example.jp")) == 1
    with pytest.raises(Denied):
        circulars.export_matrix(demo.actor("hancho@example.jp"), a1, "csv")
    # With no circular in it, the matrix still lists every household (and is audited like any other).
    lines = list(csv.reader(io.StringIO(circulars.export_matrix(
        demo.actor("kaikei@example.jp"), a1, "csv", count=0).data.decode("utf-8-sig"))))
    assert len(lines[0]) == 3 and len(lines) == sheet.max_row and all(len(line) == 3 for line in lines)
    assert count(AuditEvent, AuditEvent.action == "circular.matrix_export",
                 AuditEvent.subject_account_id == demo.account_id("member@example.jp")) == 2


def test_matrix_cells_match_each_households_category_in_every_circular(demo):
    """Every cell of the read matrix is that household's category for that circular as the ledger gives it
    (household_states, an independent GROUP BY), "" where the circular was not sent to it; with more circulars
    than one packed sum of ranks holds (21), and each category present in the newest and the oldest column."""
    _matrix_cells_match_the_ledger(demo)


@pytest.mark.postgres
def test_matrix_cells_match_the_ledger_on_postgresql(pg_app_db, tmp_path, monkeypatch):
    """The same on PostgreSQL, which takes one FILTERed maximum per circular instead of packed sums."""
    from chiiki import settings as settings_module
    from chiiki.seed import seed_demo

    monkeypatch.setenv("CHIIKI_DATA_DIR", str(tmp_path))
    settings_module.reload()
    seed_demo(content=False)
    _matrix_cells_match_the_ledger(DemoCity())


def _matrix_cells_match_the_ledger(demo) -> None:
    from chiiki.services.policy import ALL_HAN

    a1 = demo.association_id(DemoCity.A1)
    kaicho = demo.actor("kaicho@example.jp")
    # Some circulars to han 1 only (not in a symmetric pattern, so that columns in a wrong order show).
    sent = [send_to(demo, title=f"回覧{i}", **({} if i in (1, 4, 9, 15) else {"target_all": True, "han_ids": []}))
            .circular_id for i in range(23)]
    assert len(sent) > circulars._PER_SUM
    # The oldest column (slot 0, the first packed sum) and the newest (slot 22, the second sum): every category
    # in each of them, in other households in the one than in the other.
    for n, cid in enumerate((sent[0], sent[-1])):
        member = demo.actor(("member@example.jp", "member2@example.jp")[n])
        circulars.confirm(member, circulars.open_circular(member, cid).delivery_id)
        circulars.open_circular(demo.actor(("member2@example.jp", "member@example.jp")[n]), cid)
        with session() as s:
            paper = s.exec(select(Delivery.household_id).where(Delivery.circular_id == cid, Delivery.channel == "paper")
                           .order_by(Delivery.id)).all()
            unread = s.exec(select(Delivery.household_id).where(
                Delivery.circular_id == cid, Delivery.channel == "digital", Delivery.state == "unread")
                .order_by(Delivery.id.desc())).all()
        circulars.record_paper(kaicho, cid, paper[n], "confirmed")
        circulars.record_paper(kaicho, cid, paper[1 - n], "delivered")
        circulars.confirm_on_behalf(kaicho, cid, unread[n])
    for lang in ("ja", "en"):
        rows = list(csv.reader(io.StringIO(circulars.export_matrix(
            demo.actor("kaikei@example.jp"), a1, "csv", lang, count=len(sent)).data.decode("utf-8-sig"))))
        newest_first = sent[::-1]
        assert [h.split(" ", 1)[1] for h in rows[0][3:]] == [f"回覧{i}" for i in range(len(sent))]
        with session() as s:
            states = circulars.household_states(s, sent, ALL_HAN)
            homes = s.exec(select(Household.id, Han.name, Household.route_position).join(Han, Han.id == Household.han_id)
                           .where(Household.association_id == a1, Household.removed_at.is_(None))).all()
        expected = {(han_name, str(pos + 1)): [tr(lang, f"circular.short.{states[(cid, hid)].category}")
                                               if (cid, hid) in states else "" for cid in newest_first[::-1]]
                    for hid, han_name, pos in homes}
        got = {(r[0], r[1]): r[3:] for r in rows[1:]}
        assert len(got) == len(rows) - 1 == len(expected)
        assert got == expected, lang
        for cid in (sent[0], sent[-1]):
            seen = {states[k].category for k in states if k[0] == cid}
            assert seen == set(circulars.CATEGORIES), seen
        assert any(cell == "" for row in got.values() for cell in row)  # the han-1 circulars left the others out


# --------------------------------------------------------------------------- re-notify


def test_renotify_reaches_only_unread_members_within_scope(demo):
    cid = send_to(demo, han_nos=(1, 2)).circular_id
    member = demo.actor("member@example.jp")
    circulars.open_circular(member, cid)
    result = circulars.renotify(demo.actor("hancho@example.jp"), cid)
    with session() as s:
        expected = s.exec(select(func.count()).select_from(Delivery).where(
            Delivery.circular_id == cid, Delivery.han_id == han(demo, 1), Delivery.channel == "digital",
            Delivery.state == "unread")).one()
    assert result.members == expected


def member_home(demo, login: str) -> int:
    with session() as s:
        return s.exec(select(Membership.household_id).where(Membership.account_id == demo.account_id(login),
                                                             Membership.status == "active")).one()


@pytest.mark.parametrize("reached_by", ["housemate_read", "housemate_confirmed", "paper_stamp"])
def test_a_reminder_skips_every_member_of_a_household_someone_of_it_already_opened(demo, reached_by):
    """A 回覧板 goes to the household: once a housemate opened or confirmed it (or its paper copy came back
    stamped), the member who has not opened it is not reminded, and the status page's count of those a
    reminder goes to says the same. A household nobody of which has opened it is still reminded."""
    _reminder_skips_a_reached_household(demo, reached_by)


@pytest.mark.postgres
def test_a_reminder_skips_every_member_of_a_household_someone_of_it_already_opened_on_postgresql(pg_app_db):
    from chiiki.seed import seed_demo

    seed_demo(content=False)
    _reminder_skips_a_reached_household(DemoCity(), "housemate_read")


def _reminder_skips_a_reached_household(demo, reached_by: str) -> None:
    from tests.test_survey_services import add_housemate

    add_housemate(demo)
    home = member_home(demo, "member@example.jp")
    with session() as s:
        s.exec(update(Account).where(Account.email != "").values(email_circulars=True))
        if reached_by == "paper_stamp":
            s.exec(update(Household).where(Household.id == home).values(paper_copy=True))
    kaicho, housemate = demo.actor("kaicho@example.jp"), demo.actor("housemate@example.jp")
    cid = send_to(demo, han_nos=(1,)).circular_id
    before = circulars.status(kaicho, cid).unread_members
    if reached_by == "paper_stamp":
        circulars.record_paper(kaicho, cid, home, "confirmed")
    else:
        view = circulars.open_circular(housemate, cid)
        if reached_by == "housemate_confirmed":
            circulars.confirm(housemate, view.delivery_id)
    assert my_delivery(demo, "member@example.jp", cid).state == "unread"
    to_remind = circulars.status(kaicho, cid).unread_members
    assert to_remind == before - 2  # the housemate and the member: their household has it
    with session() as s:
        mails_before = s.exec(select(func.count()).select_from(OutboxMail)
                              .where(OutboxMail.to_address == "member@example.jp")).one()
    result = circulars.renotify(kaicho, cid)
    assert result.members == to_remind
    with session() as s:
        assert s.exec(select(func.count()).select_from(OutboxMail)
                      .where(OutboxMail.to_address == "member@example.jp")).one() == mails_before
        reminded = set(s.exec(select(Delivery.account_id).where(
            Delivery.circular_id == cid, Delivery.notified_at > s.get(Circular, cid).sent_at)).all())
    assert demo.account_id("member@example.jp") not in reminded
    assert demo.account_id("hancho@example.jp") in reminded  # a household not reached yet still is


def test_status_and_household_pages_agree_with_the_per_household_states(demo):
    """The status counts and the household list are computed in SQL: they match the ledger household by household."""
    from chiiki.models import Han
    from chiiki.services.policy import ALL_HAN

    cid = send_to(demo, target_all=True, han_ids=[]).circular_id
    kaicho = demo.actor("kaicho@example.jp")
    member = demo.actor("member@example.jp")
    circulars.confirm(member, circulars.open_circular(member, cid).delivery_id)
    circulars.open_circular(demo.actor("member2@example.jp"), cid)
    with session() as s:
        paper = s.exec(select(Delivery.household_id).where(Delivery.circular_id == cid, Delivery.channel == "paper")
                       .order_by(Delivery.id)).all()
        digital = s.exec(select(Delivery.household_id).where(Delivery.circular_id == cid,
                                                             Delivery.channel == "digital", Delivery.state == "unread")
                         .order_by(Delivery.id.desc())).all()
    circulars.record_paper(kaicho, cid, paper[0], "confirmed")
    circulars.record_paper(kaicho, cid, paper[1], "delivered")
    circulars.confirm_on_behalf(kaicho, cid, digital[0])
    with session() as s:
        states = circulars.household_states(s, [cid], ALL_HAN, positions=True)
        order = dict(s.exec(select(Han.id, Han.route_order)).all())
    expected = {k: sum(st.category == k for st in states.values()) for k in circulars.CATEGORIES}
    assert all(expected[k] for k in ("digital_confirmed", "read", "unread", "on_behalf", "paper_confirmed",
                                     "paper_delivered", "paper_pending"))
    status = circulars.status(kaicho, cid)
    assert status.counts == expected and status.households == len(states)
    for h in status.by_han:
        mine = [st for st in states.values() if st.han_id == h.han_id]
        assert h.households == len(mine)
        assert h.counts == {k: sum(st.category == k for st in mine) for k in circulars.CATEGORIES}
    ranked = sorted(states.values(), key=lambda st: (order[st.han_id], st.route_position, st.household_id))
    page = circulars.households(kaicho, cid, page=2, page_size=7)
    assert page.total == len(ranked)
    assert [r.household_id for r in page.rows] == [st.household_id for st in ranked[7:14]]
    assert [r.category for r in page.rows] == [st.category for st in ranked[7:14]]
    # The read matrix's newest column shows the same category for each household, in the same route order.
    matrix = circulars.export_matrix(kaicho, demo.association_id(DemoCity.A1), "csv")
    lines = list(csv.reader(io.StringIO(matrix.data.decode("utf-8-sig"))))
    short = {k: tr("ja", f"circular.short.{k}") for k in circulars.CATEGORIES}
    assert [line[-1] for line in lines[1:]] == [short[st.category] for st in ranked]
    for category in circulars.CATEGORIES:
        listed = circulars.households(kaicho, cid, category=category, page_size=100)
        assert [r.household_id for r in listed.rows] == [st.household_id for st in ranked if st.category == category]
    han2 = demo.han_ids(DemoCity.A1)[1]
    listed = circulars.households(kaicho, cid, han_id=han2, page_size=100)
    assert [r.household_id for r in listed.rows] == [st.household_id for st in ranked if st.han_id == han2]


def test_opening_a_circular_the_household_already_confirmed_says_so(demo):
    """The first opening marks the member's delivery read and shows that a housemate confirmed it."""
    from tests.test_survey_services import add_housemate

    add_housemate(demo)
    cid = send_to(demo, target_all=True, han_ids=[]).circular_id
    housemate = demo.actor("housemate@example.jp")
    member = demo.actor("member@example.jp")
    assert housemate.memberships[0].household_id == member.memberships[0].household_id
    fresh = circulars.open_circular(member, cid)
    assert fresh.marked_read and not fresh.household_confirmed and fresh.state == "read"
    other = send_to(demo, target_all=True, han_ids=[]).circular_id
    circulars.confirm(housemate, circulars.open_circular(housemate, other).delivery_id)
    first = circulars.open_circular(member, other)
    assert first.marked_read and first.household_confirmed and first.state == "read"
    again = circulars.open_circular(member, other)
    assert not again.marked_read and again.household_confirmed
    assert again.target_label == tr("ja", "circular.target_all")


def test_a_send_writes_deliveries_only_for_existing_households_members_and_han(demo):
    """Delivery's household, account and han are plain ids (no foreign key, migration 0011): the send must
    take them from the rows it targets, and each must match: the household's own han, an active member of
    that household."""
    sent = send_to(demo, target_all=True, han_ids=[])
    with session() as s:
        rows = s.exec(select(Delivery.household_id, Delivery.account_id, Delivery.han_id, Household.han_id,
                             Household.id, Han.id, Membership.id)
                      .join(Household, Household.id == Delivery.household_id, isouter=True)
                      .join(Han, Han.id == Delivery.han_id, isouter=True)
                      .join(Membership, and_(Membership.household_id == Delivery.household_id,
                                             Membership.account_id == Delivery.account_id,
                                             Membership.status == "active"), isouter=True)
                      .where(Delivery.circular_id == sent.circular_id)).all()
    assert len(rows) == sent.member_accounts + sent.paper_households > 50
    for household_id, account_id, han_id, home_han, found_home, found_han, found_member in rows:
        assert found_home == household_id and han_id == home_han
        assert han_id is None or found_han == han_id
        assert account_id is None or found_member is not None


def test_officers_open_their_hans_circulars_without_a_delivery_and_nobody_else_does(demo):
    from chiiki.services.policy import ANONYMOUS

    kaicho, hancho = demo.actor("kaicho@example.jp"), demo.actor("hancho@example.jp")
    homes = {a.memberships[0].han_id for a in (kaicho, hancho)}
    n = next(i for i in range(1, len(demo.han_ids(DemoCity.A1)) + 1) if han(demo, i) not in homes)
    cid = send_to(demo, han_nos=(n,)).circular_id
    view = circulars.open_circular(kaicho, cid)  # 会長: every han, no delivery of their own
    assert view.officer_view and view.delivery_id == 0 and view.state == ""
    assert not view.marked_read and view.confirmed_at is None and not view.household_confirmed
    with session() as s:
        assert view.target_label == s.exec(select(Han.name).where(Han.id == han(demo, n))).one()
    assert view.title == "ごみ集積所の清掃当番" and [b.kind for b in view.blocks] == ["p", "ul"]
    with pytest.raises(NotFound):  # 班長 of another han
        circulars.open_circular(hancho, cid)
    with pytest.raises(NotFound):
        circulars.open_circular(ANONYMOUS, cid)
    with pytest.raises(NotFound):
        circulars.open_circular(kaicho, cid + 1000)
    with pytest.raises(ServiceError):
        circulars.open_circular(kaicho, "abc")


def test_a_delivery_confirmed_while_it_is_opened_shows_as_confirmed(demo, monkeypatch):
    """Marking read finds the delivery no longer unread (confirmed meanwhile): the page shows it as it now is."""
    cid = send_to(demo).circular_id
    member = demo.actor("member@example.jp")
    real_lock = circulars._lock_circular

    def confirmed_meanwhile(s, circular_id):
        s.connection().execute(update(Delivery).where(
            Delivery.circular_id == cid, Delivery.account_id == member.account_id).values(
            state="confirmed", confirmed_at=utcnow(), confirmed_by=member.account_id, on_behalf=True))
        real_lock(s, circular_id)

    monkeypatch.setattr(circulars, "_lock_circular", confirmed_meanwhile)
    view = circulars.open_circular(member, cid)
    assert view.state == "confirmed" and view.confirmed_at is not None and view.on_behalf
    assert view.household_confirmed and not view.marked_read and view.delivery_id


def test_whoever_may_open_a_circular_may_download_its_files_and_nobody_else(demo):
    """open_circular states the visibility rule in its own statement; attachment_for keeps _visible: the same."""
    from chiiki.services.policy import ANONYMOUS

    a1 = demo.association_id(DemoCity.A1)
    kaicho, hancho = demo.actor("kaicho@example.jp"), demo.actor("hancho@example.jp")
    homes = {a.memberships[0].han_id for a in (kaicho, hancho)}
    n = next(i for i in range(1, len(demo.han_ids(DemoCity.A1)) + 1) if han(demo, i) not in homes)
    f = attachments.upload(kaicho, a1, "案内.pdf", PDF)
    cid = send_to(demo, han_nos=(n,), files=[f.id]).circular_id
    with session() as s:
        reader = s.exec(select(Account.login_id).join(Delivery, Delivery.account_id == Account.id)
                        .where(Delivery.circular_id == cid)).first()
    assert reader  # a member of that han
    allowed = {}
    for login in (reader, "kaicho@example.jp", "hancho@example.jp", "member@example.jp", "member2@example.jp",
                  "other@example.jp", "newcomer@example.jp", None):
        actor = demo.actor(login) if login else ANONYMOUS
        try:
            circulars.open_circular(actor, cid)
            opens = True
        except NotFound:
            opens = False
        try:
            circulars.attachment_for(actor, f.id)
            downloads = True
        except NotFound:
            downloads = False
        assert opens == downloads, login
        allowed[login] = opens
    assert allowed[reader] and allowed["kaicho@example.jp"]
    assert not allowed["hancho@example.jp"] and not allowed["other@example.jp"] and not allowed[None]


def test_renotify_mails_each_unread_member_at_most_once_an_hour(demo):
    """A second tap of 未読の会員に再通知, or a second officer at the same moment, does not mail them twice."""
    with session() as s:
        s.exec(update(Account).where(Account.email != "").values(email_circulars=True))
    kaicho = demo.actor("kaicho@example.jp")
    cid = send_to(demo, target_all=True, han_ids=[]).circular_id
    first = circulars.renotify(kaicho, cid)  # the mail at sending is not a reminder: this one goes out
    assert first.members > 0 and first.mails > 0
    with session() as s:
        queued = s.exec(select(func.count()).select_from(OutboxMail)).one()
    with pytest.raises(ServiceError) as e:
        circulars.renotify(kaicho, cid)
    assert e.value.key == "circular.error_renotified_soon"
    with session() as s:
        assert s.exec(select(func.count()).select_from(OutboxMail)).one() == queued
        s.exec(update(Delivery).where(Delivery.circular_id == cid, Delivery.notified_at.is_not(None))
               .values(notified_at=utcnow() - timedelta(hours=2)))
    assert circulars.renotify(kaicho, cid).members == first.members  # an hour later, again


def reminder_mails(kaicho, cid: int) -> dict[str, OutboxMail]:
    """Send a reminder as if the last notice were two hours old; the mails it queued, by address."""
    with session() as s:
        s.exec(update(Delivery).where(Delivery.circular_id == cid, Delivery.notified_at.is_not(None))
               .values(notified_at=utcnow() - timedelta(hours=2)))
        before = s.exec(select(func.max(OutboxMail.id))).one() or 0
    assert circulars.renotify(kaicho, cid).mails == 2
    with session() as s:
        return {m.to_address: m for m in s.exec(select(OutboxMail).where(OutboxMail.id > before)).all()}


def test_a_reminder_after_a_correction_says_the_circular_was_corrected_with_the_dates_and_the_correction(demo):
    """A reminder carries the circular's text as sent; once it was corrected, a member reading only the mail is
    told so (subject and a line above the text, with the correction dates in the city's time zone) and gets the
    corrections after the text, or, when they are too long for a mail, is sent to the link to read them. In each
    member's language; the dates and the text only, never who corrected it. A reminder before any correction is
    the mail it was."""
    from tests.test_survey_services import add_housemate

    add_housemate(demo)  # in member's household: nobody there opens it, both are reminded
    with session() as s:
        s.execute(update(Account).values(email_circulars=False))
        s.execute(update(Account).where(Account.login_id.in_(["member@example.jp", "housemate@example.jp"]))
                  .values(email_circulars=True))
        s.execute(update(Account).where(Account.login_id == "housemate@example.jp").values(locale="en"))
        officer = s.exec(select(Account).where(Account.login_id == "kaicho@example.jp")).one()
        officer_names = [officer.name, officer.kana, officer.display_name]
    kaicho = demo.actor("kaicho@example.jp")
    cid = send_to(demo, han_nos=(1,), title="防災訓練", body="集合は**8時**です。").circular_id

    plain = reminder_mails(kaicho, cid)
    ja, en = plain["member@example.jp"], plain["housemate@example.jp"]
    assert ja.subject == "【回覧】旭町一丁目町内会:防災訓練" and "訂正" not in ja.body
    assert en.subject == "[Circular] 旭町一丁目町内会: 防災訓練" and "correct" not in en.body.lower()

    utc = timezone.utc
    with session() as s:
        s.exec(update(Circular).where(Circular.id == cid).values(sent_at=datetime(2026, 3, 1, 0, 0, tzinfo=utc)))
    circulars.amend(kaicho, cid, "集合は**9時**に変わりました")
    circulars.amend(kaicho, cid, "雨天の場合は中止です")
    with session() as s:
        first, second = s.exec(select(CircularAmendment).where(CircularAmendment.circular_id == cid)
                               .order_by(CircularAmendment.id)).all()
        first.created_at = datetime(2026, 3, 2, 1, 0, tzinfo=utc)
        second.created_at = datetime(2026, 3, 3, 23, 30, tzinfo=utc)  # 08:30 on 4 March in Japan
        s.add_all([first, second])

    mails = reminder_mails(kaicho, cid)
    ja, en = mails["member@example.jp"], mails["housemate@example.jp"]
    assert ja.subject == "【回覧・訂正あり】旭町一丁目町内会:防災訓練"
    assert en.subject == "[Circular, corrected] 旭町一丁目町内会: 防災訓練"
    assert "この回覧は2026年3月2日・2026年3月4日に訂正されました" in ja.body
    assert "this circular was corrected on 2026-03-02, 2026-03-04" in en.body
    for m, first_label, second_label in ((ja, "【2026年3月2日の訂正】", "【2026年3月4日の訂正】"),
                                         (en, "[Correction made on 2026-03-02]", "[Correction made on 2026-03-04]")):
        b = m.body
        assert b.index("corrected on" if m is en else "訂正されました") < b.index("集合は8時です。") \
            < b.index(first_label + "\n集合は9時に変わりました") < b.index(second_label + "\n雨天の場合は中止です")
        assert b.count(f"/circulars/view?id={cid}") == 1 and m.kind == "circular"
        assert not any(name and name in b for name in officer_names)

    circulars.amend(kaicho, cid, "持ち物:" + "懐中電灯、" * (circulars.MAIL_AMENDMENTS_MAX // 5))
    mails = reminder_mails(kaicho, cid)
    ja, en = mails["member@example.jp"], mails["housemate@example.jp"]
    today = utcnow().astimezone(TZ).date()
    assert (f"この回覧は2026年3月2日・2026年3月4日・{fmt_date(today, 'ja')}に訂正されました。"
            "下のリンクから開いて、訂正の内容をご確認ください。") in ja.body
    assert (f"this circular was corrected on 2026-03-02, 2026-03-04, {today.isoformat()}. "
            "Open it with the link below to read the correction.") in en.body
    assert "懐中電灯" not in ja.body + en.body and "9時" not in ja.body + en.body
    assert "集合は8時です。" in ja.body and "集合は8時です。" in en.body


def _earlier(cid: int, minutes: int) -> None:
    """Everything that happened to the circular (its sending, corrections and notices), `minutes` earlier."""
    back = timedelta(minutes=minutes)
    with session() as s:
        rows = [*s.exec(select(Delivery).where(Delivery.circular_id == cid, Delivery.notified_at.is_not(None))),
                *s.exec(select(CircularAmendment).where(CircularAmendment.circular_id == cid))]
        for row in rows:
            if isinstance(row, Delivery):
                row.notified_at -= back
                if row.correction_mailed_at is not None:
                    row.correction_mailed_at -= back
            else:
                row.created_at -= back
            s.add(row)
        c = s.get(Circular, cid)
        c.sent_at -= back
        s.add(c)


def _corrections_fifty_and_forty_minutes_apart(demo) -> None:
    """Corrected at 10:00 (mailed), again at 10:50 (held: they were told at 10:00), again at 11:30: the last mail
    about a correction went 90 minutes before, so this one is mailed. A held correction mailed nobody: it holds
    nothing back, or corrections 50 minutes apart would go unmailed for ever."""
    kaicho, cid = _sent_with_two_taking_mail(demo)
    assert circulars.amend(kaicho, cid, "集合は9時です").mails == 2
    _earlier(cid, 50)
    second = circulars.amend(kaicho, cid, "雨天中止です")
    assert (second.mails, second.held) == (0, 2)
    _earlier(cid, 40)
    third = circulars.amend(kaicho, cid, "集合場所は公園です")
    assert (third.mails, third.held) == (2, 0)


def test_a_correction_held_back_holds_none_back_an_hour_after_the_last_one_mailed(demo):
    _corrections_fifty_and_forty_minutes_apart(demo)


@pytest.mark.postgres
def test_a_correction_held_back_holds_none_back_an_hour_after_the_last_one_mailed_on_postgresql(pg_app_db):
    from chiiki.seed import seed_demo

    seed_demo(content=False)
    _corrections_fifty_and_forty_minutes_apart(DemoCity())


def _mails_to(address: str, after: int) -> list:
    with session() as s:
        return s.exec(select(OutboxMail).where(OutboxMail.to_address == address, OutboxMail.id > after)
                      .order_by(OutboxMail.id)).all()


def _last_mail_id() -> int:
    with session() as s:
        return s.exec(select(func.max(OutboxMail.id))).one() or 0


def test_a_correction_held_back_is_mailed_with_the_others_once_the_hour_has_passed(demo):
    _held_correction_mailed_by_the_job(demo)


@pytest.mark.postgres
def test_a_correction_held_back_is_mailed_with_the_others_once_the_hour_has_passed_on_postgresql(pg_app_db):
    from chiiki.seed import seed_demo

    seed_demo(content=False)
    _held_correction_mailed_by_the_job(DemoCity())


def _one_correction_held(demo, minutes_after: int = 15) -> tuple:
    """(the 会長, a circular) corrected (mailed to the member and the 班長 of 1班), corrected again 50 minutes later
    (held back from them), then `minutes_after` minutes pass."""
    kaicho, cid = _sent_with_two_taking_mail(demo)
    assert circulars.amend(kaicho, cid, "集合は9時です").mails == 2
    _earlier(cid, 50)
    assert circulars.amend(kaicho, cid, "雨天中止です").held == 2
    _earlier(cid, minutes_after)
    return kaicho, cid


def _held_correction_mailed_by_the_job(demo) -> None:
    """Corrected at 10:00 (mailed), again at 10:50 (held back): the job mails the 10:50 one once 11:00 has come,
    marked new, with the 10:00 one after it, to each member once; a correction at 11:05 is then held back again
    (they were just told), and mailed by the job an hour after its first mail."""
    kaicho, cid = _one_correction_held(demo, 0)
    assert circulars.mail_held_corrections() == 0  # 50 minutes since they were mailed: not yet
    _earlier(cid, 15)
    before = _last_mail_id()
    assert circulars.mail_held_corrections() == 2
    assert circulars.mail_held_corrections() == 0  # once
    for address in ("member@example.jp", "hancho@example.jp"):
        [m] = _mails_to(address, before)
        places = [m.body.index(t) for t in ("【新しい訂正", "雨天中止です", "これまでに出た訂正も", "集合は9時です")]
        assert places == sorted(places) and m.body.count("新しい訂正") == 1
        assert m.subject == "【回覧の訂正】旭町一丁目町内会:防災訓練"
    third = circulars.amend(kaicho, cid, "持ち物は水筒です")
    assert (third.mails, third.held) == (0, 2)
    _earlier(cid, 50)
    assert circulars.mail_held_corrections() == 0  # 50 minutes since the job's mail
    _earlier(cid, 10)
    before = _last_mail_id()
    assert circulars.mail_held_corrections() == 2
    [m] = _mails_to("member@example.jp", before)
    assert m.body.index("持ち物は水筒です") < m.body.index("これまでに出た訂正も") < m.body.index("雨天中止です")


def test_a_correction_soon_after_the_jobs_mail_waits_an_hour_from_that_mail(demo):
    """Corrected at 10:00 (mailed), again at 10:50 (held back); the job mails it at 11:45. A correction at 11:55
    (more than an hour after 10:50, ten minutes after the job's mail) waits for the job at 12:45: one mail about
    corrections an hour, the job's included."""
    kaicho, cid = _one_correction_held(demo, 0)
    _earlier(cid, 55)
    assert circulars.mail_held_corrections() == 2
    _earlier(cid, 10)
    fourth = circulars.amend(kaicho, cid, "持ち物は水筒です")
    assert (fourth.mails, fourth.held) == (0, 2)
    assert circulars.mail_held_corrections() == 0  # ten minutes since the job's mail: not yet
    _earlier(cid, 50)
    before = _last_mail_id()
    assert circulars.mail_held_corrections() == 2
    [m] = _mails_to("hancho@example.jp", before)
    assert m.body.index("持ち物は水筒です") < m.body.index("これまでに出た訂正も")


def test_a_reminder_or_a_later_correction_brings_a_held_correction_and_the_job_mails_nothing(demo):
    kaicho, cid = _one_correction_held(demo, 70)
    assert circulars.renotify(kaicho, cid).mails == 2  # neither has opened it: reminded, with both corrections
    assert circulars.mail_held_corrections() == 0
    # A member who has left the association since is not mailed either.
    _one_correction_held(demo)
    with session() as s:
        s.execute(update(Membership).where(Membership.account_id == demo.account_id("member@example.jp"))
                  .values(status="left"))
    before = _last_mail_id()
    assert circulars.mail_held_corrections() == 1
    assert not _mails_to("member@example.jp", before) and len(_mails_to("hancho@example.jp", before)) == 1


def test_a_member_not_taking_mail_when_a_later_correction_came_is_not_mailed_it_late(demo):
    """Mailed the first correction, then no mail for a while; a correction three hours later (not held back from
    anyone) went by mail only to those taking it. Asking for mail again does not make the job send it days late."""
    kaicho, cid = _sent_with_two_taking_mail(demo)
    circulars.amend(kaicho, cid, "集合は9時です")
    with session() as s:
        s.execute(update(Account).where(Account.login_id == "member@example.jp").values(email_circulars=False))
    _earlier(cid, 180)
    assert circulars.amend(kaicho, cid, "雨天中止です").mails == 1  # the 班長
    _earlier(cid, 120)
    with session() as s:
        s.execute(update(Account).where(Account.login_id == "member@example.jp").values(email_circulars=True))
    assert circulars.mail_held_corrections() == 0


def test_a_corrections_time_is_taken_under_the_circulars_lock(demo):
    """Two officers correcting at once: the one that waited for the other's lock is the later correction, so
    that the mails' holding back (and the job after it) see the corrections in the order they were made."""
    import sqlite3
    import threading
    import time as clock

    from sqlalchemy.engine import make_url

    from chiiki import settings as settings_module

    kaicho, cid = _sent_with_two_taking_mail(demo)
    path = make_url(settings_module.settings.db_url).database
    taken, released = threading.Event(), []

    def other_writer():
        other = sqlite3.connect(path, timeout=0, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        taken.set()
        clock.sleep(0.3)
        released.append(utcnow())
        other.execute("ROLLBACK")
        other.close()

    t = threading.Thread(target=other_writer)
    t.start()
    assert taken.wait(5)
    circulars.amend(kaicho, cid, "集合は9時です")
    t.join()
    assert circulars.open_circular(demo.actor("member@example.jp"), cid).amendments[0].created_at >= released[0]


def test_two_workers_running_the_job_at_once_mail_each_member_once(demo):
    import threading

    _one_correction_held(demo)
    before, results, start = _last_mail_id(), [], threading.Barrier(2)

    def job():
        start.wait()
        results.append(circulars.mail_held_corrections())

    threads = [threading.Thread(target=job) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [0, 2]
    assert len(_mails_to("member@example.jp", before)) == 1 and len(_mails_to("hancho@example.jp", before)) == 1


def test_a_correction_holds_back_only_those_it_mailed(demo):
    """A correction that mailed nobody (no member took circulars by mail then) holds nothing back: a member
    who asks for mail afterwards is told of the next correction ten minutes later, and the officer is not told
    that anyone was emailed already."""
    with session() as s:
        s.execute(update(Account).values(email_circulars=False))
    kaicho = demo.actor("kaicho@example.jp")
    cid = send_to(demo, han_nos=(1,), title="防災訓練").circular_id
    first = circulars.amend(kaicho, cid, "集合は9時です")
    assert (first.mails, first.held) == (0, 0)
    _earlier(cid, 10)
    with session() as s:
        s.execute(update(Account).where(Account.login_id == "member@example.jp").values(email_circulars=True))
    second = circulars.amend(kaicho, cid, "雨天中止です")
    assert (second.mails, second.held) == (1, 0)


def test_after_a_reminder_and_a_correction_the_page_names_the_first_moment_a_reminder_can_go_again(demo):
    """Reminded at 10:00 (every member of a household that has not opened it, by mail or not), corrected at 10:20
    (mailed to those who take mail): at 10:30 a reminder is refused, and the message names 11:00, when those
    reminded at 10:00 may be reminded again, not 11:20; at 11:05 one does go to them."""
    kaicho, cid = _sent_with_two_taking_mail(demo)
    reminded = circulars.renotify(kaicho, cid)
    assert reminded.members > reminded.mails == 2
    _earlier(cid, 20)
    assert circulars.amend(kaicho, cid, "集合は9時です").mails == 2
    _earlier(cid, 10)
    with session() as s:
        without_mail = s.exec(select(Delivery.notified_at).where(
            Delivery.circular_id == cid, Delivery.channel == "digital",
            Delivery.account_id.not_in([demo.account_id("member@example.jp"),
                                        demo.account_id("hancho@example.jp")]))).all()
    assert len(set(without_mail)) == 1
    with pytest.raises(ServiceError) as e:
        circulars.renotify(kaicho, cid)
    assert e.value.key == "circular.error_renotified_soon"
    assert e.value.params["when"] == circulars.as_utc(without_mail[0]) + circulars.RENOTIFY_INTERVAL
    _earlier(cid, 35)
    assert circulars.renotify(kaicho, cid) == circulars.Renotified(reminded.members - 2, 0)


def test_a_paper_record_is_on_the_access_page_of_the_households_members(demo):
    """A 班長 recording a paper copy's delivery or 確認印 writes about a household, as a confirmation on its
    behalf does: its members (a household that also gets paper) see it on their access page; a paper-only
    household is named by id; a refused record leaves nothing."""
    from chiiki.models import AuditEvent
    from chiiki.services import accounts

    home = member_home(demo, "member@example.jp")
    with session() as s:
        s.execute(update(Household).where(Household.id == home).values(paper_copy=True))
    kaicho = demo.actor("kaicho@example.jp")
    cid = send_to(demo, han_nos=(1,), title="防災訓練").circular_id
    circulars.record_paper(kaicho, cid, home, "confirmed")
    assert "circular.paper_record" in [e.action for e in accounts.my_accesses(demo.actor("member@example.jp"))]
    with session() as s:
        paper_only = s.exec(select(Delivery.household_id).where(
            Delivery.circular_id == cid, Delivery.channel == "paper", Delivery.household_id != home)).first()
    circulars.record_paper(kaicho, cid, paper_only, "delivered")

    def paper_records() -> int:
        with session() as s:
            return s.exec(select(func.count()).select_from(AuditEvent).where(
                AuditEvent.action == "circular.paper_record")).one()

    with session() as s:
        assert s.exec(select(AuditEvent.subject_household_id).where(
            AuditEvent.action == "circular.paper_record", AuditEvent.subject_household_id.is_not(None))).all() \
            == [paper_only]
    n = paper_records()
    with pytest.raises(ServiceError):
        circulars.record_paper(kaicho, cid, home, "confirmed")  # already stamped: refused
    assert paper_records() == n
