"""Account pages through an rx.State tree: what each handler does and what reaches the browser."""

import pytest
from sqlalchemy import func
from sqlmodel import select

from chiiki.models import Account, Area
from chiiki.pages.auth import LoginState, RegisterState
from chiiki.pages.mypage import AccessLogState, MyPageState
from chiiki.services import accounts, associations
from chiiki.services.db import session
from chiiki.state import AuthState, UIState
from tests.conftest import handoff_of, login_state, state_text


def _account_id(login: str) -> int:
    with session() as s:
        return s.exec(select(Account.id).where(Account.login_id == login)).one()


def n_accounts() -> int:
    with session() as s:
        return s.exec(select(func.count()).select_from(Account)).one()


def form(**over):
    data = {"name": "旭川 花子", "kana": "あさひかわ はなこ", "address": "旭川市旭町1条2丁目3-4",
            "area_id": str(accounts.areas()[0][0]), "birth_year": "1950", "display_name": "",
            "login_id": "hanako@example.jp", "password": "sakura-haru-1950", "password_confirm": "sakura-haru-1950"}
    data.update(over)
    return data


def redirect_target(events) -> str:
    """The path of the rx.redirect among the events a handler returned."""
    events = events if isinstance(events, (list, tuple)) else [events]
    paths = [str(value).strip('"') for e in events if e is not None for name, value in getattr(e, "args", ())
             if str(name) == "path"]
    assert len(paths) == 1, events
    return paths[0]


def handoff(events) -> accounts.Handoff:
    """Redeem the session handoff a handler sent the browser to, as the browser's page load does."""
    _url, ticket, nonce = handoff_of(events)
    found = accounts.redeem_handoff(ticket, nonce)
    assert found is not None
    return found


async def test_register_logs_in_and_goes_to_joining(demo, app_state):
    reg = await app_state.get_state(RegisterState)
    await RegisterState.load.fn(reg)
    assert reg.area_options
    events = await RegisterState.submit.fn(reg, form())
    auth = await app_state.get_state(AuthState)
    # A new account is in no association yet: the next step is joining one; the browser gets the
    # session as its HttpOnly cookie on the way there.
    landing = handoff(events)
    assert landing.next_path == "/join" and landing.token == auth._session_token()
    assert reg.errors == {} and reg.error == ""
    assert auth._session_token()
    await AuthState.load_nav.fn(auth)
    assert auth.logged_in and auth.display_name == "旭川"
    assert "sakura-haru-1950" not in state_text(app_state)


async def test_register_error_is_japanese_and_jumps_to_its_screen(demo, app_state):
    reg = await app_state.get_state(RegisterState)
    before = n_accounts()
    await RegisterState.submit.fn(reg, form(kana="hanako", birth_year="2999"))
    assert reg.errors["kana"] == "ふりがなは、ひらがなかカタカナで入力してください"
    assert "birth_year" in reg.errors
    assert reg.step == 1
    assert n_accounts() == before
    assert (await app_state.get_state(AuthState))._session_token() == ""


async def test_register_errors_follow_the_english_switch(demo, app_state):
    ui = await app_state.get_state(UIState)
    UIState.toggle_lang.fn(ui)
    reg = await app_state.get_state(RegisterState)
    await RegisterState.submit.fn(reg, form(password="short", password_confirm="short"))
    assert reg.errors["password"] == "Use at least 8 characters"
    assert reg.step == 3


async def test_mismatched_passwords_write_nothing(demo, app_state):
    reg = await app_state.get_state(RegisterState)
    before = n_accounts()
    await RegisterState.submit.fn(reg, form(password_confirm="different-pass-1"))
    assert "password_confirm" in reg.errors
    assert n_accounts() == before


@pytest.mark.parametrize("payload", [None, "string", 5, ["a"], {"name": {"$ne": 1}}])
async def test_crafted_register_payloads_write_nothing(demo, app_state, payload):
    reg = await app_state.get_state(RegisterState)
    before = n_accounts()
    await RegisterState.submit.fn(reg, payload)
    assert n_accounts() == before


