"""Officers: compose (preview, attachments) and send circulars, the sent list, the status ledger, print, exports."""

from __future__ import annotations

import time

import reflex as rx

from chiiki import routes
from chiiki.components.shell import register_nav, template
from chiiki.components.ui import (
    BUTTON_STYLE,
    button,
    card,
    error_banner,
    field_error,
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
from chiiki.i18n import STRINGS, fmt_date, fmt_dt, t, tf, tr
from chiiki.pages.circulars import (
    AmendView,
    amend_views,
    amendments_view,
    body_view,
    file_rows,
    my_association,
    query_id,
    turn_page,
)
from chiiki.services import attachments, circulars
from chiiki.services.errors import ServiceError
from chiiki.services.markup import Block
from chiiki.services.policy import Actor
from chiiki.state import (AuthState, FileDrop, UIState, current_actor, error_text, field_errors, receive_uploads,
                          run_service)

CIRCULAR_NEW = "/circulars/admin/new"
CIRCULAR_STATUS = "/circulars/admin/status"
CIRCULAR_PRINT = "/circulars/admin/print"
UPLOAD_ID = "circular-files"
CATEGORY_COLORS = {"digital_confirmed": "#2f9e44", "on_behalf": "#74b816", "paper_confirmed": "#1971c2",
                   "read": "#f08c00", "unread": "#e03131", "paper_delivered": "#74c0fc", "paper_pending": "#adb5bd"}
# Reached first, then what is still missing.
CHART_ORDER = ("digital_confirmed", "on_behalf", "paper_confirmed", "read", "paper_delivered", "unread",
               "paper_pending")

register_nav("nav.circular_admin", routes.CIRCULAR_ADMIN, "can_send_circulars")


def status_url(cid: int | str) -> str:
    return f"{CIRCULAR_STATUS}?id={cid}"


def print_url(cid: int | str, han_id: int | str = "") -> str:
    return f"{CIRCULAR_PRINT}?id={cid}" + (f"&han={han_id}" if han_id else "")


async def _officer(state: rx.State) -> tuple[Actor | None, str, int]:
    actor, lang = await current_actor(state)
    if not actor.authenticated:
        return None, lang, 0
    return actor, lang, my_association(actor)


def _err_only(lang: str, e: ServiceError) -> tuple[dict[str, str], str]:
    errs = field_errors(lang, e)
    return errs, "" if errs else error_text(lang, e)


# --------------------------------------------------------------------------- the sent list


class CircularAdminState(rx.State):
    """Sent circulars with their reach (counts only, no names)."""

    items: list[dict[str, str]] = []
    total: int = 0
    page: int = 1
    pages: int = 1
    query: str = ""
    allowed: bool = False
    error: str = ""

    @rx.event
    async def load(self):
        actor, lang, aid = await _officer(self)
        self.items, self.allowed, self.error = [], False, ""
        if actor is None:
            return rx.redirect(routes.LOGIN)
        self.page = 1
        await self._fetch(actor, lang, aid)

    async def _relabel(self, actor: Actor, lang: str) -> None:
        """After a language switch (chiiki.state.relabel_page): the same search and page in `lang`."""
        if self.allowed:
            await self._fetch(actor, lang, my_association(actor))

    async def _fetch(self, actor: Actor, lang: str, aid: int) -> None:
        try:
            res = await run_service(circulars.sent_list, actor, aid, query=self.query, page=self.page, lang=lang)
        except ServiceError as e:
            self.items, self.allowed, self.error = [], False, error_text(lang, e)
            return
        self.allowed = True
        self.items = [{"id": str(i.id), "title": i.title, "sent": fmt_dt(i.sent_at, lang),
                       "due": fmt_date(i.due_date, lang) if i.due_date else "", "target": i.target_label,
                       "reach": tr(lang, "circular.reach", reached=i.reached, total=i.households),
                       "amended": "1" if i.amendments else "", "href": status_url(i.id)} for i in res.items]
        self.total, self.page, self.pages = res.total, res.page, res.pages

    @rx.event
    async def search(self, form: dict):
        actor, lang, aid = await _officer(self)
        if actor is None:
            return rx.redirect(routes.LOGIN)
        q = form.get("q", "") if isinstance(form, dict) else ""
        self.query, self.page = (q if isinstance(q, str) else "")[:circulars.MAX_QUERY], 1
        await self._fetch(actor, lang, aid)

    @rx.event
    async def next_page(self):
        await turn_page(self, 1, lambda actor, lang: self._fetch(actor, lang, my_association(actor)))

    @rx.event
    async def prev_page(self):
        await turn_page(self, -1, lambda actor, lang: self._fetch(actor, lang, my_association(actor)))

    @rx.event
    async def export_matrix(self, fmt: str):
        actor, lang, aid = await _officer(self)
        if actor is None:
            return rx.redirect(routes.LOGIN)
        try:
            f = await run_service(circulars.export_matrix, actor, aid, fmt, lang)
        except ServiceError as e:
            self.error = error_text(lang, e)
            return
        return rx.download(data=f.data, filename=f.filename, mime_type=f.mime)


def _sent_item(item: rx.Var) -> rx.Component:
    return rx.link(
        rx.card(
            rx.text(item["title"], size="5", weight="bold"),
            rx.hstack(rx.text(item["sent"], size="3"), rx.text(item["target"], size="3"),
                      rx.cond(item["amended"] != "", rx.badge(t("circular.amended"), color_scheme="amber")),
                      wrap="wrap", spacing="3", color=rx.color("gray", 11)),
            rx.text(item["reach"], size="4", weight="medium", margin_top="0.3em"),
            size="3", width="100%",
        ),
        href=item["href"], underline="none", class_name="sent-item",
        style={"display": "block", "color": "inherit", "margin_bottom": "0.6em"},
    )


def _export_buttons(on_csv, on_xlsx, ids: str) -> rx.Component:
    return rx.hstack(
        secondary_button("common.download_csv", on_click=on_csv, id=f"{ids}-csv"),
        secondary_button("common.download_xlsx", on_click=on_xlsx, id=f"{ids}-xlsx"),
        wrap="wrap", spacing="3",
    )


@template(route=routes.CIRCULAR_ADMIN, title_key="circular.admin_title", on_load=[CircularAdminState.load])
def admin_page() -> rx.Component:
    s = CircularAdminState
    return rx.vstack(
        heading("circular.admin_title", help_key="help.circular_admin"),
        error_banner(s.error),
        rx.cond(AuthState.can_send_circulars, link_button("circular.new", CIRCULAR_NEW, id="new-circular")),
        rx.cond(
            s.allowed,
            rx.vstack(
                rx.heading(t("circular.sent_title"), as_="h2", size="5"),
                rx.form(
                    rx.hstack(
                        rx.input(name="q", default_value=s.query, type="search", size="3",
                                 aria_label=t("circular.search"), max_length=circulars.MAX_QUERY,
                                 style={"min_height": "48px", "flex": "1"}),
                        button(t("circular.search_button"), type="submit", size="3", style=BUTTON_STYLE),
                        width="100%",
                    ),
                    on_submit=s.search, width="100%",
                ),
                rx.cond(s.items.length() > 0, rx.box(rx.foreach(s.items, _sent_item), width="100%"),
                        rx.text(t("circular.sent_none"), size="4")),
                rx.cond(s.pages > 1, pager(s.page, s.pages, s.prev_page, s.next_page)),
                rx.cond(AuthState.can_export, card(
                    rx.heading(t("circular.export_matrix"), as_="h2", size="4", margin_bottom="0.5em"),
                    _export_buttons(s.export_matrix("csv"), s.export_matrix("xlsx"), "matrix"),
                )),
                width="100%", align="stretch",
            ),
        ),
        width="100%", align="stretch",
    )


# --------------------------------------------------------------------------- compose, preview, send


class ComposeState(FileDrop, rx.State):
    """The officer's draft; the server checks everything again when sending."""

    han_options: list[list[str]] = []
    may_all: bool = False
    title: str = ""
    body: str = ""
    due_date: str = ""
    target_all: bool = False
    han_selected: list[str] = []
    files: list[dict[str, str]] = []
    errors: dict[str, str] = {}
    error: str = ""
    file_error: str = ""
    previewing: bool = False
    p_blocks: list[Block] = []
    p_due: str = ""
    p_targets: str = ""
    p_reach: str = ""
    allowed: bool = False
    uploading: bool = False

    def _reset_draft(self) -> None:
        self.title = self.body = self.due_date = self.error = self.file_error = ""
        self.target_all, self.previewing, self.han_selected, self.files, self.errors = False, False, [], [], {}
        self.p_blocks, self.p_due, self.p_targets, self.p_reach = [], "", "", ""

    @rx.event
    async def load(self):
        actor, lang, aid = await _officer(self)
        self._reset_draft()
        self.allowed = False
        if actor is None:
            return rx.redirect(routes.LOGIN)
        try:
            opts = await run_service(circulars.compose_options, actor, aid)
        except ServiceError as e:
            self.error = error_text(lang, e)
            return
        self.allowed, self.may_all = True, opts.may_target_all
        self.han_options = [[str(h.id), h.name] for h in opts.han]

    def _data(self) -> dict:
        return {"title": self.title, "body": self.body, "due_date": self.due_date, "target_all": self.target_all,
                "han_ids": list(self.han_selected)}

    def _file_ids(self) -> list[int]:
        return [int(f["id"]) for f in self.files]

    @rx.event
    async def check(self, form: dict):
        """Keep what was typed, then show the preview (or the errors next to their fields)."""
        actor, lang, aid = await _officer(self)
        if actor is None:
            return rx.redirect(routes.LOGIN)
        if not isinstance(form, dict):
            return
        def text(name: str, limit: int) -> str:
            # The form's fields stop at the limits; kept one past them (a crafted message), so that the check
            # below still says too long, and the state never holds more.
            value = form.get(name, "")
            return value[:limit + 1] if isinstance(value, str) else ""

        self.title, self.body = text("title", circulars.MAX_TITLE), text("body", circulars.MAX_BODY)
        self.due_date = text("due_date", 10)
        self.target_all = form.get("target_all") in ("on", True, "true")
        valid = {o[0] for o in self.han_options}
        self.han_selected = [k[4:] for k, v in form.items()
                             if isinstance(k, str) and k.startswith("han_") and k[4:] in valid and v]
        try:
            p = await run_service(circulars.preview, actor, aid, self._data(), self._file_ids(), lang)
        except ServiceError as e:
            self.errors, self.error = _err_only(lang, e)
            return
        self.errors, self.error, self.previewing = {}, "", True
        self.p_blocks, self.p_due = p.blocks, fmt_date(p.due_date, lang) if p.due_date else ""
        self.p_targets = tr(lang, "circular.list_sep").join(p.han_names)
        self.p_reach = tr(lang, "circular.preview_reach", total=p.households, digital=p.digital_households,
                          paper=p.paper_households)

    @rx.event
    def edit_again(self):
        self.previewing = False

    @rx.event
    async def send(self):
        actor, lang, aid = await _officer(self)
        if actor is None:
            return rx.redirect(routes.LOGIN)
        if not self.previewing:  # a second click after sending does nothing
            return
        try:
            res = await run_service(circulars.send, actor, aid, self._data(), self._file_ids())
        except ServiceError as e:
            self.previewing = False
            self.errors, self.error = _err_only(lang, e)
            return
        self._reset_draft()
        auth = await self.get_state(AuthState)
        auth._show_next(tr(lang, "circular.sent_done", households=res.households, mails=res.mails))
        return rx.redirect(status_url(res.circular_id))

    @rx.event
    async def upload(self, files: list[rx.UploadFile]):
        actor, lang, aid = await _officer(self)
        if actor is None:
            return rx.redirect(routes.LOGIN)
        self.files, problems = await receive_uploads(
            files, self.files, attachments.MAX_PER_CIRCULAR,
            tr(lang, "circular.error_too_many_files", max=attachments.MAX_PER_CIRCULAR), lang,
            lambda name, data: attachments.upload(actor, aid, name, data))
        self.file_error = " / ".join(problems)
        self.uploading = False
        return rx.clear_selected_files(UPLOAD_ID)

    @rx.event
    async def remove_file(self, file_id: str):
        actor, lang, _aid = await _officer(self)
        if actor is None:
            return rx.redirect(routes.LOGIN)
        if not any(f["id"] == file_id for f in self.files):
            return
        try:
            await run_service(attachments.discard, actor, file_id)
        except ServiceError as e:
            self.file_error = error_text(lang, e)
        self.files = [f for f in self.files if f["id"] != file_id]


def _han_checkbox(opt: rx.Var) -> rx.Component:
    fid = "f-han-" + opt[0]
    return rx.el.label(
        rx.el.input(type="checkbox", name="han_" + opt[0], id=fid,
                    default_checked=ComposeState.han_selected.contains(opt[0]),
                    style={"width": "28px", "height": "28px", "margin_right": "0.6em"}),
        opt[1], html_for=fid,
        style={"display": "flex", "align_items": "center", "min_height": "48px", "font_size": "var(--font-size-3)",
               "margin_right": "1.2em"},
    )


def _files_box() -> rx.Component:
    s = ComposeState
    return rx.box(
        rx.el.label(t("circular.field_files"), id="circular-files-label",
                    style={"font_weight": "600", "display": "block", "margin_bottom": "0.3em"}),
        rx.upload(
            rx.vstack(rx.icon("upload", size=28), rx.text(t("circular.choose_files"), size="3"), align="center"),
            id=UPLOAD_ID, multiple=True, no_keyboard=False, custom_attrs={"data-label-id": "circular-files-label"},
            accept={"application/pdf": [".pdf"], "image/png": [".png"], "image/jpeg": [".jpg", ".jpeg"],
                    "image/gif": [".gif"], "image/webp": [".webp"]},
            # Attached as soon as chosen: a file chosen and left waiting for a second button was sent without.
            on_drop=s.upload(rx.upload_files(upload_id=UPLOAD_ID, on_upload_progress=s.upload_progress)),
            on_drop_rejected=s.upload_refused,
            disabled=s.uploading,
            style={"border": "2px dashed var(--gray-8)", "padding": "1em", "border_radius": "var(--radius-3)",
                   "cursor": "pointer", "min_height": "48px"},
        ),
        rx.cond(s.uploading, rx.text(t("upload.busy"), size="3", role="status", id="upload-busy")),
        rx.cond(s.file_error != "", rx.text(s.file_error, color=rx.color("red", 11), size="3", role="alert",
                                            id="file-error")),
        rx.foreach(s.files, lambda f: rx.hstack(
            rx.icon("paperclip", size=18), rx.text(f["name"], size="3"),
            rx.text(tf("circular.file_size", size=f["size"]), size="2", color=rx.color("gray", 11)),
            button(t("circular.remove_file"), type="button", variant="ghost", size="2",
                      on_click=s.remove_file(f["id"]), style={"min_height": "44px"}),
            align="center", class_name="attached-file")),
        width="100%", margin_bottom="1em",
    )


def _compose_form() -> rx.Component:
    s = ComposeState
    err = s.errors
    return rx.form(
        text_field("circular.field_title", "title", default_value=s.title, error=err.get("title", ""),
                   required=True, max_length=circulars.MAX_TITLE),
        text_area("circular.field_body", "body", default_value=s.body, error=err.get("body", ""),
                  max_length=circulars.MAX_BODY, rows="10"),
        rx.text(t("circular.body_help"), size="2", color=rx.color("gray", 11), margin_top="-0.6em",
                margin_bottom="1em"),
        text_field("circular.field_due", "due_date", type_="date", default_value=s.due_date,
                   error=err.get("due_date", "")),
        rx.el.fieldset(
            rx.el.legend(t("circular.field_target"), style={"font_weight": "600", "margin_bottom": "0.3em"}),
            rx.cond(s.may_all, rx.el.label(
                rx.el.input(type="checkbox", name="target_all", id="f-target_all", default_checked=s.target_all,
                            style={"width": "28px", "height": "28px", "margin_right": "0.6em"}),
                t("circular.target_all_option"), html_for="f-target_all",
                style={"display": "flex", "align_items": "center", "min_height": "48px"})),
            rx.text(t("circular.target_han_help"), size="2", color=rx.color("gray", 11)),
            rx.flex(rx.foreach(s.han_options, _han_checkbox), wrap="wrap"),
            field_error(err.get("target", ""), "f-target"),
            style={"border": "none", "padding": "0", "margin": "0 0 1em 0"},
        ),
        _files_box(),
        primary_button("circular.preview", type="submit", id="preview-circular", width="100%",
                       disabled=ComposeState.uploading),
        on_submit=s.check, width="100%", id="compose-form",
    )


def _preview() -> rx.Component:
    s = ComposeState
    return rx.vstack(
        rx.heading(t("circular.preview_title"), as_="h2", size="5"),
        card(
            rx.heading(s.title, as_="h3", size="6", margin_bottom="0.4em", id="preview-title"),
            rx.cond(s.p_due != "", rx.text(tf("circular.due_on", date=s.p_due), size="3", weight="bold")),
            rx.text(t("circular.target"), ": ", s.p_targets, size="3"),
            rx.divider(margin_y="0.6em"),
            body_view(s.p_blocks, id="preview-body"),
            rx.foreach(s.files, lambda f: rx.hstack(rx.icon("paperclip", size=18), rx.text(f["name"], size="3"))),
        ),
        rx.callout(s.p_reach, size="2", id="preview-reach"),
        rx.hstack(
            secondary_button("circular.edit_again", on_click=s.edit_again, type="button"),
            primary_button("circular.send", on_click=s.send, type="button", id="send-circular", flex="1"),
            width="100%",
        ),
        width="100%", align="stretch",
    )


@template(route=CIRCULAR_NEW, title_key="circular.compose_title", on_load=[ComposeState.load])
def compose_page() -> rx.Component:
    s = ComposeState
    return rx.vstack(
        heading("circular.compose_title", help_key="help.circular_compose"),
        link_button("circular.back", routes.CIRCULAR_ADMIN, variant="ghost"),
        error_banner(s.error),
        rx.cond(s.allowed, rx.cond(s.previewing, _preview(), _compose_form())),
        width="100%", align="stretch",
    )


# --------------------------------------------------------------------------- status page


class StatusState(rx.State):
    """Counts for the officer's han scope; household rows (names only with view_members) page by page."""

    cid: int = 0
    title: str = ""
    sent: str = ""
    due: str = ""
    target: str = ""
    days_since: int = 0
    households: int = 0
    reached: int = 0
    counts: dict[str, int] = {}
    by_han: list[dict[str, str]] = []
    chart: list[dict[str, int | str]] = []
    unread_members: int = 0
    may_manage: bool = False
    may_act: bool = False  # sends circulars here (a 会計 who only exports reads the status)
    may_export: bool = False
    may_view_names: bool = False
    amendments: list[AmendView] = []
    rows: list[dict[str, str]] = []
    rows_total: int = 0
    page: int = 1
    pages: int = 1
    category: str = ""
    han: str = ""
    days: str = ""
    too_early: bool = False
    category_options: list[list[str]] = []
    han_options: list[list[str]] = []
    found: bool = False
    error: str = ""
    notice: str = ""
    amend_error: str = ""
    _last_act: list[str] = []  # the recording action last done (function, household, action) and when

    @rx.event
    async def load(self):
        self._last_act = []
        actor, lang, _aid = await _officer(self)
        self.found, self.rows, self.by_han, self.chart, self.error, self.notice = False, [], [], [], "", ""
        if actor is None:
            return rx.redirect(routes.LOGIN)
        cid = query_id(self)
        self.cid = int(cid) if cid else 0
        self.page, self.category, self.han, self.days, self.amend_error = 1, "", "", "", ""
        if await self._status(actor, lang):
            await self._rows(actor, lang)

    async def _relabel(self, actor: Actor, lang: str) -> None:
        """After a language switch (chiiki.state.relabel_page): the counts and the same filtered page of
        households in `lang` (read again, and recorded again as an access to those households)."""
        if not self.found:
            return
        if await self._status(actor, lang):  # refused (e.g. withdrawn meanwhile): _status cleared the rows
            await self._rows(actor, lang)

    async def _status(self, actor: Actor, lang: str) -> bool:
        try:
            st = await run_service(circulars.status, actor, self.cid, lang)
        except ServiceError as e:
            # Refused now (a role taken away meanwhile): the rows shown before go too.
            self.found, self.error, self.rows, self.by_han, self.chart = False, error_text(lang, e), [], [], []
            return False
        self.found = True
        self.title, self.sent, self.target = st.title, fmt_dt(st.sent_at, lang), st.target_label
        self.due = fmt_date(st.due_date, lang) if st.due_date else ""
        self.days_since, self.households, self.reached = st.days_since, st.households, st.reached
        self.counts, self.unread_members = dict(st.counts), st.unread_members
        self.may_manage, self.may_export, self.may_view_names = st.may_manage, st.may_export, st.may_view_names
        self.may_act = st.may_act
        self.by_han = [{"id": str(h.han_id), "name": h.han_name, "households": str(h.households),
                        "reached": str(h.reached), **{k: str(v) for k, v in h.counts.items()}} for h in st.by_han]
        self.chart = [{"han": h.han_name, **h.counts} for h in st.by_han]
        self.han_options = [[str(h.han_id), h.han_name] for h in st.by_han if h.han_id]
        self.category_options = [[c, tr(lang, f"circular.cat.{c}")] for c in circulars.CATEGORIES]
        self.amendments = amend_views(st.amendments, lang)
        return True

    async def _rows(self, actor: Actor, lang: str) -> None:
        try:
            res = await run_service(circulars.households, actor, self.cid, category=self.category,
                                    han_id=self.han or None, not_reached_days=self.days or None, page=self.page,
                                    lang=lang)
        except ServiceError as e:
            self.rows, self.error = [], error_text(lang, e)
            return
        self.rows = [{"id": str(r.household_id),
                      "label": (r.han_name + " · " + tr(lang, "circular.removed")) if r.removed else
                      tr(lang, "circular.household_label", han=r.han_name, n=r.route_position + 1),
                      "name": r.name, "address": r.address, "channel": r.channel, "category": r.category,
                      "category_label": tr(lang, f"circular.cat.{r.category}"), "removed": "1" if r.removed else "",
                      "when": fmt_dt(r.confirmed_at, lang) if r.confirmed_at else ""} for r in res.rows]
        self.rows_total, self.page, self.pages, self.too_early = res.total, res.page, res.pages, res.too_early

    @rx.event
    async def filter_rows(self, form: dict):
        actor, lang, _aid = await _officer(self)
        if actor is None:
            return rx.redirect(routes.LOGIN)
        if not isinstance(form, dict):
            return
        cat, han, days = form.get("category", ""), form.get("han", ""), form.get("days", "")
        self.category = cat if cat in circulars.CATEGORIES else ""
        self.han = han if isinstance(han, str) and han in {o[0] for o in self.han_options} else ""
        days = days.strip() if isinstance(days, str) else ""
        self.days = days if days.isascii() and days.isdigit() and len(days) < 4 else ""
        if self.days:
            self.category = ""
        self.page = 1
        await self._rows(actor, lang)

    @rx.event
    async def next_page(self):
        await turn_page(self, 1, self._rows)

    @rx.event
    async def prev_page(self):
        await turn_page(self, -1, self._rows)

    async def _act(self, fn, *args) -> None:
        """Run one recording action, then refresh counts and the rows shown. The same action on the same
        household just done is a second tap queued before its button went: done once, no error."""
        actor, lang, _aid = await _officer(self)
        if actor is None:
            return
        done = [fn.__name__, *map(str, args)]
        if done == self._last_act[:-1] and time.time() - float(self._last_act[-1]) < 5:
            return
        self.error = self.notice = ""
        try:
            await run_service(fn, actor, self.cid, *args)
        except ServiceError as e:
            self.error, self._last_act = error_text(lang, e), []
        else:
            self.notice, self._last_act = tr(lang, "circular.recorded"), [*done, str(time.time())]
        if await self._status(actor, lang):
            await self._rows(actor, lang)

    @rx.event
    async def record(self, household_id: str, action: str):
        if action in circulars.PAPER_ACTIONS:
            await self._act(circulars.record_paper, household_id, action)

    @rx.event
    async def on_behalf(self, household_id: str):
        await self._act(circulars.confirm_on_behalf, household_id)

    @rx.event
    async def renotify(self):
        actor, lang, _aid = await _officer(self)
        if actor is None:
            return rx.redirect(routes.LOGIN)
        try:
            res = await run_service(circulars.renotify, actor, self.cid)
        except ServiceError as e:
            self.error, self.notice = error_text(lang, e), ""
            return
        self.error, self.notice = "", tr(lang, "circular.renotified", members=res.members, mails=res.mails)

    @rx.event
    async def amend(self, form: dict):
        actor, lang, _aid = await _officer(self)
        if actor is None:
            return rx.redirect(routes.LOGIN)
        text = form.get("amendment", "") if isinstance(form, dict) else ""
        try:
            res = await run_service(circulars.amend, actor, self.cid, text)
        except ServiceError as e:
            self.amend_error = error_text(lang, e)
            return
        if res.repeated:  # a double tap: the first tap's message stays
            self.error, self.amend_error = "", ""
            return
        done = tr(lang, "circular.amended_done", mails=res.mails)
        if res.held:
            done += " " + tr(lang, "circular.amend_held", n=res.held)
        self.error, self.amend_error, self.notice = "", "", done
        await self._status(actor, lang)

    @rx.event
    async def export(self, fmt: str):
        actor, lang, _aid = await _officer(self)
        if actor is None:
            return rx.redirect(routes.LOGIN)
        try:
            f = await run_service(circulars.export_readlist, actor, self.cid, fmt, lang)
        except ServiceError as e:
            self.error = error_text(lang, e)
            return
        return rx.download(data=f.data, filename=f.filename, mime_type=f.mime)


def _count_tile(key: str) -> rx.Component:
    return rx.box(
        rx.text(t(f"circular.cat.{key}"), size="2", color=rx.color("gray", 11)),
        rx.text(StatusState.counts.get(key, 0), size="7", weight="bold", id=f"count-{key}"),
        style={"border_left": f"6px solid {CATEGORY_COLORS[key]}", "padding": "0.4em 0.8em",
               "background": "var(--gray-2)", "border_radius": "var(--radius-2)"},
    )


def _chart() -> rx.Component:
    bars = [rx.recharts.bar(data_key=k, stack_id="a", fill=CATEGORY_COLORS[k], name=t(f"circular.cat.{k}"),
                            is_animation_active=False) for k in CHART_ORDER]
    return rx.recharts.responsive_container(
        rx.recharts.bar_chart(*bars, rx.recharts.x_axis(data_key="han"), rx.recharts.y_axis(allow_decimals=False),
                              rx.recharts.graphing_tooltip(), rx.recharts.legend(), data=StatusState.chart),
        width="100%", height=320,
    )


_NOWRAP = {"white_space": "nowrap"}


def _han_table() -> rx.Component:
    return rx.table.root(
        rx.table.header(rx.table.row(
            rx.table.column_header_cell(t("circular.col_han")),
            rx.table.column_header_cell(t("circular.col_reached")),
            *[rx.table.column_header_cell(t(f"circular.short.{k}")) for k in CHART_ORDER],
        )),
        rx.table.body(rx.foreach(StatusState.by_han, lambda h: rx.table.row(
            rx.table.row_header_cell(h["name"], style=_NOWRAP),
            rx.table.cell(h["reached"] + " / " + h["households"], style=_NOWRAP),
            *[rx.table.cell(h[k], style=_NOWRAP) for k in CHART_ORDER],
        ))),
        size="2", width="100%", id="han-table", class_name="han-table",
    )


def _han_card(h: rx.Var) -> rx.Component:
    """One han's figures as lines of a list: its name and how many households it reached, then each state
    with its count, marked in the chart's colour. A count of 0 is shown lighter, so the eye finds the others."""
    return rx.box(
        rx.hstack(
            rx.heading(h["name"], as_="h4", size="5"),
            rx.text(t("circular.col_reached"), " ",
                    rx.el.span(h["reached"] + " / " + h["households"], style={**_NOWRAP, "font_weight": "700"}),
                    size="4"),
            justify="between", align="baseline", wrap="wrap", spacing="2", width="100%",
        ),
        rx.el.dl(
            *[rx.box(
                rx.el.dt(t(f"circular.cat.{k}"), style={"flex": "1", "min_width": "0"}),
                rx.el.dd(h[k], style={**_NOWRAP, "margin": "0", "font_weight": rx.cond(h[k] == "0", "400", "700"),
                                      "color": rx.cond(h[k] == "0", "var(--gray-11)", "var(--gray-12)"),
                                      "font_variant_numeric": "tabular-nums"}),
                style={"display": "flex", "gap": "0.8em", "align_items": "baseline",
                       "border_left": f"6px solid {CATEGORY_COLORS[k]}", "padding": "0.1em 0 0.1em 0.6em",
                       "margin_bottom": "0.25em"},
            ) for k in CHART_ORDER],
            style={"margin": "0.3em 0 0 0", "font_size": "var(--font-size-3)"},
        ),
        style={"border_top": "1px solid var(--gray-6)", "padding": "0.7em 0"},
        class_name="han-card",
    )


def _han_figures() -> rx.Component:
    """The counts per han: a table where its nine columns fit at the chosen text size, else (a phone, or large
    text on a narrow window) a list per han, read top to bottom; assets/chiiki.css chooses by the space there is.
    Squeezed into a phone, the table broke 「20 / 20」 over three lines and hid columns behind a sideways
    scroll."""
    return rx.box(
        _han_table(),
        rx.box(rx.foreach(StatusState.by_han, _han_card), id="han-cards", class_name="han-cards"),
        class_name="han-figures", width="100%",
    )


def _row_actions(r: rx.Var) -> rx.Component:
    s = StatusState
    small = {"min_height": "44px"}
    return rx.cond(s.may_act & (r["removed"] == ""), rx.hstack(
        rx.cond(r["channel"] == "paper", rx.fragment(
            rx.cond(r["category"] == "paper_pending", button(
                t("circular.paper_delivered_button"), size="2", variant="soft", style=small,
                on_click=s.record(r["id"], "delivered"))),
            rx.cond(r["category"] != "paper_confirmed", button(
                t("circular.paper_confirmed_button"), size="2", style=small, on_click=s.record(r["id"], "confirmed"),
                class_name="paper-confirm")),
            rx.cond(r["category"] != "paper_pending", button(
                t("circular.paper_clear_button"), size="2", variant="ghost", style=small,
                on_click=s.record(r["id"], "clear"))),
        ), rx.cond((r["category"] == "unread") | (r["category"] == "read"), button(
            t("circular.on_behalf_button"), size="2", variant="soft", style=small, on_click=s.on_behalf(r["id"]),
            class_name="on-behalf"))),
        wrap="wrap", spacing="2",
    ))


def _household_rows() -> rx.Component:
    s = StatusState
    return rx.vstack(
        rx.heading(t("circular.households"), as_="h2", size="5"),
        rx.form(
            rx.grid(
                select_field("circular.filter_category", "category", s.category_options, default_value=s.category,
                             placeholder_key="circular.all_states"),
                select_field("circular.filter_han", "han", s.han_options, default_value=s.han,
                             placeholder_key="circular.all_han"),
                text_field("circular.not_reached_days", "days", default_value=s.days, input_mode="numeric",
                           max_length=3),
                columns=rx.breakpoints(initial="1", sm="3"), spacing="3", width="100%",
            ),
            primary_button("circular.search_button", type="submit", id="filter-households"),
            on_submit=s.filter_rows, width="100%",
        ),
        rx.cond(s.days != "", rx.text(tf("circular.not_reached", n=s.days), size="4", weight="bold")),
        rx.cond(s.too_early, rx.text(tf("circular.too_early", n=s.days), size="3")),
        rx.cond(~s.may_view_names, rx.text(t("circular.name_hidden"), size="2", color=rx.color("gray", 11))),
        rx.foreach(s.rows, lambda r: rx.card(
            rx.hstack(rx.text(r["label"], size="3", weight="bold"),
                      rx.badge(r["category_label"], size="2", class_name="row-category"), wrap="wrap"),
            rx.cond(r["name"] != "", rx.text(r["name"], size="4")),
            rx.cond(r["address"] != "", rx.text(r["address"], size="2", color=rx.color("gray", 11))),
            rx.cond(r["when"] != "", rx.text(r["when"], size="2", color=rx.color("gray", 11))),
            _row_actions(r),
            # keeps-place: its result shows in the row itself (assets/a11y.js leaves the page where it is).
            size="2", width="100%", class_name="household-row keeps-place",
        )),
        rx.cond(s.pages > 1, pager(s.page, s.pages, s.prev_page, s.next_page)),
        width="100%", align="stretch",
    )


@template(route=CIRCULAR_STATUS, title_key="circular.status_title", on_load=[StatusState.load])
def status_page() -> rx.Component:
    s = StatusState
    return rx.vstack(
        link_button("circular.back", routes.CIRCULAR_ADMIN, variant="ghost"),
        heading("circular.status_title", help_key="help.circular_status"),
        message(s.notice),
        error_banner(s.error),
        rx.cond(s.found, rx.vstack(
            rx.heading(s.title, as_="h2", size="6", id="status-title"),
            rx.hstack(rx.text(s.sent, size="3"), rx.text(s.target, size="3"),
                      rx.text(tf("circular.days_since", n=s.days_since), size="3"),
                      rx.cond(s.due != "", rx.text(tf("circular.due_on", date=s.due), size="3")),
                      wrap="wrap", spacing="3", color=rx.color("gray", 11)),
            rx.text(tf("circular.reached", reached=s.reached, total=s.households), size="6", weight="bold",
                    id="status-reached"),
            rx.grid(*[_count_tile(k) for k in CHART_ORDER], columns=rx.breakpoints(initial="2", sm="4"),
                    spacing="2", width="100%"),
            card(rx.heading(t("circular.chart"), as_="h3", size="4"), _chart(), _han_figures()),
            card(
                rx.text(tf("circular.unread_members", n=s.unread_members), size="4"),
                rx.cond(s.may_act, rx.hstack(
                    secondary_button("circular.renotify", on_click=s.renotify, id="renotify",
                                     disabled=s.unread_members == 0),
                    rx.link(rx.button(t("circular.print"), size="3", variant="outline", style=BUTTON_STYLE,
                                      tab_index=-1), href=CIRCULAR_PRINT + "?id=" + s.cid.to_string(),
                            id="print-link"),
                    wrap="wrap", spacing="3",
                )),
                rx.cond(s.may_export, rx.box(
                    rx.text(t("circular.export_readlist"), size="3", weight="bold", margin_y="0.5em"),
                    _export_buttons(s.export("csv"), s.export("xlsx"), "readlist"))),
            ),
            amendments_view(s.amendments),
            rx.cond(s.may_manage, card(
                rx.heading(t("circular.amend_title"), as_="h3", size="4"),
                rx.text(t("circular.amend_help"), size="2"),
                rx.form(
                    text_area("circular.field_amendment", "amendment", error=s.amend_error,
                              max_length=circulars.MAX_AMENDMENT, rows="4"),
                    primary_button("circular.amend_submit", type="submit", id="amend-submit"),
                    on_submit=s.amend, reset_on_submit=True,
                ),
            )),
            _household_rows(),
            width="100%", align="stretch", spacing="3",
        )),
        width="100%", align="stretch",
    )


# --------------------------------------------------------------------------- print view (A4, no shell)


class PrintState(rx.State):
    cid: int = 0
    title: str = ""
    association: str = ""
    blocks: list[Block] = []
    sent: str = ""
    due: str = ""
    han_name: str = ""
    han_id: str = ""
    han_options: list[list[str]] = []
    amendments: list[AmendView] = []
    files: list[dict[str, str]] = []
    rows: list[dict[str, str]] = []
    found: bool = False
    error: str = ""

    @rx.event
    async def load(self):
        actor, lang, _aid = await _officer(self)
        self.found, self.rows, self.error = False, [], ""
        if actor is None:
            return rx.redirect(routes.LOGIN)
        await self._fetch(actor, lang, query_id(self), query_id(self, "han"))

    async def _fetch(self, actor: Actor, lang: str, cid: str, han: str) -> None:
        try:
            sheet = await run_service(circulars.print_sheet, actor, cid, han or None, lang)
        except ServiceError as e:
            self.error, self.found, self.rows = error_text(lang, e), False, []
            return
        c = sheet.circular
        self.cid, self.title, self.blocks, self.association = c.id, c.title, c.blocks, sheet.association_name
        self.sent, self.due = fmt_dt(c.sent_at, lang, with_time=False), fmt_date(c.due_date, lang) if c.due_date else ""
        self.han_name, self.han_id = sheet.han_name, str(sheet.han_id)
        self.han_options = [[str(o.id), o.name] for o in sheet.han_options]
        self.amendments, self.files = amend_views(c.amendments, lang), file_rows(c.attachments)
        self.rows = [{"no": str(r.position), "name": r.name, "address": r.address} for r in sheet.rows]
        self.found = True

    @rx.event
    async def choose_han(self, han: str):
        actor, lang, _aid = await _officer(self)
        if actor is None:
            return rx.redirect(routes.LOGIN)
        if isinstance(han, str) and han in {o[0] for o in self.han_options}:
            await self._fetch(actor, lang, str(self.cid), han)


PRINT_CSS = """
@page { size: A4; margin: 14mm; }
.print-sheet { font-family: "Noto Sans CJK JP", "Hiragino Sans", "Yu Gothic", sans-serif; color: #000;
  max-width: 182mm; margin: 0 auto; padding: 1em; background: #fff; font-size: 12pt; line-height: 1.7; }
.print-sheet table { width: 100%; border-collapse: collapse; }
.print-sheet th, .print-sheet td { border: 1px solid #000; padding: 6px; font-size: 12pt; }
.print-sheet td.stamp { width: 28mm; height: 16mm; }
.print-sheet td.date { width: 30mm; }
.page-break { break-before: page; page-break-before: always; }
@media print { .no-print { display: none !important; } body { background: #fff; } }
"""


def _print_sheet() -> rx.Component:
    s = PrintState
    return rx.box(
        rx.el.style(PRINT_CSS),
        rx.hstack(
            rx.button(rx.icon("printer"), t("circular.print_button"), on_click=rx.call_script("window.print()"),
                      size="3", style=BUTTON_STYLE, id="print-button"),
            rx.el.label(t("circular.print_han"), html_for="f-print-han", style={"font_weight": "600"}),
            rx.el.select(rx.foreach(s.han_options, lambda o: rx.el.option(o[1], value=o[0])), id="f-print-han",
                         value=s.han_id, on_change=s.choose_han, style={"min_height": "48px", "font_size": "16px"}),
            # Back where the print came from: the circular's status page.
            link_button("circular.back_status", CIRCULAR_STATUS + "?id=" + s.cid.to_string(), variant="ghost"),
            class_name="no-print", wrap="wrap", align="center", spacing="3", margin_bottom="1em",
        ),
        rx.el.section(
            rx.el.p(s.association + " " + s.han_name),
            rx.el.h1(s.title, style={"font_size": "20pt", "margin": "0.2em 0"}),
            rx.el.p(tf("circular.sent_on", date=s.sent), " ",
                    rx.cond(s.due != "", tf("circular.due_on", date=s.due))),
            body_view(s.blocks),
            amendments_view(s.amendments),
            rx.cond(s.files.length() > 0, rx.el.p(t("circular.print_files"), ": ",
                                                  rx.foreach(s.files, lambda f: rx.el.span(f["name"], " ")))),
        ),
        rx.el.section(
            rx.el.h2(t("circular.sheet_title"), " ", s.han_name, style={"font_size": "18pt"}),
            rx.el.p(t("circular.sheet_lead")),
            rx.el.p(s.title, style={"font_weight": "bold"}),
            rx.cond(s.rows.length() > 0, rx.el.table(
                rx.el.thead(rx.el.tr(rx.el.th(t("circular.sheet_no")), rx.el.th(t("circular.col_name")),
                                     rx.el.th(t("circular.col_address")), rx.el.th(t("circular.sheet_date")),
                                     rx.el.th(t("circular.sheet_stamp")))),
                rx.el.tbody(rx.foreach(s.rows, lambda r: rx.el.tr(
                    rx.el.td(r["no"]), rx.el.td(r["name"]), rx.el.td(r["address"]), rx.el.td("", class_name="date"),
                    rx.el.td("", class_name="stamp")))),
                id="sheet-table",
            ), rx.el.p(t("circular.sheet_none"))),
            rx.el.p(t("circular.sheet_return")),
            class_name="page-break",
        ),
        class_name="print-sheet",
    )


@rx.page(route=CIRCULAR_PRINT, title=STRINGS["circular.print_title"][0] + " | " + STRINGS["app.name"][0],
         on_load=[AuthState.load_nav, PrintState.load])
def print_page() -> rx.Component:
    return rx.box(
        rx.cond(PrintState.found, _print_sheet(),
                rx.box(error_banner(PrintState.error), link_button("circular.back", routes.CIRCULAR_ADMIN),
                       padding="1em")),
        lang=UIState.html_lang,
        class_name="chiiki-print",
    )
