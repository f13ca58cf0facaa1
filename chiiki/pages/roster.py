"""The roster page (名簿): officers with view_members read it; managers edit, link, import; export with `export`."""

from __future__ import annotations

import reflex as rx

from chiiki import routes
from chiiki.components.shell import register_nav, template
from chiiki.components.ui import (
    BUTTON_STYLE,
    button,
    card,
    checkbox_field,
    error_banner,
    heading,
    message,
    pager,
    primary_button,
    secondary_button,
    select_field,
    text_area,
    text_field,
)
from chiiki.i18n import t, tf, tr
from chiiki.services import roster, tabular, validate
from chiiki.services.errors import Denied, ServiceError
from chiiki.services.policy import MANAGE_MEMBERS, Actor, han_scope
from chiiki.state import current_actor, error_text, field_errors, run_service, uploaded_files

UPLOAD_ID = "roster_upload"
PREVIEW_OK_ROWS = 30  # rows without errors shown as a sample; every row with an error is listed (capped)
_FORM_FIELDS = ("han_id", "route_position", "address", "head_name", "head_kana", "phone", "note", "paper_copy")

register_nav("nav.roster", routes.ROSTER, "can_view_members")


def _row_view(r: roster.RosterRow) -> dict[str, str]:
    return {
        "id": str(r.household_id),
        "han": r.han_name,
        "position": str(r.route_position + 1),
        "address": r.address,
        "names": "、".join(n for n in r.names if n),
        "kana": "、".join(k for k in r.kanas if k),
        "channel": r.channel,
        "phones": "、".join(r.phones),
        "emails": "、".join(r.emails),
    }


def _import_error_text(lang: str, key: str, params: dict) -> str:
    params = dict(params)
    if "field" in params:
        params["field"] = tr(lang, f"roster.col.{params['field']}")
    return tr(lang, key, **params)


