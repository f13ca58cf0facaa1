"""The session cookie is HttpOnly: handlers hand it to the browser through a one-time ticket redeemed by one
page load, and every later connection is authenticated by the cookie it was opened with."""

from __future__ import annotations

from datetime import timedelta
from http.cookies import SimpleCookie
from urllib.parse import urlsplit

from reflex.istate.data import RouterData
from reflex_base.utils.format import json_dumps
from sqlmodel import select
from starlette.testclient import TestClient

from chiiki.api import api
from chiiki.models import Account, SessionHandoff, utcnow
from chiiki.pages.auth import LoginState
from chiiki.pages.mypage import MyPageState
from chiiki.services import accounts
from chiiki.services.db import session
from chiiki.state import SESSION_COOKIE, AuthState, UIState
from tests.conftest import handoff_of

PAGE = "http://localhost:3000"  # the page's origin (development: the frontend port)
BACKEND = "localhost:8000"      # the websocket's host


def connect(root, sid: str, cookie: str = "", origin: str = PAGE, host: str = BACKEND) -> None:
    """A (new) websocket of this tab: its session id and the headers of the request that opened it."""
    root.router = RouterData.from_router_data(
        {"sid": sid, "headers": {"cookie": cookie, "origin": origin, "host": host}})


def handoff_url(events) -> tuple[str, str]:
    """The handoff URL and the nonce cookie the app's script sets before going there."""
    url, _ticket, nonce = handoff_of(events)
    return url, nonce


def redeem(handoff: tuple[str, str | None], **headers):
    """The browser's request: the URL, with the nonce cookie (None: a browser that was never given it)."""
    url, nonce = handoff
    parts = urlsplit(url)
    client = TestClient(api, base_url=f"{parts.scheme}://{parts.netloc}")
    if nonce is not None:
        client.cookies.set("chiiki_handoff", nonce)
    return client.get(f"{parts.path}?{parts.query}", headers=headers, follow_redirects=False)


def set_cookie(response) -> SimpleCookie:
    jar = SimpleCookie()
    for value in response.headers.get_list("set-cookie"):
        jar.load(value)
    return jar


async def log_in(root, login: str = "member@example.jp"):
    connect(root, "sid-1")
    login_s = await root.get_state(LoginState)
    events = await LoginState.submit.fn(login_s, {"login_id": login, "password": "chiiki-demo-2026"})
    assert login_s.error == ""
    return await root.get_state(AuthState), events


async def test_login_hands_an_httponly_cookie_to_the_browser_by_one_page_load(demo, app_state):
    auth, events = await log_in(app_state)
    token = auth._session_token()
    assert accounts.actor_for_token(token).authenticated
    url, nonce = handoff_url(events)
    assert url.startswith(f"http://{BACKEND}/auth/handoff?t=")  # the backend, wherever the page is
    r = redeem((url, nonce), **{"sec-fetch-site": "same-site", "referer": PAGE + "/"})
    assert r.status_code == 303
    assert r.headers["location"] == PAGE + "/circulars"  # on to the member's home, on the page's origin
    assert r.headers["cache-control"] == "private, no-store"
    cookie = set_cookie(r)[SESSION_COOKIE]
    assert cookie.value == token
    assert cookie["httponly"] and cookie["samesite"].lower() == "strict" and cookie["path"] == "/"
    assert int(cookie["max-age"]) > 24 * 3600 and not cookie["secure"]
    assert set_cookie(r)["chiiki_handoff"]["max-age"] == "0"  # the nonce is cleared
    # A ticket works once.
    again = redeem((url, nonce))
    assert again.status_code == 303 and SESSION_COOKIE not in set_cookie(again)


async def test_the_token_never_reaches_the_browser(demo, app_state):
    auth, events = await log_in(app_state)
    token = auth._session_token()
    # A new connection opened with the cookie: the headers are in the state, the cookie is not sent.
    connect(app_state, "sid-2", cookie=f"{SESSION_COOKIE}={token}; other=1")
    await AuthState.load_page.fn(auth, "/mypage")
    assert auth.logged_in
    # (serialized as Reflex sends it: the cookie header is left out)
    assert token not in json_dumps(app_state.get_delta())
    assert token not in json_dumps(app_state.dict())
    # The handoff event carries a ticket, not the token.
    assert token not in str(events)


