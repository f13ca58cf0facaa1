"""Accounts and sessions through the service layer: registration, login, lockout, profile, deletion."""

from datetime import timedelta
from typing import Callable

import pytest
from sqlalchemy import func, update
from sqlmodel import select

from chiiki.i18n import TZ
from chiiki.models import (Account, AuditAccess, AuditEvent, AuthSession, Delivery, Household, Inquiry, LoginAttempt,
                           Membership, OfficerRole, utcnow)
from chiiki.services import accounts
from chiiki.services.db import session
from chiiki.services.errors import Denied, ServiceError, ValidationErrors
from chiiki.services.policy import ANONYMOUS

PW = "chiiki-demo-2026"


def _area_id() -> int:
    return accounts.areas()[0][0]


def valid(**over):
    data = {"name": "旭川 花子", "kana": "あさひかわ はなこ", "address": "旭川市旭町1条2丁目3-4",
            "area_id": _area_id(), "birth_year": "1950", "login_id": "Hanako@Example.JP", "password": "sakura-haru-1950"}
    data.update(over)
    return data


def count(model) -> int:
    with session() as s:
        return s.exec(select(func.count()).select_from(model)).one()


def test_register_stores_a_bcrypt_hash_and_normalised_login(demo):
    account_id = accounts.register(valid())
    with session() as s:
        acc = s.get(Account, account_id)
    assert acc.login_id == "hanako@example.jp"
    assert acc.password_hash.startswith("$2") and "sakura" not in acc.password_hash
    assert acc.kana == "アサヒカワ ハナコ"  # stored as katakana
    assert acc.display_name == "旭川"  # other members see the family name only
    assert acc.email == "hanako@example.jp"


def test_the_default_display_name_is_the_family_name_never_the_full_name(demo):
    """A name written with a full-width space still shows only the family name; a name with no space at all
    (common in Japanese) cannot be split, so the form asks for a display name instead of showing it whole."""
    a = accounts.register(valid(name="旭川　花子"))
    with session() as s:
        assert s.get(Account, a).display_name == "旭川"
    before = count(Account)
    with pytest.raises(ValidationErrors) as e:
        accounts.register(valid(name="旭川花子", login_id="hanako2@example.jp"))
    assert e.value.errors["display_name"][0] == "error.display_name_needed"
    assert count(Account) == before
    b = accounts.register(valid(name="旭川花子", display_name="はなこ", login_id="hanako2@example.jp"))
    with session() as s:
        assert s.get(Account, b).display_name == "はなこ"


def test_phone_number_login_id_is_normalised(demo):
    accounts.register(valid(login_id="090-1234-5678"))
    assert accounts.login("09012345678", "sakura-haru-1950").token
    assert accounts.login("０９０−１２３４−５６７８", "sakura-haru-1950").token


@pytest.mark.parametrize("field,value,key", [
    ("name", "", "error.required"),
    ("name", "あ" * 101, "error.too_long"),
    ("kana", "Hanako", "error.kana"),
    ("address", "   ", "error.required"),
    ("birth_year", "1850", "error.range"),
    ("birth_year", str(utcnow().astimezone(TZ).year + 1), "error.range"),
    ("birth_year", "abc", "error.number"),
    ("area_id", 999999, "error.invalid"),
    ("area_id", "x", "error.invalid"),
    ("login_id", "not-an-email", "error.phone"),
    ("login_id", "a@b", "error.email"),
    ("password", "short", "error.password_short"),
    ("password", "password", "error.password_weak"),
    ("password", "aaaaaaaaaa", "error.password_weak"),
    ("password", "x" * 80, "error.password_long"),
])
def test_bad_registration_is_refused_with_a_field_message_and_writes_nothing(demo, field, value, key):
    before = count(Account)
    with pytest.raises(ValidationErrors) as e:
        accounts.register(valid(**{field: value}))
    assert e.value.errors[field][0] == key
    assert count(Account) == before


def test_the_latest_birth_year_is_this_year_in_the_city(demo, monkeypatch):
    """At 00:30 on 1 January in Tokyo (15:30 UTC on 31 December) a baby born today may be registered; at 23:30
    on 31 December (14:30 UTC) not yet next year's."""
    from datetime import datetime, timezone

    monkeypatch.setattr(accounts, "utcnow", lambda: datetime(2026, 12, 31, 15, 30, tzinfo=timezone.utc))
    assert accounts.register(valid(birth_year="2027"))
    monkeypatch.setattr(accounts, "utcnow", lambda: datetime(2026, 12, 31, 14, 30, tzinfo=timezone.utc))
    with pytest.raises(ValidationErrors) as e:
        accounts.register(valid(login_id="other@example.jp", birth_year="2027"))
    assert e.value.errors["birth_year"][0] == "error.range"


def test_duplicate_login_id_is_refused(demo):
    accounts.register(valid())
    before = count(Account)
    with pytest.raises(ValidationErrors) as e:
        accounts.register(valid(login_id="HANAKO@example.jp", name="別人 太郎"))
    assert e.value.errors["login_id"][0] == "error.login_taken"
    assert count(Account) == before


def test_login_unknown_and_wrong_password_give_the_same_message(demo):
    with pytest.raises(ServiceError) as unknown:
        accounts.login("nobody@example.jp", PW)
    with pytest.raises(ServiceError) as wrong:
        accounts.login("member@example.jp", "wrong-password")
    assert unknown.value.key == wrong.value.key == "error.login_failed"


