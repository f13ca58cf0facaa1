"""The resident's circular board: inbox (search, filters, pages, unread marks) and one circular with 確認しました."""

from __future__ import annotations

import dataclasses
from typing import Any

import reflex as rx
from reflex_base.constants import Dirs
from reflex_base.utils.imports import ImportVar
from reflex_base.vars import VarData

from chiiki import routes
from chiiki.api import ATTACHMENT_PATH
from chiiki.components.shell import register_nav, template
from chiiki.components.ui import button, card, error_banner, heading, link_button, message, pager, select_field
from chiiki.i18n import fmt_date, fmt_dt, t, tf, tr
from chiiki.services import circulars
from chiiki.services.errors import ServiceError
from chiiki.services.markup import Block, Line, Seg
from chiiki.services.policy import Actor
from chiiki.state import AuthState, UIState, current_actor, error_text, run_counted, run_read, run_service

CIRCULAR_VIEW = "/circulars/view"

register_nav("nav.circulars", routes.CIRCULARS, "is_member", badge="unread_circulars")


def view_url(circular_id: int | str) -> str:
    return f"{CIRCULAR_VIEW}?id={circular_id}"


def my_association(actor: Actor) -> int:
    """A page always works on the actor's own association, found on the server, never sent by a browser."""
    return actor.memberships[0].association_id if actor.memberships else 0


def query_id(state: rx.State, name: str = "id") -> str:
    value = state.router.url.query_parameters.get(name, "")
    return value if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) < 18 else ""


async def turn_page(state: rx.State, step: int, refetch) -> None:
    """Previous/next page of a server-paginated list; refetch(actor, lang) loads the page now set."""
    actor, lang = await current_actor(state)
    if actor.authenticated and 1 <= state.page + step <= state.pages:
        state.page += step
        await refetch(actor, lang)


# The backend's origin: another port in development, the same one in production (single port).
BACKEND_ORIGIN = rx.Var(
    _js_expr="getBackendURL(env.PING).origin",
    _var_data=VarData(imports={f"$/{Dirs.STATE_PATH}": "getBackendURL",
                               "$/env.json": ImportVar(tag="env", is_default=True)}),
).to(str)


@dataclasses.dataclass
class AmendView:
    date: str = ""
    blocks: list[Block] = dataclasses.field(default_factory=list)


def amend_views(items: list[circulars.AmendmentView], lang: str) -> list[AmendView]:
    return [AmendView(fmt_dt(a.created_at, lang), a.blocks) for a in items]


def file_rows(items) -> list[dict[str, str]]:
    return [{"id": str(f.id), "name": f.filename, "size": str(max(1, round(f.size / 1024))),
             "path": f"{ATTACHMENT_PATH}/{f.id}"} for f in items]


# --------------------------------------------------------------------------- safe body rendering


def _seg(s: Seg) -> rx.Component:
    return rx.match(
        s.kind,
        ("b", rx.el.strong(s.text)),
        ("a", rx.el.a(s.text, href=s.href, target="_blank", rel="noopener noreferrer nofollow",
                      style={"color": "var(--accent-11)", "text_decoration": "underline",
                             "overflow_wrap": "anywhere"})),
        rx.el.span(s.text),
    )


def _line(ln: Line) -> rx.Component:
    return rx.foreach(ln.segs, _seg)


def _block(b: Block) -> rx.Component:
    return rx.match(
        b.kind,
        ("ul", rx.el.ul(rx.foreach(b.lines, lambda ln: rx.el.li(_line(ln))),
                        style={"padding_left": "1.5em", "list_style_type": "disc"})),
        ("ol", rx.el.ol(rx.foreach(b.lines, lambda ln: rx.el.li(_line(ln))), start=b.start,
                      style={"padding_left": "1.5em", "list_style_type": "decimal"})),
        rx.el.p(rx.foreach(b.lines, lambda ln, i: rx.fragment(rx.cond(i > 0, rx.el.br()), _line(ln))),
                style={"margin": "0 0 0.8em 0"}),
    )


def body_view(blocks: rx.Var, **props: Any) -> rx.Component:
    """Parsed markup as components: user text is only ever text, links only http(s)."""
    return rx.box(rx.foreach(blocks, _block), class_name="circular-body",
                  style={"font_size": "var(--font-size-4)", "line_height": "1.8"}, **props)


def amendments_view(items: rx.Var) -> rx.Component:
    return rx.cond(
        items.length() > 0,
        rx.box(
            rx.heading(t("circular.amendments"), as_="h2", size="5", margin_bottom="0.4em"),
            rx.foreach(items, lambda a: rx.callout.root(
                rx.callout.text(tf("circular.amendment_on", date=a.date), weight="bold"),
                body_view(a.blocks),
                color_scheme="amber", size="2", margin_bottom="0.6em")),
            id="circular-amendments", width="100%",
        ),
    )


