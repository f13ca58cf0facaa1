"""Shared states: display preferences and the authenticated session every page state builds on."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import ipaddress
import json
import logging
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping, TypeVar
from urllib.parse import urlsplit

import reflex as rx
from starlette.requests import cookie_parser

from chiiki import settings as settings_module
from chiiki.i18n import tr
from chiiki.services import accounts, db
from chiiki.services.errors import ServiceError, ValidationErrors
from chiiki.services.policy import (
    ANONYMOUS,
    CITY_ADMIN,
    EXPORT,
    MANAGE_MEMBERS,
    MODERATE_BOARD,
    RUN_SURVEYS,
    SEND_CIRCULARS,
    VIEW_MEMBERS,
    Actor,
    Assoc,
    can,
    han_scope,
)

T = TypeVar("T")
# The session token lives in an HttpOnly cookie: scripts cannot read it, and the server reads it from the
# request that opened the websocket (chiiki/api.py sets and clears it, see AuthState._hand_off).
SESSION_COOKIE = "chiiki_session"
# Display preferences, plain cookies any tab of the browser reads on its next connection.
LANG_COOKIE = "chiiki_lang"
LARGE_TEXT_COOKIE = "chiiki_large_text"
PREF_MAX_AGE = 400 * 24 * 3600
HANDOFF_PATH = "/auth/handoff"
# The nonce that binds a handoff ticket to the browser that was sent it (a cookie only that path gets).
HANDOFF_COOKIE = "chiiki_handoff"
# Never equal to a socket's session id: "no session set on this connection".
_NO_SID = "-"
# Each page's own on_load handlers, by route; AuthState.load_page runs them in one event.
_PAGE_LOADS: dict[str, list] = {}
# The on_load registered for each page of the shared frame (AuthState.load_page(route)), by identity, with
# its route: LoadPageInOneEvent recognises a page's registered load by it.
_PAGE_LOAD_SPECS: dict[int, tuple[Any, str]] = {}

log = logging.getLogger("chiiki.state")


# The actor looked up at the start of AuthState.load_page, reused by that page's load handlers in
# the same event (and only there: it is reset before the event ends, and forgotten at once should a
# handler switch the tab's session: AuthState._use_session).
_PAGE_ACTOR: contextvars.ContextVar[tuple[Any, Actor] | None] = contextvars.ContextVar("page_actor", default=None)


def register_page_load(route: str, handlers: list) -> rx.event.EventSpec:
    """Remember the page's own load handlers; returns the page's on_load (AuthState.load_page(route))."""
    _PAGE_LOADS[route] = list(handlers)
    spec = AuthState.load_page(route)
    _PAGE_LOAD_SPECS[id(spec)] = (spec, route)
    return spec


_LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})


@functools.lru_cache(maxsize=8)
def _site_origins(*urls: str) -> frozenset[str]:
    return frozenset(f"{p.scheme}://{p.netloc}" for p in map(urlsplit, urls) if p.scheme and p.netloc)


def trusted_origin(origin: str, host: str) -> bool:
    """Whether a page at `origin` is this site's: the host (and port) the request came to, as in production
    where one port serves everything, or the configured public URL or frontend (in development the page
    is on another port than the backend). Browsers always send Origin with a websocket; a request without
    one comes from a program, which can only use cookies it holds itself."""
    if not origin:
        return True
    page = urlsplit(origin)
    if page.netloc == host:
        return True
    if page.hostname in _LOOPBACK and page.hostname == urlsplit(f"//{host}").hostname:
        return True  # development on this machine, whichever loopback name the browser was pointed at
    from reflex.config import get_config

    return origin.rstrip("/") in _site_origins(settings_module.settings.public_url, get_config().deploy_url or "")


def _cookies(state: rx.State) -> Mapping[str, str]:
    """The cookies of the request that opened this tab's websocket (server-side only: Reflex never sends
    the cookie header to the browser). Empty when the page that opened it is not this site's: another
    site on the same domain (a sibling subdomain, another port) could otherwise open a websocket that
    carries the browser's session cookie and act as its owner."""
    return _cookies_of(state.router.headers)


def _cookies_of(headers) -> Mapping[str, str]:
    """_cookies from the websocket request's headers (router.headers), for a caller that has them at hand."""
    if not trusted_origin(headers.origin, headers.host):
        return {}
    return cookie_parser(headers.cookie)