def test_an_unknown_or_deleted_login_id_pays_for_the_same_bcrypt_check_as_a_real_one(demo, monkeypatch):
    """No timing oracle: the stand-in hash an unknown id is checked against has the cost real hashes have."""
    import bcrypt

    from chiiki import settings as settings_module

    monkeypatch.setenv("CHIIKI_BCRYPT_ROUNDS", "5")
    settings_module.reload()
    try:
        accounts.register(valid())
        gone = accounts.register(valid(login_id="gone@example.jp"))
        with session() as s:
            s.exec(update(Account).where(Account.id == gone).values(deleted_at=utcnow()))
        checked: list[bytes] = []
        real_check = bcrypt.checkpw

        def spy(password: bytes, hashed: bytes) -> bool:
            checked.append(hashed)
            return real_check(password, hashed)

        monkeypatch.setattr(accounts.bcrypt, "checkpw", spy)
        for login_id in ("hanako@example.jp", "nobody@example.jp", "gone@example.jp"):
            with pytest.raises(ServiceError) as e:
                accounts.login(login_id, "not-the-password-1")
            assert e.value.key == "error.login_failed"
        assert [h[:7] for h in checked] == [b"$2b$05$"] * 3
    finally:
        monkeypatch.undo()
        settings_module.reload()


def test_after_a_cost_change_a_login_hashes_the_password_again_at_the_new_cost(demo, monkeypatch):
    """A hash made at an older cost would answer in another time than the stand-in an unknown id is checked
    against: the first successful login after the change hashes the password again."""
    import bcrypt

    from chiiki import settings as settings_module

    accounts.register(valid())  # at the tests' cost, 4
    monkeypatch.setenv("CHIIKI_BCRYPT_ROUNDS", "5")
    settings_module.reload()
    try:
        accounts.login("hanako@example.jp", "sakura-haru-1950")
        with session() as s:
            assert s.exec(select(Account.password_hash).where(Account.login_id == "hanako@example.jp")
                          ).one().startswith("$2b$05$")
        accounts.login("hanako@example.jp", "sakura-haru-1950")  # the new hash works
        checked: list[bytes] = []
        real_check = bcrypt.checkpw
        monkeypatch.setattr(accounts.bcrypt, "checkpw", lambda p, h: checked.append(h[:7]) or real_check(p, h))
        for login_id in ("hanako@example.jp", "nobody@example.jp"):
            with pytest.raises(ServiceError):
                accounts.login(login_id, "not-the-password-1")
        assert checked == [b"$2b$05$", b"$2b$05$"]
    finally:
        monkeypatch.undo()
        settings_module.reload()


def test_an_address_with_too_many_failed_logins_is_refused_unchecked_until_the_oldest_is_old(demo, monkeypatch):
    """Failures from one address across ids count together; a success neither counts nor resets them; while the
    address is refused nothing is checked (no guess) nor counted, and from LOCK_MINUTES after the oldest counted
    failure it may try again. An IPv6 client counts by its /64 (it may use any address of it)."""
    import bcrypt

    monkeypatch.setattr(accounts, "ADDRESS_FAILURES", 3)
    now = utcnow()
    here = "203.0.113.5"
    with pytest.raises(ServiceError):
        accounts.login("member@example.jp", "not-the-password-1", now=now, client=here)
    assert accounts.login("member@example.jp", PW, now=now, client=here).token  # does not reset
    for login_id in ("hancho@example.jp", "nobody@example.jp"):
        with pytest.raises(ServiceError) as e:
            accounts.login(login_id, "not-the-password-1", now=now + timedelta(minutes=5), client=here)
        assert e.value.key == "error.login_failed"
    checked: list[bytes] = []
    real_check = bcrypt.checkpw
    monkeypatch.setattr(accounts.bcrypt, "checkpw", lambda p, h: checked.append(h) or real_check(p, h))
    with pytest.raises(ServiceError) as e:
        accounts.login("member2@example.jp", PW, now=now + timedelta(minutes=6), client=here)
    assert e.value.key == "error.too_many_here" and e.value.params["until"] == now + timedelta(minutes=15)
    assert checked == []
    assert accounts.login("member2@example.jp", PW, now=now + timedelta(minutes=6), client="198.51.100.7").token
    assert accounts.login("member2@example.jp", PW, now=now + timedelta(minutes=15), client=here).token
    # IPv6: another address of the same /64 is the same client.
    for i in range(3):
        with pytest.raises(ServiceError):
            accounts.login("hancho@example.jp", "not-the-password-1", now=now, client=f"2001:db8:1:2::{i + 1}")
    with pytest.raises(ServiceError) as e:
        accounts.login("member2@example.jp", PW, now=now, client="2001:db8:1:2:ffff::9")
    assert e.value.key == "error.too_many_here"
    assert accounts.login("member2@example.jp", PW, now=now, client="2001:db8:1:3::1").token


def test_an_ipv6_network_counts_the_failures_of_all_its_addresses(demo, monkeypatch):
    monkeypatch.setattr(accounts, "NETWORK_FAILURES", 3)
    now = utcnow()
    for i in range(3):  # three /64s of one /48 (a home line's prefix)
        with pytest.raises(ServiceError):
            accounts.login("hancho@example.jp", "not-the-password-1", now=now, client=f"2001:db8:1:{i}::1")
    with pytest.raises(ServiceError) as e:
        accounts.login("member2@example.jp", PW, now=now, client="2001:db8:1:ff::1")
    assert e.value.key == "error.too_many_here"
    assert accounts.login("member2@example.jp", PW, now=now, client="2001:db8:2::1").token