async def test_a_new_connection_is_authenticated_by_its_cookie_alone(demo, app_state):
    auth, _ = await log_in(app_state)
    token = auth._session_token()
    # The page load after the handoff opens a new connection, with the cookie.
    connect(app_state, "sid-2", cookie=f"{SESSION_COOKIE}={token}")
    assert (await auth._actor()).authenticated
    # A connection without the cookie (it was cleared, or never set) is anonymous, whatever this tab did.
    connect(app_state, "sid-3")
    assert not (await auth._actor()).authenticated
    await AuthState.load_page.fn(auth, "/mypage")
    assert not auth.logged_in
    # A cookie made up by hand opens nothing.
    connect(app_state, "sid-4", cookie=f"{SESSION_COOKIE}=forged-{'x' * 40}")
    assert not (await auth._actor()).authenticated


async def test_logout_revokes_the_session_and_clears_the_cookie(demo, app_state):
    auth, _ = await log_in(app_state)
    token = auth._session_token()
    connect(app_state, "sid-2", cookie=f"{SESSION_COOKIE}={token}")
    await AuthState.load_page.fn(auth, "/mypage")
    events = await AuthState.logout.fn(auth)
    assert not accounts.actor_for_token(token).authenticated
    # Until the page loads again, this connection (whose request still carries the cookie) is signed out.
    assert auth._session_token() == "" and not (await auth._actor()).authenticated
    r = redeem(handoff_url(events))
    assert r.headers["location"] == PAGE + "/login"
    cleared = set_cookie(r)[SESSION_COOKIE]
    assert cleared.value == "" and int(cleared["max-age"]) == 0 and cleared["httponly"]


async def test_a_password_change_hands_over_the_new_session(demo, app_state):
    auth, _ = await log_in(app_state)
    old = auth._session_token()
    my = await app_state.get_state(MyPageState)
    events = await MyPageState.change_password.fn(my, {"old_password": "chiiki-demo-2026",
                                                       "new_password": "new-secret-99"})
    r = redeem(handoff_url(events))
    new = set_cookie(r)[SESSION_COOKIE].value
    assert new and new != old and new == auth._session_token()
    assert accounts.actor_for_token(new).authenticated and not accounts.actor_for_token(old).authenticated
    assert r.headers["location"] == PAGE + "/mypage"


async def test_a_ticket_sent_to_another_browser_opens_nothing(demo, app_state):
    """Login CSRF: someone logs in to their own account, and sends the ticket to a victim to log the victim's
    browser in as them. Without the nonce cookie the app's page set in the first browser, it fails."""
    _, events = await log_in(app_state)
    url, nonce = handoff_url(events)
    for request in (redeem((url, None)), redeem((url, "made-up-nonce"))):
        assert request.status_code == 303 and SESSION_COOKIE not in set_cookie(request)
    # Navigations that are not the app's own page are refused before the ticket is looked at.
    for headers in ({"sec-fetch-site": "cross-site"}, {"sec-fetch-site": "none"},
                    {"sec-fetch-site": "same-site", "referer": "http://other.localhost:3000/"},
                    {"sec-fetch-site": "same-site"}):
        r = redeem((url, nonce), **headers)
        assert r.status_code == 404 and not r.headers.get_list("set-cookie"), headers
    # The real browser still can.
    assert set_cookie(redeem((url, nonce), **{"sec-fetch-site": "same-origin"}))[SESSION_COOKIE].value


async def test_a_page_of_another_site_cannot_use_the_session_cookie(demo, app_state):
    """A sibling subdomain or another port on the same host is the same site to the browser, so it sends
    the SameSite cookie with a websocket that page opens: the server ignores it unless the page is ours."""
    auth, _ = await log_in(app_state)
    cookie = f"{SESSION_COOKIE}={auth._session_token()}"
    connect(app_state, "sid-2", cookie=cookie, origin="http://evil.localhost:3000")
    assert not (await auth._actor()).authenticated
    connect(app_state, "sid-3", cookie=cookie, origin="https://chiiki.example.jp:8443", host="chiiki.example.jp")
    assert not (await auth._actor()).authenticated
    # This site's pages: the frontend in development (by any loopback name), the same host in production,
    # a program without Origin.
    for origin, host in ((PAGE, BACKEND), ("http://127.0.0.1:3000", "127.0.0.1:8000"),
                         ("https://chiiki.example.jp", "chiiki.example.jp"), ("", BACKEND)):
        connect(app_state, f"sid-{origin}", cookie=cookie, origin=origin, host=host)
        assert (await auth._actor()).authenticated, origin


async def test_logging_in_over_another_session_ends_it(demo, app_state):
    auth, _ = await log_in(app_state, "member@example.jp")
    first = auth._session_token()
    connect(app_state, "sid-2", cookie=f"{SESSION_COOKIE}={first}")
    my = await app_state.get_state(MyPageState)
    await MyPageState.load.fn(my)
    assert my.profile
    login_s = await app_state.get_state(LoginState)
    await LoginState.submit.fn(login_s, {"login_id": "member2@example.jp", "password": "chiiki-demo-2026"})
    assert not accounts.actor_for_token(first).authenticated
    assert my.profile == {}  # nothing of the first person is left in the tab
    assert (await auth._actor()).account_id == accounts.actor_for_token(auth._session_token()).account_id