def login_client(state: rx.State) -> str | None:
    """The address a login came from, for its count of failed logins (accounts.login); None when it cannot be
    told: a request forwarded by a reverse proxy on this machine's network while Reflex trusts no proxy
    (REFLEX_TRUSTED_PROXY_HOPS unset) carries the proxy's address, the same for everyone, whose count would
    lock everyone out. Logged once per process, so that the setting is found missing."""
    ip = state.router.session.client_ip
    if state.router.headers.raw_headers.get("x-forwarded-for") and not rx.config.get_config().trusted_proxy_hops:
        try:
            behind_proxy = ipaddress.ip_address(ip).is_private  # loopback addresses included
        except ValueError:
            behind_proxy = True
        if behind_proxy:
            if not _warned_proxy:
                _warned_proxy.append(True)
                log.warning("requests come through a reverse proxy at %s, but REFLEX_TRUSTED_PROXY_HOPS is not set: "
                            "failed logins are not counted by address, inquiries share one address's limit", ip)
            return None
    return ip


_warned_proxy: list[bool] = []


def _remember(name: str, value: str) -> rx.event.EventSpec:
    """Keep a display preference in a cookie, so other tabs and later visits start with it."""
    return rx.call_script(f"document.cookie={json.dumps(f'{name}={value}; path=/; max-age={PREF_MAX_AGE}; samesite=lax')}")


class UIState(rx.State):
    """Language and text size; kept in cookies so they survive reloads and logout.

    Plain state vars rather than rx.LocalStorage / rx.Cookie: browser-storage vars make every page
    change send an extra framework event (update_vars_internal). Each new connection takes the values
    the browser's cookies hold (load_page), a toggle stores the new value there."""

    lang: str = "ja"
    large_text: str = "0"
    # The connection whose cookies were last read.
    _prefs_sid: str = _NO_SID
    # Whether the language / text size was switched in this tab before logging in: that choice is saved to
    # the account then; otherwise logging in takes the account's (on a shared tablet too: the cookies the
    # last person's login left are not a choice of the next one).
    _lang_chosen: bool = False
    _large_chosen: bool = False

    def _sync_prefs(self) -> None:
        """Once per connection: the language and text size this browser last chose, in any tab."""
        sid = self.router.session.session_id
        if self._prefs_sid == sid:
            return
        self._prefs_sid = sid
        cookies = _cookies(self)
        lang, large = cookies.get(LANG_COOKIE), cookies.get(LARGE_TEXT_COOKIE)
        if lang in ("ja", "en") and lang != self.lang:
            self.lang = lang
        if large in ("0", "1") and large != self.large_text:
            self.large_text = large

    def _show_lang(self) -> list[rx.event.EventSpec]:
        # The cookie, the page's language for screen readers, and the language assets/a11y.js waits for.
        return [_remember(LANG_COOKIE, self.lang),
                rx.call_script(f"document.documentElement.lang={json.dumps(self.lang)};"
                               f"document.documentElement.setAttribute('data-lang-wanted',{json.dumps(self.lang)})")]

    def _show_large_text(self) -> list[rx.event.EventSpec]:
        # The cookie, and the page-wide class assets/a11y.js sets from it.
        return [_remember(LARGE_TEXT_COOKIE, self.large_text),
                rx.call_script("document.documentElement.classList.toggle('large-text', "
                               f"{'true' if self.large_text == '1' else 'false'})")]

    @rx.event
    def toggle_lang(self):
        self.lang = "ja" if self.lang == "en" else "en"
        self._lang_chosen = True
        # A second event, so that the page's own labels switch at once: the choice kept on the account (mail
        # follows it) and the text the server wrote for this page (dates, list rows) in the new language.
        return [*self._show_lang(), UIState.lang_changed]

    @rx.event
    def toggle_large_text(self):
        self.large_text = "0" if self.large_text == "1" else "1"
        self._large_chosen = True
        return [*self._show_large_text(), UIState.save_prefs]

    @rx.event
    async def save_prefs(self):
        """The signed-in person's language (the one their mail is written in) and text size, on their account."""
        await self._save_prefs(await (await self.get_state(AuthState))._actor())

    async def _save_prefs(self, actor: Actor) -> None:
        if actor.authenticated:
            await run_write(accounts.set_preferences, actor, locale=self.lang, large_text=self.large_text == "1")
            # On the account now: not a choice for whoever logs in next in this tab.
            self._lang_chosen = self._large_chosen = False

    @rx.event
    async def lang_changed(self):
        """After a language switch: the choice kept on the account, and the page's server-written text in it."""
        actor = await (await self.get_state(AuthState))._actor()
        await self._save_prefs(actor)
        await relabel_page(self, actor, self.lang)

    async def _apply_login_prefs(self, actor: Actor, locale: str, large_text: bool) -> list[rx.event.EventSpec]:
        """On logging in: what this browser chose is kept on the account; what it did not choose comes from
        the account (a new phone shows the person's own language and text size at once)."""
        events: list[rx.event.EventSpec] = []
        save: dict[str, Any] = {}
        if self._lang_chosen:
            if self.lang != locale:
                save["locale"] = self.lang
        elif locale in ("ja", "en") and locale != self.lang:
            self.lang = locale
            events += self._show_lang()
        mine = "1" if large_text else "0"
        if self._large_chosen:
            if self.large_text != mine:
                save["large_text"] = self.large_text == "1"
        elif mine != self.large_text:
            self.large_text = mine
            events += self._show_large_text()
        if save:
            await run_service(accounts.set_preferences, actor, **save)
        self._lang_chosen = self._large_chosen = False  # spent: the next login in this tab starts afresh
        return events

    @rx.var
    def html_lang(self) -> str:
        return "en" if self.lang == "en" else "ja"