async def test_login_wrong_password_message(demo, app_state):
    login = await app_state.get_state(LoginState)
    await LoginState.submit.fn(login, {"login_id": "member@example.jp", "password": "nope-nope"})
    assert login.error == "ログインIDまたはパスワードが違います"
    assert (await app_state.get_state(AuthState))._session_token() == ""


async def test_failed_logins_are_counted_by_the_address_they_come_from(demo, app_state, monkeypatch):
    """A client guessing across many ids (the per-id lock allows a few guesses each) is stopped by its address
    (router.session.client_ip): after ADDRESS_FAILURES failures within the lock's minutes, its logins are refused
    unchecked, the right password too, and told until when; another address logs in as before."""
    from reflex.istate.data import RouterData

    monkeypatch.setattr(accounts, "ADDRESS_FAILURES", 3)

    async def tab(ip: str):
        root = type(app_state)()
        root.router = RouterData.from_router_data({"sid": f"sid-{ip}", "ip": ip, "headers": {"host": "localhost"}})
        return await root.get_state(LoginState)

    guesser = await tab("203.0.113.5")
    for login_id in ("member@example.jp", "hancho@example.jp", "kaicho@example.jp"):
        await LoginState.submit.fn(guesser, {"login_id": login_id, "password": "password-guess-1"})
        assert guesser.error == "ログインIDまたはパスワードが違います"
    await LoginState.submit.fn(guesser, {"login_id": "member2@example.jp", "password": "chiiki-demo-2026"})
    assert guesser.error.startswith("この接続からのログインの失敗が多すぎるため")
    assert (await guesser.get_state(AuthState))._session_token() == ""
    elsewhere = await tab("198.51.100.7")
    events = await LoginState.submit.fn(elsewhere, {"login_id": "member2@example.jp", "password": "chiiki-demo-2026"})
    assert elsewhere.error == "" and events and (await elsewhere.get_state(AuthState))._session_token()


async def test_behind_a_proxy_the_app_was_not_told_of_failed_logins_are_not_counted_by_its_address(
        demo, app_state, monkeypatch, caplog):
    """A reverse proxy on the machine's network forwarding for everyone while REFLEX_TRUSTED_PROXY_HOPS is unset:
    every login seems to come from the proxy. Counting them by that address would lock the whole city out; they
    are counted by login id only, and the missing setting is logged. Told of the proxy, the address counts."""
    import reflex as rx
    from reflex.istate.data import RouterData

    from chiiki import state as state_module

    monkeypatch.setattr(accounts, "ADDRESS_FAILURES", 1)
    monkeypatch.setattr(state_module, "_warned_proxy", [])

    async def tab(ip: str):
        root = type(app_state)()
        root.router = RouterData.from_router_data({"sid": f"sid-{ip}", "ip": ip, "headers": {
            "host": "localhost", "x-forwarded-for": "198.51.100.7"}})
        return await root.get_state(LoginState)

    via_proxy = await tab("172.18.0.5")
    await LoginState.submit.fn(via_proxy, {"login_id": "member@example.jp", "password": "password-guess-1"})
    await LoginState.submit.fn(via_proxy, {"login_id": "member2@example.jp", "password": "chiiki-demo-2026"})
    assert via_proxy.error == ""
    assert "REFLEX_TRUSTED_PROXY_HOPS is not set" in caplog.text
    monkeypatch.setattr(rx.config.get_config(), "trusted_proxy_hops", 1)
    told = await tab("198.51.100.7")  # the address Reflex takes from X-Forwarded-For
    await LoginState.submit.fn(told, {"login_id": "member@example.jp", "password": "password-guess-1"})
    await LoginState.submit.fn(told, {"login_id": "member2@example.jp", "password": "chiiki-demo-2026"})
    assert told.error.startswith("この接続からのログインの失敗が多すぎるため")


