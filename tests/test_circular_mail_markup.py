"""Mail notices over a real local SMTP server, and the body format that never becomes markup."""

from __future__ import annotations

import email
import socket
from email import policy

import pytest
from sqlalchemy import update
from sqlmodel import select

from chiiki import settings as settings_module
from chiiki.models import Account, Delivery, OutboxMail
from chiiki.services import circulars, mail, markup
from chiiki.services.db import session
from tests.conftest import DemoCity


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp(monkeypatch):
    from aiosmtpd.controller import Controller

    class Inbox:
        def __init__(self):
            self.messages: list[email.message.EmailMessage] = []

        async def handle_DATA(self, server, session_, envelope):
            msg = email.message_from_bytes(envelope.content, policy=policy.default)
            msg["X-Rcpt"] = ",".join(envelope.rcpt_tos)
            self.messages.append(msg)
            return "250 OK"

    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    monkeypatch.setenv("CHIIKI_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("CHIIKI_SMTP_PORT", str(port))
    settings_module.reload()
    try:
        yield inbox
    finally:
        controller.stop()
        monkeypatch.delenv("CHIIKI_SMTP_HOST")
        settings_module.reload()


def opt_in(demo, *logins: str, on: bool = True) -> None:
    with session() as s:
        s.execute(update(Account).values(email_circulars=False))
        s.execute(update(Account).where(Account.login_id.in_(logins)).values(email_circulars=on))


def send(demo, han_no=1, title="防災訓練のお知らせ"):
    a1 = demo.association_id(DemoCity.A1)
    han = demo.han_ids(DemoCity.A1)[han_no - 1]
    return circulars.send(demo.actor("kaicho@example.jp"), a1,
                          {"title": title, "body": "**9時**に公園へ\n[地図](https://example.jp/map)",
                           "han_ids": [han]})


def test_opted_in_member_of_the_target_han_gets_the_notice_by_smtp(demo, smtp):
    opt_in(demo, "member@example.jp", "member2@example.jp")
    result = send(demo)
    assert result.mails == 1
    report = mail.deliver_queued()
    assert report.sent == 1 and report.failed == 0
    [msg] = smtp.messages
    assert msg["X-Rcpt"] == "member@example.jp"
    assert "防災訓練のお知らせ" in msg["Subject"] and "旭町一丁目町内会" in msg["Subject"]
    body = msg.get_content()
    assert f"/circulars/view?id={result.circular_id}" in body
    assert "9時に公園へ" in body and "**" not in body and "地図 (https://example.jp/map)" in body


def test_nobody_who_did_not_opt_in_gets_mail(demo, smtp):
    opt_in(demo, "nobody@example.jp")
    assert send(demo).mails == 0
    mail.deliver_queued()
    assert smtp.messages == []


def test_renotify_mails_only_unread_opted_in_members(demo, smtp):
    opt_in(demo, "member@example.jp", "hancho@example.jp")
    cid = send(demo).circular_id
    mail.deliver_queued()
    smtp.messages.clear()
    circulars.open_circular(demo.actor("member@example.jp"), cid)
    result = circulars.renotify(demo.actor("kaicho@example.jp"), cid)
    assert result.mails == 1
    mail.deliver_queued()
    assert [m["X-Rcpt"] for m in smtp.messages] == ["hancho@example.jp"]
    with session() as s:
        notified = s.exec(select(Delivery.notified_at).where(
            Delivery.circular_id == cid, Delivery.account_id == demo.account_id("hancho@example.jp"))).one()
    assert notified is not None


def test_without_smtp_the_notice_lands_in_the_outbox_folder(demo):
    opt_in(demo, "member@example.jp")
    send(demo, title="出欠のお願い")
    mail.deliver_queued()
    texts = [p.read_bytes() for p in mail.outbox_files()]
    assert any("member@example.jp".encode() in t for t in texts)
    with session() as s:
        assert s.exec(select(OutboxMail).where(OutboxMail.sent_at.is_(None))).all() == []


def _mail_in_each_members_language(demo) -> None:
    """Two opted-in members of the han, one reading in English: each notice comes in its member's language,
    one per member, with the circular's own title and link; the count returned is what was queued."""
    opt_in(demo, "member@example.jp", "hancho@example.jp")
    with session() as s:
        s.execute(update(Account).where(Account.login_id == "hancho@example.jp").values(locale="en"))
        before = len(s.exec(select(OutboxMail.id)).all())
    result = send(demo, title="清掃活動")
    assert result.mails == 2
    with session() as s:
        queued = s.exec(select(OutboxMail).order_by(OutboxMail.id)).all()[before:]
    assert sorted(m.to_address for m in queued) == ["hancho@example.jp", "member@example.jp"]
    by_address = {m.to_address: m for m in queued}
    ja, en = by_address["member@example.jp"], by_address["hancho@example.jp"]
    assert ja.subject == "【回覧】旭町一丁目町内会:清掃活動" and en.subject == "[Circular] 旭町一丁目町内会: 清掃活動"
    assert ja.body != en.body and all(f"/circulars/view?id={result.circular_id}" in m.body for m in queued)
    assert {m.kind for m in queued} == {"circular"} and all(m.sent_at is None and m.attempts == 0 for m in queued)
    assert all(m.created_at is not None for m in queued)


def test_each_member_gets_the_notice_in_their_language(demo):
    _mail_in_each_members_language(demo)


@pytest.mark.postgres
def test_each_member_gets_the_notice_in_their_language_on_postgresql(pg_app_db):
    from chiiki.seed import seed_demo

    seed_demo(content=False)
    _mail_in_each_members_language(DemoCity())


@pytest.mark.parametrize("text", [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "[click](javascript:alert(1))",
    "[x](data:text/html;base64,PHNjcmlwdD4=)",
    "javascript:alert(1)",
    "[x](//evil.example/)",
])
def test_hostile_markup_stays_plain_text_and_links_are_only_http(text):
    segs = [s for b in markup.parse(text) for ln in b.lines for s in ln.segs]
    assert all(s.kind != "a" for s in segs)
    assert "".join(s.text for s in segs) == text


def test_body_format_builds_paragraphs_lists_bold_and_links():
    blocks = markup.parse("一行目\n二行目 **大事**\n\n- りんご\n- みかん\n\n1. 集合\n2. 解散\nhttps://example.jp/a")
    assert [b.kind for b in blocks] == ["p", "ul", "ol", "p"]
    assert len(blocks[0].lines) == 2 and blocks[0].lines[1].segs[1].kind == "b"
    assert [ln.segs[0].text for ln in blocks[1].lines] == ["りんご", "みかん"]
    assert blocks[3].lines[0].segs[0].href == "https://example.jp/a"
    assert markup.safe_url("https://example.jp/x") and not markup.safe_url("JavaScript:alert(1)")


def test_japanese_text_after_a_url_and_a_closing_full_stop_stay_out_of_the_link():
    segs = markup.parse("詳しくはhttps://city.example.jp/kosodateをご覧ください。See https://city.example.jp/a.")[0] \
        .lines[0].segs
    assert [(s.kind, s.text, s.href) for s in segs] == [
        ("text", "詳しくは", ""),
        ("a", "https://city.example.jp/kosodate", "https://city.example.jp/kosodate"),
        ("text", "をご覧ください。See ", ""),
        ("a", "https://city.example.jp/a", "https://city.example.jp/a"),
        ("text", ".", ""),
    ]
    assert markup.plain("(https://example.jp/a_(b))") == "(https://example.jp/a_(b))"


def test_a_number_with_a_decimal_point_starts_no_list():
    blocks = markup.parse("持ち物:\n1.5リットルの水\n3.5kmのコースです")
    assert [b.kind for b in blocks] == ["p"]
    assert [ln.segs[0].text for ln in blocks[0].lines] == ["持ち物:", "1.5リットルの水", "3.5kmのコースです"]


def test_a_numbered_list_keeps_the_number_typed():
    blocks = markup.parse("議題\n\n3. 会計報告\n4. 閉会\n\n1)集合\n2）解散")
    assert [(b.kind, b.start) for b in blocks] == [("p", 1), ("ol", 3), ("ol", 1)]
    assert [ln.segs[0].text for ln in blocks[1].lines] == ["会計報告", "閉会"]
    assert [ln.segs[0].text for ln in blocks[2].lines] == ["集合", "解散"]
    assert markup.as_data(blocks)[1]["start"] == 3