async def test_the_handoff_never_sends_the_browser_to_another_host(demo, app_state):
    connect(app_state, "sid-1", origin="https://evil.example")
    login_s = await app_state.get_state(LoginState)
    events = await LoginState.submit.fn(login_s, {"login_id": "member@example.jp", "password": "chiiki-demo-2026"})
    r = redeem(handoff_url(events))
    assert r.headers["location"] == "/circulars"  # this host, not evil.example
    assert set_cookie(r)[SESSION_COOKIE]["secure"]  # an https page gets a Secure cookie


async def test_tickets_expire_and_keep_nothing_readable(demo):
    token = accounts.login("member@example.jp", "chiiki-demo-2026").token
    ticket, nonce = accounts.create_handoff(token, PAGE, "/circulars")
    with session() as s:
        row = s.exec(select(SessionHandoff)).one()
        assert ticket not in row.ticket_hash and token not in row.sealed_token and row.sealed_token
    later = utcnow() + timedelta(seconds=accounts.HANDOFF_SECONDS + 1)
    assert accounts.redeem_handoff(ticket, nonce, now=later) is None
    assert accounts.redeem_handoff(ticket, nonce) is None  # deleted when found expired
    # Expired rows are swept by the next handoff.
    accounts.create_handoff("", PAGE, "/login", now=utcnow() - timedelta(hours=1))
    accounts.create_handoff("", PAGE, "/login")
    with session() as s:
        assert len(s.exec(select(SessionHandoff)).all()) == 1
    for bad in (None, "", 5, "x" * 500, "no-such-ticket"):
        assert accounts.redeem_handoff(bad, nonce) is None and accounts.redeem_handoff(ticket, bad) is None


async def test_display_preferences_come_from_cookies_once_per_connection(demo, app_state):
    ui = await app_state.get_state(UIState)
    auth = await app_state.get_state(AuthState)
    connect(app_state, "sid-1", cookie="chiiki_lang=en; chiiki_large_text=1")
    await AuthState.load_page.fn(auth, "/login")
    assert ui.lang == "en" and ui.large_text == "1"
    events = UIState.toggle_large_text.fn(ui)
    assert ui.large_text == "0" and "chiiki_large_text=0; path=/" in str(events)
    assert "classList.toggle('large-text', false)" in str(events)  # the class set before the first paint
    # A toggle stores the choice for the other tabs and the next visit.
    events = UIState.toggle_lang.fn(ui)
    assert ui.lang == "ja" and "chiiki_lang=ja; path=/" in str(events)
    # The same connection keeps what the tab chose; a new one starts from the cookies.
    await AuthState.load_page.fn(auth, "/login")
    assert ui.lang == "ja"
    connect(app_state, "sid-2", cookie="chiiki_lang=en; chiiki_large_text=bogus")
    await AuthState.load_page.fn(auth, "/login")
    assert ui.lang == "en" and ui.large_text == "0"


def test_logs_never_carry_a_session_token(caplog):
    import logging

    import chiiki.chiiki  # noqa: F401  (installs the redaction)

    logging.getLogger("reflex_base.event").error(
        "Error processing event %s", "{'headers': {'cookie': 'chiiki_lang=en; chiiki_session=SECRET-token_1'}}")
    logging.getLogger("granian").warning("cookie: chiiki_handoff=NONCE-2; other=1")
    text = caplog.text
    assert "SECRET-token_1" not in text and "NONCE-2" not in text
    assert "chiiki_session=[redacted]" in text and "chiiki_lang=en" in text


def _prefs(login: str) -> tuple[str, bool]:
    with session() as s:
        acc = s.exec(select(Account).where(Account.login_id == login)).one()
        return acc.locale, acc.large_text