def attachments_view(files: rx.Var) -> rx.Component:
    return rx.cond(
        files.length() > 0,
        rx.box(
            rx.heading(t("circular.attachments"), as_="h2", size="5", margin_bottom="0.4em"),
            rx.foreach(files, lambda f: rx.el.a(
                rx.hstack(rx.icon("paperclip", size=20), rx.text(f["name"], size="4"),
                          rx.text(tf("circular.file_size", size=f["size"]), size="2", color=rx.color("gray", 11)),
                          align="center", spacing="2"),
                href=BACKEND_ORIGIN + f["path"], target="_blank", rel="noopener",
                class_name="circular-attachment",
                style={"display": "flex", "min_height": "48px", "align_items": "center",
                       "color": "var(--accent-11)"})),
            width="100%", margin_top="1em",
        ),
    )


# --------------------------------------------------------------------------- inbox


class InboxState(rx.State):
    """Only this member's own circulars (their own delivery states); nothing about other households."""

    items: list[dict[str, str]] = []
    total: int = 0
    unread: int = 0
    page: int = 1
    pages: int = 1
    query: str = ""
    filter: str = "all"
    year: str = ""
    years: list[list[str]] = []
    filters: list[list[str]] = []
    loaded: bool = False
    error: str = ""

    @rx.event
    async def load(self):
        actor, lang = await current_actor(self)
        self.items, self.loaded, self.error = [], False, ""
        if not actor.authenticated:
            return rx.redirect(routes.LOGIN)
        self.page = 1
        await self._fetch(actor, lang)

    async def _relabel(self, actor: Actor, lang: str) -> None:
        """After a language switch (chiiki.state.relabel_page): the same search and page, in `lang`."""
        if self.loaded:
            await self._fetch(actor, lang)

    async def _fetch(self, actor: Actor, lang: str) -> None:
        self.filters = [[f, tr(lang, f"circular.filter.{f}")] for f in circulars.INBOX_FILTERS]
        aid = my_association(actor)
        if not aid:
            self.items, self.total, self.pages, self.loaded = [], 0, 1, True
            return
        try:
            res = await run_read(circulars.inbox, actor, aid, query=self.query, state=self.filter,
                                 year=self.year or None, page=self.page)
        except ServiceError as e:
            self.items, self.error = [], error_text(lang, e)
            return
        self.items = [
            {"id": str(i.circular_id), "title": i.title, "sent": fmt_dt(i.sent_at, lang, with_time=False),
             "due": fmt_date(i.due_date, lang) if i.due_date else "", "state": i.state,
             "state_label": tr(lang, f"circular.state.{i.state}"), "files": "1" if i.attachments else "",
             "amended": "1" if i.amended else "", "href": view_url(i.circular_id)}
            for i in res.items
        ]
        self.total, self.unread, self.page, self.pages = res.total, res.unread, res.page, res.pages
        self.years = [[str(y), str(y)] for y in res.years]
        self.loaded = True

    @rx.event
    async def search(self, form: dict):
        actor, lang = await current_actor(self)
        if not actor.authenticated:
            return rx.redirect(routes.LOGIN)
        if not isinstance(form, dict):
            return
        q, f, y = form.get("q", ""), form.get("filter", "all"), form.get("year", "")
        self.query = q[:circulars.MAX_QUERY] if isinstance(q, str) else ""
        self.filter = f if f in circulars.INBOX_FILTERS else "all"
        self.year = y if isinstance(y, str) and y.isascii() and y.isdigit() and len(y) == 4 else ""
        self.page = 1
        await self._fetch(actor, lang)

    @rx.event
    async def next_page(self):
        await turn_page(self, 1, self._fetch)

    @rx.event
    async def prev_page(self):
        await turn_page(self, -1, self._fetch)


def _inbox_item(item: rx.Var) -> rx.Component:
    unread = item["state"] == "unread"
    return rx.link(
        rx.card(
            rx.hstack(
                rx.cond(unread, rx.badge(t("circular.mark_unread"), color_scheme="red", size="3",
                                         class_name="unread-mark")),
                rx.cond(item["state"] == "confirmed",
                        rx.badge(t("circular.state.confirmed"), color_scheme="green", size="2")),
                rx.cond(item["state"] == "read", rx.badge(t("circular.state.read"), color_scheme="amber", size="2")),
                rx.cond(item["files"] != "", rx.badge(rx.icon("paperclip", size=14), t("circular.has_files"),
                                                      variant="outline", size="2")),
                rx.cond(item["amended"] != "", rx.badge(t("circular.amended"), color_scheme="amber",
                                                        variant="outline", size="2")),
                wrap="wrap", spacing="2",
            ),
            rx.text(item["title"], size="5", weight=rx.cond(unread, "bold", "medium"), margin_top="0.3em"),
            rx.hstack(
                rx.text(tf("circular.sent_on", date=item["sent"]), size="3", color=rx.color("gray", 11)),
                rx.cond(item["due"] != "", rx.text(tf("circular.due_on", date=item["due"]), size="3",
                                                   color=rx.color("gray", 11))),
                wrap="wrap", spacing="3",
            ),
            size="3", width="100%",
            style={"border_left": rx.cond(unread, "6px solid var(--red-9)", "6px solid transparent")},
        ),
        href=item["href"], underline="none", class_name="inbox-item",
        style={"display": "block", "color": "inherit", "margin_bottom": "0.6em"},
    )