@pytest.mark.parametrize("login,home", [
    ("member@example.jp", "/circulars"),      # the inbox is a member's home
    ("kaicho@example.jp", "/circulars"),
    ("city@example.jp", "/city"),
    ("newcomer@example.jp", "/join"),
])
async def test_login_lands_on_the_home_for_the_role(demo, app_state, login, home):
    login_s = await app_state.get_state(LoginState)
    events = await LoginState.submit.fn(login_s, {"login_id": login, "password": "chiiki-demo-2026"})
    assert login_s.error == ""
    assert handoff(events).next_path == home


async def test_a_page_load_is_one_event_with_the_navigation_and_the_page(demo_full, app_state):
    from chiiki.pages.circulars import InboxState

    login_s = await app_state.get_state(LoginState)
    await LoginState.submit.fn(login_s, {"login_id": "member@example.jp", "password": "chiiki-demo-2026"})
    auth = await app_state.get_state(AuthState)
    assert not auth.logged_in  # nothing refreshed yet
    await AuthState.load_page.fn(auth, "/circulars")
    inbox = await app_state.get_state(InboxState)
    assert auth.logged_in and auth.is_member and auth.unread_circulars > 0
    assert inbox.items, "the inbox page's own load ran in the same event"
    # A route with no registered handlers (or a forged one) only refreshes the navigation.
    assert await AuthState.load_page.fn(auth, "/no-such-page") is None
    assert await AuthState.load_page.fn(auth, {"not": "a route"}) is None


async def test_the_actor_shared_within_a_page_load_does_not_outlive_it(demo, app_state):
    auth = await login_state(app_state, "member@example.jp")
    await AuthState.load_page.fn(auth, "/mypage")
    accounts.logout(auth._session_token())  # revoked elsewhere, e.g. a password change on another phone
    assert not (await auth._actor()).authenticated
    await AuthState.load_page.fn(auth, "/mypage")
    assert not auth.logged_in


async def test_a_page_loads_handlers_share_its_session_check_until_one_switches_the_session(demo, app_state,
                                                                                            monkeypatch):
    """The page's handlers act as the actor the page load looked up (no second session check), and a handler
    that switches the tab's session (_use_session) makes the next one look the session up again."""
    from chiiki import state as state_module

    auth = await login_state(app_state, "member@example.jp")
    with session() as s:
        other = accounts.new_session(_account_id("kaicho@example.jp"), s)
    seen, lookups = [], []
    real = accounts.actor_for_token
    monkeypatch.setattr(accounts, "actor_for_token", lambda t, *a: lookups.append(t) or real(t, *a))

    async def first(ui):
        seen.append(await (await ui.get_state(AuthState))._actor())

    async def switch(ui):
        (await ui.get_state(AuthState))._use_session(other)

    monkeypatch.setitem(state_module._PAGE_LOADS, "/test-shared", [
        type("H", (), {"state": UIState, "fn": staticmethod(first)}),
        type("H", (), {"state": UIState, "fn": staticmethod(switch)}),
        type("H", (), {"state": UIState, "fn": staticmethod(first)}),
    ])
    await AuthState.load_page.fn(auth, "/test-shared")
    assert state_module._PAGE_ACTOR.get() is None  # nothing outlives the page load
    assert [a.account_id for a in seen] == [_account_id("member@example.jp"), _account_id("kaicho@example.jp")]
    assert lookups == [other]  # the first from the page load's own check, the second looked up anew


async def test_a_page_load_passes_on_the_redirect_of_a_page_handler(demo, app_state):
    auth = await app_state.get_state(AuthState)
    events = await AuthState.load_page.fn(auth, "/mypage")  # not logged in
    assert redirect_target(events) == "/login"


async def test_nav_flags_follow_the_policy(demo, app_state):
    auth = await login_state(app_state, "hancho@example.jp")
    assert auth.is_member and auth.can_view_members and auth.can_send_circulars
    assert not auth.can_manage_members and not auth.can_export and not auth.is_city_staff
    assert auth.association_name == "旭町一丁目町内会"


async def test_member_nav_has_no_officer_flags(demo, app_state):
    auth = await login_state(app_state, "member@example.jp")
    assert auth.is_member and not auth.is_officer and not auth.can_view_members