class AuthState(rx.State):
    """The session (from the HttpOnly cookie) and the navigation flags the policy allows."""

    logged_in: bool = False
    display_name: str = ""
    is_city_staff: bool = False
    association_id: int = 0
    association_name: str = ""
    is_member: bool = False
    has_pending: bool = False
    can_view_members: bool = False
    can_manage_members: bool = False
    can_send_circulars: bool = False
    can_run_surveys: bool = False
    can_moderate_board: bool = False
    can_export: bool = False
    unread_circulars: int = 0
    urgent_surveys: int = 0
    pending_requests: int = 0  # join requests waiting for this officer's decision (membership.may_decide)
    flash: str = ""
    # A message for the next page shown (after a redirect), then cleared.
    _flash_next: str = ""
    # A session opened (or ended: "") by a handler on the connection _token_sid, whose cookie the browser
    # only gets with the handoff's page load; a new connection reads the cookie instead.
    _token: str = ""
    _token_sid: str = _NO_SID
    # The page (path and query) a signed-out visitor was sent to the login page from: logging in or
    # registering goes on there (an invite link, a circular's link in a mail).
    _after_login: str = ""
    # The account and grants (_grants_key) the personal data in this tab's states was loaded for.
    _grants: str = ""
    # The route whose registered load handlers (register_page_load) loaded the page shown now, and its path.
    _route: str = ""
    _route_path: str = ""
    # Whether this server-side state has been sent whole to the tab (a hydrate on connect). A state the server
    # lost (unused for an hour, it expires) is made anew on the tab's next event without one: then Reflex's
    # own page change runs, which sends it whole first (LoadPageInOneEvent).
    _synced: bool = False

    def _session_token(self) -> str:
        """The session this tab acts with: the HttpOnly cookie its websocket was opened with, unless a
        login or logout on this same connection has replaced it since."""
        router = self.router  # assembled anew at each access: once here
        if self._token_sid == router.session.session_id:
            return self._token
        return _cookies_of(router.headers).get(SESSION_COOKIE, "")

    def _use_session(self, token: str) -> None:
        """From now on this connection acts with `token` ("" = signed out)."""
        self._token, self._token_sid = token, self.router.session.session_id
        _PAGE_ACTOR.set(None)

    async def _replace_session(self, token: str) -> None:
        """A login: a session this tab still had ends (revoked), and every state of the tab is cleared of what
        it showed (also when that session had already expired or been revoked elsewhere: its pages' data is
        still in the tab); this connection acts with `token`."""
        old = self._session_token()
        if old and old != token:
            await asyncio.to_thread(accounts.logout, old)
        flash = self._flash_next
        await reset_user_states(self)
        self._flash_next = flash
        self._use_session(token)

    async def _hand_off(self, token: str, next_path: str) -> rx.event.EventSpec:
        """Use `token` ("" = none) here, and have the browser store it as its HttpOnly cookie by one page
        load: a one-time ticket, redeemed by chiiki/api.py, which sets the cookie and sends the browser on
        to `next_path` on this page's origin."""
        if not local_path(next_path):
            raise ValueError(f"not a path of this site: {next_path!r}")
        self._use_session(token)
        headers = self.router.headers
        ticket, nonce = await asyncio.to_thread(accounts.create_handoff, token, headers.origin, next_path)
        # The endpoint is on the backend: the websocket's host (another port than the page in development).
        scheme = "https" if headers.origin.startswith("https:") else "http"
        base = f"{scheme}://{headers.host}" if headers.host else ""
        # The nonce goes as a cookie only the handoff path receives (cookies ignore ports): the ticket in the
        # URL works only in this browser.
        cookie = f"{HANDOFF_COOKIE}={nonce}; path={HANDOFF_PATH}; max-age={accounts.HANDOFF_SECONDS}; samesite=strict"
        return rx.call_script(f"document.cookie={json.dumps(cookie)};"
                              f"window.location.replace({json.dumps(f'{base}{HANDOFF_PATH}?t={ticket}')})")

    async def _actor(self) -> Actor:
        """Re-check the session on the server for every event: revocation takes effect at once."""
        known = self._page_actor()
        if known is not None:
            return known
        token = self._session_token()
        if not token:
            return ANONYMOUS
        return await run_read(accounts.actor_for_token, token)

    def _page_actor(self) -> Actor | None:
        """The actor this event's page load already looked up for this tab's session (None outside a page
        load, and after a handler of it switched the session)."""
        cached = _PAGE_ACTOR.get()
        return cached[1] if cached is not None and cached[0] is self else None

    @rx.event
    async def load_nav(self):
        """Refresh who is logged in and what they may see (a page outside the shared frame: the print sheet)."""
        (await self.get_state(UIState))._sync_prefs()
        self._route = self._route_path = ""
        await self._refresh_nav()

    @rx.event
    async def load_page(self, route: str):
        """Every page's on_load: the navigation, then the page's own load handlers, in ONE event.

        One event instead of one per handler saves a state round trip (and, with Redis, a state
        fetch and write) per handler on every page change. `route` only selects registered
        handlers; each of them authenticates and authorizes on its own.
        """
        (await self.get_state(UIState))._sync_prefs()
        self._route, self._route_path = (route if isinstance(route, str) else ""), self.router.url.path
        token = self._session_token()
        facts = await run_read(_nav_facts, token)
        reset = _PAGE_ACTOR.set((self, facts.actor))
        try:
            await self._show_nav(facts)
            events: list = []
            for handler in _PAGE_LOADS.get(route if isinstance(route, str) else "", []):
                substate = await self.get_state(handler.state)
                result = handler.fn(substate)
                if inspect.isawaitable(result):
                    result = await result
                if result is not None:
                    events.extend(result if isinstance(result, (list, tuple)) else [result])
            if not facts.actor.authenticated and any(map(_to_login, events)):
                self._after_login = _return_path(self.router.url)
        finally:
            _PAGE_ACTOR.reset(reset)
        return events or None

    async def _drop_stale(self) -> None:
        """On a websocket's (re)connect, before Reflex sends the tab its whole state (ForgetStaleGrants): what
        its pages loaded for other grants (a session that ended, a role taken away) is forgotten first. The
        page's load then sets the navigation as usual."""
        if self._grants and _grants_key(await self._actor()) != self._grants:
            await reset_user_states(self, keep=(AuthState,))
            # The navigation too (the former user's name, association and menu); the fields that stay on the
            # server (the session, a message to show next, where to go after login) are kept.
            for name, f in AuthState.__fields__.items():
                if not name.startswith(("_", "router")) and name in AuthState.base_vars:
                    setattr(self, name, f.default_value())
        elif self._route:
            # The same grants: the pages the tab has left forget what they showed (it may have changed since,
            # a household moved to another 班, a member who left), rather than being sent it again; the
            # current page keeps its own (a form being filled in) and loads again after this.
            here = {h.state for h in _PAGE_LOADS.get(self._route, [])}
            await _reset_states(self, {h.state for hs in _PAGE_LOADS.values() for h in hs} - here
                                - {AuthState, UIState})

    async def _refresh_nav(self) -> None:
        await self._show_nav(await run_read(_nav_facts, self._session_token(), self._page_actor()))

    async def _show_nav(self, facts: "NavFacts") -> None:
        """The navigation flags, name and badges for these facts; only changed values are set (and sent).

        When the account behind the tab or its grants changed since the tab's pages were loaded (a session
        that expired or was revoked elsewhere, a role taken away, a move to another han), every page's state
        is cleared first: personal data loaded for the old grants must not stay in the tab, where each
        reload would send it again."""
        if self.flash != self._flash_next:
            self.flash = self._flash_next
        if self._flash_next:
            self._flash_next = ""
        actor = facts.actor
        if not actor.authenticated and self._session_token():
            # Expired or revoked elsewhere (e.g. a password change): stop asking for it.
            self._use_session("")
        grants = _grants_key(actor)
        if grants != self._grants:
            if self._grants:
                await reset_user_states(self, keep=(AuthState,))
            self._grants = grants
        aid = facts.association_id

        def holds(perm: str) -> bool:
            return bool(aid) and bool(han_scope(actor, perm, aid))

        self._assign(
            logged_in=actor.authenticated,
            display_name=actor.display_name,
            is_city_staff=can(actor, CITY_ADMIN),
            association_id=aid,
            association_name=facts.association_name,
            is_member=bool(aid),
            has_pending=bool(actor.pending),
            can_view_members=holds(VIEW_MEMBERS),
            can_manage_members=holds(MANAGE_MEMBERS),
            can_send_circulars=holds(SEND_CIRCULARS),
            can_run_surveys=holds(RUN_SURVEYS),
            # Posts belong to no han, so only an association-wide moderator can act on the board.
            can_moderate_board=bool(aid) and can(actor, MODERATE_BOARD, Assoc(aid)),
            can_export=holds(EXPORT),
            unread_circulars=facts.unread,
            urgent_surveys=facts.urgent,
            pending_requests=facts.pending,
        )

    def _assign_badges(self, badges: tuple[int, int, int]) -> None:
        """The three counts _badges returns, set where they changed."""
        self._assign(unread_circulars=badges[0], urgent_surveys=badges[1], pending_requests=badges[2])

    def _assign(self, **values: Any) -> None:
        """Set vars whose value changed; an unchanged var stays clean and is not sent to the browser."""
        for name, value in values.items():
            if getattr(self, name) != value:
                setattr(self, name, value)

    @rx.var
    def is_officer(self) -> bool:
        return (self.can_view_members or self.can_manage_members or self.can_send_circulars
                or self.can_run_surveys or self.can_moderate_board or self.can_export)

    @rx.event
    async def logout(self):
        from chiiki import routes

        await asyncio.to_thread(accounts.logout, self._session_token())
        ui = await self.get_state(UIState)
        lang = ui.lang
        ui._lang_chosen = ui._large_chosen = False  # whoever logs in next on this tab takes their own
        await reset_user_states(self)
        self._show_next(tr(lang, "logout.done"))
        return await self._hand_off("", routes.LOGIN)

    def _take_after_login(self, within: str = "") -> str:
        """The page to go on to after logging in (once), if any; with `within`, only a page under that path."""
        path, self._after_login = self._after_login, ""
        if within and urlsplit(path).path.rstrip("/") != within.rstrip("/"):
            return ""
        return path

    def _show_next(self, text: str) -> None:
        """Queue a one-time message for the page the user is sent to next."""
        self._flash_next = text


