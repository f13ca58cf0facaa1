"""市民のこえ: residents and visitors write to a department; city staff manage departments and deliveries."""

from __future__ import annotations

import reflex as rx

from chiiki import routes
from chiiki.components.shell import register_nav, template
from chiiki.components.ui import (
    INPUT_STYLE,
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
from chiiki.i18n import fmt_dt, t, tf, tr
from chiiki.services import inquiries
from chiiki.services.errors import ServiceError
from chiiki.services.policy import CITY_ADMIN, can
from chiiki.state import current_actor, error_text, field_errors, run_service

CITY_INQUIRIES = "/city/inquiries"
PAGE_SIZE = 20
_FIELDS = ("department_id", "sender_name", "sender_contact", "subject", "body")

register_nav("nav.inquiry", routes.INQUIRY, "logged_in")
register_nav("inquiry.nav_admin", CITY_INQUIRIES, "is_city_staff")


def _pages(total: int) -> int:
    return max(1, -(-total // PAGE_SIZE))


def _receipt(lang: str, r: inquiries.Receipt) -> dict[str, str]:
    return {"reference": r.reference, "department": r.department, "created_at": fmt_dt(r.created_at, lang),
            "state": r.state, "state_label": tr(lang, "inquiry.state." + r.state),
            "delivered_at": fmt_dt(r.delivered_at, lang)}


class InquiryState(rx.State):
    """The sender's form and receipt; works without logging in (visitors give a name and contact)."""

    departments: list[list[str]] = []
    name_default: str = ""
    contact_default: str = ""
    errors: dict[str, str] = {}
    error: str = ""
    receipt: dict[str, str] = {}
    found: dict[str, str] = {}
    lookup_error: str = ""
    form_key: int = 0

    @rx.event
    async def load(self):
        actor, lang = await current_actor(self)
        self.errors, self.error, self.receipt, self.found, self.lookup_error = {}, "", {}, {}, ""
        self.departments = [[str(d.id), d.name] for d in await run_service(inquiries.departments_for_form, actor)]
        # A logged-in resident's own name and contact (their own data) prefill their own form.
        self.name_default, self.contact_default = await run_service(inquiries.sender_defaults, actor)

    @rx.event
    async def submit(self, form: dict):
        actor, lang = await current_actor(self)
        if not isinstance(form, dict) or self.receipt:
            return  # a second tap queued before the form gave way to the receipt: sent once
        try:
            r = await run_service(inquiries.submit, actor, {k: form.get(k) for k in _FIELDS},
                                  client=self.router.session.client_ip)
        except ServiceError as e:
            self.errors = field_errors(lang, e)
            self.error = "" if self.errors else error_text(lang, e)
            return
        self.errors, self.error = {}, ""
        self.receipt = _receipt(lang, r)
        self.form_key += 1

    @rx.event
    def write_another(self):
        self.receipt = {}

    @rx.event
    async def lookup(self, form: dict):
        actor, lang = await current_actor(self)
        if not isinstance(form, dict):
            return
        try:
            self.found = _receipt(lang, await run_service(inquiries.lookup, actor, form.get("reference")))
            self.lookup_error = ""
        except ServiceError as e:
            self.found = {}
            self.lookup_error = error_text(lang, e)


def _err(name: str) -> rx.Var:
    return InquiryState.errors.get(name, "")


def receipt_view(r: rx.Var, box_id: str) -> rx.Component:
    return rx.box(
        rx.text(t("inquiry.reference"), size="3", color=rx.color("gray", 11)),
        rx.text(r["reference"], size="7", weight="bold", id=box_id + "-reference",
                style={"letter_spacing": "0.08em", "font_family": "monospace"}),
        rx.text(t("inquiry.department"), ": ", r["department"], size="4"),
        rx.text(t("inquiry.received_at"), ": ", r["created_at"], size="4"),
        rx.text(t("inquiry.state"), ": ", r["state_label"], size="4", weight="bold", id=box_id + "-state"),
        id=box_id,
    )


def _form() -> rx.Component:
    return rx.form(
        select_field("inquiry.field.department", "department_id", InquiryState.departments,
                     placeholder_key="inquiry.choose_department", error=_err("department_id"), required=True),
        text_field("inquiry.field.name", "sender_name", default_value=InquiryState.name_default,
                   error=_err("sender_name"), required=True, max_length=inquiries.NAME_MAX, autocomplete="name"),
        text_field("inquiry.field.contact", "sender_contact", default_value=InquiryState.contact_default,
                   error=_err("sender_contact"), required=True, help_key="inquiry.contact_help",
                   max_length=inquiries.CONTACT_MAX),
        text_field("inquiry.field.subject", "subject", error=_err("subject"), required=True,
                   max_length=inquiries.SUBJECT_MAX),
        text_area("inquiry.field.body", "body", error=_err("body"), required=True, max_length=inquiries.BODY_MAX,
                  rows="8"),
        rx.text(t("inquiry.privacy"), size="3", margin_bottom="1em"),
        primary_button("inquiry.send", type="submit", id="inquiry-submit"),
        on_submit=InquiryState.submit,
        reset_on_submit=False,
        key=InquiryState.form_key.to_string(),
        width="100%",
        id="inquiry-form",
    )


@template(route=routes.INQUIRY, title_key="nav.inquiry", on_load=[InquiryState.load])
def inquiry_page() -> rx.Component:
    return rx.vstack(
        heading("nav.inquiry"),
        rx.text(t("inquiry.intro"), size="4"),
        error_banner(InquiryState.error),
        card(
            rx.cond(
                InquiryState.receipt.contains("reference"),
                rx.box(
                    rx.callout(rx.cond(InquiryState.receipt["state"] == "delivered", t("inquiry.sent"),
                                       t("inquiry.queued")),
                               color_scheme=rx.cond(InquiryState.receipt["state"] == "delivered", "green", "amber"),
                               size="2", role="status", margin_bottom="1em"),
                    receipt_view(InquiryState.receipt, "inquiry-receipt"),
                    rx.text(t("inquiry.keep_reference"), size="3", margin_y="0.8em"),
                    secondary_button("inquiry.write_another", on_click=InquiryState.write_another),
                ),
                _form(),
            ),
        ),
        card(
            rx.heading(t("inquiry.lookup"), as_="h2", size="5", margin_bottom="0.6em"),
            rx.form(
                text_field("inquiry.reference", "reference", error=InquiryState.lookup_error, required=True,
                           max_length=20),
                primary_button("inquiry.lookup_submit", type="submit", id="inquiry-lookup"),
                on_submit=InquiryState.lookup,
            ),
            rx.cond(InquiryState.found.contains("reference"), receipt_view(InquiryState.found, "inquiry-found")),
        ),
        width="100%",
        align="stretch",
    )


# --------------------------------------------------------------------------- city staff


class InquiryAdminState(rx.State):
    """City staff: departments, retention, undelivered inquiries (retry, move) and receipts — never content."""

    departments: list[dict[str, str]] = []
    department_options: list[list[str]] = []
    editing: str = ""  # department id being edited, "new", or ""
    dept_errors: dict[str, str] = {}
    retention: str = ""
    retention_error: str = ""
    undelivered: list[dict[str, str]] = []
    undelivered_total: int = 0
    undelivered_page: int = 1
    receipts: list[dict[str, str]] = []
    receipts_total: int = 0
    receipts_page: int = 1
    notice: str = ""
    error: str = ""

    async def _staff(self):
        actor, lang = await current_actor(self)
        if not actor.authenticated:
            return None, lang, rx.redirect(routes.LOGIN)
        if not can(actor, CITY_ADMIN):
            self.departments, self.department_options, self.undelivered, self.receipts = [], [], [], []
            self.undelivered_total = self.receipts_total = 0
            self.error = tr(lang, "error.denied")
            return None, lang, None
        return actor, lang, None

    @rx.event
    async def load(self):
        actor, lang, redirect = await self._staff()
        if actor is None:
            return redirect
        self.notice, self.error, self.editing, self.dept_errors, self.retention_error = "", "", "", {}, ""
        self.undelivered_page = self.receipts_page = 1
        await self._refresh(actor, lang)

    async def _refresh(self, actor, lang: str) -> None:
        depts = await run_service(inquiries.departments_admin, actor)
        self.departments = [{"id": str(d.id), "name": d.name, "email": d.email, "active": "1" if d.active else ""}
                            for d in depts]
        self.department_options = [[str(d.id), d.name] for d in depts if d.active]
        self.retention = str(await run_service(inquiries.retention_days, actor))
        await self._lists(actor, lang)

    async def _lists(self, actor, lang: str) -> None:
        def row(i: inquiries.StaffItem) -> dict[str, str]:
            return {"id": str(i.id), "reference": i.reference, "department": i.department,
                    "department_id": str(i.department_id), "created_at": fmt_dt(i.created_at, lang),
                    "state": i.state, "state_label": tr(lang, "inquiry.state." + i.state),
                    "attempts": str(i.attempts), "last_error": i.last_error,
                    "next_attempt_at": fmt_dt(i.next_attempt_at, lang), "delivered_at": fmt_dt(i.delivered_at, lang)}

        items, self.undelivered_total = await run_service(inquiries.staff_list, actor, True, PAGE_SIZE,
                                                          (self.undelivered_page - 1) * PAGE_SIZE)
        self.undelivered = [row(i) for i in items]
        items, self.receipts_total = await run_service(inquiries.staff_list, actor, False, PAGE_SIZE,
                                                       (self.receipts_page - 1) * PAGE_SIZE)
        self.receipts = [row(i) for i in items]

    @rx.event
    def edit_department(self, department_id: str):
        self.editing = str(department_id) if str(department_id) in {d["id"] for d in self.departments} else "new"
        self.dept_errors = {}

    @rx.event
    def cancel_edit(self):
        self.editing, self.dept_errors = "", {}

    @rx.event
    async def save_department(self, form: dict):
        actor, lang, redirect = await self._staff()
        if actor is None:
            return redirect
        if not isinstance(form, dict):
            return
        target = "" if self.editing == "new" else self.editing
        try:
            await run_service(inquiries.save_department, actor, target,
                              {k: form.get(k) for k in ("name", "email", "active")})
        except ServiceError as e:
            self.dept_errors = field_errors(lang, e) or {"name": error_text(lang, e)}
            return
        self.editing, self.dept_errors, self.notice = "", {}, tr(lang, "common.saved")
        await self._refresh(actor, lang)

    @rx.event
    async def save_retention(self, form: dict):
        actor, lang, redirect = await self._staff()
        if actor is None:
            return redirect
        if not isinstance(form, dict):
            return
        try:
            self.retention = str(await run_service(inquiries.set_retention_days, actor, form.get("retention_days")))
        except ServiceError as e:
            self.retention_error = error_text(lang, e)
            return
        self.retention_error, self.notice = "", tr(lang, "common.saved")

    @rx.event
    async def retry(self, inquiry_id: str):
        actor, lang, redirect = await self._staff()
        if actor is None:
            return redirect
        try:
            ok = await run_service(inquiries.retry_now, actor, inquiry_id)
        except ServiceError as e:
            self.error = error_text(lang, e)
            return
        self.error = "" if ok else tr(lang, "inquiry.retry_failed")
        self.notice = tr(lang, "inquiry.retry_ok") if ok else ""
        await self._lists(actor, lang)

    @rx.event
    async def reroute(self, form: dict):
        actor, lang, redirect = await self._staff()
        if actor is None:
            return redirect
        if not isinstance(form, dict):
            return
        try:
            await run_service(inquiries.reroute, actor, form.get("inquiry_id"), form.get("department_id"))
        except ServiceError as e:
            self.error = error_text(lang, e)
            return
        self.error, self.notice = "", tr(lang, "inquiry.rerouted")
        await self._lists(actor, lang)

    async def _turn(self, which: str, step: int):
        actor, lang, redirect = await self._staff()
        if actor is None:
            return redirect
        page, total = (self.undelivered_page, self.undelivered_total) if which == "u" else (
            self.receipts_page, self.receipts_total)
        new = page + step
        if 1 <= new <= _pages(total):
            if which == "u":
                self.undelivered_page = new
            else:
                self.receipts_page = new
            await self._lists(actor, lang)

    @rx.event
    async def undelivered_next(self):
        return await self._turn("u", 1)

    @rx.event
    async def undelivered_prev(self):
        return await self._turn("u", -1)

    @rx.event
    async def receipts_next(self):
        return await self._turn("r", 1)

    @rx.event
    async def receipts_prev(self):
        return await self._turn("r", -1)

    @rx.var
    def undelivered_pages(self) -> int:
        return _pages(self.undelivered_total)

    @rx.var
    def receipts_pages(self) -> int:
        return _pages(self.receipts_total)


def _department_form(d: rx.Var | None) -> rx.Component:
    errs = InquiryAdminState.dept_errors
    return rx.form(
        text_field("inquiry.dept.name", "name", default_value=d["name"] if d is not None else "",
                   error=errs.get("name", ""), required=True, max_length=100, field_id="f-dept-name"),
        text_field("inquiry.dept.email", "email", default_value=d["email"] if d is not None else "", type_="email",
                   error=errs.get("email", ""), required=True, max_length=254, field_id="f-dept-email"),
        checkbox_field("inquiry.dept.active", "active", checked=(d["active"] != "") if d is not None else True,
                       field_id="f-dept-active"),
        rx.hstack(secondary_button("common.cancel", type="button", on_click=InquiryAdminState.cancel_edit),
                  primary_button("mypage.save", type="submit", id="dept-save"), spacing="3"),
        on_submit=InquiryAdminState.save_department,
        width="100%",
    )


def _department_row(d: rx.Var) -> rx.Component:
    return rx.box(
        rx.cond(
            InquiryAdminState.editing == d["id"],
            _department_form(d),
            rx.hstack(
                rx.vstack(
                    rx.text(d["name"], size="4", weight="bold"),
                    rx.text(d["email"], size="3"),
                    rx.cond(d["active"] == "", rx.badge(t("inquiry.dept.inactive"), color_scheme="gray")),
                    spacing="1",
                ),
                rx.spacer(),
                secondary_button("common.edit", on_click=InquiryAdminState.edit_department(d["id"])),
                width="100%", align="center",
            ),
        ),
        padding_y="0.6em",
        border_bottom="1px solid var(--gray-5)",
    )


def _move_select(r: rx.Var) -> rx.Component:
    """A native select with a per-row id (ui.select_field takes a fixed id)."""
    fid = "f-move-" + r["id"]
    return rx.box(
        rx.el.label(t("inquiry.move_to"), html_for=fid,
                    style={"font_weight": "600", "display": "block", "font_size": "var(--font-size-3)"}),
        rx.el.select(
            rx.foreach(InquiryAdminState.department_options, lambda o: rx.el.option(o[1], value=o[0])),
            id=fid, name="department_id", default_value=r["department_id"],
            style={**INPUT_STYLE, "padding": "0 0.6em", "border_radius": "var(--radius-3)",
                   "border": "1px solid var(--gray-8)", "background": "var(--color-surface)",
                   "color": "var(--gray-12)"},
        ),
    )


def _undelivered_row(r: rx.Var) -> rx.Component:
    return card(
        rx.hstack(rx.badge(r["state_label"], color_scheme="amber", size="3"),
                  rx.text(r["reference"], size="3", style={"font_family": "monospace"}), spacing="2", wrap="wrap"),
        rx.text(t("inquiry.department"), ": ", r["department"], size="3"),
        rx.text(t("inquiry.received_at"), ": ", r["created_at"], size="3"),
        rx.text(tf("inquiry.attempts", n=r["attempts"]), size="3"),
        rx.cond(r["last_error"] != "", rx.text(t("inquiry.last_error"), ": ", r["last_error"], size="2",
                                              color=rx.color("red", 11))),
        rx.cond(r["next_attempt_at"] != "", rx.text(t("inquiry.next_attempt"), ": ", r["next_attempt_at"], size="3")),
        rx.hstack(
            primary_button("inquiry.retry", on_click=InquiryAdminState.retry(r["id"]), id="retry-" + r["id"]),
            rx.form(
                rx.el.input(type="hidden", name="inquiry_id", value=r["id"]),
                _move_select(r),
                secondary_button("inquiry.move", type="submit"),
                on_submit=InquiryAdminState.reroute,
            ),
            spacing="3", wrap="wrap", align="end", margin_top="0.5em",
        ),
    )


def _receipt_row(r: rx.Var) -> rx.Component:
    return rx.hstack(
        rx.text(r["reference"], size="3", style={"font_family": "monospace"}),
        rx.text(r["department"], size="3"),
        rx.text(r["created_at"], size="3"),
        rx.badge(r["state_label"], color_scheme="green"),
        spacing="3", wrap="wrap", padding_y="0.4em", border_bottom="1px solid var(--gray-5)", width="100%",
    )


@template(route=CITY_INQUIRIES, title_key="inquiry.nav_admin", on_load=[InquiryAdminState.load])
def inquiry_admin_page() -> rx.Component:
    s = InquiryAdminState
    return rx.vstack(
        heading("inquiry.nav_admin", help_key="help.inquiry_admin"),
        message(s.notice),
        error_banner(s.error),
        card(
            rx.heading(t("inquiry.undelivered"), as_="h2", size="5"),
            rx.text(t("inquiry.undelivered_help"), size="3", margin_bottom="0.6em"),
            rx.cond(s.undelivered.length() > 0, rx.foreach(s.undelivered, _undelivered_row),
                    rx.text(t("inquiry.none_undelivered"), size="4", id="undelivered-empty")),
            rx.cond(s.undelivered_pages > 1,
                    pager(s.undelivered_page, s.undelivered_pages, s.undelivered_prev, s.undelivered_next)),
            id="undelivered",
        ),
        card(
            rx.heading(t("inquiry.departments"), as_="h2", size="5"),
            rx.foreach(s.departments, _department_row),
            rx.cond(s.editing == "new", _department_form(None),
                    primary_button("inquiry.dept.new", on_click=s.edit_department("new"), margin_top="0.8em")),
        ),
        card(
            rx.heading(t("inquiry.retention"), as_="h2", size="5"),
            rx.text(t("inquiry.retention_help"), size="3", margin_bottom="0.6em"),
            rx.form(
                text_field("inquiry.retention_days", "retention_days", default_value=s.retention,
                           error=s.retention_error, input_mode="numeric", max_length=4, required=True),
                primary_button("mypage.save", type="submit", id="retention-save"),
                on_submit=s.save_retention,
                key=s.retention,
            ),
        ),
        card(
            rx.heading(t("inquiry.receipts"), as_="h2", size="5"),
            rx.cond(s.receipts.length() > 0, rx.foreach(s.receipts, _receipt_row),
                    rx.text(t("inquiry.none_receipts"), size="4")),
            rx.cond(s.receipts_pages > 1, pager(s.receipts_page, s.receipts_pages, s.receipts_prev, s.receipts_next)),
        ),
        width="100%",
        align="stretch",
    )