async def test_logout_resets_every_user_state(demo, app_state):
    auth = await login_state(app_state, "member@example.jp")
    my = await app_state.get_state(MyPageState)
    await MyPageState.load.fn(my)
    assert my.profile["name"]
    token = auth._session_token()
    await AuthState.logout.fn(auth)
    assert auth._session_token() == "" and not auth.logged_in and auth.display_name == ""
    assert my.profile == {}
    assert accounts.actor_for_token(token).account_id is None
    assert "member@example.jp" not in state_text(app_state)


async def test_my_page_holds_only_my_own_data(demo, app_state):
    await login_state(app_state, "member@example.jp")
    my = await app_state.get_state(MyPageState)
    await MyPageState.load.fn(my)
    text = state_text(app_state)
    with session() as s:
        others = s.exec(select(Account).where(Account.login_id != "member@example.jp",
                                              Account.login_id.is_not(None))).all()
    leaked = [a.name for a in others if a.name and a.name in text]
    leaked += [a.address for a in others if a.address and a.address in text]
    assert leaked == []
    assert "password_hash" not in text and "$2b$" not in text


async def test_my_page_sends_the_area_list_only_when_it_changed(demo, app_state):
    await login_state(app_state, "member@example.jp")
    my = await app_state.get_state(MyPageState)
    await MyPageState.load.fn(my)
    assert len(my.area_options) > 1 and "area_options" in my.dirty_vars
    my._clean()
    await MyPageState.load.fn(my)  # visited again: the browser holds the list already
    assert "area_options" not in my.dirty_vars and len(my.area_options) > 1
    before = [list(o) for o in my.area_options]
    # The city adds a district meanwhile: the next visit sends the new list.
    city = demo.actor("city@example.jp")
    with session() as s:
        city_area = s.exec(select(Area.id).where(Area.level == "city")).first()
    new_id = associations.create_area(city, {"name": "西地区", "level": "district", "parent_id": str(city_area)})
    my._clean()
    await MyPageState.load.fn(my)
    assert "area_options" in my.dirty_vars and len(my.area_options) == len(before) + 1
    assert [str(new_id), "西地区"] in my.area_options
    my._clean()
    await MyPageState.load.fn(my)
    assert "area_options" not in my.dirty_vars


async def test_my_page_without_login_redirects_and_loads_nothing(demo, app_state):
    my = await app_state.get_state(MyPageState)
    result = await MyPageState.load.fn(my)
    assert my.profile == {}
    assert "/login" in str(result)


async def test_profile_save_shows_field_errors_and_keeps_data(demo, app_state):
    await login_state(app_state, "member@example.jp")
    my = await app_state.get_state(MyPageState)
    await MyPageState.load.fn(my)
    name_before = my.profile["name"]
    await MyPageState.save.fn(my, {**my.profile, "name": "", "has_small_children": "on"})
    assert my.errors["name"] == "入力してください"
    assert accounts.get_profile(demo.actor("member@example.jp")).name == name_before


async def test_password_change_through_the_page_keeps_me_logged_in(demo, app_state):
    auth = await login_state(app_state, "member@example.jp")
    old_token = auth._session_token()
    my = await app_state.get_state(MyPageState)
    await MyPageState.change_password.fn(my, {"old_password": "chiiki-demo-2026", "new_password": "new-secret-99"})
    assert my.password_errors == {}
    assert auth._session_token() != old_token
    assert accounts.actor_for_token(old_token).account_id is None
    assert accounts.actor_for_token(auth._session_token()).account_id == demo.account_id("member@example.jp")


async def test_delete_account_through_the_page(demo, app_state):
    auth = await login_state(app_state, "member@example.jp")
    my = await app_state.get_state(MyPageState)
    await MyPageState.delete_account.fn(my, {"delete_password": "wrong-password"})
    assert my.delete_errors["delete_password"] == "パスワードが違います"
    await MyPageState.delete_account.fn(my, {"delete_password": "chiiki-demo-2026"})
    assert auth._session_token() == "" and not auth.logged_in
    with session() as s:
        assert s.exec(select(Account).where(Account.login_id == "member@example.jp")).first() is None