def local_path(path: str) -> bool:
    """A path of this site (never another host: "//evil", "/\\evil")."""
    return isinstance(path, str) and path.startswith("/") and not path.startswith("//") and "\\" not in path


def _return_path(url) -> str:
    path = (url.path or "/") + (f"?{url.query}" if url.query else "")
    return path if local_path(path) and len(path) <= 300 else ""  # SessionHandoff.next_path holds 300


def _to_login(event: object) -> bool:
    """Whether a page's load answered with rx.redirect(routes.LOGIN) (a page for signed-in people only)."""
    from chiiki import routes

    handler = getattr(event, "handler", None)
    return (getattr(getattr(handler, "fn", None), "__qualname__", "") == "_redirect"
            and any(str(k) == "path" and str(v) == json.dumps(routes.LOGIN) for k, v in getattr(event, "args", ())))


def home_path(actor: Actor) -> str:
    """Where a person lands after logging in: the circular inbox for members, the city's pages for
    city staff, and the join page for someone not yet in an association."""
    from chiiki import routes

    if actor.memberships:
        return routes.CIRCULARS
    if can(actor, CITY_ADMIN):
        return routes.CITY
    return routes.JOIN


_NAMES: dict[tuple[str, int], tuple[float, str]] = {}
_NAME_TTL = 60.0  # seconds; a renamed association shows its new name within a minute