class RosterState(rx.State):
    """Everything here was allowed by the policy for this actor; emptied whenever it is not."""

    allowed: bool = False
    rows: list[dict[str, str]] = []
    total: int = 0
    page: int = 1
    pages: int = 0
    query: str = ""
    error: str = ""
    notice: str = ""
    can_manage: bool = False
    can_export: bool = False
    han_options: list[list[str]] = []
    # The household form (add or edit).
    form_open: bool = False
    form_id: int = 0
    form_paper: bool = True
    form_key: int = 0
    form: dict[str, str] = {}
    form_errors: dict[str, str] = {}
    remove_id: int = 0
    # Linking a household to a member account.
    link_id: int = 0
    link_address: str = ""
    link_options: list[list[str]] = []
    link_error: str = ""
    # Import preview: only what the officer uploaded, shown to managers.
    import_rows: list[dict[str, str]] = []
    import_total: int = 0
    import_error_rows: int = 0
    import_ready: bool = False
    import_error: str = ""
    import_filename: str = ""

    # Backend only: the parsed rows waiting for confirmation, and for which association.
    _rows: list[dict] = []
    _import_association: int = 0

    # ------------------------------------------------------------------ helpers

    async def _context(self) -> tuple[Actor, str, int] | None:
        actor, lang = await current_actor(self)
        if not actor.authenticated:
            return None
        aid = actor.memberships[0].association_id if actor.memberships else 0
        return actor, lang, aid

    def _clear(self) -> None:
        """Forget every row and option: used when the actor may not (or no longer) see them."""
        self.allowed = False
        self.rows, self.total, self.page, self.pages = [], 0, 1, 0
        self.can_manage = self.can_export = False
        self.han_options = []
        self._close_form()
        self._close_link()
        self._reset_import()

    def _close_form(self) -> None:
        self.form_open, self.form_id, self.form, self.form_errors, self.remove_id = False, 0, {}, {}, 0

    def _close_link(self) -> None:
        self.link_id, self.link_address, self.link_options, self.link_error = 0, "", [], ""

    def _reset_import(self) -> None:
        self.import_rows, self.import_total, self.import_error_rows = [], 0, 0
        self.import_ready, self.import_error, self.import_filename = False, "", ""
        self._rows, self._import_association = [], 0

    def _refused(self, lang: str, e: ServiceError) -> None:
        if isinstance(e, Denied):
            self._clear()
        self.error = error_text(lang, e)

    async def _attempt(self, lang: str, fn, *args, on_error=None) -> tuple[bool, object]:
        """Run a service; on refusal or bad input show why (and forget everything on Denied)."""
        try:
            return True, await run_service(fn, *args)
        except ServiceError as e:
            (on_error or self._refused)(lang, e)
            return False, None

    async def _fetch(self, actor: Actor, lang: str, aid: int) -> None:
        ok, result = await self._attempt(lang, roster.roster_page, actor, aid, self.query, roster.PAGE_SIZE,
                                         (self.page - 1) * roster.PAGE_SIZE)
        if not ok:
            return
        self.allowed = True
        self.rows = [_row_view(r) for r in result.rows]
        self.total = result.total
        self.pages = (result.total + roster.PAGE_SIZE - 1) // roster.PAGE_SIZE

    # ------------------------------------------------------------------ viewing

    @rx.event
    async def load(self):
        ctx = await self._context()
        if ctx is None:
            self._clear()
            return rx.redirect(routes.LOGIN)
        actor, lang, aid = ctx
        self.error = self.notice = ""
        self.query, self.page = "", 1
        self._close_form()
        self._close_link()
        if not aid:
            self._clear()
            self.error = tr(lang, "error.denied")
            return
        await self._fetch(actor, lang, aid)
        if not self.allowed:
            return
        self.can_manage = bool(han_scope(actor, MANAGE_MEMBERS, aid))
        try:
            roster.export_scope(actor, aid)
            self.can_export = True
        except Denied:
            self.can_export = False
        self.han_options = ([[str(i), name] for i, name in await run_service(roster.han_choices, actor, aid)]
                            if self.can_manage else [])

    @rx.event
    async def search(self, form: dict):
        ctx = await self._context()
        if ctx is None:
            return rx.redirect(routes.LOGIN)
        query = form.get("query", "") if isinstance(form, dict) else None
        if not isinstance(query, str):
            self.error = tr(ctx[1], "error.invalid")
        elif len(query) > roster.MAX_QUERY:
            self.error = tr(ctx[1], "error.too_long", max=roster.MAX_QUERY)
        else:
            return await self._goto(1, query.strip(), ctx)

    async def _goto(self, page: int, query: str | None = None, ctx: tuple | None = None):
        ctx = ctx or await self._context()
        if ctx is None:
            return rx.redirect(routes.LOGIN)
        if query is not None:
            self.query, self.error = query, ""
        if query is not None or 1 <= page <= self.pages:
            self.page = page
            await self._fetch(*ctx)

    @rx.event
    async def clear_search(self):
        return await self._goto(1, "")

    @rx.event
    async def next_page(self):
        return await self._goto(self.page + 1)

    @rx.event
    async def prev_page(self):
        return await self._goto(self.page - 1)

    # ------------------------------------------------------------------ editing households

    @rx.event
    async def open_add(self):
        ctx = await self._context()
        if ctx is None:
            return rx.redirect(routes.LOGIN)
        actor, lang, aid = ctx
        if not han_scope(actor, MANAGE_MEMBERS, aid):
            self._refused(lang, Denied())
            return
        self._close_link()
        self.form_open, self.form_id, self.form_paper, self.form_errors = True, 0, True, {}
        self.form = {k: "" for k in _FORM_FIELDS}
        self.form_key += 1

    @rx.event
    async def open_edit(self, household_id: str):
        ctx = await self._context()
        if ctx is None:
            return rx.redirect(routes.LOGIN)
        actor, lang, _aid = ctx
        ok, d = await self._attempt(lang, roster.get_household, actor, household_id)
        if not ok:
            return
        self._close_link()
        self.form_open, self.form_id, self.form_paper, self.form_errors = True, d.household_id, d.paper_only, {}
        self.form = {"han_id": str(d.han_id or ""), "route_position": str(d.route_position), "address": d.address,
                     "head_name": d.head_name, "head_kana": d.head_kana, "phone": d.phone, "note": d.note,
                     "paper_copy": "on" if d.paper_copy else ""}
        self.form_key += 1

    @rx.event
    def close_form(self):
        self._close_form()

    @rx.event
    async def save(self, form: dict):
        ctx = await self._context()
        if ctx is None:
            return rx.redirect(routes.LOGIN)
        actor, lang, aid = ctx
        if not isinstance(form, dict):
            return
        data = {k: form.get(k) for k in _FORM_FIELDS}
        ok, _id = await self._attempt(lang, roster.save_household, actor, aid, data, self.form_id or None,
                                      on_error=self._form_refused)
        if ok:
            await self._changed(actor, lang, aid, "roster.saved")

    def _form_refused(self, lang: str, e: ServiceError) -> None:
        self.form_errors = field_errors(lang, e)
        if isinstance(e, Denied) or not self.form_errors:
            self._refused(lang, e)

    async def _changed(self, actor: Actor, lang: str, aid: int, notice_key: str, **params) -> None:
        """After a change: close the open forms, say what happened, show the page as it is now."""
        self._close_form()
        self._close_link()
        self.error = ""
        self.notice = tr(lang, notice_key, **params)
        await self._fetch(actor, lang, aid)

    async def _change(self, notice_key: str, fn, *args):
        ctx = await self._context()
        if ctx is None:
            return rx.redirect(routes.LOGIN)
        actor, lang, aid = ctx
        ok, _ = await self._attempt(lang, fn, actor, *args)
        if ok:
            await self._changed(actor, lang, aid, notice_key)

    @rx.event
    def ask_remove(self, household_id: str):
        # Only remembered here; remove() checks the id against the policy before anything changes.
        try:
            self.remove_id = validate.ident(household_id, "household_id")
        except ServiceError:
            self.remove_id = 0

    @rx.event
    def cancel_remove(self):
        self.remove_id = 0

    @rx.event
    async def remove(self):
        household_id, self.remove_id = self.remove_id, 0
        return await self._change("roster.removed", roster.remove_household, household_id)

    @rx.event
    async def move(self, household_id: str, direction: str):
        return await self._change("roster.moved", roster.move_household, household_id, direction)

    # ------------------------------------------------------------------ linking an account

    @rx.event
    async def open_link(self, household_id: str):
        ctx = await self._context()
        if ctx is None:
            return rx.redirect(routes.LOGIN)
        actor, lang, _aid = ctx
        ok, choice = await self._attempt(lang, roster.link_candidates, actor, household_id)
        if not ok:
            return
        self._close_form()
        self.link_id, self.link_address, self.link_error = choice.household_id, choice.address, ""
        self.link_options = [[str(o.membership_id), f"{o.name}({o.address})"] for o in choice.candidates]

    @rx.event
    def close_link(self):
        self._close_link()

    @rx.event
    async def link(self, form: dict):
        ctx = await self._context()
        if ctx is None:
            return rx.redirect(routes.LOGIN)
        actor, lang, aid = ctx
        membership_id = form.get("membership_id") if isinstance(form, dict) else None
        if not membership_id:
            self.link_error = tr(lang, "roster.link_choose")
            return
        ok, _ = await self._attempt(lang, roster.link_household, actor, self.link_id, membership_id,
                                    on_error=self._link_refused)
        if ok:
            await self._changed(actor, lang, aid, "roster.linked")

    def _link_refused(self, lang: str, e: ServiceError) -> None:
        self.link_error = error_text(lang, e)
        if isinstance(e, Denied):
            self._refused(lang, e)

    # ------------------------------------------------------------------ import

    @rx.event
    async def upload(self, files: list[rx.UploadFile]):
        """Read the file's bytes here (never stored on disk by us) and keep the checked rows backend-only."""
        ctx = await self._context()
        if ctx is None:
            return rx.redirect(routes.LOGIN)
        actor, lang, aid = ctx
        self._reset_import()
        files = uploaded_files(files)
        if len(files) != 1:
            self.import_error = tr(lang, "roster.import_no_file")
            return
        f = files[0]
        name = f.filename or ""
        if f.size is not None and f.size > tabular.MAX_BYTES:
            self.import_error = tr(lang, "tabular.error_too_big", max_mb=tabular.MAX_BYTES // (1024 * 1024))
            return
        data = await f.read(tabular.MAX_BYTES + 1)
        ok, preview = await self._attempt(lang, roster.preview_import, actor, aid, name, data,
                                          on_error=self._import_refused)
        if not ok:
            return
        self._rows, self._import_association = preview.raw(), aid
        self._show_preview(lang, preview, name)

    def _show_preview(self, lang: str, preview: roster.ImportPreview, name: str) -> None:
        bad = [r for r in preview.rows if r.errors][:roster.MAX_PREVIEW_ERRORS]
        sample = [r for r in preview.rows if not r.errors][:PREVIEW_OK_ROWS]
        self.import_rows = [
            {"line": str(r.line), "han": r.han, "address": r.address, "name": r.name, "kana": r.kana,
             "phone": r.phone, "errors": " / ".join(_import_error_text(lang, k, p) for k, p in r.errors)}
            for r in sorted(bad + sample, key=lambda r: r.line)
        ]
        self.import_total, self.import_error_rows = len(preview.rows), preview.error_rows
        self.import_ready = preview.ok
        self.import_filename = name[:100]
        self.import_error = "" if preview.ok else tr(lang, "roster.import_fix")

    @rx.event
    async def confirm_import(self):
        ctx = await self._context()
        if ctx is None:
            return rx.redirect(routes.LOGIN)
        actor, lang, aid = ctx
        if not self._rows or self._import_association != aid:
            self._reset_import()
            self.import_error = tr(lang, "roster.import_no_file")
            return
        ok, count = await self._attempt(lang, roster.confirm_import, actor, aid, self._rows,
                                        on_error=self._import_refused)
        if not ok:
            return
        self._reset_import()
        await self._changed(actor, lang, aid, "roster.import_done", count=count)
        return rx.clear_selected_files(UPLOAD_ID)

    def _import_refused(self, lang: str, e: ServiceError) -> None:
        if isinstance(e, Denied):
            self._refused(lang, e)
        else:
            self.import_ready = False
            self.import_error = error_text(lang, e)

    @rx.event
    def cancel_import(self):
        self._reset_import()
        return rx.clear_selected_files(UPLOAD_ID)

    # ------------------------------------------------------------------ export

    async def _export(self, fmt: str):
        ctx = await self._context()
        if ctx is None:
            return rx.redirect(routes.LOGIN)
        actor, lang, aid = ctx
        ok, result = await self._attempt(lang, roster.export_roster, actor, aid, fmt, lang)
        if not ok:
            return
        self.notice = tr(lang, "roster.export_done", count=result.count)
        return rx.download(data=result.data, filename=result.filename, mime_type=result.mime_type)

    @rx.event
    async def export_csv(self):
        return await self._export("csv")

    @rx.event
    async def export_xlsx(self):
        return await self._export("xlsx")


# ---------------------------------------------------------------------- components


def _search_bar() -> rx.Component:
    return rx.form(
        rx.hstack(
            rx.box(text_field("roster.search", "query", default_value=RosterState.query, max_length=100),
                   flex="1"),
            primary_button("roster.search_button", type="submit", id="roster-search-submit"),
            secondary_button("roster.clear", type="button", on_click=RosterState.clear_search),
            align="end",
            width="100%",
            wrap="wrap",
        ),
        on_submit=RosterState.search,
        width="100%",
        id="roster-search",
    )


def _small_button(key: str, **props) -> rx.Component:
    return button(t(key), size="3", variant="soft", style=BUTTON_STYLE, **props)


def _manage_buttons(r: rx.Var) -> rx.Component:
    return rx.hstack(
        _small_button("roster.edit", on_click=RosterState.open_edit(r["id"])),
        _small_button("roster.up", on_click=RosterState.move(r["id"], "up"), aria_label=t("roster.up")),
        _small_button("roster.down", on_click=RosterState.move(r["id"], "down"), aria_label=t("roster.down")),
        rx.cond(r["channel"] == "paper", _small_button("roster.link", on_click=RosterState.open_link(r["id"]))),
        rx.cond(r["channel"] == "paper",
                _small_button("roster.remove", color_scheme="red", on_click=RosterState.ask_remove(r["id"]))),
        wrap="wrap",
        spacing="2",
        margin_top="0.5em",
    )


def _labelled(key: str, value: rx.Var) -> rx.Component:
    return rx.cond(value != "", rx.text(rx.text.span(t(key), ": ", color=rx.color("gray", 11)), value, size="3"))


def _row_card(r: rx.Var) -> rx.Component:
    return card(
        rx.hstack(
            rx.badge(rx.cond(r["han"] != "", r["han"], t("roster.no_han")), size="2"),
            rx.text(rx.text.span(t("roster.col.position"), " "), r["position"], size="2",
                    color=rx.color("gray", 11)),
            rx.badge(rx.match(r["channel"], ("digital", t("roster.channel.digital")),
                              ("both", t("roster.channel.both")), t("roster.channel.paper")),
                     color_scheme=rx.match(r["channel"], ("digital", "green"), ("both", "blue"), "orange"), size="2"),
            spacing="3",
            align="center",
            wrap="wrap",
        ),
        rx.text(r["names"], size="5", weight="bold", margin_top="0.3em"),
        rx.text(r["kana"], size="2", color=rx.color("gray", 11)),
        rx.text(r["address"], size="3"),
        _labelled("roster.col.phone", r["phones"]),
        _labelled("roster.col.email", r["emails"]),
        rx.cond(RosterState.can_manage, _manage_buttons(r)),
        class_name="roster-row",
    )


def _household_form() -> rx.Component:
    f = RosterState.form
    err = RosterState.form_errors
    return card(
        rx.heading(rx.cond(RosterState.form_id > 0, t("roster.form_edit"), t("roster.form_add")), as_="h2",
                   size="5", margin_bottom="0.6em"),
        rx.form(
            select_field("roster.field.han", "han_id", RosterState.han_options, default_value=f["han_id"],
                         placeholder_key="roster.field.han_choose", error=err.get("han_id", ""), required=True),
            text_field("roster.field.position", "route_position", default_value=f["route_position"],
                       error=err.get("route_position", ""), input_mode="numeric", max_length=6),
            text_field("roster.field.address", "address", default_value=f["address"], error=err.get("address", ""),
                       required=True, max_length=200),
            rx.cond(
                RosterState.form_paper,
                rx.fragment(
                    text_field("roster.field.head_name", "head_name", default_value=f["head_name"],
                               error=err.get("head_name", ""), required=True, max_length=100),
                    text_field("roster.field.head_kana", "head_kana", default_value=f["head_kana"],
                               error=err.get("head_kana", ""), max_length=200),
                    text_field("roster.field.phone", "phone", default_value=f["phone"], error=err.get("phone", ""),
                               type_="tel", max_length=30),
                ),
            ),
            rx.cond(RosterState.form_paper, rx.fragment(),
                    checkbox_field("roster.field.paper_copy", "paper_copy", checked=f["paper_copy"] == "on")),
            text_area("roster.field.note", "note", default_value=f["note"], error=err.get("note", ""),
                      max_length=500, rows="3"),
            rx.hstack(
                secondary_button("common.cancel", type="button", on_click=RosterState.close_form),
                primary_button("roster.save", type="submit", flex="1", id="roster-form-submit"),
                width="100%",
            ),
            on_submit=RosterState.save,
            key=RosterState.form_key,
            width="100%",
            id="roster-household-form",
        ),
        class_name="reveal-on-show",  # opened from a row far down the list: brought into sight (assets/a11y.js)
    )


def _remove_confirm() -> rx.Component:
    return card(
        rx.text(t("roster.remove_confirm"), size="4", weight="bold"),
        rx.hstack(
            secondary_button("common.cancel", on_click=RosterState.cancel_remove),
            button(t("roster.remove"), color_scheme="red", size="3", style=BUTTON_STYLE,
                      on_click=RosterState.remove, id="roster-remove-confirm"),
            margin_top="0.6em",
        ),
        role="alertdialog",
    )


def _link_form() -> rx.Component:
    return card(
        rx.heading(t("roster.link"), as_="h2", size="5", margin_bottom="0.4em"),
        rx.text(RosterState.link_address, size="3", weight="bold"),
        rx.text(t("roster.link_help"), size="3", margin_bottom="0.6em"),
        rx.form(
            select_field("roster.link_member", "membership_id", RosterState.link_options,
                         placeholder_key="roster.link_choose", error=RosterState.link_error, required=True),
            rx.hstack(
                secondary_button("common.cancel", type="button", on_click=RosterState.close_link),
                primary_button("roster.link", type="submit", flex="1"),
                width="100%",
            ),
            on_submit=RosterState.link,
            width="100%",
        ),
        class_name="reveal-on-show",
    )


def _import_card() -> rx.Component:
    return card(
        rx.heading(t("roster.import"), as_="h2", size="5", margin_bottom="0.4em"),
        rx.text(t("roster.import_help"), size="3", margin_bottom="0.6em"),
        # The dropzone's file input cannot take a label of its own: a <label> around it names it (axe
        # "label") and opens the file chooser natively, so the dropzone's own click handler is off.
        rx.el.label(
            rx.upload(
                rx.vstack(
                    rx.text(t("roster.import_choose"), size="3", weight="medium", color=rx.color("accent", 11),
                            style={"border": "1px solid var(--accent-8)", "border_radius": "var(--radius-3)",
                                   "padding": "0.6em 1.1em", "min_height": "48px", "display": "flex",
                                   "align_items": "center"}),
                    rx.text(t("roster.import_selected"), " ", rx.selected_files(UPLOAD_ID).join(", "), size="3"),
                    align="start",
                ),
                id=UPLOAD_ID,
                accept={"text/csv": [".csv"], "application/vnd.ms-excel": [".csv"],
                        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": [".xlsx"]},
                max_files=1,
                multiple=False,
                no_click=True,
                max_size=tabular.MAX_BYTES,
                border="1px dashed var(--gray-8)",
                padding="1em",
                border_radius="var(--radius-3)",
            ),
            style={"display": "block", "cursor": "pointer"},
        ),
        primary_button("roster.import_preview", margin_top="0.6em", id="roster-import-preview",
                       on_click=RosterState.upload(rx.upload_files(upload_id=UPLOAD_ID))),
        error_banner(RosterState.import_error),
        rx.cond(RosterState.import_total > 0, _import_preview()),
    )


def _import_preview() -> rx.Component:
    def row(r: rx.Var) -> rx.Component:
        # Cells keep to one line; the table scrolls sideways on a phone instead of one letter per line.
        return rx.table.row(
            *[rx.table.cell(r[k], white_space="nowrap") for k in ("line", "han", "address", "name", "kana", "phone")],
            rx.table.cell(rx.cond(r["errors"] != "", rx.text(r["errors"], color=rx.color("red", 11)),
                                  t("roster.import_ok")), min_width="12em"),
        )

    headers = ["roster.import_row", "roster.col.han", "roster.col.address", "roster.col.name", "roster.col.kana",
               "roster.col.phone", "roster.import_errors"]
    return rx.box(
        rx.text(tf("roster.import_summary", rows=RosterState.import_total, errors=RosterState.import_error_rows),
                size="4", weight="bold", margin_y="0.6em"),
        rx.box(
            rx.table.root(
                rx.table.header(rx.table.row(*[rx.table.column_header_cell(t(h), white_space="nowrap") for h in headers])),
                rx.table.body(rx.foreach(RosterState.import_rows, row)),
                size="2",
            ),
            overflow_x="auto",
            width="100%",
        ),
        rx.hstack(
            secondary_button("roster.import_cancel", on_click=RosterState.cancel_import),
            rx.cond(RosterState.import_ready,
                    primary_button("roster.import_confirm", on_click=RosterState.confirm_import,
                                   id="roster-import-confirm")),
            margin_top="0.6em",
            wrap="wrap",
        ),
        id="roster-import-preview-table",
    )


def _export_card() -> rx.Component:
    return card(
        rx.heading(t("roster.export"), as_="h2", size="5", margin_bottom="0.4em"),
        rx.text(t("roster.export_help"), size="3", margin_bottom="0.6em"),
        rx.hstack(
            secondary_button("common.download_csv", on_click=RosterState.export_csv, id="roster-export-csv"),
            secondary_button("common.download_xlsx", on_click=RosterState.export_xlsx, id="roster-export-xlsx"),
            wrap="wrap",
        ),
    )


@template(route=routes.ROSTER, title_key="roster.title", on_load=[RosterState.load])
def roster_page() -> rx.Component:
    return rx.vstack(
        heading("roster.title", help_key="roster.intro"),
        message(RosterState.notice),
        error_banner(RosterState.error),
        rx.cond(
            RosterState.allowed,
            rx.vstack(
                _search_bar(),
                rx.text(tf("roster.total", total=RosterState.total), size="4", weight="bold", id="roster-total"),
                rx.cond(RosterState.can_manage,
                        rx.cond(~RosterState.form_open,
                                primary_button("roster.add", on_click=RosterState.open_add, id="roster-add"))),
                rx.cond(RosterState.form_open, _household_form()),
                rx.cond(RosterState.remove_id > 0, _remove_confirm()),
                rx.cond(RosterState.link_id > 0, _link_form()),
                rx.cond(
                    RosterState.rows.length() > 0,
                    rx.vstack(rx.foreach(RosterState.rows, _row_card), width="100%", id="roster-rows"),
                    rx.text(t("roster.none"), size="4"),
                ),
                pager(RosterState.page, RosterState.pages, RosterState.prev_page, RosterState.next_page),
                rx.cond(RosterState.can_manage, _import_card()),
                rx.cond(RosterState.can_export, _export_card()),
                width="100%",
                align="stretch",
            ),
        ),
        width="100%",
        align="stretch",
    )