async def test_the_language_and_text_size_follow_the_account(demo, app_state):
    """A toggle while signed in is kept on the account (mail is written in that language); logging in on a
    browser that never chose takes the account's; a browser's own choice made before logging in wins."""
    from chiiki.pages.auth import LoginState

    assert _prefs("member@example.jp") == ("ja", False)
    connect(app_state, "sid-1", cookie="")
    auth = await app_state.get_state(AuthState)
    await AuthState.load_page.fn(auth, "/login")
    login = await app_state.get_state(LoginState)
    await LoginState.submit.fn(login, {"login_id": "member@example.jp", "password": "chiiki-demo-2026"})
    ui = await app_state.get_state(UIState)
    for toggle, then in ((UIState.toggle_lang, UIState.lang_changed), (UIState.toggle_large_text, UIState.save_prefs)):
        events = toggle.fn(ui)
        assert any(f".{then.fn.__name__}" in str(e) for e in events)
        await then.fn(ui)
    assert (ui.lang, ui.large_text) == ("en", "1")
    assert _prefs("member@example.jp") == ("en", True)

    # A new phone (no cookies): logging in shows English in large text at once, and remembers it there.
    other = type(app_state)()
    connect(other, "sid-2", cookie="")
    await AuthState.load_page.fn(await other.get_state(AuthState), "/login")
    events = await LoginState.submit.fn(await other.get_state(LoginState),
                                        {"login_id": "member@example.jp", "password": "chiiki-demo-2026"})
    handoff_of(events)
    ui2 = await other.get_state(UIState)
    assert (ui2.lang, ui2.large_text) == ("en", "1")
    assert "chiiki_lang=en; path=/" in str(events) and "chiiki_large_text=1; path=/" in str(events)

    # A choice made on the login page before logging in is kept, and the account follows.
    third = type(app_state)()
    connect(third, "sid-3", cookie="chiiki_lang=en")
    await AuthState.load_page.fn(await third.get_state(AuthState), "/login")
    ui3 = await third.get_state(UIState)
    UIState.toggle_lang.fn(ui3)
    await UIState.lang_changed.fn(ui3)  # signed out: nothing saved yet
    assert ui3.lang == "ja" and _prefs("member@example.jp") == ("en", True)
    await LoginState.submit.fn(await third.get_state(LoginState),
                               {"login_id": "member@example.jp", "password": "chiiki-demo-2026"})
    assert ui3.lang == "ja"
    assert _prefs("member@example.jp") == ("ja", True)

    # A shared tablet: the cookies the last person's login left are not the next person's choice.
    assert _prefs("kaicho@example.jp") == ("ja", False)
    shared = type(app_state)()
    connect(shared, "sid-5", cookie="chiiki_lang=en; chiiki_large_text=1")
    await AuthState.load_page.fn(await shared.get_state(AuthState), "/login")
    events = await LoginState.submit.fn(await shared.get_state(LoginState),
                                        {"login_id": "kaicho@example.jp", "password": "chiiki-demo-2026"})
    ui5 = await shared.get_state(UIState)
    assert (ui5.lang, ui5.large_text) == ("ja", "0") and "chiiki_lang=ja; path=/" in str(events)
    assert _prefs("kaicho@example.jp") == ("ja", False)

    # Signed out, a toggle changes no account.
    anon = type(app_state)()
    connect(anon, "sid-4", cookie="")
    ui4 = await anon.get_state(UIState)
    UIState.toggle_lang.fn(ui4)
    await UIState.lang_changed.fn(ui4)
    assert _prefs("member@example.jp") == ("ja", True)


async def test_registering_in_english_keeps_english_on_the_account(demo, app_state):
    from chiiki.pages.auth import RegisterState

    connect(app_state, "sid-1", cookie="")
    await AuthState.load_page.fn(await app_state.get_state(AuthState), "/register")
    UIState.toggle_lang.fn(await app_state.get_state(UIState))  # switched on the registration page
    reg = await app_state.get_state(RegisterState)
    await RegisterState.submit.fn(reg, {
        "name": "Hana Asahi", "kana": "あさひ はな", "address": "旭川市旭町1条2丁目3-4",
        "area_id": str(accounts.areas()[0][0]), "birth_year": "1990", "display_name": "",
        "login_id": "hana@example.jp", "password": "sakura-haru-1990", "password_confirm": "sakura-haru-1990"})
    assert reg.errors == {} and reg.error == ""
    assert _prefs("hana@example.jp") == ("en", False)
    # The switch was hers: the next person to log in on this tablet keeps their own.
    await AuthState.logout.fn(await app_state.get_state(AuthState))
    await LoginState.submit.fn(await app_state.get_state(LoginState),
                               {"login_id": "kaicho@example.jp", "password": "chiiki-demo-2026"})
    assert _prefs("kaicho@example.jp") == ("ja", False)


def test_a_preference_given_alone_leaves_the_other_as_it_is(demo):
    member = demo.actor("member@example.jp")
    accounts.set_preferences(member, large_text=True)
    assert _prefs("member@example.jp") == ("ja", True)
    accounts.set_preferences(member, locale="en")
    assert _prefs("member@example.jp") == ("en", True)
    accounts.set_preferences(member, locale="fr", large_text=False)  # an unknown language is ignored
    assert _prefs("member@example.jp") == ("en", False)
    accounts.set_preferences(member)
    assert _prefs("member@example.jp") == ("en", False)
    assert _prefs("member2@example.jp") == ("ja", False)  # nobody else's account changed