def _association_name(association_id: int) -> str:
    """The association's name for the header (public, not personal), cached briefly per process."""
    from chiiki.models import Association
    from chiiki.services.db import session
    from chiiki.settings import settings

    key = (settings.db_url, association_id)
    hit = _NAMES.get(key)
    if hit is not None and time.monotonic() - hit[0] < _NAME_TTL:
        return hit[1]
    with session() as s:
        a = s.get(Association, association_id)
        name = a.name if a else ""
    _NAMES[key] = (time.monotonic(), name)
    return name


@dataclass(frozen=True)
class NavFacts:
    """What the navigation shows, looked up together in one trip off the event loop."""

    actor: Actor
    association_id: int
    association_name: str
    unread: int
    urgent: int
    pending: int


def _nav_facts(token: str, actor: Actor | None = None) -> NavFacts:
    """The session's actor (unless already known), its association's name and the badges."""
    from chiiki.services.db import reading

    with reading() as conn:  # the session check and the badges on one connection
        if actor is None:
            actor = accounts.actor_for_token_in(conn, token) if token else ANONYMOUS
        membership = actor.memberships[0] if actor.memberships else None
        aid = membership.association_id if membership else 0
        if not (actor.authenticated and aid):
            return NavFacts(actor, aid, _association_name(aid) if aid else "", 0, 0, 0)
        unread, urgent, pending = _badges(actor, aid, conn)
    return NavFacts(actor, aid, _association_name(aid), unread, urgent, pending)


async def refresh_badges(state: rx.State, actor: Actor) -> None:
    """Update the badges within the current event (after a page marked something read or answered, or decided
    a join request), instead of chaining another event for the whole navigation."""
    auth = await state.get_state(AuthState)
    if actor.authenticated and auth.association_id:
        auth._assign_badges(await run_read(_badges, actor, auth.association_id))


