"""Accounts at their edges: a login checked while the password changes, a profile saved by a tab of an account
deleted meanwhile, registering after failed logins, a phone login id as the password, My page's messages after a
language switch."""

from __future__ import annotations

import threading

import bcrypt
import pytest
from sqlalchemy import func
from sqlmodel import select

from chiiki.models import Account
from chiiki.services import accounts
from chiiki.services.db import session
from chiiki.services.errors import Denied, ServiceError, ValidationErrors
from tests.test_accounts import valid

PASSWORD = "sakura-haru-1950"


def _actor(account_id: int):
    with session() as s:
        return accounts.load_actor_in(s, account_id)


def _change_during_the_check(monkeypatch, actor, new_password: str) -> list:
    """Make the next bcrypt check of PASSWORD run change_password(actor, PASSWORD, new_password) in another
    thread (another tab) before it returns; the list gets 1, then the change's token."""
    real = bcrypt.checkpw
    changed: list = []

    def check_while_changing(pw, hashed):
        ok = real(pw, hashed)
        if not changed and pw == PASSWORD.encode():
            changed.append(1)
            t = threading.Thread(target=lambda: changed.append(accounts.change_password(actor, PASSWORD,
                                                                                        new_password)))
            t.start()
            t.join()
        return ok

    monkeypatch.setattr(accounts.bcrypt, "checkpw", check_while_changing)
    return changed


def test_a_login_checked_while_the_password_changes_opens_no_session(demo, monkeypatch):
    """The owner changes the password (which ends every session) while someone's login with the old one is in
    its bcrypt check: that login must not come out with a session the change did not end."""
    aid = accounts.register(valid())
    changed = _change_during_the_check(monkeypatch, _actor(aid), "new-secret-pass-99")
    with pytest.raises(ServiceError) as e:
        accounts.login("hanako@example.jp", PASSWORD)
    monkeypatch.undo()
    assert len(changed) == 2 and e.value.key == "error.login_failed"
    assert accounts.login("hanako@example.jp", "new-secret-pass-99").account_id == aid


def test_two_password_changes_at_once_leave_one_password(demo, monkeypatch):
    """Both checked the same old password; the second must not overwrite the first (its old one is gone)."""
    aid = accounts.register(valid())
    actor = _actor(aid)
    changed = _change_during_the_check(monkeypatch, actor, "first-new-pass-11")
    with pytest.raises(ValidationErrors) as e:
        accounts.change_password(actor, PASSWORD, "second-new-pass-22")
    monkeypatch.undo()
    assert len(changed) == 2 and "old_password" in e.value.errors
    assert accounts.login("hanako@example.jp", "first-new-pass-11").account_id == aid


def test_a_profile_saved_by_a_tab_of_a_deleted_account_writes_nothing(demo):
    aid = accounts.register(valid())
    actor = _actor(aid)  # another tab's event: its session checked while the account was alive
    accounts.delete_account(actor, PASSWORD)
    data = {"name": "旭川 花子", "kana": "あさひかわ はなこ", "address": "旭川市旭町1条2丁目3-4",
            "area_id": valid()["area_id"], "birth_year": "1950", "email": "hanako@example.jp",
            "phone": "09012345678", "email_circulars": True}
    with pytest.raises(Denied):
        accounts.update_profile(actor, data)
    with pytest.raises(Denied):
        accounts.change_password(actor, PASSWORD, "new-secret-pass-99")
    with session() as s:
        acc = s.get(Account, aid)
    assert (acc.name, acc.email, acc.phone, acc.address, acc.email_circulars) == ("", "", "", "", False)


async def test_registering_after_failed_logins_signs_the_new_account_in(demo, app_state):
    """Someone tried to log in five times before finding they must register first: the id is locked for
    logins, but the registration opens the new account's session itself."""
    from chiiki.pages.auth import RegisterState
    from chiiki.state import AuthState

    for _ in range(5):
        with pytest.raises(ServiceError):
            accounts.login("hanako@example.jp", "whatever-wrong-1")
    reg = await app_state.get_state(RegisterState)
    form = {**{k: str(v) for k, v in valid(login_id="hanako@example.jp").items()}, "display_name": "",
            "password_confirm": PASSWORD}
    await RegisterState.submit.fn(reg, form)
    assert (reg.error, reg.errors) == ("", {})
    assert (await app_state.get_state(AuthState))._session_token()
    with session() as s:
        assert s.exec(select(func.count()).select_from(Account)
                      .where(Account.login_id == "hanako@example.jp")).one() == 1


@pytest.mark.parametrize("typed", ["090-1234-5678", "０９０１２３４５６７８", "090 1234 5678"])
def test_a_phone_number_login_id_is_refused_as_its_password_however_typed(demo, typed):
    for password in ("09012345678", "090-1234-5678"):
        with pytest.raises(ValidationErrors) as e:
            accounts.register(valid(login_id=typed, password=password))
        assert e.value.errors["password"][0] == "error.password_weak"