@template(route=routes.CIRCULARS, title_key="circular.inbox_title", on_load=[InboxState.load])
def inbox_page() -> rx.Component:
    return rx.vstack(
        heading("circular.inbox_title"),
        rx.text(t("circular.inbox_lead"), size="3"),
        rx.cond(AuthState.can_send_circulars | AuthState.can_export,
                link_button("circular.to_admin", routes.CIRCULAR_ADMIN, variant="outline")),
        error_banner(InboxState.error),
        rx.form(
            rx.box(
                rx.el.label(t("circular.search"), html_for="f-q",
                            style={"font_weight": "600", "display": "block", "margin_bottom": "0.3em"}),
                rx.input(id="f-q", name="q", default_value=InboxState.query, type="search", size="3",
                         max_length=circulars.MAX_QUERY, style={"min_height": "48px", "width": "100%"}),
                width="100%", margin_bottom="1em",
            ),
            rx.grid(
                select_field("circular.filter", "filter", InboxState.filters, default_value=InboxState.filter),
                select_field("circular.year", "year", InboxState.years, default_value=InboxState.year,
                             placeholder_key="circular.year_all"),
                columns=rx.breakpoints(initial="1", sm="2"), spacing="3", width="100%",
            ),
            button(rx.icon("search"), t("circular.search_button"), type="submit", size="3",
                      style={"min_height": "48px"}, id="inbox-search"),
            on_submit=InboxState.search, width="100%",
        ),
        rx.hstack(
            rx.text(tf("circular.total", n=InboxState.total), size="3"),
            rx.cond(InboxState.unread > 0, rx.text(tf("circular.unread_n", n=InboxState.unread), size="3",
                                                   color=rx.color("red", 11), weight="bold")),
            spacing="3",
        ),
        rx.cond(
            InboxState.items.length() > 0,
            rx.box(rx.foreach(InboxState.items, _inbox_item), width="100%", id="inbox-list"),
            rx.cond(InboxState.loaded,
                    rx.text(rx.cond(InboxState.query != "", t("circular.none_found"), t("circular.none")),
                            size="4", id="inbox-empty")),
        ),
        rx.cond(InboxState.pages > 1,
                pager(InboxState.page, InboxState.pages, InboxState.prev_page, InboxState.next_page)),
        width="100%", align="stretch",
    )


# --------------------------------------------------------------------------- one circular