async def refresh_nav(state: rx.State) -> None:
    """Refresh the whole navigation within the current event (e.g. after the display name changed)."""
    auth = await state.get_state(AuthState)
    await auth._refresh_nav()


@functools.cache
def _badges_query():
    from sqlmodel import select

    from chiiki.services import circulars, membership, surveys

    return select(circulars.UNREAD_COUNT.scalar_subquery(), surveys.UNANSWERED_OF_KIND.scalar_subquery(),
                  membership.PENDING_COUNT.scalar_subquery())


def _badges(actor: Actor, association_id: int, conn=None) -> tuple[int, int, int]:
    """Unread circulars, unanswered urgent surveys and (for an officer who decides them) join requests waiting,
    for the badges shown on every page (one prepared query, on the given connection or a new one)."""
    from chiiki.services import circulars, membership, surveys
    from chiiki.services.db import fetch_one, reading

    unread = circulars.unread_params(actor, association_id)
    urgent = surveys.unanswered_params(actor, association_id, "safety")
    if unread is None or urgent is None:
        return 0, 0, 0
    if conn is None:
        with reading() as own:
            return _badges(actor, association_id, own)
    row = fetch_one(conn, _badges_query(), {**unread, **urgent, **membership.pending_params(actor, association_id)})
    return int(row[0]), int(row[1]), int(row[2])


def _grants_key(actor: Actor) -> str:
    """What decides the personal data a tab may hold: the account and everything it is granted (the same
    text in every worker: no set's iteration order in it)."""
    if not actor.authenticated:
        return "-"
    memberships = sorted((m.association_id, m.household_id or 0, m.han_id or 0) for m in actor.memberships)
    roles = sorted((r.association_id, r.han_id or 0, tuple(sorted(r.permissions))) for r in actor.roles)
    return repr((actor.account_id, actor.is_city_staff, actor.department_id or 0, memberships, roles))


class ForgetStaleGrants(rx.Middleware):
    """A tab that reconnects (a reload, a network blip, a restarted worker) is sent its whole state by Reflex's
    hydrate event, before any page load of ours runs: that state must not still hold personal data its pages
    loaded under grants the tab no longer has (AuthState._show_nav clears it too, but only at a page load)."""

    _EVENTS = ("hydrate", "hydrate_and_load")

    async def preprocess(self, app, state, event):
        if event.name.rpartition(".")[2] in self._EVENTS:
            auth = await state.get_state(AuthState)
            await auth._drop_stale()
            auth._synced = True
        return None


def _root(state: rx.State) -> rx.State:
    while state.parent_state is not None:
        state = state.parent_state
    return state


class LoadPageInOneEvent(rx.Middleware):
    """A page change of the shared frame in one event on the server instead of three.

    Reflex 0.10 answers a page change with ``on_load_internal``, which queues the page's on_load
    (AuthState.load_page) and then ``set_is_hydrated``: three events, each fetching and storing the tab's
    state (from Redis, with several workers) under its lock and sending its own delta. Here
    ``on_load_internal`` runs load_page itself, under the lock it already holds, and tells the browser
    what the three told it: the page is loading (``is_hydrated`` false: its buttons wait), then the page's
    data with ``is_hydrated`` true, then the events load_page returned (a redirect to the login page; the
    "loaded" came after it before). A newer page change still cancels an unfinished one (Reflex's
    ``supersedes`` is on ``on_load_internal``). Pages outside the shared frame keep Reflex's way, and so
    does a page change on a state the server made anew (AuthState._synced): Reflex sends that state whole
    before anything else, which only its own handler does.
    """

    _EVENT = "on_load_internal"

    async def preprocess(self, app, state, event):
        if event.name.rpartition(".")[2] != self._EVENT:
            return None
        root = _root(state)
        loads = app.get_load_events(root.rx_router_url.path)
        # The specs stay alive in _PAGE_LOAD_SPECS, so no other object can have one of their ids.
        known = _PAGE_LOAD_SPECS.get(id(loads[0])) if len(loads) == 1 else None
        if known is None:
            return None
        auth = await root.get_state(AuthState)
        if not auth._synced:
            auth._synced = True  # Reflex's handler, next in this event, sends the whole state
            return None
        from reflex.state import StateUpdate
        from reflex_base.event.processor.base_state_processor import chain_updates

        name = AuthState.load_page.fn.__qualname__
        root.is_hydrated = False
        await chain_updates(None, handler_name=name, root_state=root)
        try:
            events = await AuthState.load_page.fn(auth, known[1])
        except Exception:
            # Reflex then shows its error; the page's buttons do not wait forever (nor did they when
            # set_is_hydrated followed a failed load_page). A load cancelled by a newer page change sends
            # nothing more: that page's load says "loading" and "loaded" itself.
            root.is_hydrated = True
            await chain_updates(None, handler_name=name, root_state=root)
            raise
        root.is_hydrated = True
        await chain_updates(events, handler_name=name, root_state=root)
        return StateUpdate()


