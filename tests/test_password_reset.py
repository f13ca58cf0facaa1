"""A forgotten password: a one-time link mailed to the account's address (or printed at the city's counter),
the same answer whether the login id exists or not, requests counted, and the link used once."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import func
from sqlmodel import select

from chiiki import routes
from chiiki.models import OutboxMail, PasswordReset, utcnow
from chiiki.services import accounts, password_reset
from chiiki.services.db import session
from chiiki.services.errors import ServiceError, ValidationErrors
from tests.test_accounts import valid

PW = "chiiki-demo-2026"
NEW = "yuki-no-asahi-2027"


def _mails(to: str | None = None) -> list[OutboxMail]:
    with session() as s:
        q = select(OutboxMail).where(OutboxMail.kind == "reset").order_by(OutboxMail.id)
        return list(s.exec(q.where(OutboxMail.to_address == to) if to else q).all())


def _token(mail: OutboxMail) -> str:
    return re.search(re.escape(routes.PASSWORD_RESET) + r"\?token=([\w-]+)", mail.body).group(1)


def test_a_mailed_link_sets_a_new_password_once_and_ends_every_session(demo):
    phone = accounts.login("member@example.jp", PW)
    password_reset.request_link("Member@Example.jp")
    (mail,) = _mails("member@example.jp")
    token = _token(mail)
    assert password_reset.link_is_valid(token)
    assert password_reset.set_new_password(token, NEW) == "member@example.jp"
    assert not accounts.actor_for_token(phone.token).authenticated
    assert accounts.login("member@example.jp", NEW).token
    with pytest.raises(ServiceError):
        accounts.login("member@example.jp", PW)
    # Once only.
    assert not password_reset.link_is_valid(token)
    with pytest.raises(ServiceError) as e:
        password_reset.set_new_password(token, "another-pass-2028")
    assert e.value.key == "reset.error.invalid_link"


def test_the_answer_is_the_same_whether_the_id_exists(demo):
    """Nothing is raised for an unknown id, and nothing is mailed; a login id that is not one is a field error."""
    assert password_reset.request_link("nobody@example.jp") is None
    assert password_reset.request_link("090-0000-0000") is None
    assert _mails() == []
    with pytest.raises(ServiceError) as e:
        password_reset.request_link("not an id")
    assert e.value.field == "login_id"


def test_a_phone_login_without_an_email_gets_no_mail_and_the_counter_prints_a_link(demo):
    accounts.register(valid(login_id="090-1234-5678", email=""))
    password_reset.request_link("09012345678")
    assert _mails() == []
    link, expires = password_reset.link_for_counter("090-1234-5678")
    assert link.startswith("http") and expires > utcnow()
    assert _mails() == []  # no address to tell the owner at
    password_reset.set_new_password(link.rsplit("=", 1)[1], NEW)
    assert accounts.login("09012345678", NEW).token
    with pytest.raises(ServiceError):
        password_reset.link_for_counter("nobody@example.jp")


def test_requests_are_counted_per_login_id(demo):
    for _ in range(password_reset.RESET_REQUESTS + 2):
        password_reset.request_link("member@example.jp")
    assert len(_mails("member@example.jp")) == password_reset.RESET_REQUESTS
    # An hour later it works again; another id was never limited by these.
    password_reset.request_link("member@example.jp", now=utcnow() + password_reset.RESET_WINDOW
                                + timedelta(seconds=1))
    password_reset.request_link("member2@example.jp")
    assert len(_mails("member@example.jp")) == password_reset.RESET_REQUESTS + 1
    assert len(_mails("member2@example.jp")) == 1


def test_a_weak_password_an_expired_link_or_a_deleted_account_change_nothing(demo):
    password_reset.request_link("member@example.jp")
    token = _token(_mails("member@example.jp")[0])
    with pytest.raises(ValidationErrors) as e:
        password_reset.set_new_password(token, "member@example.jp")
    assert "new_password" in e.value.errors
    assert password_reset.link_is_valid(token)  # still usable: nothing was written
    assert accounts.login("member@example.jp", PW).token
    later = utcnow() + timedelta(minutes=password_reset.RESET_MINUTES + 1)
    assert not password_reset.link_is_valid(token, now=later)
    with pytest.raises(ServiceError):
        password_reset.set_new_password(token, NEW, now=later)
    for bad in ("", None, "x" * 500, "no-such-token-0000000000000000"):
        assert not password_reset.link_is_valid(bad)
    accounts.delete_account(accounts.actor_for_token(accounts.login("member2@example.jp", PW).token), PW)
    with pytest.raises(ServiceError):
        password_reset.link_for_counter("member2@example.jp")


def test_a_reset_lifts_the_login_lock_and_uses_every_other_link(demo):
    for _ in range(accounts.MAX_FAILURES):
        with pytest.raises(ServiceError):
            accounts.login("member@example.jp", "wrong-password-1")
    with pytest.raises(ServiceError) as e:
        accounts.login("member@example.jp", PW)
    assert e.value.key == "error.locked"
    password_reset.request_link("member@example.jp")
    password_reset.request_link("member@example.jp")
    first, second = (_token(m) for m in _mails("member@example.jp"))
    password_reset.set_new_password(second, NEW)
    assert accounts.login("member@example.jp", NEW).token
    assert not password_reset.link_is_valid(first)


def test_the_purge_removes_used_and_expired_links(demo):
    from chiiki.services import inquiries

    password_reset.request_link("member@example.jp")
    password_reset.request_link("member2@example.jp")
    password_reset.set_new_password(_token(_mails("member@example.jp")[0]), NEW)
    report = inquiries.purge_expired(force=True)
    assert report.password_links == 1
    with session() as s:
        assert s.exec(select(func.count()).select_from(PasswordReset)).one() == 1


# --------------------------------------------------------------------------- the pages


async def test_the_pages_ask_for_a_link_and_set_the_password(demo, app_state):
    from chiiki.pages.auth import ForgotState, ResetState
    from chiiki.state import AuthState
    from tests.test_language_switch import open_page, switch_language

    await open_page(app_state, routes.PASSWORD_FORGOT)
    forgot = await app_state.get_state(ForgotState)
    await ForgotState.submit.fn(forgot, {"login_id": "hello"})
    assert forgot.errors["login_id"] and not forgot.asked
    await switch_language(app_state)
    assert forgot.errors["login_id"].isascii()
    await switch_language(app_state)
    await ForgotState.submit.fn(forgot, {"login_id": "member@example.jp"})
    assert forgot.asked and forgot.errors == {}
    token = _token(_mails("member@example.jp")[0])

    reset = await app_state.get_state(ResetState)
    await open_page(app_state, routes.PASSWORD_RESET, "?token=" + token)
    await ResetState.load.fn(reset)
    assert reset.valid
    await ResetState.submit.fn(reset, {"new_password": NEW, "password_confirm": NEW + "x"})
    assert reset.errors["password_confirm"] and password_reset.link_is_valid(token)
    await ResetState.submit.fn(reset, {"new_password": NEW, "password_confirm": NEW})
    assert not reset.valid and not password_reset.link_is_valid(token)
    assert (await app_state.get_state(AuthState))._flash_next.startswith("パスワードを再設定しました")
    assert accounts.login("member@example.jp", NEW).token

    await open_page(app_state, routes.PASSWORD_RESET, "?token=" + token)
    await ResetState.load.fn(reset)
    assert reset.checked and not reset.valid


def test_the_counter_command_prints_a_working_link(demo, capsys):
    from chiiki import cli

    assert cli.main(["reset-link", "member@example.jp"]) == 0
    link = capsys.readouterr().out.strip().splitlines()[-1]
    # The owner is told that a link was made at the counter, not given the link.
    [told] = _mails("member@example.jp")
    assert told.subject == "【地域】窓口でパスワード再設定のリンクを発行しました"
    assert "市の窓口" in told.body and "すぐに市役所にご連絡ください" in told.body and "token" not in told.body
    password_reset.set_new_password(link.rsplit("=", 1)[1], NEW)
    assert accounts.login("member@example.jp", NEW).token
    assert cli.main(["reset-link", "nobody@example.jp"]) == 1
    assert "No account has that login ID" in capsys.readouterr().err


def test_a_sent_link_is_not_kept_in_the_database_and_the_request_marks_go_after_the_hour(demo):
    from chiiki.models import LoginAttempt
    from chiiki.services import inquiries, mail

    password_reset.request_link("member@example.jp")
    token = _token(_mails("member@example.jp")[0])
    assert mail.deliver_queued().sent == 1
    (sent,) = _mails("member@example.jp")
    assert sent.sent_at is not None and token not in sent.body and sent.subject
    assert password_reset.link_is_valid(token)  # the mail carries it; the database only its hash
    with session() as s:
        marks = s.exec(select(func.count()).select_from(LoginAttempt)
                       .where(LoginAttempt.login_key.startswith(password_reset.KEY_PREFIX))).one()
    assert marks == 1
    inquiries.purge_expired(now=utcnow() + password_reset.RESET_WINDOW + timedelta(minutes=1), force=True)
    with session() as s:
        marks = s.exec(select(func.count()).select_from(LoginAttempt)
                       .where(LoginAttempt.login_key.startswith(password_reset.KEY_PREFIX))).one()
    assert marks == 0