async def test_access_log_lists_only_accesses_to_me(demo, app_state):
    from chiiki.services import audit

    member = demo.actor("member@example.jp")
    officer = demo.actor("kaicho@example.jp")
    with session() as s:
        audit.record(s, officer, "roster.view", association_id=demo.association_id(demo.A1),
                     subjects=[member.account_id])
        audit.record(s, officer, "roster.view", association_id=demo.association_id(demo.A1),
                     subjects=[demo.account_id("member2@example.jp")])
    await login_state(app_state, "member@example.jp")
    log = await app_state.get_state(AccessLogState)
    await AccessLogState.load.fn(log)
    assert len(log.rows) == 1
    assert log.rows[0]["who"].startswith("会長")
    # Named by display name only (privacy rule 1), never the officer's full name.
    with session() as s:
        kaicho = s.get(Account, officer.account_id)
    assert log.rows[0]["who"] == f"会長 {kaicho.display_name}"
    assert kaicho.name not in state_text(app_state)
    assert log.rows[0]["what"] == "名簿で閲覧"


@pytest.mark.postgres
async def test_page_loads_with_badges_on_postgresql(pg_app_db, app_state):
    """The prepared statements behind every page (session, memberships, roles, the two badges) on PostgreSQL:
    a member sees their unread circulars and the open safety check, the badges follow what they do."""
    from chiiki.models import Delivery
    from chiiki.pages.circulars import InboxState
    from chiiki.seed import seed_demo
    from chiiki.services import surveys as survey_service
    from tests.conftest import DemoCity
    from tests.test_survey_services import make_survey, qmap

    seed_demo()
    city = DemoCity()
    kaicho = await login_state(app_state, "kaicho@example.jp")
    assert kaicho.can_manage_members and kaicho.can_send_circulars and kaicho.is_officer
    sid = make_survey(city, kind="safety", questions=[])
    auth = await login_state(app_state, "member@example.jp")
    assert auth.urgent_surveys == 1 and not auth.is_officer
    with session() as s:
        unread = s.exec(select(func.count()).select_from(Delivery).where(
            Delivery.account_id == city.account_id("member@example.jp"), Delivery.state == "unread")).one()
    await AuthState.load_page.fn(auth, "/circulars")
    assert auth.unread_circulars == unread
    inbox = await app_state.get_state(InboxState)
    assert inbox.loaded and inbox.items
    # The inbox's other prepared shapes: a search (with LIKE wildcards escaped), a year, a state filter.
    from chiiki.services import circulars

    member_actor = await auth._actor()
    aid = auth.association_id
    first = inbox.items[0]
    found = circulars.inbox(member_actor, aid, query=first["title"][:4], state="all")
    assert first["id"] in {str(i.circular_id) for i in found.items}
    assert circulars.inbox(member_actor, aid, query="100%_").total == 0
    year = found.years[0]
    from chiiki.i18n import TZ

    by_year = circulars.inbox(member_actor, aid, year=year)
    assert by_year.total >= 1 and all(i.sent_at.astimezone(TZ).year == year for i in by_year.items)
    assert circulars.inbox(member_actor, aid, year=year - 1).total == 0 or year - 1 in found.years
    assert circulars.inbox(member_actor, aid, state="unread").total == unread
    member = await auth._actor()
    survey_service.submit_answer(member, sid, {f"q{qid}": options[0] for qid, options in qmap(city, sid) if options})
    await AuthState.load_page.fn(auth, "/circulars")
    assert auth.urgent_surveys == 0
    # The survey list and the notice feed, prepared once per shape, on PostgreSQL too.
    listed = {i.survey.id: i for i in survey_service.list_surveys(member, aid).items}
    assert listed[sid].answered and listed[sid].targeted and not listed[sid].can_manage
    managed = {i.survey.id: i for i in survey_service.list_surveys(city.actor("kaicho@example.jp"), aid).items}
    assert managed[sid].can_manage and managed[sid].respondents == 1
    from chiiki.services import notices

    feed = notices.feed(member)
    assert feed.items and feed.total >= len(feed.items) and feed.unread >= 1
    unread = next(item for item in feed.items if not item.read)
    notices.mark_read(member, unread.id)
    after = notices.feed(member)
    assert after.unread == feed.unread - 1 and next(i for i in after.items if i.id == unread.id).read
    assert [i.urgent for i in after.items] == sorted((i.urgent for i in after.items), reverse=True)
    from chiiki.models import BoardPost
    from chiiki.services import board

    threads = board.list_threads(member, aid)
    assert threads.items and threads.total >= len(threads.items)
    with session() as s:
        posts = dict(s.exec(select(BoardPost.thread_id, func.count()).group_by(BoardPost.thread_id)).all())
    assert all(t.replies == posts[t.id] - 1 and (t.state != "visible" or t.title) for t in threads.items)