async def _reset_states(state: rx.State, classes: set[type[rx.State]]) -> None:
    """These states of the tab back to their defaults (their own fields)."""
    for cls in sorted(classes, key=lambda c: c.get_full_name()):
        inst = await state.get_state(cls)
        for name, f in cls.__fields__.items():
            if getattr(f, "_owner", cls) is cls and not name.startswith("router"):
                setattr(inst, name, f.default_value())


async def reset_user_states(state: rx.State, keep: tuple[type[rx.State], ...] = ()) -> None:
    """Logout: every state of this browser tab back to its defaults, except display preferences (and `keep`)."""
    root = _root(state)

    async def walk(cls: type[rx.State]) -> None:
        for sub in cls.get_substates():
            if sub is not UIState and sub not in keep and not sub.__module__.startswith("reflex"):
                inst = await state.get_state(sub)
                for name, f in sub.__fields__.items():
                    if getattr(f, "_owner", sub) is sub and not name.startswith("router"):
                        setattr(inst, name, f.default_value())
            await walk(sub)

    await walk(type(root))


async def relabel_page(state: rx.State, actor: Actor, lang: str) -> None:
    """The text the server wrote for the current page (dates, labels, list rows) again in `lang`, by each of
    the page's states that has a `_relabel(actor, lang)`: it reads what it shows again (authorized like its
    load), keeping the person's filter, page, open item and form input; a state with `_retranslate(lang)`
    shows the messages it already shows in `lang` (a form's errors, also before logging in). A page without
    either shows its server-written text in the new language from its next load."""
    auth = await state.get_state(AuthState)
    if _grants_key(actor) != auth._grants:
        # Signed out, or a role or membership changed, since the page was loaded: its states are cleared (as
        # a page load would), not read again under other grants.
        await auth._refresh_nav()
        return
    if auth._route_path != state.router.url.path:
        return  # a page no load handler of ours loaded (Reflex's 404 page)
    for handler in _PAGE_LOADS.get(auth._route, []):
        substate = await state.get_state(handler.state)
        retranslate = getattr(substate, "_retranslate", None)
        if retranslate is not None:  # messages already shown (no reading: signed out too, e.g. registering)
            retranslate(lang)
        relabel = getattr(substate, "_relabel", None)
        if relabel is not None and actor.authenticated:
            await relabel(actor, lang)


async def current_actor(state: rx.State) -> tuple[Actor, str]:
    """The actor and language for an event handler of any state."""
    auth = await state.get_state(AuthState)
    ui = await state.get_state(UIState)
    return await auth._actor(), ui.lang


async def run_counted(state: rx.State, fn: Callable[..., T], *args: Any,
                      refresh: Callable[[T | None, ServiceError | None], bool] = lambda _result, _error: True,
                      bounded: bool = True, **kwargs: Any) -> tuple[Actor, T | None, ServiceError | None]:
    """For a handler whose service changes what the badges count (opening or confirming a circular): the
    session check (unless this event's page load already made it), `fn(actor, *args)` and, when `refresh`
    says so, the badges, in one go instead of three: run_write, or, for a service whose work grows with the
    association (`bounded=False`: a survey answer recounts the survey), run_service. Returns (actor, result,
    error); for an actor who is not signed in, nothing runs."""
    auth = await state.get_state(AuthState)
    aid, known = auth.association_id, auth._page_actor()
    token = auth._session_token() if known is None else ""

    def trip() -> tuple[Actor, Any, ServiceError | None, tuple[int, int, int] | None]:
        actor = known if known is not None else (accounts.actor_for_token(token) if token else ANONYMOUS)
        if not actor.authenticated:
            return actor, None, None, None
        try:
            result, error = fn(actor, *args, **kwargs), None
        except ServiceError as e:
            result, error = None, e
        badges = _badges(actor, aid) if aid and refresh(result, error) else None
        return actor, result, error, badges

    actor, result, error, badges = await (run_write(trip) if bounded else run_service(trip))
    if badges is not None:
        auth._assign_badges(badges)
    return actor, result, error


