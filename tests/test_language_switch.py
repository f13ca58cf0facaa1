"""Switching the language shows the page's server-written text (dates, labels, list rows) in it at once,
through the same handlers the browser calls (toggle_lang, then the lang_changed it chains), keeping what the
person chose on the page."""

from __future__ import annotations

from sqlmodel import select

from chiiki.i18n import tr
from chiiki.models import Account
from chiiki.services.db import session
from chiiki.state import AuthState, UIState
from tests.conftest import login_state
from tests.test_circular_states import compose_and_send
from tests.test_notice_pages import _seed_demo_notices


async def switch_language(root) -> list:
    """What the button does: toggle, then the chained event."""
    ui = await root.get_state(UIState)
    events = UIState.toggle_lang.fn(ui)
    assert any(".lang_changed" in str(e) for e in events)
    await UIState.lang_changed.fn(ui)
    return events


async def open_page(root, route: str, query: str = "") -> None:
    """A page change as the browser makes it: the route's on_load (AuthState.load_page) with its URL."""
    from reflex.istate.data import ReflexURL, URLData

    root.rx_router_url = URLData.from_url(ReflexURL(f"http://127.0.0.1:3000{route}{query}"))
    assert await AuthState.load_page.fn(await root.get_state(AuthState), route) is None


def locale_of(login: str) -> str:
    with session() as s:
        return s.exec(select(Account.locale).where(Account.login_id == login)).one()


async def test_the_inbox_switches_its_rows_and_filters_and_keeps_the_search(demo, app_state):
    from chiiki.pages.circulars import InboxState

    _cs, cid, _ = await compose_and_send(app_state, demo)  # the 会長 sends; the member then reads
    member = type(app_state)()
    await login_state(member, "member@example.jp")
    await open_page(member, "/circulars")
    inbox = await member.get_state(InboxState)
    await InboxState.search.fn(inbox, {"q": "", "filter": "unread", "year": ""})
    row = next(i for i in inbox.items if i["id"] == str(cid))
    assert row["state_label"] == "未読" and "年" in row["sent"]
    assert dict(map(tuple, inbox.filters))["unread"] == "未読だけ"

    await switch_language(member)
    row = next(i for i in inbox.items if i["id"] == str(cid))
    assert row["state_label"] == tr("en", "circular.state.unread") and "年" not in row["sent"]
    assert dict(map(tuple, inbox.filters))["unread"] == "Unread only"
    assert inbox.filter == "unread"  # the person's search stays
    assert locale_of("member@example.jp") == "en"  # and the account keeps the language (mail follows it)

    await switch_language(member)
    assert next(i for i in inbox.items if i["id"] == str(cid))["state_label"] == "未読"


async def test_an_open_circular_switches_and_stays_open_and_confirmed(demo, app_state):
    from chiiki.pages.circulars import CircularState

    _cs, cid, _ = await compose_and_send(app_state, demo)
    member = type(app_state)()
    await login_state(member, "member@example.jp")
    await open_page(member, "/circulars/view", f"?id={cid}")
    view = await member.get_state(CircularState)
    assert view.found and view.cid == cid and "年" in view.sent
    await CircularState.confirm.fn(view)
    assert view.notice == tr("ja", "circular.confirmed_done") and view.confirmed_text

    await switch_language(member)
    assert view.found and view.cid == cid and view.state == "confirmed"
    assert "年" not in view.sent and view.notice == "Confirmed. Thank you."
    assert view.confirmed_text.startswith(tr("en", "circular.confirmed_at", date="")[:5])


async def test_an_open_notice_stays_open_in_the_other_language(demo, app_state):
    from chiiki.pages.notices import NoticeFeedState

    _seed_demo_notices()
    await login_state(app_state, "member@example.jp")
    await open_page(app_state, "/notices")
    feed = await app_state.get_state(NoticeFeedState)
    first = feed.items[0]["id"]
    await NoticeFeedState.toggle.fn(feed, first)
    assert feed.open_id == first and "年" in feed.items[0]["date"]

    await switch_language(app_state)
    assert feed.open_id == first and feed.open_blocks and "年" not in feed.items[0]["date"]


async def test_a_form_page_keeps_what_was_typed(demo, app_state):
    from chiiki.pages.circular_admin import CIRCULAR_NEW, ComposeState

    await login_state(app_state, "kaicho@example.jp")
    await open_page(app_state, CIRCULAR_NEW)
    compose = await app_state.get_state(ComposeState)
    assert compose.allowed
    await ComposeState.check.fn(compose, {"title": "下書き", "body": "", "due_date": ""})
    errors = dict(compose.errors)
    assert errors  # a body is required: the message is shown next to the field
    await switch_language(app_state)
    assert dict(compose.errors) == errors  # not reloaded: nothing the officer typed or was told is lost