async def test_page_reads_run_on_the_event_loop_with_sqlite_and_in_a_thread_with_a_server(monkeypatch):
    """run_read: a page's bounded read stays on the event loop with SQLite (no thread hand-offs); with a
    database server, whose wait is network I/O, it goes to a thread as run_service does. Errors reach the
    handler either way."""
    import dataclasses
    import threading

    from chiiki import settings as settings_module
    from chiiki.services.errors import NotFound
    from chiiki.state import run_read, run_service

    loop_thread = threading.get_ident()

    def where(x):
        return threading.get_ident(), x

    def fails():
        raise NotFound()

    assert settings_module.settings.db_url.startswith("sqlite")
    assert await run_read(where, 1) == (loop_thread, 1)
    assert (await run_service(where, 2))[0] != loop_thread
    with pytest.raises(NotFound):
        await run_read(fails)
    monkeypatch.setattr(settings_module, "settings", dataclasses.replace(
        settings_module.settings, db_url="postgresql+psycopg://postgres@127.0.0.1:5432/test"))
    thread, value = await run_read(where, x=3)
    assert thread != loop_thread and value == 3
    with pytest.raises(NotFound):
        await run_read(fails)


def _on_page(root, url: str, sid: str = "sid-1") -> None:
    from reflex.istate.data import RouterData

    path = url.split("?", 1)[0]
    root.router = RouterData.from_router_data({"sid": sid, "headers": {"host": "localhost:8000"},
                                               "pathname": path, "asPath": url})


async def test_an_invite_link_survives_registering(demo, app_state):
    """A newcomer opening an invite link is sent to log in; registering from there lands on the link's page,
    code and all, instead of an empty join page."""
    from chiiki import routes
    from chiiki.services import membership

    inv = membership.create_invite(demo.actor("kaicho@example.jp"), demo.association_id(demo.A1),
                                   {"days": 7, "max_uses": 1})
    link = f"{routes.JOIN}?code={inv.code}"
    auth = await app_state.get_state(AuthState)
    _on_page(app_state, link)
    events = await AuthState.load_page.fn(auth, routes.JOIN)
    assert redirect_target(events) == routes.LOGIN
    _on_page(app_state, routes.REGISTER)
    await AuthState.load_page.fn(auth, routes.REGISTER)  # a public page: nothing forgotten
    reg = await app_state.get_state(RegisterState)
    assert handoff(await RegisterState.submit.fn(reg, form())).next_path == link


async def test_logging_in_goes_on_to_the_page_that_asked_for_it(demo, app_state):
    from chiiki import routes

    auth = await app_state.get_state(AuthState)
    wanted = f"{routes.CIRCULARS}?filter=unread"
    _on_page(app_state, wanted)
    assert redirect_target(await AuthState.load_page.fn(auth, routes.CIRCULARS)) == routes.LOGIN
    login = await app_state.get_state(LoginState)
    events = await LoginState.submit.fn(login, {"login_id": "member@example.jp", "password": "chiiki-demo-2026"})
    assert handoff(events).next_path == wanted
    # Once: the next login (after logging out) goes home as usual.
    await AuthState.logout.fn(auth)
    events = await LoginState.submit.fn(login, {"login_id": "member@example.jp", "password": "chiiki-demo-2026"})
    assert handoff(events).next_path == routes.CIRCULARS
    # A public page never sets it.
    await AuthState.logout.fn(auth)
    _on_page(app_state, routes.LOGIN)
    await AuthState.load_page.fn(auth, routes.LOGIN)
    assert auth._after_login == ""