def test_a_phone_number_login_id_is_the_persons_phone(demo):
    aid = accounts.register(valid(login_id="090-1234-5678"))
    with session() as s:
        acc = s.get(Account, aid)
    assert (acc.login_id, acc.phone, acc.email) == ("09012345678", "09012345678", "")


async def test_my_page_messages_follow_a_language_switch(demo, app_state):
    from chiiki.pages.mypage import MyPageState
    from tests.conftest import login_state
    from tests.test_language_switch import open_page, switch_language

    await login_state(app_state, "member@example.jp")
    await open_page(app_state, "/mypage")
    mp = await app_state.get_state(MyPageState)
    form = dict(mp.profile)
    form["kana"] = "hanako"
    await MyPageState.save.fn(mp, form)
    await MyPageState.change_password.fn(mp, {"old_password": "wrong-one-123", "new_password": "x"})
    ja = (dict(mp.errors), dict(mp.password_errors))
    assert ja[0]["kana"].startswith("ふりがな") and ja[1]["old_password"] == "パスワードが違います"
    await switch_language(app_state)
    assert mp.errors["kana"] != ja[0]["kana"] and mp.errors["kana"].isascii()
    assert mp.password_errors["old_password"].isascii()


async def test_log_out_every_other_device_keeps_this_one(demo, app_state):
    from chiiki.pages.mypage import MyPageState
    from chiiki.state import AuthState
    from tests.conftest import login_state
    from tests.test_language_switch import open_page, switch_language

    phone = accounts.login("member@example.jp", "chiiki-demo-2026")
    other = demo.actor("other@example.jp")
    others_session = accounts.login("other@example.jp", "chiiki-demo-2026")
    await login_state(app_state, "member@example.jp")
    await open_page(app_state, "/mypage")
    mp = await app_state.get_state(MyPageState)
    await MyPageState.end_other_sessions.fn(mp)
    assert mp.sessions_notice.startswith("ほかの端末") and "1" in mp.sessions_notice
    this = (await app_state.get_state(AuthState))._session_token()
    assert accounts.actor_for_token(this).authenticated
    assert not accounts.actor_for_token(phone.token).authenticated
    # Nobody else's sessions.
    assert accounts.actor_for_token(others_session.token).account_id == other.account_id
    await switch_language(app_state)
    assert mp.sessions_notice == "Other devices logged out: 1"
    # Signed out in the meantime: nothing ended, back to the login page.
    with pytest.raises(Denied):
        accounts.end_other_sessions(accounts.actor_for_token(""), this)


def test_two_logins_at_once_after_a_cost_change_both_get_in(demo, monkeypatch):
    """After the bcrypt cost changed, both logins hash the password again; the one that stores second finds the
    other's new hash, which is the same password: it gets in too (it was refused as a wrong password)."""
    import dataclasses

    from chiiki import settings as settings_module

    monkeypatch.setattr(settings_module, "settings", dataclasses.replace(settings_module.settings, bcrypt_rounds=5))
    real = bcrypt.hashpw
    inner: dict = {}

    def other_device_meanwhile(pw, salt):
        if not inner:
            inner["started"] = True
            t = threading.Thread(target=lambda: inner.setdefault("r", accounts.login("member@example.jp",
                                                                                     "chiiki-demo-2026")))
            t.start()
            t.join()
        return real(pw, salt)

    monkeypatch.setattr(accounts.bcrypt, "hashpw", other_device_meanwhile)
    assert accounts.login("member@example.jp", "chiiki-demo-2026").token
    assert inner["r"].token


def test_a_new_email_address_needs_the_current_password_and_the_old_one_is_told(demo):
    """A forgotten-password link goes to the email address: a session left open on a shared tablet must not be
    enough to move it elsewhere (and then take the account over)."""
    from chiiki.models import OutboxMail

    actor = demo.actor("member@example.jp")
    data = {**{k: getattr(accounts.get_profile(actor), k) for k in ("name", "kana", "display_name", "address",
                                                                       "area_id", "birth_year", "phone")},
            "email": "thief@example.jp"}
    with pytest.raises(ValidationErrors) as e:
        accounts.update_profile(actor, data)
    assert "current_password" in e.value.errors
    with pytest.raises(ValidationErrors) as e:
        accounts.update_profile(actor, {**data, "current_password": "not-it-123"})
    assert e.value.errors["current_password"][0] == "error.password_wrong"
    assert accounts.get_profile(actor).email == "member@example.jp"
    assert accounts.update_profile(actor, {**data, "current_password": "chiiki-demo-2026"}).email == "thief@example.jp"
    with session() as s:
        told = s.exec(select(OutboxMail).where(OutboxMail.kind == "account")).one()
    assert told.to_address == "member@example.jp" and "thief@example.jp" in told.body
