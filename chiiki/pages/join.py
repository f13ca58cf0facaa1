"""Join an association: find it by area and name, read what officers will see, agree, ask — or use a code."""

from __future__ import annotations

import reflex as rx

from chiiki import routes
from chiiki.components.shell import register_nav, template
from chiiki.components.ui import (
    card,
    checkbox_field,
    error_banner,
    heading,
    link_button,
    message,
    pager,
    primary_button,
    secondary_button,
    select_field,
    text_area,
    text_field,
)
from chiiki.i18n import fmt_dt, t, tf, tr
from chiiki.pages.association import as_id, attempt, checked
from chiiki.services import associations, membership
from chiiki.state import AuthState, current_actor

register_nav("nav.join", routes.JOIN, "logged_in")
PAGE = 10


class JoinState(rx.State):
    # The resident's own status and public association details only.
    status: str = "none"  # none | pending | active | rejected
    current_name: str = ""
    requested_at: str = ""
    decision_note: str = ""
    area_options: list[list[str]] = []
    hits: list[dict[str, str]] = []
    total: int = 0
    searched: bool = False  # "nothing found" only after a search (not on an invite link's page)
    pages: int = 0
    page: int = 1
    selected_id: int = 0
    selected_name: str = ""
    selected_description: str = ""
    code: str = ""
    invite_name: str = ""
    invite_han: str = ""
    errors: dict[str, str] = {}
    error: str = ""
    notice: str = ""
    _area: str = ""
    _query: str = ""
    _hit_ids: list[int] = []

    @rx.event
    async def load(self):
        actor, lang = await current_actor(self)
        self._reset()
        if not actor.authenticated:
            return rx.redirect(routes.LOGIN)
        await self._status(actor, lang)
        ok, areas, _e, _ = await attempt(self, lang, associations.list_areas, actor)
        if ok:
            self.area_options = [[str(a.id), a.label] for a in areas if a.level != "city"]
        code = self.router.url.query_parameters.get("code", "")
        if code and self.status != "active":
            await self._check(actor, lang, code)
        elif self.status == "none" or self.status == "rejected":
            await self._search(actor, lang)

    def _reset(self) -> None:
        self.status, self.current_name, self.requested_at, self.decision_note = "none", "", "", ""
        self.hits, self.total, self.page, self._hit_ids, self.searched = [], 0, 1, [], False
        self.selected_id, self.selected_name, self.selected_description = 0, "", ""
        self.code = self.invite_name = self.invite_han = ""
        self.errors, self.error, self.notice = {}, "", ""
        self._area = self._query = ""

    async def _status(self, actor, lang: str) -> None:
        ok, me, self.error, _ = await attempt(self, lang, membership.my_membership, actor)
        if ok:
            self.status, self.current_name = me.status, me.association_name
            self.requested_at, self.decision_note = fmt_dt(me.requested_at, lang), me.decision_note

    async def _search(self, actor, lang: str) -> None:
        ok, res, self.error, self.errors = await attempt(
            self, lang, associations.search, actor, self._area, self._query, PAGE, (self.page - 1) * PAGE)
        if not ok:
            self.hits, self.total, self._hit_ids = [], 0, []
            return
        rows, self.total = res
        self.searched = True
        self.pages = -(-self.total // PAGE)
        self._hit_ids = [h.id for h in rows]
        self.hits = [{"id": str(h.id), "name": h.name, "area": h.area_label, "description": h.description}
                     for h in rows]

    @rx.event
    async def search(self, form: dict):
        actor, lang = await current_actor(self)
        if not actor.authenticated:
            return rx.redirect(routes.LOGIN)
        if not isinstance(form, dict):
            return
        area, query = form.get("area_id", ""), form.get("query", "")
        self._area = area if isinstance(area, str) else ""
        self._query = query if isinstance(query, str) else ""
        self.page, self.selected_id = 1, 0
        await self._search(actor, lang)

    async def _turn(self, step: int):
        actor, lang = await current_actor(self)
        if not actor.authenticated:
            return rx.redirect(routes.LOGIN)
        self.page = min(max(1, self.page + step), max(1, self.pages))
        await self._search(actor, lang)

    @rx.event
    async def next_page(self):
        return await self._turn(1)

    @rx.event
    async def prev_page(self):
        return await self._turn(-1)

    @rx.event
    def choose(self, association_id: str):
        aid = as_id(association_id)
        if aid not in self._hit_ids:
            return
        hit = next(h for h in self.hits if h["id"] == str(aid))
        self.selected_id, self.selected_name, self.selected_description = aid, hit["name"], hit["description"]
        self.errors, self.error = {}, ""

    @rx.event
    def unchoose(self):
        self.selected_id = 0

    @rx.event
    async def ask(self, form: dict):
        actor, lang = await current_actor(self)
        if not actor.authenticated:
            return rx.redirect(routes.LOGIN)
        if not isinstance(form, dict) or not self.selected_id:
            return
        ok, _r, self.error, self.errors = await attempt(
            self, lang, membership.request_join, actor, self.selected_id, checked(form, "consent"),
            membership.CONSENT_VERSION if checked(form, "consent") else "", form.get("message", ""))
        if ok:
            self.selected_id, self.hits, self._hit_ids = 0, [], []
            self.notice = tr(lang, "join.asked")
            await self._status(actor, lang)
            return AuthState.load_nav

    @rx.event
    async def withdraw(self):
        actor, lang = await current_actor(self)
        if not actor.authenticated:
            return rx.redirect(routes.LOGIN)
        ok, _r, error, _ = await attempt(self, lang, membership.cancel_request, actor)
        await self._status(actor, lang)  # decided meanwhile: the page shows how
        self.error = error or self.error
        if ok:
            self.notice = tr(lang, "join.withdrawn")
            await self._search(actor, lang)
        return AuthState.load_nav

    async def _check(self, actor, lang: str, code: object) -> None:
        self.invite_name = self.invite_han = ""
        ok, preview, self.error, self.errors = await attempt(self, lang, membership.check_invite, actor, code)
        if ok:
            self.code = code if isinstance(code, str) else ""
            self.invite_name, self.invite_han = preview.association_name, preview.han_name

    @rx.event
    async def check_code(self, form: dict):
        actor, lang = await current_actor(self)
        if not actor.authenticated:
            return rx.redirect(routes.LOGIN)
        if isinstance(form, dict):
            await self._check(actor, lang, form.get("code", ""))

    @rx.event
    async def join_code(self, form: dict):
        actor, lang = await current_actor(self)
        if not actor.authenticated:
            return rx.redirect(routes.LOGIN)
        if not isinstance(form, dict) or not self.code:
            return
        ok, result, self.error, self.errors = await attempt(
            self, lang, membership.join_with_code, actor, self.code, checked(form, "consent"),
            membership.CONSENT_VERSION if checked(form, "consent") else "")
        if "code" in self.errors:
            # The code was already checked: its field is not on this form, so the message goes on top.
            self.error = self.errors["code"]
            self.errors = {k: v for k, v in self.errors.items() if k != "code"}
        if ok and not result.joined:
            # A household at this address is on the roster already (an officer confirms that it is the
            # resident's own before they join it), or the code is for no han (an officer places them in one).
            self.code = self.invite_name = self.invite_han = ""
            self.notice = tr(lang, "join.asked_han" if result.waits_for == "han" else "join.asked_household")
            await self._status(actor, lang)
            return AuthState.load_nav
        if ok:
            self.code = self.invite_name = self.invite_han = ""
            auth = await self.get_state(AuthState)
            auth._show_next(tr(lang, "join.joined"))
            # The next page's load shows it, with the navigation of a member.
            return rx.redirect(routes.ASSOCIATION)


def _err(name: str) -> rx.Var:
    return JoinState.errors.get(name, "")


def _consent_block() -> rx.Component:
    """What officers will see, in plain words, before anyone agrees to anything."""
    return rx.box(
        rx.heading(t("join.consent_title"), as_="h3", size="4", margin_bottom="0.4em"),
        rx.el.ul(
            rx.el.li(t("join.consent_officers")),
            rx.el.li(t("join.consent_members")),
            rx.el.li(t("join.consent_city")),
            rx.el.li(t("join.consent_log")),
            rx.el.li(t("join.consent_leave")),
            style={"padding_left": "1.2em", "font_size": "var(--font-size-3)", "line_height": "1.8"},
        ),
        checkbox_field("join.consent_agree", "consent"),
        rx.cond(_err("consent") != "", rx.text(_err("consent"), color=rx.color("red", 11), size="3", role="alert")),
        id="consent-text",
        margin_y="0.8em",
    )


def _hit(h: rx.Var) -> rx.Component:
    return card(
        rx.text(h["name"], size="5", weight="bold"),
        rx.text(h["area"], size="3", color=rx.color("gray", 11)),
        rx.text(h["description"], size="3"),
        secondary_button("join.choose", on_click=JoinState.choose(h["id"]), margin_top="0.5em"),
    )


def _finder() -> rx.Component:
    return card(
        rx.heading(t("join.find"), as_="h2", size="5", margin_bottom="0.6em"),
        rx.form(
            select_field("field.area", "area_id", JoinState.area_options, placeholder_key="join.any_area"),
            text_field("join.query", "query", max_length=100),
            primary_button("common.search", type="submit", id="join-search"),
            on_submit=JoinState.search,
        ),
        rx.cond(JoinState.searched & (JoinState.total == 0),
                rx.text(t("join.no_hits"), size="4", margin_top="0.8em", id="join-no-hits")),
        rx.foreach(JoinState.hits, _hit),
        rx.cond(JoinState.total > PAGE,
                pager(JoinState.page, JoinState.pages, JoinState.prev_page, JoinState.next_page)),
    )


def _ask_form() -> rx.Component:
    return card(
        rx.heading(tf("join.ask_title", name=JoinState.selected_name), as_="h2", size="5", margin_bottom="0.4em"),
        rx.text(JoinState.selected_description, size="3"),
        rx.form(
            _consent_block(),
            text_area("join.message", "message", error=_err("message"), max_length=500, rows="3"),
            rx.hstack(
                secondary_button("common.cancel", type="button", on_click=JoinState.unchoose),
                primary_button("join.ask", type="submit", id="join-ask"),
                spacing="3", wrap="wrap",
            ),
            on_submit=JoinState.ask,
        ),
        id="ask-form",
    )


def _code_card() -> rx.Component:
    return card(
        rx.heading(t("join.code_title"), as_="h2", size="5", margin_bottom="0.6em"),
        rx.cond(
            JoinState.invite_name != "",
            rx.form(
                rx.text(tf("join.code_for", name=JoinState.invite_name), size="4", weight="bold"),
                rx.cond(JoinState.invite_han != "", rx.text(JoinState.invite_han, size="3")),
                _consent_block(),
                primary_button("join.join_now", type="submit", id="join-code-submit"),
                on_submit=JoinState.join_code,
            ),
            rx.form(
                text_field("join.code", "code", error=_err("code"), max_length=20, autocomplete="off"),
                secondary_button("join.code_check", type="submit", id="join-code-check"),
                on_submit=JoinState.check_code,
            ),
        ),
    )


@template(route=routes.JOIN, title_key="join.title", on_load=[JoinState.load])
def join_page() -> rx.Component:
    return rx.vstack(
        heading("join.title"),
        message(JoinState.notice),
        error_banner(JoinState.error),
        rx.match(
            JoinState.status,
            ("active", rx.vstack(rx.text(tf("join.already", name=JoinState.current_name), size="4"),
                                 link_button("nav.association", routes.ASSOCIATION), width="100%")),
            ("pending", rx.vstack(
                card(
                    rx.text(tf("join.pending", name=JoinState.current_name, at=JoinState.requested_at), size="4"),
                    secondary_button("join.withdraw", on_click=JoinState.withdraw, margin_top="0.6em"),
                    id="pending-card",
                ),
                # An officer may hand the applicant a code meanwhile: it joins at once.
                _code_card(),
                width="100%", align="stretch",
            )),
            rx.vstack(
                rx.cond(JoinState.status == "rejected",
                        rx.text(tf("join.rejected", name=JoinState.current_name), size="4",
                                color=rx.color("orange", 11), id="rejected-note")),
                rx.cond(JoinState.decision_note != "", rx.text(JoinState.decision_note, size="3")),
                rx.text(t("join.intro"), size="4"),
                _code_card(),
                rx.cond(JoinState.selected_id > 0, _ask_form(), _finder()),
                width="100%", align="stretch",
            ),
        ),
        width="100%", align="stretch",
    )