class CircularState(rx.State):
    """One circular the actor may see, and the actor's own delivery state."""

    cid: int = 0
    title: str = ""
    blocks: list[Block] = []
    sent: str = ""
    due: str = ""
    target: str = ""
    files: list[dict[str, str]] = []
    amendments: list[AmendView] = []
    delivery_id: int = 0
    state: str = ""
    confirmed_text: str = ""
    on_behalf: bool = False
    household_confirmed: bool = False
    officer_view: bool = False
    found: bool = False
    error: str = ""
    notice: str = ""

    def _clear(self) -> None:
        self.cid, self.title, self.blocks, self.sent, self.due, self.target = 0, "", [], "", "", ""
        self.files, self.amendments, self.delivery_id, self.state, self.confirmed_text = [], [], 0, "", ""
        self.on_behalf = self.household_confirmed = self.officer_view = self.found = False
        self.error = self.notice = ""

    @rx.event
    async def load(self):
        lang = (await self.get_state(UIState)).lang
        self._clear()
        # Opening and, when it marked the delivery read, the unread badge: one trip to the database.
        actor, view, error = await run_counted(self, circulars.open_circular, query_id(self), lang,
                                               refresh=lambda v, _e: v is not None and v.marked_read)
        if not actor.authenticated:
            return rx.redirect(routes.LOGIN)
        if error is not None:
            self.error = tr(lang, "error.not_found")
            return
        self._show(view, lang)

    async def _relabel(self, actor: Actor, lang: str) -> None:
        """After a language switch: the circular shown again in `lang` (its dates, target, confirmation)."""
        if not self.found:
            return
        # Opened again as the page's load opens it (an officer may have reset the delivery meanwhile).
        again, view, error = await run_counted(self, circulars.open_circular, self.cid, lang,
                                               refresh=lambda v, _e: v is not None and v.marked_read)
        if not again.authenticated:  # the session ended a moment ago: the next page load sends to login
            return
        if error is not None:  # e.g. withdrawn meanwhile
            self._clear()
            self.error = error_text(lang, error)
            return
        self._show(view, lang)
        if self.notice:
            self.notice = tr(lang, "circular.confirmed_done")

    def _show(self, v: circulars.CircularView, lang: str) -> None:
        self.cid, self.title, self.blocks = v.id, v.title, v.blocks
        self.sent, self.due = fmt_dt(v.sent_at, lang), fmt_date(v.due_date, lang) if v.due_date else ""
        self.target, self.files, self.amendments = v.target_label, file_rows(v.attachments), amend_views(
            v.amendments, lang)
        self.delivery_id, self.state, self.on_behalf = v.delivery_id, v.state, v.on_behalf
        self.confirmed_text = tr(lang, "circular.confirmed_at", date=v.confirmed_at) if v.confirmed_at else ""
        self.household_confirmed, self.officer_view, self.found = v.household_confirmed, v.officer_view, True

    @rx.event
    async def confirm(self):
        lang = (await self.get_state(UIState)).lang
        if self.state == "confirmed":
            return None  # a second tap, queued before the button went: the first one confirmed it
        if not self.delivery_id:
            actor, lang = await current_actor(self)
            return None if actor.authenticated else rx.redirect(routes.LOGIN)
        # The session check, the confirmation and the badges: one trip to the database.
        actor, done, error = await run_counted(self, circulars.confirm, self.delivery_id)
        if not actor.authenticated:
            return rx.redirect(routes.LOGIN)
        if error is not None:
            self.error = error_text(lang, error)
            try:  # e.g. confirmed meanwhile on another phone: show the circular as it is now
                self._show(await run_service(circulars.open_circular, actor, self.cid, lang), lang)
            except ServiceError as again:
                self.error = error_text(lang, again)
        else:
            self.notice = tr(lang, "circular.confirmed_done")
            # What the confirmation changed, without reading the whole circular again.
            self.state, self.on_behalf, self.household_confirmed = "confirmed", False, True
            self.confirmed_text = tr(lang, "circular.confirmed_at", date=done.confirmed_at)


def _confirm_box() -> rx.Component:
    s = CircularState
    return rx.cond(
        s.delivery_id > 0,
        rx.card(
            rx.cond(
                s.state == "confirmed",
                rx.vstack(
                    rx.hstack(rx.icon("circle-check", size=32, color=rx.color("green", 10)),
                              rx.text(s.confirmed_text, size="5", weight="bold"), align="center"),
                    rx.cond(s.on_behalf, rx.text(t("circular.confirmed_behalf"), size="3")),
                    id="confirmed-state",
                ),
                rx.vstack(
                    rx.cond(s.household_confirmed, rx.text(t("circular.household_confirmed"), size="3")),
                    rx.text(t("circular.confirm_help"), size="3"),
                    button(rx.icon("check", size=28), t("circular.confirm"), on_click=s.confirm, size="4",
                              color_scheme="green", id="confirm-button",
                              style={"min_height": "64px", "width": "100%", "font_size": "1.4em"}),
                    width="100%",
                ),
            ),
            size="3", width="100%",
        ),
    )


@template(route=CIRCULAR_VIEW, title_key="circular.detail_title", on_load=[CircularState.load])
def circular_page() -> rx.Component:
    s = CircularState
    return rx.vstack(
        link_button("circular.back", routes.CIRCULARS, variant="ghost"),
        message(s.notice),
        error_banner(s.error),
        rx.cond(
            s.found,
            rx.vstack(
                rx.heading(s.title, as_="h1", size="7", id="circular-title"),
                rx.hstack(
                    rx.text(tf("circular.sent_on", date=s.sent), size="3", color=rx.color("gray", 11)),
                    rx.cond(s.due != "", rx.text(tf("circular.due_on", date=s.due), size="3", weight="bold")),
                    rx.text(t("circular.target"), ": ", s.target, size="3", color=rx.color("gray", 11)),
                    wrap="wrap", spacing="3",
                ),
                rx.cond(s.officer_view, rx.callout(t("circular.officer_view"), size="1", color_scheme="gray")),
                card(body_view(s.blocks, id="circular-body")),
                amendments_view(s.amendments),
                attachments_view(s.files),
                _confirm_box(),
                width="100%", align="stretch", spacing="3",
            ),
        ),
        width="100%", align="stretch",
    )