async def test_the_access_log_names_city_staff_in_the_readers_language(demo, app_state):
    from chiiki.services import audit

    member = demo.actor("member@example.jp")
    with session() as s:
        audit.record(s, demo.actor("city@example.jp"), "inquiry.view", subjects=[member.account_id])
    await login_state(app_state, "member@example.jp")
    UIState.toggle_lang.fn(await app_state.get_state(UIState))
    log = await app_state.get_state(AccessLogState)
    await AccessLogState.load.fn(log)
    assert log.rows[0]["who"].startswith("City staff")


def test_the_browser_can_call_only_the_handlers_declared_as_events():
    """Reflex makes every public method of a state an event any client may send, with any arguments. The
    helpers that switch a tab's session, hand a token to the browser or read the actor are private; every
    handler left is one written as an event (@rx.event), which authenticates and checks what it is given."""
    import inspect

    import chiiki.chiiki  # noqa: F401 (every page and its states)
    import reflex as rx

    def states(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from states(sub)

    undeclared = []
    # Mixins (chiiki.state.FileDrop) are never states of their own: their handlers are checked in the states
    # that take them in.
    for cls in {c for c in states(rx.State) if c.__module__.startswith("chiiki.") and ".bench." not in c.__module__
                and not getattr(c, "_mixin", False)}:
        for name, handler in cls.event_handlers.items():
            if name == "setvar" or name.startswith("set_"):
                continue  # Reflex's own setters, which only touch vars the browser already holds
            if not inspect.getsource(handler.fn).lstrip().startswith("@rx.event"):
                undeclared.append(f"{cls.__name__}.{name}")
    assert undeclared == []
    assert {"load_page", "load_nav", "logout"} <= set(AuthState.event_handlers)
    assert not {"_hand_off", "hand_off", "use_session", "replace_session", "actor", "session_token",
                "show_next"} & set(AuthState.event_handlers)


async def test_an_invite_links_join_page_says_nothing_was_found_only_after_a_search(demo, app_state):
    """Opened from an invite link, the join page made no search: it showed 「見つかりませんでした」 all the same."""
    from chiiki import routes
    from chiiki.pages.join import JoinState
    from chiiki.services import membership

    inv = membership.create_invite(demo.actor("kaicho@example.jp"), demo.association_id(demo.A1),
                                   {"days": 7, "max_uses": 1})
    auth = await login_state(app_state, "newcomer@example.jp")
    _on_page(app_state, f"{routes.JOIN}?code={inv.code}", app_state.router.session.session_id)
    await AuthState.load_page.fn(auth, routes.JOIN)
    st = await app_state.get_state(JoinState)
    assert st.invite_name == demo.A1 and (st.searched, st.total) == (False, 0)
    await JoinState.search.fn(st, {"area_id": "", "query": "存在しない町内会の名前"})
    assert (st.searched, st.total) == (True, 0)


async def test_the_access_log_names_an_officers_usual_title_in_the_readers_language(demo, app_state):
    """An English reader sees "President (会長)" for the officer who looked at their data, as the officers and
    association pages name the title; a Japanese reader sees 会長, as stored."""
    from chiiki.services import audit

    member, officer = demo.actor("member@example.jp"), demo.actor("kaicho@example.jp")
    with session() as s:
        audit.record(s, officer, "roster.view", association_id=demo.association_id(demo.A1),
                     subjects=[member.account_id])
        name = s.get(Account, officer.account_id).display_name
    await login_state(app_state, "member@example.jp")
    log = await app_state.get_state(AccessLogState)
    await AccessLogState.load.fn(log)
    assert log.rows[0]["who"] == f"会長 {name}"
    UIState.toggle_lang.fn(await app_state.get_state(UIState))
    await AccessLogState.load.fn(log)
    assert log.rows[0]["who"] == f"President (会長) {name}"