def test_a_login_that_made_no_guess_leaves_no_failure_at_the_address_and_a_success_none(demo, monkeypatch):
    """Only failed guesses stay counted: a login that succeeds gives its place back, and so does one that fails
    before any password was checked (a database error, a stored hash bcrypt cannot read)."""
    import bcrypt

    def at_address() -> int:
        with session() as s:
            return s.exec(select(func.count()).select_from(LoginAttempt).where(
                LoginAttempt.login_key.startswith(accounts.ADDRESS_KEY_PREFIX))).one()

    here = "203.0.113.5"
    assert accounts.login("member@example.jp", PW, client=here).token
    assert at_address() == 0
    real, real_check = accounts._counted_check, bcrypt.checkpw

    def broken(*args, **kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(accounts, "_counted_check", broken)
    with pytest.raises(RuntimeError):
        accounts.login("member@example.jp", PW, client=here)
    monkeypatch.setattr(accounts, "_counted_check", real)
    monkeypatch.setattr(accounts.bcrypt, "checkpw", lambda p, h: (_ for _ in ()).throw(ValueError("Invalid salt")))
    with pytest.raises(ValueError):
        accounts.login("member@example.jp", PW, client=here)
    assert at_address() == 0
    monkeypatch.setattr(accounts.bcrypt, "checkpw", real_check)
    with pytest.raises(ServiceError):
        accounts.login("member@example.jp", "not-the-password-1", client=here)
    assert at_address() == 1


def test_a_login_refused_by_the_ids_lock_takes_no_place_at_the_address(demo, monkeypatch):
    monkeypatch.setattr(accounts, "ADDRESS_FAILURES", accounts.MAX_FAILURES + 1)
    now, here = utcnow(), "203.0.113.5"
    for _ in range(accounts.MAX_FAILURES):  # each a guess: the last one locks the id
        with pytest.raises(ServiceError):
            accounts.login("member@example.jp", "not-the-password-1", now=now, client=here)
    for _ in range(3):
        with pytest.raises(ServiceError) as e:
            accounts.login("member@example.jp", PW, now=now, client=here)
        assert e.value.key == "error.locked"
    assert accounts.login("member2@example.jp", PW, now=now, client=here).token  # one failure left here
    with pytest.raises(ServiceError):
        accounts.login("hancho@example.jp", "not-the-password-1", now=now, client=here)
    with pytest.raises(ServiceError) as e:
        accounts.login("member2@example.jp", PW, now=now, client=here)
    assert e.value.key == "error.too_many_here"


def test_the_purge_keeps_a_failed_logins_address_count_only_for_its_minutes(demo):
    from chiiki.services import inquiries

    now = utcnow()
    with pytest.raises(ServiceError):
        accounts.login("member@example.jp", "not-the-password-1", now=now, client="203.0.113.5")
    from chiiki import settings as settings_module
    from chiiki.services import client_keys

    with session() as s:
        kept = lambda: s.exec(select(func.count()).select_from(LoginAttempt).where(  # noqa: E731
            LoginAttempt.login_key.startswith(accounts.ADDRESS_KEY_PREFIX))).one()
        assert kept() == 1
        # Kept under the keyed hash (the key in the data folder), not a plain hash anyone can recompute.
        [stored] = s.exec(select(LoginAttempt.login_key).where(
            LoginAttempt.login_key.startswith(accounts.ADDRESS_KEY_PREFIX))).all()
        assert stored == client_keys.keyed(str(settings_module.settings.data_dir), accounts.ADDRESS_KEY_PREFIX,
                                           "address:203.0.113.5")
        assert accounts._sha("address:203.0.113.5")[:62] not in stored
    inquiries.purge_expired(now=now + timedelta(minutes=accounts.LOCK_MINUTES + 1), force=True)
    with session() as s:
        assert kept() == 0
        assert s.exec(select(func.count()).select_from(LoginAttempt)).one() == 1  # the id's own count stays


def test_after_the_cost_is_lowered_a_failed_login_takes_as_long_as_a_check_at_the_old_cost(demo, monkeypatch):
    """Hashes made before the cost was lowered keep it until their owner's next login. Until then an unknown id is
    checked against a stand-in at that higher cost, and a wrong password against a newer, cheaper hash waits what
    the higher cost would have taken more (a cost step doubles bcrypt's work): how long the answer takes tells
    neither whether the id exists nor whether its owner has logged in since."""
    import bcrypt

    from chiiki import settings as settings_module

    monkeypatch.setenv("CHIIKI_BCRYPT_ROUNDS", "5")
    settings_module.reload()
    accounts.register(valid())  # at cost 5; the demo's accounts are at the tests' cost, 4
    monkeypatch.setenv("CHIIKI_BCRYPT_ROUNDS", "4")  # lowered
    settings_module.reload()
    try:
        checked: list[bytes] = []
        waits: list[tuple[int, int]] = []
        real_check, real_wait = bcrypt.checkpw, accounts._wait_as_if
        monkeypatch.setattr(accounts.bcrypt, "checkpw", lambda p, h: checked.append(h[:7]) or real_check(p, h))
        monkeypatch.setattr(accounts, "_wait_as_if",
                            lambda cost, at, took: waits.append((cost, at)) or real_wait(cost, at, took))
        for login_id in ("hanako@example.jp", "nobody@example.jp", "member@example.jp"):
            with pytest.raises(ServiceError) as e:
                accounts.login(login_id, "not-the-password-1")
            assert e.value.key == "error.login_failed"
        assert checked == [b"$2b$05$", b"$2b$05$", b"$2b$04$"]
        assert waits == [(5, 5), (5, 5), (5, 4)]
        # Once the last hash at cost 5 is made again at 4 (its owner's login), cost 4 is the slowest: read again
        # by the job once SLOWEST_COST_TTL has passed, not before.
        assert accounts.login("hanako@example.jp", "sakura-haru-1950").token
        accounts.refresh_slowest_cost()
        with session() as s:
            assert accounts.slowest_cost(s) == 5
        url = settings_module.settings.db_url
        accounts._slowest[url] = (accounts._slowest[url][0] - accounts.SLOWEST_COST_TTL - 1, 5)
        accounts.refresh_slowest_cost()
        checked.clear()
        with pytest.raises(ServiceError):
            accounts.login("nobody@example.jp", "not-the-password-1")
        assert checked == [b"$2b$04$"]
    finally:
        monkeypatch.undo()
        settings_module.reload()


def test_a_wrong_password_against_a_cheaper_hash_waits_twice_its_check_per_cost_step(monkeypatch):
    slept: list[float] = []
    monkeypatch.setattr(accounts.time, "sleep", slept.append)
    accounts._wait_as_if(12, 10, 0.06)  # two steps: a check at 12 takes four times one at 10
    accounts._wait_as_if(12, 12, 0.24)
    accounts._wait_as_if(12, 0, 0.0)  # not a bcrypt hash (an account without a password): checked at 12
    assert slept == [pytest.approx(0.18)]


def test_a_login_after_a_cost_change_keeps_a_long_password_and_a_password_changed_meanwhile(demo, monkeypatch):
    """The rehash hashes the bytes bcrypt checked (a password typed longer than 72 bytes is cut as bcrypt cuts
    it), and never overwrites a password its owner changed while the login was being checked."""
    import bcrypt

    from chiiki import settings as settings_module

    long_pw = "さくらはるなつあき" * 2 + "ふゆやまかわ"  # 72 bytes of UTF-8
    accounts.register(valid(password=long_pw))
    owner = demo.actor("member@example.jp")
    monkeypatch.setenv("CHIIKI_BCRYPT_ROUNDS", "5")  # every stored hash is cost 4: the next logins rehash
    settings_module.reload()
    try:
        assert accounts.login("hanako@example.jp", long_pw + "！").token
        assert accounts.login("hanako@example.jp", long_pw).token
        real_hashpw, fired = bcrypt.hashpw, []

        def owner_changes_it_meanwhile(password: bytes, salt: bytes) -> bytes:
            if not fired:  # the login's rehash: the owner's change commits first
                fired.append(True)
                accounts.change_password(owner, PW, "brand-new-pass-2027")
            return real_hashpw(password, salt)

        monkeypatch.setattr(accounts.bcrypt, "hashpw", owner_changes_it_meanwhile)
        # The password this login checked is no longer the account's: no session (the change ended them all).
        with pytest.raises(ServiceError):
            accounts.login("member@example.jp", PW)
        assert fired
        monkeypatch.setattr(accounts.bcrypt, "hashpw", real_hashpw)
        with pytest.raises(ServiceError):
            accounts.login("member@example.jp", PW)
        assert accounts.login("member@example.jp", "brand-new-pass-2027").token
    finally:
        monkeypatch.undo()
        settings_module.reload()


def test_an_account_without_a_password_cannot_be_logged_into_with_the_stand_in_password(demo):
    aid = accounts.register(valid())
    with session() as s:
        s.exec(update(Account).where(Account.id == aid).values(password_hash=""))
    with pytest.raises(ServiceError) as e:
        accounts.login("hanako@example.jp", "chiiki-dummy-password")
    assert e.value.key == "error.login_failed"


@pytest.mark.parametrize("prompt", ["change_password", "delete_account"])
def test_the_password_asked_again_on_my_page_locks_after_repeated_wrong_guesses(demo, prompt):
    """A session left open cannot be used to find the password by trying: after MAX_FAILURES wrong guesses even
    the right password is refused for a while, and nothing is changed."""
    actor = demo.actor("member@example.jp")
    field = {"change_password": "old_password", "delete_account": "password"}[prompt]

    def call(password: str):
        if prompt == "change_password":
            return accounts.change_password(actor, password, "brand-new-pass-2027")
        return accounts.delete_account(actor, password)

    with session() as s:
        hash_before = s.get(Account, actor.account_id).password_hash
    for i in range(accounts.MAX_FAILURES):
        with pytest.raises(ValidationErrors) as e:
            call(f"guess-{i:04d}")
        assert e.value.errors[field][0] == ("error.password_locked" if i == accounts.MAX_FAILURES - 1
                                            else "error.password_wrong")
    with pytest.raises(ValidationErrors) as e:
        call(PW)
    key, params = e.value.errors[field]
    assert key == "error.password_locked" and params["until"] > utcnow() + timedelta(minutes=14)
    with session() as s:
        acc = s.get(Account, actor.account_id)
        assert acc.password_hash == hash_before and acc.deleted_at is None
    assert accounts.actor_for_token(accounts.login("member@example.jp", PW).token).authenticated  # login is apart


def test_the_right_old_password_with_a_weak_new_one_is_no_wrong_guess(demo):
    actor = demo.actor("member@example.jp")
    for _ in range(accounts.MAX_FAILURES + 1):
        with pytest.raises(ValidationErrors) as e:
            accounts.change_password(actor, PW, "password")
        assert list(e.value.errors) == ["new_password"]
    assert accounts.change_password(actor, PW, "brand-new-pass-2027")


def test_five_failures_lock_the_account_and_say_until_when(demo):
    now = utcnow()
    for i in range(4):
        with pytest.raises(ServiceError) as e:
            accounts.login("member@example.jp", "wrong-password", now=now + timedelta(seconds=i))
        assert e.value.key == "error.login_failed"
    with pytest.raises(ServiceError) as e:
        accounts.login("member@example.jp", "wrong-password", now=now + timedelta(seconds=5))
    assert e.value.key == "error.locked"
    until = e.value.params["until"]
    assert until > now + timedelta(minutes=14)
    # Even the right password is refused while locked...
    with pytest.raises(ServiceError) as e:
        accounts.login("member@example.jp", PW, now=now + timedelta(minutes=1))
    assert e.value.key == "error.locked"
    # ...and accepted after the lock ends.
    assert accounts.login("member@example.jp", PW, now=until + timedelta(seconds=1)).token


def test_guesses_sent_at_once_are_checked_no_more_than_the_lock_allows(demo, monkeypatch):
    _guesses_at_once(demo, monkeypatch)


@pytest.mark.postgres
def test_guesses_sent_at_once_are_checked_no_more_than_the_lock_allows_on_postgresql(pg_app_db, monkeypatch):
    from chiiki.seed import seed_demo
    from tests.conftest import DemoCity

    seed_demo(content=False)
    _guesses_at_once(DemoCity(), monkeypatch)


def _twelve_at_once(monkeypatch, login: Callable[[int], object]) -> tuple[list, list[str]]:
    """Twelve logins `login(i)` at the same moment, as from twelve connections, each password check made long
    enough for every request to overlap: (the passwords checked, each login's outcome)."""
    import threading
    import time

    import bcrypt

    checked = []
    real = bcrypt.checkpw

    def slow_checkpw(password, hashed):  # the hash's own cost, made long enough for every request to overlap
        checked.append(password)
        time.sleep(0.3)
        return real(password, hashed)

    monkeypatch.setattr(accounts.bcrypt, "checkpw", slow_checkpw)
    start = threading.Barrier(12)
    outcomes: list[str] = []

    def attempt(i: int) -> None:
        start.wait()
        try:
            login(i)
            outcomes.append("session")
        except ServiceError as e:
            outcomes.append(e.key)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(outcomes) == 12, outcomes  # every attempt ended with an answer, none with another error
    return checked, outcomes


def _guesses_at_once(demo, monkeypatch):
    """Twelve wrong guesses at the same moment: no more passwords are checked than five failures allow, and
    the others are refused as locked."""
    checked, outcomes = _twelve_at_once(monkeypatch, lambda i: accounts.login("member@example.jp",
                                                                              f"guess-{i:02d}-pass"))
    assert len(checked) <= accounts.MAX_FAILURES, len(checked)
    assert "session" not in outcomes and outcomes.count("error.locked") >= 12 - accounts.MAX_FAILURES
    # A guess refused unchecked leaves no attempt behind: only the checked ones count towards the lock.
    with session() as s:
        assert s.exec(select(func.count()).select_from(LoginAttempt)).one() == len(checked)


def test_unknown_login_ids_lock_the_same_way_so_nothing_reveals_an_account(demo):
    now = utcnow()
    keys = []
    for i in range(5):
        with pytest.raises(ServiceError) as e:
            accounts.login("ghost@example.jp", "whatever-pass", now=now + timedelta(seconds=i))
        keys.append(e.value.key)
    assert keys[-1] == "error.locked"


def test_session_token_is_stored_hashed_and_resolves_to_the_actor(demo):
    result = accounts.login("member@example.jp", PW)
    with session() as s:
        hashes = s.exec(select(AuthSession.token_hash)).all()
    assert result.token not in hashes
    actor = accounts.actor_for_token(result.token)
    assert actor.account_id == demo.account_id("member@example.jp")
    assert actor.memberships and not actor.roles


def test_logout_revokes_the_session(demo):
    token = accounts.login("member@example.jp", PW).token
    accounts.logout(token)
    assert accounts.actor_for_token(token) is ANONYMOUS


def test_expired_session_is_anonymous(demo):
    token = accounts.login("member@example.jp", PW).token
    assert accounts.actor_for_token(token, now=utcnow() + timedelta(days=400)) is ANONYMOUS


@pytest.mark.parametrize("token", ["", None, 5, "x" * 30, "x" * 5000, {"a": 1}])
def test_garbage_tokens_are_anonymous(demo, token):
    assert accounts.actor_for_token(token) is ANONYMOUS


def test_password_change_revokes_every_other_session(demo):
    first = accounts.login("member@example.jp", PW).token
    second = accounts.login("member@example.jp", PW).token
    actor = accounts.actor_for_token(first)
    new_token = accounts.change_password(actor, PW, "a-brand-new-secret")
    assert accounts.actor_for_token(first) is ANONYMOUS
    assert accounts.actor_for_token(second) is ANONYMOUS
    assert accounts.actor_for_token(new_token).account_id == actor.account_id
    with pytest.raises(ServiceError):
        accounts.login("member@example.jp", PW)
    assert accounts.login("member@example.jp", "a-brand-new-secret").token


def test_password_change_needs_the_old_password(demo):
    actor = demo.actor("member@example.jp")
    with pytest.raises(ValidationErrors) as e:
        accounts.change_password(actor, "not-it", "a-brand-new-secret")
    assert "old_password" in e.value.errors
    assert accounts.login("member@example.jp", PW).token


def test_profile_update_validates_everything_before_writing(demo):
    actor = demo.actor("member@example.jp")
    before = accounts.get_profile(actor)
    data = {"name": "新しい 名前", "kana": "アタラシイ ナマエ", "address": "", "area_id": before.area_id,
            "birth_year": before.birth_year}
    with pytest.raises(ValidationErrors):
        accounts.update_profile(actor, data)
    assert accounts.get_profile(actor) == before
    data["address"] = "旭川市旭町2条1丁目"
    after = accounts.update_profile(actor, data)
    assert after.name == "新しい 名前" and after.address == "旭川市旭町2条1丁目"
    assert after.login_id == before.login_id


def test_anonymous_cannot_touch_profiles(demo):
    for call in (lambda: accounts.get_profile(ANONYMOUS), lambda: accounts.export_my_data(ANONYMOUS),
                 lambda: accounts.update_profile(ANONYMOUS, {}), lambda: accounts.delete_account(ANONYMOUS, PW)):
        with pytest.raises(Denied):
            call()


def test_my_data_contains_my_profile_and_memberships_and_is_audited(demo):
    actor = demo.actor("member@example.jp")
    data = accounts.export_my_data(actor)
    assert data["profile"]["login_id"] == "member@example.jp"
    assert data["memberships"][0]["association"] == "旭町一丁目町内会"
    assert "password_hash" not in str(data)
    with session() as s:
        assert s.exec(select(AuditEvent).where(AuditEvent.action == "self.export")).first() is not None


def test_my_data_includes_what_officers_noted_about_my_household_and_my_request(demo):
    actor = demo.actor("member@example.jp")
    with session() as s:
        m = s.exec(select(Membership).where(Membership.account_id == actor.account_id)).one()
        hh = s.get(Household, m.household_id)
        hh.note, m.message = "足が不自由(回覧は玄関まで)", "よろしくお願いします"
        s.add(hh)
        s.add(m)
    [mine] = accounts.export_my_data(actor)["memberships"]
    assert mine["household_note"] == "足が不自由(回覧は玄関まで)" and mine["message"] == "よろしくお願いします"
    assert "decision_note" in mine


def test_a_former_member_does_not_get_the_note_officers_wrote_about_the_next_household(demo):
    """A membership that ended keeps its household; what officers note about it afterwards is about whoever
    lives there now."""
    from chiiki.services import membership, roster
    from tests.conftest import DemoCity

    a1 = demo.association_id(DemoCity.A1)
    leaver = demo.actor("member@example.jp")
    with session() as s:
        hid = s.exec(select(Membership.household_id).where(Membership.account_id == leaver.account_id)).one()
    membership.leave(leaver, a1)
    kaicho = demo.actor("kaicho@example.jp")
    d = roster.get_household(kaicho, hid)
    roster.save_household(kaicho, a1, {"han_id": d.han_id, "address": d.address, "route_position": d.route_position,
                                       "head_name": "田中 一郎", "phone": "0166-99-9999",
                                       "note": "田中さん(新しく入居)は一人暮らし"}, hid)
    [mine] = accounts.export_my_data(demo.actor("member@example.jp"))["memberships"]
    assert mine["status"] == "left" and mine["household_note"] == ""


def test_my_data_includes_my_threads_reports_inquiries_and_logins(demo):
    from chiiki.services import board
    from tests.conftest import DemoCity

    a1 = demo.association_id(DemoCity.A1)
    me, author = demo.actor("member@example.jp"), demo.actor("member2@example.jp")
    board.create_thread(me, a1, "私のスレッドの題名", "本文")
    tid = board.create_thread(author, a1, "ゴミ出し", "本文")
    board.report_post(me, board.get_thread(author, tid).posts[0].id, "私が書いた通報の理由")
    with session() as s:
        accounts.new_session(me.account_id, s)
        s.add(Inquiry(reference="TEST-0000-0001", department_id=1, account_id=me.account_id, state="failed",
                      sender_name="旭川 一郎", sender_contact="0166-11-2222", subject="街灯", body="消えています"))
    data = accounts.export_my_data(me)
    assert [t["title"] for t in data["board_threads"]] == ["私のスレッドの題名"]
    assert [r["reason"] for r in data["board_reports"]] == ["私が書いた通報の理由"]
    assert [(q["reference"], q["body"]) for q in data["inquiries"]] == [("TEST-0000-0001", "消えています")]
    assert data["logins"] and data["account_created_at"] is not None
    assert "token_hash" not in repr(data)
    assert "ゴミ出し" not in repr(data)  # someone else's thread


def test_deleting_an_account_erases_personal_fields_and_keeps_counts(demo):
    actor = demo.actor("member@example.jp")
    deliveries_before = count(Delivery)
    accounts.delete_account(actor, PW)
    with session() as s:
        acc = s.get(Account, actor.account_id)
        membership = s.exec(select(Membership).where(Membership.account_id == actor.account_id)).one()
    assert acc.login_id is None and acc.name == "" and acc.kana == "" and acc.address == ""
    assert acc.email == "" and acc.phone == "" and acc.birth_year is None and acc.password_hash == ""
    assert acc.deleted_at is not None
    assert membership.status == "left"
    assert count(Delivery) == deliveries_before
    with session() as s:  # the deletion itself stays on record (an access that names no one else)
        deleted = s.exec(select(AuditAccess).where(AuditAccess.action == "self.delete")).all()
    assert [(a.actor_account_id, a.record_count) for a in deleted] == [(actor.account_id, 1)]
    with pytest.raises(ServiceError) as e:
        accounts.login("member@example.jp", PW)
    assert e.value.key == "error.login_failed"


def test_deleting_an_account_leaves_no_text_of_theirs_and_no_mail_to_them(demo):
    """Their queued mail is not sent; their thread's title, their join message, their own survey answer's free
    text and its household are gone; the counts (answers, choices) stay as they were."""
    from chiiki.models import BoardThread, OutboxMail, SurveyAnswer, SurveyParticipation, SurveyResponse
    from chiiki.services import board, mail, surveys
    from tests.conftest import DemoCity
    from tests.test_survey_services import answer_general, make_survey

    actor = demo.actor("member@example.jp")
    a1 = demo.association_id(DemoCity.A1)
    with session() as s:
        s.execute(update(Account).where(Account.id == actor.account_id).values(email_circulars=True))
        s.execute(update(Membership).where(Membership.account_id == actor.account_id).values(message="090-1234-5678"))
    sid = make_survey(demo)
    answer_general(demo, sid, text="足を骨折しています 090-1234-5678")
    thread = board.create_thread(actor, a1, "090-1234-5678 の件", "本文")
    with session() as s:
        mail.enqueue(s, "member@example.jp", "件名", "本文")
        mail.enqueue(s, "kaicho@example.jp", "件名", "本文")
        before = {m: s.exec(select(func.count()).select_from(m)).one()
                  for m in (SurveyResponse, SurveyAnswer, SurveyParticipation)}
    totals = surveys.results(demo.actor("kaicho@example.jp"), sid)
    accounts.delete_account(actor, PW)
    with session() as s:
        assert s.exec(select(OutboxMail.to_address).where(OutboxMail.sent_at.is_(None))).all() == ["kaicho@example.jp"]
        assert s.get(BoardThread, thread).title == ""
        assert {m.message for m in s.exec(select(Membership).where(Membership.account_id == actor.account_id))} == {""}
        [response] = s.exec(select(SurveyResponse).where(SurveyResponse.survey_id == sid)).all()
        assert response.respondent_account_id is None and response.household_id is None
        texts = s.exec(select(SurveyAnswer.text_value).where(SurveyAnswer.response_id == response.id)).all()
        assert all("090" not in t for t in texts)
        assert {m: s.exec(select(func.count()).select_from(m)).one()
                for m in (SurveyResponse, SurveyAnswer, SurveyParticipation)} == before
    after = surveys.results(demo.actor("kaicho@example.jp"), sid)
    assert [[o.count for o in q.options] for q in after.questions] == [[o.count for o in q.options]
                                                                        for q in totals.questions]


def test_deleting_an_account_erases_their_report_reasons_and_the_mail_sent_to_them(demo):
    """A reason typed when reporting a post is their text too (the moderators' queue keeps the report, not
    their words); mail already sent to them does not keep their address until the retention purge, nor its
    copy in the outbox folder."""
    from datetime import timedelta

    from chiiki.models import BoardReport, OutboxMail
    from chiiki.services import board, mail
    from tests.conftest import DemoCity

    a1 = demo.association_id(DemoCity.A1)
    author, reporter = demo.actor("member2@example.jp"), demo.actor("member@example.jp")
    tid = board.create_thread(author, a1, "ゴミ出し", "本文", now=utcnow() - timedelta(hours=1))
    board.report_post(reporter, board.get_thread(author, tid).posts[0].id, "私(佐藤 090-1234-5678)の隣の家の話です")
    with session() as s:
        mail.enqueue(s, "member@example.jp", "回覧のお知らせ", "本文")
        mail.enqueue(s, "kaicho@example.jp", "回覧のお知らせ", "本文")
    earlier = set(mail.outbox_files())  # the folder is shared with other tests' mail
    assert mail.deliver_queued().sent == 2  # no mail server set: written to the outbox folder
    accounts.delete_account(reporter, PW)
    queue = board.report_queue(demo.actor("kaicho@example.jp"), a1)
    assert [r.reason for item in queue.items for r in item.reports] == [""]  # the report stays, unsigned text gone
    with session() as s:
        assert s.exec(select(OutboxMail.to_address)).all() == ["kaicho@example.jp"]
        assert s.exec(select(BoardReport.reason)).all() == [""]
    assert [b"member@example.jp" in p.read_bytes() for p in mail.outbox_files() if p not in earlier] == [False]


def test_the_last_manager_cannot_delete_their_account(demo):
    actor = demo.actor("other@example.jp")
    # In 末広東町内会 the president is the only manager; find them through their role.
    with session() as s:
        role = s.exec(select(OfficerRole).where(OfficerRole.association_id == demo.association_id(demo.A3))).one()
        membership = s.get(Membership, role.membership_id)
        president = accounts.load_actor_in(s, membership.account_id)
    with pytest.raises(ServiceError) as e:
        accounts.delete_account(president, PW)
    assert e.value.key == "error.last_manager"
    with session() as s:
        assert s.get(Account, membership.account_id).login_id is not None
    assert actor.account_id != membership.account_id


def test_a_successor_whose_term_starts_later_cannot_delete_their_account_as_they_could_not_leave(demo):
    """The 会長 handed over to a successor starting 2099-04-01: deleting the successor's account would leave the
    association without a manager from then on, as leaving would (the look-ahead of membership.end_in)."""
    from chiiki.services import membership as ms
    from chiiki.services import officers
    from chiiki.services.associations import first_manager_gap
    from tests.test_officers_services import membership_of, role_of

    a1 = demo.association_id(demo.A1)
    officers.handover_role(demo.actor("kaicho@example.jp"), role_of(demo, "kaicho@example.jp"),
                           membership_of(demo, "member@example.jp"), "2099-04-01")
    successor = demo.actor("member@example.jp")
    with pytest.raises(ServiceError) as left:
        ms.leave(successor, a1)
    with pytest.raises(ServiceError) as deleted:
        accounts.delete_account(successor, PW)
    assert left.value.key == deleted.value.key == "error.last_manager"
    with session() as s:
        assert s.get(Account, successor.account_id).login_id == "member@example.jp"
        assert first_manager_gap(s, a1, utcnow()) is None


def test_a_han_scoped_manager_deletes_their_account_where_no_association_wide_manager_is_left(demo):
    """As they could leave: their han-wide role never kept the association managed, so ending it changes nothing."""
    from chiiki.services import officers
    from tests.test_officers_services import role_of

    a1 = demo.association_id(demo.A1)
    han1 = demo.han_ids(demo.A1)[0]
    officers.change_role(demo.actor("kaicho@example.jp"), role_of(demo, "hancho@example.jp"),
                         {"title": "班長", "permissions": ["view_members", "manage_members"], "han_id": han1})
    with session() as s:  # every association-wide manager's term has ended
        for r in s.exec(select(OfficerRole).where(OfficerRole.association_id == a1, OfficerRole.han_id.is_(None))):
            r.valid_until = utcnow() - timedelta(days=1)
            s.add(r)
    hancho = demo.actor("hancho@example.jp")
    accounts.delete_account(hancho, PW)
    with session() as s:
        assert s.get(Account, hancho.account_id).deleted_at is not None
        assert s.exec(select(Membership.status).where(Membership.account_id == hancho.account_id)).all() == ["left"]


def test_wrong_password_does_not_delete(demo):
    actor = demo.actor("member@example.jp")
    with pytest.raises(ValidationErrors):
        accounts.delete_account(actor, "nope-nope-nope")
    with session() as s:
        assert s.get(Account, actor.account_id).login_id == "member@example.jp"


def test_failed_logins_are_recorded_without_the_login_id(demo):
    with pytest.raises(ServiceError):
        accounts.login("member@example.jp", "wrong-password")
    with session() as s:
        rows = s.exec(select(LoginAttempt)).all()
    assert rows and all("member" not in r.login_key for r in rows)


def test_an_area_list_read_while_areas_change_is_not_kept(demo, monkeypatch):
    """The area tree is kept a minute per process, except a lookup that overlapped a change of the areas."""
    from contextlib import contextmanager

    from chiiki.services import accounts as accounts_module

    accounts_module.forget_areas()
    real = accounts_module.reading

    @contextmanager
    def changed_meanwhile():
        with real() as conn:
            accounts_module.forget_areas()  # e.g. city staff renamed an area in another thread
            yield conn

    monkeypatch.setattr(accounts_module, "reading", changed_meanwhile)
    assert accounts_module.areas()
    assert accounts_module._AREAS == {}
    monkeypatch.setattr(accounts_module, "reading", real)
    first = accounts_module.areas()
    assert accounts_module._AREAS and accounts_module.areas() == first


def _address_guesses_at_once(demo, monkeypatch):
    """Twelve guesses at the same moment from one address, each at another login id (no id lock to stop them):
    no more passwords are checked than the address's failures allow, and the others are refused unchecked."""
    monkeypatch.setattr(accounts, "ADDRESS_FAILURES", 4)
    checked, outcomes = _twelve_at_once(monkeypatch, lambda i: accounts.login(
        f"someone{i:02d}@example.jp", "guess-pass-1", client="203.0.113.5"))
    assert len(checked) == 4 and outcomes.count("error.too_many_here") == 8, (len(checked), outcomes)


def test_guesses_at_once_from_one_address_check_no_more_than_its_failures_allow(demo, monkeypatch):
    _address_guesses_at_once(demo, monkeypatch)


@pytest.mark.postgres
def test_guesses_at_once_from_one_address_check_no_more_than_its_failures_allow_on_postgresql(
        pg_app_db, monkeypatch):
    from chiiki.seed import seed_demo
    from tests.conftest import DemoCity

    seed_demo(content=False)
    _address_guesses_at_once(DemoCity(), monkeypatch)