async def run_service(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Services are synchronous (bcrypt, SQL): run them off the event loop so no user waits on another."""
    return await asyncio.to_thread(fn, *args, **kwargs)


async def run_write(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """A short write of a bounded size a member makes often (opening or confirming a circular, a language
    switch): on SQLite it runs on the event loop unless another writer holds the database's write
    lock, in which case it is rolled back and runs in a thread, waiting for the lock there like run_service.

    In WAL mode only a writer waits for a lock; the write itself takes well under a millisecond, less than the
    hand-off to a thread and back, which on a busy worker queues behind the other tabs' events twice. Tried
    without waiting, it never holds up the worker's other tabs on another writer's lock (an export, the
    other worker's confirmation). Anything that grows with the association stays on run_service. With a
    database server every statement waits on network I/O: there it always goes to a thread."""
    if _reads_inline():
        try:
            return db.without_waiting(fn, *args, **kwargs)
        except db.Busy:
            pass
    return await asyncio.to_thread(fn, *args, **kwargs)


def _reads_inline() -> bool:
    return settings_module.settings.db_url.startswith("sqlite")


async def run_read(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """A bounded read a page makes on every load (the session check, the badges, one page of a list, one
    item), never a write and never work that grows with the data: those go to run_service.

    On SQLite it runs on the event loop. In WAL mode a reader never waits for a lock, and its millisecond
    of work costs less than the two hand-offs to a thread and back, each of which queues behind the other
    tabs' events on a busy worker. Writes stay in a thread: on SQLite a writer may wait for another one's
    lock, which must not stall the whole worker. Nor does a read on the loop wait for a pooled connection:
    the SQLite pool holds more than the default executor's threads can take (chiiki.services.db).
    With a database server even a read waits on network I/O, so there it goes to a thread like run_service.
    What grows with the association (survey totals, exports, sends) stays on run_service."""
    if _reads_inline():
        return fn(*args, **kwargs)
    return await asyncio.to_thread(fn, *args, **kwargs)


def uploaded_files(files: object) -> list:
    """The uploaded files among an upload handler's argument: a browser can send any JSON in its place."""
    from starlette.datastructures import UploadFile

    return [f for f in files if isinstance(f, UploadFile)] if isinstance(files, (list, tuple)) else []


class FileDrop(rx.State, mixin=True):
    """A form whose files are attached as soon as chosen (rx.upload's on_drop; the state keeps a file_error):
    whether an upload is under way (the drop zone and the preview wait meanwhile: the browser would drop a second
    choice made during an upload without a word), and a file refused by type or size said in words."""

    uploading: bool = False

    @rx.event
    def upload_progress(self, progress: dict):
        done = progress.get("progress") if isinstance(progress, dict) else None
        self.uploading = isinstance(done, (int, float)) and done < 1

    @rx.event
    async def upload_refused(self, rejections: list):
        lang = (await self.get_state(UIState)).lang
        self.uploading = False
        self.file_error = tr(lang, "upload.refused")


async def receive_uploads(files: list, held: list[dict], limit: int, too_many: str, lang: str,
                          store: Callable[[str, bytes], Any]) -> tuple[list[dict], list[str]]:
    """Store uploaded files one by one with `store(name, data)` (a service that checks and keeps
    them); returns the files now held, as shown in the form, and a message per refused file."""
    from chiiki.services.attachments import MAX_BYTES

    held, problems = list(held), []
    for f in uploaded_files(files):
        if len(held) >= limit:
            problems.append(too_many)
            break
        # Read one byte past the limit: enough to refuse, never the whole of a huge file.
        data = await f.read(MAX_BYTES + 1)
        name = f.filename or f.name or ""
        try:
            info = await run_service(store, name, data)
        except ServiceError as e:
            problems.append(f"{name[:80]}: {error_text(lang, e)}")
            continue
        held.append({"id": str(info.id), "name": info.filename, "size": str(max(1, round(info.size / 1024)))})
    return held, problems


def error_text(lang: str, err: ServiceError) -> str:
    return tr(lang, err.key, **err.params)


def error_keys(err: ServiceError) -> list[tuple[str, str, dict]]:
    """(field, message key, params) of each message a refusal shows; field "" = a message for the whole form.
    Kept by a form's state, so that a language switch can show the same messages in the other language."""
    if isinstance(err, ValidationErrors):
        return [(f, k, dict(p)) for f, (k, p) in err.errors.items()]
    return [(err.field, err.key, dict(err.params))]


def shown_errors(lang: str, keys: list[tuple[str, str, dict]]) -> tuple[dict[str, str], str]:
    """The messages of `keys` in `lang`: those next to fields, and the first one for the whole form."""
    fields = {f: tr(lang, k, **p) for f, k, p in keys if f}
    return fields, next((tr(lang, k, **p) for f, k, p in keys if not f), "")


def field_errors(lang: str, err: ServiceError) -> dict[str, str]:
    return shown_errors(lang, error_keys(err))[0]


def assoc_target(association_id: int, han_id: int | None = None) -> Assoc:
    return Assoc(association_id, han_id)
