"""市民のこえ against a real SMTP server: forwarded, then nothing personal stays; undelivered is kept and retried."""

from __future__ import annotations

import os
import socket
import threading
import time
from datetime import timedelta
from email import message_from_bytes, policy

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import func, update
from sqlmodel import select

from chiiki import settings as settings_module
from chiiki.models import AuthSession, CitySetting, Department, Inquiry, LoginAttempt, OutboxMail, utcnow
from chiiki.services import inquiries, mail
from chiiki.services.db import session
from chiiki.services.errors import Denied, NotFound, ServiceError, ValidationErrors
from chiiki.services.policy import ANONYMOUS

FORM = {"department_id": None, "sender_name": "旭川 一郎", "sender_contact": "ichiro@example.jp",
        "subject": "街灯が消えています", "body": "旭町1条2丁目の街灯が三日前から消えています。"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Inbox:
    """An aiosmtpd handler that keeps what it accepted (optionally slowly)."""

    def __init__(self, delay: float = 0.0) -> None:
        self.messages: list = []
        self.delay = delay
        self.refuse: set[str] = set()  # addresses this server does not know
        self.quit_reply = ""  # a reply to QUIT other than 221, from a server that misbehaves after accepting
        self.lock = threading.Lock()

    async def handle_QUIT(self, server, session_, envelope):
        return self.quit_reply or "221 Bye"

    async def handle_RCPT(self, server, session_, envelope, address, rcpt_options):
        if address in self.refuse:
            return "550 5.1.1 No such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session_, envelope):
        if self.delay:
            time.sleep(self.delay)
        with self.lock:
            self.messages.append((envelope.rcpt_tos, message_from_bytes(envelope.content, policy=policy.default)))
        return "250 OK"


class SmtpServer:
    def __init__(self, port: int) -> None:
        self.port = port
        self.inbox = Inbox()
        self.controller: Controller | None = None

    def start(self, delay: float = 0.0) -> None:
        self.inbox.delay = delay
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@pytest.fixture
def smtp(demo):
    """A local SMTP server on a free loopback port, not started yet; the app is pointed at it."""
    server = SmtpServer(free_port())
    os.environ["CHIIKI_SMTP_HOST"] = "127.0.0.1"
    os.environ["CHIIKI_SMTP_PORT"] = str(server.port)
    settings_module.reload()
    yield server
    server.stop()
    os.environ.pop("CHIIKI_SMTP_HOST", None)
    os.environ.pop("CHIIKI_SMTP_PORT", None)
    settings_module.reload()


def department_id(name: str = "道路維持課") -> int:
    with session() as s:
        return s.exec(select(Department.id).where(Department.name == name)).one()


def row(reference: str) -> Inquiry:
    with session() as s:
        return s.exec(select(Inquiry).where(Inquiry.reference == reference)).one()


def count(model) -> int:
    with session() as s:
        return s.exec(select(func.count()).select_from(model)).one()


PERSONAL = ("sender_name", "sender_contact", "subject", "body")


def test_delivered_inquiry_keeps_no_personal_field(smtp, demo):
    smtp.start()
    member = demo.actor("member@example.jp")
    receipt = inquiries.submit(member, {**FORM, "department_id": str(department_id())})
    assert receipt.state == "delivered" and receipt.department == "道路維持課"
    # The department got everything…
    [(rcpt, msg)] = smtp.inbox.messages
    assert rcpt == ["doro@city.example.jp"]
    text = msg.get_body().get_content()
    assert "旭川 一郎" in text and "ichiro@example.jp" in text and "三日前から" in text and receipt.reference in text
    # …and the database kept only the receipt.
    q = row(receipt.reference)
    assert all(getattr(q, f) == "" for f in PERSONAL)
    assert q.account_id is None and q.personal_deleted_at is not None and q.delivered_at is not None
    assert q.state == "delivered" and q.attempts == 1
    # The sender can look it up by reference, however they type it.
    again = inquiries.lookup(ANONYMOUS, receipt.reference.replace("-", "").lower())
    assert again == receipt


def test_smtp_down_keeps_the_inquiry_retries_it_and_delivers_once_back(smtp, demo):
    # Nothing listens on the port yet.
    receipt = inquiries.submit(ANONYMOUS, {**FORM, "department_id": department_id()})
    assert receipt.state == "failed"
    q = row(receipt.reference)
    assert q.body == FORM["body"] and q.sender_name == FORM["sender_name"] and q.personal_deleted_at is None
    assert q.attempts == 1 and q.last_error and q.next_attempt_at is not None

    # Not retried before its back-off has passed; retried after it, still failing.
    assert inquiries.deliver_pending(now=utcnow()) == inquiries.DeliveryReport(0, 0)
    later = utcnow() + timedelta(minutes=2)
    assert inquiries.deliver_pending(now=later) == inquiries.DeliveryReport(0, 1)
    q = row(receipt.reference)
    assert q.attempts == 2 and q.state == "failed" and q.body == FORM["body"]
    # The purge never touches it, whatever its age.
    with session() as s:
        s.get(Inquiry, q.id).created_at = utcnow() - timedelta(days=3650)
    inquiries.purge_expired(now=utcnow() + timedelta(days=3650), force=True)
    assert row(receipt.reference).body == FORM["body"]
    assert inquiries.lookup(ANONYMOUS, receipt.reference).state == "failed"

    smtp.start()
    assert inquiries.deliver_pending(now=utcnow() + timedelta(hours=2)) == inquiries.DeliveryReport(1, 0)
    q = row(receipt.reference)
    assert q.state == "delivered" and all(getattr(q, f) == "" for f in PERSONAL) and q.personal_deleted_at
    assert len(smtp.inbox.messages) == 1
    # Nothing is left to send.
    assert inquiries.deliver_pending(now=utcnow() + timedelta(days=1)) == inquiries.DeliveryReport(0, 0)


def test_two_workers_never_send_the_same_inquiry_twice(smtp, demo):
    refs = [inquiries.submit(ANONYMOUS, {**FORM, "department_id": department_id()}).reference for _ in range(4)]
    assert all(row(r).state == "failed" for r in refs)
    smtp.start(delay=0.2)
    when = utcnow() + timedelta(hours=2)
    reports = []
    workers = [threading.Thread(target=lambda: reports.append(inquiries.deliver_pending(now=when)))
               for _ in range(3)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert sum(r.sent for r in reports) == 4
    assert len(smtp.inbox.messages) == 4
    assert all(row(r).state == "delivered" for r in refs)


def test_staff_fix_an_address_and_retry_at_once(smtp, demo):
    smtp.start()
    staff = demo.actor("city@example.jp")
    did = department_id()
    # The department's address changed: its mail server refuses the old one.
    smtp.inbox.refuse = {"doro@city.example.jp"}
    receipt = inquiries.submit(demo.actor("member@example.jp"), {**FORM, "department_id": did})
    assert receipt.state == "failed" and row(receipt.reference).body == FORM["body"]
    items, total = inquiries.staff_list(staff, True)
    assert total == 1 and items[0].reference == receipt.reference and items[0].last_error
    assert not {"sender_name", "sender_contact", "subject", "body", "account_id"} & set(vars(items[0]))
    inquiries.save_department(staff, did, {"name": "道路維持課", "email": "doro-new@city.example.jp", "active": "on"})
    assert inquiries.retry_now(staff, items[0].id) is True
    assert smtp.inbox.messages[0][0] == ["doro-new@city.example.jp"]
    assert inquiries.staff_list(staff, True) == ([], 0)
    assert inquiries.staff_list(staff, False)[0][0].reference == receipt.reference


def test_staff_move_an_undelivered_inquiry_to_another_department(smtp, demo):
    staff = demo.actor("city@example.jp")
    receipt = inquiries.submit(ANONYMOUS, {**FORM, "department_id": department_id()})
    qid = row(receipt.reference).id
    with pytest.raises(ServiceError):
        inquiries.reroute(staff, qid, 999999)
    inquiries.reroute(staff, qid, department_id("福祉保険課"))
    smtp.start()
    assert inquiries.deliver_pending().sent == 1
    assert smtp.inbox.messages[0][0] == ["fukushi@city.example.jp"]
    with pytest.raises(NotFound):  # delivered: nothing left to move or retry
        inquiries.retry_now(staff, qid)


def _inactive_department() -> int:
    with session() as s:
        d = Department(name="廃止課", email="old@city.example.jp", active=False)
        s.add(d)
        s.flush()
        return d.id


@pytest.mark.parametrize("change,field,key", [
    ({"department_id": "999999"}, "department_id", "inquiry.error.department"),
    ({"department_id": "inactive"}, "department_id", "inquiry.error.department"),
    ({"department_id": ""}, "department_id", "error.required"),
    ({"department_id": "abc"}, "department_id", "error.invalid"),
    ({"body": "   "}, "body", "error.required"),
    ({"body": "あ" * 1_000_000}, "body", "error.too_long"),
    ({"body": "a" * (inquiries.BODY_MAX + 1)}, "body", "error.too_long"),
    ({"sender_name": ""}, "sender_name", "error.required"),
    ({"sender_contact": "not a contact"}, "sender_contact", "error.phone"),
    ({"sender_contact": "x@y"}, "sender_contact", "error.email"),
    ({"subject": ["list"]}, "subject", "error.invalid"),
])
def test_bad_inquiries_give_a_clear_message_and_write_nothing(smtp, demo, change, field, key):
    smtp.start()
    data = {**FORM, "department_id": department_id(), **change}
    if data["department_id"] == "inactive":
        data["department_id"] = _inactive_department()
    with pytest.raises(ValidationErrors) as e:
        inquiries.submit(ANONYMOUS, data)
    assert e.value.errors[field][0] == key
    assert count(Inquiry) == 0 and smtp.inbox.messages == []


def test_submit_refuses_a_payload_that_is_not_a_form(demo):
    with pytest.raises(ServiceError):
        inquiries.submit(ANONYMOUS, "body")
    assert count(Inquiry) == 0


@pytest.mark.parametrize("login", [None, "member@example.jp", "kaicho@example.jp"])
def test_only_city_staff_manage_departments_and_see_deliveries(demo, login):
    actor = ANONYMOUS if login is None else demo.actor(login)
    for call in (lambda: inquiries.departments_admin(actor), lambda: inquiries.staff_list(actor, True),
                 lambda: inquiries.staff_list(actor, False), lambda: inquiries.retry_now(actor, 1),
                 lambda: inquiries.reroute(actor, 1, 1), lambda: inquiries.retention_days(actor),
                 lambda: inquiries.set_retention_days(actor, 5),
                 lambda: inquiries.save_department(actor, "", {"name": "x", "email": "x@example.jp"})):
        with pytest.raises(Denied):
            call()
    # Everyone may write, and the public list shows names only.
    assert all(d.email == "" for d in inquiries.departments_for_form(actor))


def test_city_staff_add_and_change_departments_with_clear_errors(demo):
    staff = demo.actor("city@example.jp")
    did = inquiries.save_department(staff, "", {"name": "環境課", "email": "Kankyo@City.example.jp", "active": "on"})
    assert [d for d in inquiries.departments_admin(staff) if d.id == did][0].email == "kankyo@city.example.jp"
    inquiries.save_department(staff, did, {"name": "環境課", "email": "kankyo@city.example.jp"})
    assert did not in [d.id for d in inquiries.departments_for_form(ANONYMOUS)]
    with pytest.raises(ValidationErrors) as e:
        inquiries.save_department(staff, "", {"name": "", "email": "nope"})
    assert set(e.value.errors) == {"name", "email"}
    with pytest.raises(NotFound):
        inquiries.save_department(staff, 999999, {"name": "x", "email": "x@example.jp"})


def test_reference_numbers_are_random_and_unknown_ones_are_not_found(demo):
    refs = {inquiries.new_reference() for _ in range(2000)}
    assert len(refs) == 2000 and all(len(r) == 14 for r in refs)
    with pytest.raises(NotFound):
        inquiries.lookup(ANONYMOUS, "AAAA-BBBB-CCCC")


def test_purge_removes_old_personal_leftovers_but_no_undelivered_inquiry(demo, tmp_path):
    staff = demo.actor("city@example.jp")
    assert inquiries.set_retention_days(staff, "7") == 7
    with pytest.raises(ServiceError) as e:
        inquiries.set_retention_days(staff, "0")
    assert (e.value.key, e.value.field) == ("error.range", "retention_days")
    now = utcnow()
    old, recent = now - timedelta(days=8), now - timedelta(days=6)
    with session() as s:
        s.add_all([
            OutboxMail(to_address="a@example.jp", subject="s", body="old sent", created_at=old, sent_at=old),
            OutboxMail(to_address="b@example.jp", subject="s", body="recent sent", created_at=recent, sent_at=recent),
            OutboxMail(to_address="c@example.jp", subject="s", body="old unsent", created_at=old),
            OutboxMail(to_address="d@example.jp", subject="s", body="old dead", created_at=old,
                       attempts=mail.MAX_ATTEMPTS),
            LoginAttempt(login_key="k1", at=old), LoginAttempt(login_key="k2", at=recent),
            AuthSession(token_hash="h" * 64, account_id=demo.account_id("member@example.jp"), created_at=old,
                        expires_at=old),
            Inquiry(reference="OLDX-OLDX-OLDX", department_id=department_id(), sender_name="古い 人",
                    body="まだ届いていない", state="failed", attempts=9, created_at=old),
            # A delivered row that somehow kept its text (e.g. written by an older version).
            Inquiry(reference="DLVR-DLVR-DLVR", department_id=department_id(), sender_name="届いた 人",
                    body="届いた", state="delivered", created_at=old, delivered_at=old),
        ])
    folder = settings_module.settings.outbox_dir
    folder.mkdir(parents=True, exist_ok=True)
    stale, fresh = folder / "stale.eml", folder / "fresh.eml"
    stale.write_text("old inquiry text")
    fresh.write_text("new")
    os.utime(stale, (old.timestamp(), old.timestamp()))
    report = inquiries.purge_expired(now=now)
    assert report == inquiries.PurgeReport(inquiries=1, outbox_rows=2, outbox_files=1, login_attempts=1, sessions=1)
    with session() as s:
        assert sorted(m.body for m in s.exec(select(OutboxMail)).all()) == ["old unsent", "recent sent"]
        undelivered = s.exec(select(Inquiry).where(Inquiry.reference == "OLDX-OLDX-OLDX")).one()
        assert undelivered.body == "まだ届いていない" and undelivered.sender_name == "古い 人"
        delivered = s.exec(select(Inquiry).where(Inquiry.reference == "DLVR-DLVR-DLVR")).one()
        assert delivered.body == "" and delivered.sender_name == "" and delivered.personal_deleted_at
    assert not stale.exists() and fresh.exists()
    # Several workers run the job every 15 s: it does its work at most once an hour.
    assert inquiries.purge_expired(now=now + timedelta(minutes=30)) is None
    assert inquiries.purge_expired(now=now + timedelta(hours=2)) is not None
    with session() as s:
        assert s.get(CitySetting, inquiries.RETENTION_KEY).value == "7"


def test_a_bad_reply_to_quit_after_the_server_took_the_message_is_still_delivered(smtp, demo):
    """Once the department's server has accepted the message, a bad answer to QUIT must not mark the inquiry
    failed: it would keep the sender's personal data and mail the department the same inquiry again."""
    smtp.start()
    smtp.inbox.quit_reply = "421 4.3.0 closing"
    receipt = inquiries.submit(ANONYMOUS, {**FORM, "department_id": department_id()})
    assert receipt.state == "delivered" and len(smtp.inbox.messages) == 1
    assert all(getattr(row(receipt.reference), f) == "" for f in PERSONAL)


def test_an_outbox_folder_that_cannot_be_written_is_a_failed_delivery_retried_later(demo, tmp_path, monkeypatch):
    """Without a mail server the message goes to the outbox folder; when that cannot be written (a full disk,
    a file in the folder's place) the sender still gets a reference, the inquiry is failed with the reason and
    retried, and no half-written message is left behind."""
    (tmp_path / "outbox").write_text("a file where the folder should be")
    monkeypatch.setenv("CHIIKI_DATA_DIR", str(tmp_path))
    settings_module.reload()
    try:
        receipt = inquiries.submit(ANONYMOUS, {**FORM, "department_id": department_id()})
        assert receipt.state == "failed" and receipt.reference
        q = row(receipt.reference)
        assert q.state == "failed" and q.last_error and q.body == FORM["body"]
        (tmp_path / "outbox").unlink()
        assert inquiries.deliver_pending(now=utcnow() + timedelta(days=1)).sent == 1
        assert row(receipt.reference).state == "delivered"
        files = list((tmp_path / "outbox").iterdir())
        assert [f.suffix for f in files] == [".eml"] and files[0].stat().st_mode & 0o077 == 0
    finally:
        monkeypatch.undo()
        settings_module.reload()


# --------------------------------------------------------------------------- sending limit


def _send(actor, client: str = "", **changes) -> str:
    """One inquiry sent; "ok" or the refusal's message key."""
    try:
        inquiries.submit(actor, {**FORM, "department_id": department_id(), **changes}, client=client)
    except ServiceError as e:
        return e.key
    return "ok"


def _marks() -> int:
    return count(LoginAttempt)


def test_an_address_and_a_resident_each_send_only_so_many_inquiries_an_hour(smtp, demo, monkeypatch):
    monkeypatch.setattr(inquiries, "ADDRESS_SENDS", 4)
    monkeypatch.setattr(inquiries, "RESIDENT_SENDS", 2)
    smtp.start()
    here, there, third = "203.0.113.5", "198.51.100.7", "192.0.2.1"
    assert [_send(ANONYMOUS, here) for _ in range(4)] == ["ok"] * 4
    stored = count(Inquiry)
    with pytest.raises(ServiceError) as refused:
        inquiries.submit(ANONYMOUS, {**FORM, "department_id": department_id()}, client=here)
    assert refused.value.key == "inquiry.error.too_many"
    # It says when sending works again: an hour after the oldest of the four (kept to the minute).
    with session() as s:
        first = s.exec(select(func.min(LoginAttempt.at))).one()
    assert refused.value.params["until"] == first + inquiries.SEND_WINDOW and first.second == 0
    assert count(Inquiry) == stored and len(smtp.inbox.messages) == 4  # nothing stored, nothing mailed
    assert _marks() == 4  # a refused sending does not count
    # Another address is not held up by it; a resident is counted by account too, wherever they are.
    member, kaicho = demo.actor("member@example.jp"), demo.actor("kaicho@example.jp")
    assert [_send(member, there) for _ in range(3)] == ["ok", "ok", "inquiry.error.too_many"]
    assert _send(member, third) == "inquiry.error.too_many"
    # The address counts residents and visitors together (registering is open: accounts alone would not do).
    assert [_send(kaicho, there), _send(ANONYMOUS, there), _send(ANONYMOUS, there)] == \
        ["ok", "ok", "inquiry.error.too_many"]
    # A form with a mistake is refused as such and does not use up a sending.
    before = _marks()
    assert _send(ANONYMOUS, third, body="") == "error.required" and _marks() == before
    # An hour later the address may send again.
    with session() as s:
        s.execute(update(LoginAttempt).values(at=LoginAttempt.at - inquiries.SEND_WINDOW))
    assert _send(ANONYMOUS, here) == "ok"


def test_the_time_a_refusal_gives_is_one_at_which_sending_works(demo, monkeypatch):
    """The message shows the time to the minute: at that minute the next sending must pass."""
    from datetime import datetime, timezone

    monkeypatch.setattr(inquiries, "ADDRESS_SENDS", 1)
    first = datetime(2026, 11, 29, 1, 4, 30, tzinfo=timezone.utc)

    def take(now):
        with session() as s:
            inquiries._take_send_places(s, ANONYMOUS, "203.0.113.5", now)

    take(first)
    with pytest.raises(ServiceError) as refused:
        take(first + timedelta(minutes=5))
    until = refused.value.params["until"]
    assert until.second == 0 and until.microsecond == 0 and until <= first + inquiries.SEND_WINDOW
    with pytest.raises(ServiceError):
        take(until - timedelta(seconds=1))
    take(until)


def test_a_visitor_on_ipv6_is_counted_by_their_prefix(demo, monkeypatch):
    """A connection holds a whole /64 and may send from any address in it; a home line holds a /56 or a /48 of
    /64s, counted more loosely together; an IPv4 address written as IPv6 is that IPv4 address."""
    monkeypatch.setattr(inquiries, "ADDRESS_SENDS", 3)
    monkeypatch.setattr(inquiries, "NETWORK_SENDS", 5)
    monkeypatch.setattr(inquiries, "_deliver_one", lambda *_a: None)
    out = [_send(ANONYMOUS, f"2001:db8:1:2::{i:x}") for i in range(1, 5)]
    assert out == ["ok", "ok", "ok", "inquiry.error.too_many"]
    # Other /64s of the same line: two more, then the /48 is full.
    assert [_send(ANONYMOUS, f"2001:db8:1:{n:x}::1") for n in range(3, 7)] == \
        ["ok", "ok", "inquiry.error.too_many", "inquiry.error.too_many"]
    assert _send(ANONYMOUS, "2001:db8:2::1") == "ok"  # another /48: someone else
    assert [_send(ANONYMOUS, "203.0.113.8"), _send(ANONYMOUS, "203.0.113.8"), _send(ANONYMOUS, "::ffff:203.0.113.8"),
            _send(ANONYMOUS, " 203.0.113.8 ")] == ["ok", "ok", "ok", "inquiry.error.too_many"]
    assert inquiries._networks("not an address") == inquiries._networks(None) == [("address:", 3)]


@pytest.mark.parametrize("scenario", ["address_frees_first", "account_frees_first"])
def test_a_residents_refusal_gives_a_time_at_which_both_counts_let_them_send(demo, monkeypatch, scenario):
    """A resident's sending takes a place in two counts; when both are full, the time given is the later one."""
    from datetime import datetime, timezone

    monkeypatch.setattr(inquiries, "ADDRESS_SENDS", 3)
    monkeypatch.setattr(inquiries, "RESIDENT_SENDS", 2)
    resident = demo.actor("member@example.jp")
    here, elsewhere = "203.0.113.5", "198.51.100.7"
    t0 = datetime(2026, 11, 29, 1, 0, tzinfo=timezone.utc)

    def take(actor, client, minutes):
        with session() as s:
            inquiries._take_send_places(s, actor, client, t0 + timedelta(minutes=minutes))

    if scenario == "address_frees_first":  # address full until 02:00, account full until 02:10
        take(ANONYMOUS, here, 0)
        take(resident, here, 10)
        take(resident, here, 10)
    else:  # account full until 02:00, address full until 02:10
        take(resident, elsewhere, 0)
        take(resident, here, 10)
        take(ANONYMOUS, here, 20)
        take(ANONYMOUS, here, 20)
    with pytest.raises(ServiceError) as refused:
        take(resident, here, 30)
    until = refused.value.params["until"]
    assert until == t0 + timedelta(minutes=70)
    with session() as s:  # at the time given, the sending passes
        inquiries._take_send_places(s, resident, here, until)


@pytest.fixture
def fresh_key_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(settings_module, "settings", settings_module.Settings(data_dir=tmp_path / "data"))
    inquiries._send_secret.cache_clear()
    yield tmp_path / "data"
    inquiries._send_secret.cache_clear()


def test_a_send_key_file_cut_short_is_replaced_by_a_whole_key(demo, fresh_key_dir):
    """After a power loss the file's name can survive with no data: an empty or short key is never used."""
    fresh_key_dir.mkdir(parents=True)
    path = fresh_key_dir / inquiries.SEND_SECRET_FILE
    for broken in (b"", b"short"):
        path.write_bytes(broken)
        inquiries._send_secret.cache_clear()
        key = inquiries._send_secret(str(fresh_key_dir))
        assert len(key) == 32 and path.read_bytes() == key
    assert [p.name for p in fresh_key_dir.iterdir()] == [inquiries.SEND_SECRET_FILE]  # no temporary file left


def test_inquiries_are_taken_where_the_data_folder_cannot_hard_link(demo, fresh_key_dir, monkeypatch):
    """A volume without hard links (SMB/CIFS, some network mounts): the key is renamed into place instead."""
    import errno
    import os

    monkeypatch.setattr(inquiries, "_deliver_one", lambda *_a: None)

    def no_links(src, dst, *a, **k):
        raise OSError(errno.EPERM, "Operation not permitted", str(src), None, str(dst))

    monkeypatch.setattr(os, "link", no_links)
    assert _send(ANONYMOUS, "203.0.113.5") == "ok"
    assert [p.name for p in fresh_key_dir.iterdir() if p.name.startswith("inquiry")] == [inquiries.SEND_SECRET_FILE]


def test_what_is_kept_of_a_sender_does_not_give_their_address_back(demo, monkeypatch):
    """Keyed with a secret kept outside the database (a plain hash of an IPv4 address is undone by trying all of
    them), and to the minute, not the inquiry's own time; the purge forgets it after its hour."""
    import hashlib

    monkeypatch.setattr(inquiries, "_deliver_one", lambda *_a: None)
    assert _send(ANONYMOUS, "203.0.113.77") == "ok"
    with session() as s:
        key, at = s.exec(select(LoginAttempt.login_key, LoginAttempt.at)).one()
        created = s.exec(select(Inquiry.created_at)).one()
    assert key.startswith(inquiries.SEND_KEY_PREFIX)
    assert all(key[2:] not in hashlib.sha256(f"{who}203.0.113.77".encode()).hexdigest()
               for who in ("", "address:", "inquiry:address:"))
    secret = settings_module.settings.data_dir / inquiries.SEND_SECRET_FILE
    assert len(secret.read_bytes()) == 32 and secret.stat().st_mode & 0o077 == 0
    assert at.second == 0 and at.microsecond == 0 and at != created


def test_the_purge_forgets_who_sent_inquiries_once_their_hour_is_over(demo):
    now = utcnow()
    for minutes in (61, 30):
        with session() as s:
            inquiries._take_send_places(s, ANONYMOUS, "203.0.113.5", now - timedelta(minutes=minutes))
    with session() as s:
        s.add(LoginAttempt(login_key="a" * 64, at=now - timedelta(minutes=61)))  # a login's: kept for the retention
    inquiries.purge_expired(now=now, force=True)
    with session() as s:
        kept = s.exec(select(LoginAttempt.login_key).order_by(LoginAttempt.at)).all()
    assert [k[:2] for k in kept] == ["aa", "q:"]


def test_sendings_at_the_same_moment_never_pass_the_limit(demo, monkeypatch):
    """Several tabs (or workers) sending at once from one address take turns: exactly the limit pass."""
    from concurrent.futures import ThreadPoolExecutor

    monkeypatch.setattr(inquiries, "ADDRESS_SENDS", 3)
    monkeypatch.setattr(inquiries, "_deliver_one", lambda *_a: None)
    start = threading.Barrier(8, timeout=20)

    def one(_i):
        start.wait()
        return _send(ANONYMOUS, "203.0.113.9")

    with ThreadPoolExecutor(8) as pool:
        out = list(pool.map(one, range(8)))
    assert sorted(out) == ["inquiry.error.too_many"] * 5 + ["ok"] * 3, out
    assert count(Inquiry) == 3 and _marks() == 3


@pytest.mark.parametrize("fails", ["count", "store"])
def test_a_sending_that_fails_midway_leaves_nothing_counted(demo, monkeypatch, fails):
    """The count and the inquiry are written together: a failure in either leaves neither."""
    monkeypatch.setattr(inquiries, "ADDRESS_SENDS", 1)
    real_select = inquiries.select

    def broken(*a, **k):
        raise RuntimeError("connection lost")

    if fails == "count":
        monkeypatch.setattr(inquiries, "select", lambda *cols: broken() if cols and cols[0] is LoginAttempt.at
                            else real_select(*cols))
    else:
        monkeypatch.setattr(inquiries, "new_reference", broken)
    with pytest.raises(RuntimeError):
        inquiries.submit(ANONYMOUS, {**FORM, "department_id": department_id()}, client="203.0.113.5")
    assert count(Inquiry) == 0 and _marks() == 0
    monkeypatch.undo()
    monkeypatch.setattr(inquiries, "ADDRESS_SENDS", 1)
    monkeypatch.setattr(inquiries, "_deliver_one", lambda *_a: None)
    assert [_send(ANONYMOUS, "203.0.113.5") for _ in range(2)] == ["ok", "inquiry.error.too_many"]