async def test_signed_out_a_switch_reads_nothing_and_saves_nothing(demo, app_state):
    from chiiki.pages.notices import NoticeFeedState
    from chiiki.services import accounts

    _seed_demo_notices()
    auth = await login_state(app_state, "member@example.jp")
    await open_page(app_state, "/notices")
    feed = await app_state.get_state(NoticeFeedState)
    shown = [dict(i) for i in feed.items]
    assert shown
    accounts.logout(auth._session_token())  # e.g. a password change on another phone revoked this session
    await switch_language(app_state)
    assert (await app_state.get_state(UIState)).lang == "en"
    # Not read again for a session that no longer exists, and what it showed is cleared from the tab.
    assert feed.items == []
    assert not auth.logged_in
    assert locale_of("member@example.jp") == "ja"


async def test_a_page_our_loads_did_not_load_is_left_alone(demo, app_state):
    from reflex.istate.data import ReflexURL, URLData

    from chiiki.pages.notices import NoticeFeedState

    _seed_demo_notices()
    await login_state(app_state, "member@example.jp")
    await open_page(app_state, "/notices")
    feed = await app_state.get_state(NoticeFeedState)
    shown = [dict(i) for i in feed.items]
    # A link to an address that is no page: Reflex shows its 404 page, which runs no load of ours.
    app_state.rx_router_url = URLData.from_url(ReflexURL("http://127.0.0.1:3000/no-such-page"))
    await switch_language(app_state)
    assert feed.items == shown


async def test_after_leaving_the_association_a_switch_clears_the_page_instead(demo, app_state):
    from chiiki.pages.circulars import InboxState
    from chiiki.services import membership

    _cs, cid, _ = await compose_and_send(app_state, demo)
    member = type(app_state)()
    auth = await login_state(member, "member@example.jp")
    await open_page(member, "/circulars")
    inbox = await member.get_state(InboxState)
    assert any(i["id"] == str(cid) for i in inbox.items)
    membership.leave(await auth._actor(), auth.association_id)  # on another phone
    await switch_language(member)
    assert inbox.items == [] and not inbox.loaded  # cleared, as the next page load would
    assert not auth.is_member and auth.association_id == 0


async def test_the_board_keeps_the_message_shown_with_an_open_form(demo, app_state):
    from chiiki.pages.board import BoardState
    from tests.test_board_states import seed_thread

    seed_thread(demo)
    await login_state(app_state, "member@example.jp")
    await open_page(app_state, "/board")
    board = await app_state.get_state(BoardState)
    assert board.loaded and "年" in board.threads[0]["last"]
    board.show_form, board.error = True, "入力を確認してください"
    await switch_language(app_state)
    assert board.show_form and board.error == "入力を確認してください"
    assert "年" not in board.threads[0]["last"]


async def test_an_officers_status_page_switches_and_keeps_its_filter(demo, app_state):
    from chiiki.pages.circular_admin import CIRCULAR_STATUS, CircularAdminState, StatusState

    _cs, cid, _ = await compose_and_send(app_state, demo)  # the 会長, who then looks at the status
    await open_page(app_state, CIRCULAR_STATUS, f"?id={cid}")
    status = await app_state.get_state(StatusState)
    assert status.found and status.rows
    await StatusState.filter_rows.fn(status, {"category": "unread", "han": "", "days": ""})
    assert status.category == "unread" and {r["category_label"] for r in status.rows} == {"未読"}
    assert dict(map(tuple, status.category_options))["unread"] == "未読"

    await switch_language(app_state)
    assert status.found and status.cid == cid and status.category == "unread"
    assert {r["category_label"] for r in status.rows} == {tr("en", "circular.cat.unread")}
    assert dict(map(tuple, status.category_options))["unread"] == tr("en", "circular.cat.unread")

    await open_page(app_state, "/circulars/admin")
    sent = await app_state.get_state(CircularAdminState)
    assert sent.allowed and "年" not in next(i for i in sent.items if i["id"] == str(cid))["sent"]
    await switch_language(app_state)
    assert "年" in next(i for i in sent.items if i["id"] == str(cid))["sent"]


async def test_a_forms_messages_switch_before_logging_in_too(demo, app_state):
    from chiiki.pages.auth import LoginState, RegisterState

    await open_page(app_state, "/register")
    reg = await app_state.get_state(RegisterState)
    await RegisterState.submit.fn(reg, {"login_id": "x@example.jp", "password": "a", "password_confirm": "b"})
    assert reg.errors == {"password_confirm": tr("ja", "register.password_mismatch")} and reg.step == 3
    await switch_language(app_state)
    assert reg.errors == {"password_confirm": tr("en", "register.password_mismatch")} and reg.step == 3
    await RegisterState.submit.fn(reg, {"name": "", "password": "", "password_confirm": ""})
    assert reg.errors["name"] == "Please fill this in" and reg.step == 1
    await switch_language(app_state)
    assert reg.errors["name"] == "入力してください" and len(reg.errors) > 1

    await open_page(app_state, "/login")
    login = await app_state.get_state(LoginState)
    await LoginState.submit.fn(login, {"login_id": "member@example.jp", "password": "wrong-password"})
    assert login.error == "ログインIDまたはパスワードが違います"
    await switch_language(app_state)
    assert login.error == "Wrong login ID or password"


async def test_city_staffs_audit_trail_switches_and_keeps_its_page(demo, app_state):
    from chiiki.pages.audit_trail import AUDIT_TRAIL, AuditTrailState
    from chiiki.services import roster

    kaicho = demo.actor("kaicho@example.jp")
    for _ in range(3):
        roster.roster_page(kaicho, demo.association_id(demo.A1))
    await login_state(app_state, "city@example.jp")
    await open_page(app_state, AUDIT_TRAIL)
    trail = await app_state.get_state(AuditTrailState)
    assert [r["what"] for r in trail.rows] == ["名簿で閲覧"] * 3 and "年" in trail.rows[0]["at"]

    await switch_language(app_state)
    assert [r["what"] for r in trail.rows] == [tr("en", "audit.action.roster.view")] * 3
    assert "年" not in trail.rows[0]["at"] and trail.page == 1


async def test_the_city_pages_area_levels_switch_and_keep_the_search(demo, app_state):
    from chiiki.pages.city import CityState

    await login_state(app_state, "city@example.jp")
    await open_page(app_state, "/city")
    city = await app_state.get_state(CityState)
    await CityState.search.fn(city, {"query": "町"})
    rows = [r["id"] for r in city.rows]
    assert city.areas[0]["level_label"] == tr("ja", "cityadmin.level." + city.areas[0]["level"])
    CityState.open_area.fn(city, city.areas[0]["id"])
    await switch_language(app_state)
    assert [a["level_label"] for a in city.areas] == [tr("en", "cityadmin.level." + a["level"]) for a in city.areas]
    assert [o[1] for o in city.level_options] == [tr("en", "cityadmin.level." + lv) for lv, _label in
                                                  city.level_options]
    assert city.query == "町" and [r["id"] for r in city.rows] == rows
    assert city.area_form == "edit" and city.area_edit["level_label"] == city.areas[0]["level_label"]


async def test_officer_titles_in_the_access_log_and_the_audit_trail_read_in_the_pages_language(demo, app_state):
    """Who read someone's data is stored by the titles they held then, as the association wrote them (会長, or
    会長・班長 for two roles). An English page reads a usual title in English with the Japanese beside it, a title
    the association typed itself as typed, city staff as City staff; switching back shows them as stored."""
    from chiiki.models import Membership, OfficerRole, utcnow
    from chiiki.pages.audit_trail import AUDIT_TRAIL, AuditTrailState
    from chiiki.pages.mypage import AccessLogState
    from chiiki.routes import ACCESS_LOG
    from chiiki.services import audit
    from tests.test_survey_services import grant

    a1 = demo.association_id(demo.A1)
    member_id = demo.account_id("member@example.jp")

    def reads_member(login: str, association_id: int | None = a1) -> None:
        with session() as s:
            audit.record(s, demo.actor(login), "roster.view", association_id=association_id, subjects=[member_id])

    reads_member("kaicho@example.jp")
    with session() as s:  # the 会長 also becomes 班長 of han 1
        m = s.exec(select(Membership).where(Membership.account_id == demo.account_id("kaicho@example.jp"))).one()
        s.add(OfficerRole(association_id=a1, membership_id=m.id, title="班長", permissions="view_members",
                          han_id=demo.han_ids(demo.A1)[0], valid_from=utcnow()))
    reads_member("kaicho@example.jp")
    grant(demo, "member2@example.jp", "view_members")  # a title the association typed: 係
    reads_member("member2@example.jp")
    reads_member("city@example.jp", None)
    with session() as s:
        names = dict(s.exec(select(Account.login_id, Account.display_name)).all())
    kaicho, member2, staff = names["kaicho@example.jp"], names["member2@example.jp"], names["city@example.jp"]

    await login_state(app_state, "member@example.jp")
    await open_page(app_state, ACCESS_LOG)
    log = await app_state.get_state(AccessLogState)
    assert [r["who"] for r in log.rows] == [f"市職員 {staff}", f"係 {member2}", f"会長・班長 {kaicho}",
                                            f"会長 {kaicho}"]
    await switch_language(app_state)
    english = [f"City staff {staff}", f"係 {member2}", f"President (会長), Han leader (班長) {kaicho}",
               f"President (会長) {kaicho}"]
    assert [r["who"] for r in log.rows] == english
    await open_page(app_state, ACCESS_LOG)  # loaded in English
    assert [r["who"] for r in log.rows] == english

    staff_tab = type(app_state)()
    await login_state(staff_tab, "city@example.jp")
    await switch_language(staff_tab)
    await open_page(staff_tab, AUDIT_TRAIL)
    trail = await staff_tab.get_state(AuditTrailState)
    assert [r["who"] for r in trail.rows][:4] == ["City staff", "係", "President (会長), Han leader (班長)",
                                                  "President (会長)"]
    await switch_language(staff_tab)
    assert [r["who"] for r in trail.rows][:4] == ["市職員", "係", "会長・班長", "会長"]
