"""Officer roles for managers: grant, change, revoke and hand over, with validity periods."""

from __future__ import annotations

from datetime import datetime

import reflex as rx

from chiiki import routes
from chiiki.components.shell import register_nav, template
from chiiki.components.ui import (
    button,
    card,
    checkbox_field,
    error_banner,
    heading,
    message,
    primary_button,
    secondary_button,
    select_field,
    text_field,
)
from chiiki.i18n import TZ, fmt_date, fmt_dt, t, tr
from chiiki.pages.association import actor_or_none, as_id, attempt, checked, my_association
from chiiki.services import officers, roster
from chiiki.services.policy import OFFICER_PERMISSIONS, Actor
from chiiki.state import run_service

register_nav("nav.officers", routes.OFFICERS, "can_manage_members")
OTHER = "__other__"


def _local(dt) -> str:
    """An aware UTC datetime as the city's local YYYY-MM-DD, for date inputs."""
    return dt.astimezone(TZ).strftime("%Y-%m-%d") if dt is not None else ""


def until_text(until, lang: str) -> str:
    """An end (a role's, a notice's) as a list shows it: as shown_end reads it (the last day for an end at midnight,
    「2027年3月31日」 as a term is written and its end date typed; any other end as its moment)."""
    if until is None:
        return ""
    end = officers.shown_end(until)
    return fmt_dt(end, lang) if isinstance(end, datetime) else fmt_date(end, lang)


def role_form_data(form: dict) -> dict:
    title = form.get("title_preset", "")
    if title == OTHER or not title:
        title = form.get("title_other", "")
    return {
        "title": title,
        "permissions": [p for p in OFFICER_PERMISSIONS if checked(form, "perm_" + p)],
        "han_id": form.get("han_id", ""),
        "valid_from": form.get("valid_from", ""),
        "valid_until": form.get("valid_until", ""),
        "membership_id": form.get("membership_id", ""),
    }


async def pick_members(state: rx.State, actor: Actor, lang: str, form: dict) -> None:
    """Fill state.member_options from a member search form (shared by the officers and members pages)."""
    ok, opts, state.error, state.errors = await attempt(state, lang, officers.member_options, actor,
                                                        my_association(actor), form.get("member_query", ""))
    state.member_options = [[str(o.membership_id), o.label] for o in opts] if ok else []


class OfficersState(rx.State):
    # Roles show titles and holders' display names only; the picker shows full names only to viewers (audited).
    roles: list[dict[str, str]] = []
    show_ended: bool = False
    member_options: list[list[str]] = []
    han_options: list[list[str]] = []
    title_options: list[list[str]] = []
    mode: str = ""  # "" | grant | edit | handover
    role_id: int = 0
    edit: dict[str, str] = {}
    edit_perms: dict[str, bool] = {}
    errors: dict[str, str] = {}
    error: str = ""
    notice: str = ""
    allowed: bool = False
    _role_ids: list[int] = []

    def _clear(self) -> None:
        self.roles, self.member_options, self.han_options, self._role_ids = [], [], [], []
        self.mode, self.role_id, self.edit, self.edit_perms = "", 0, {}, {}
        self.errors, self.error, self.allowed = {}, "", False

    async def _refresh(self, actor: Actor, lang: str) -> None:
        ok, rows, self.error, _ = await attempt(self, lang, officers.list_roles, actor, my_association(actor),
                                                include_ended=self.show_ended)
        self.allowed = ok
        if not ok:
            self.roles, self._role_ids = [], []
            return
        self._role_ids = [r.id for r in rows]
        self.roles = [{
            "id": str(r.id), "holder": r.holder, "title": r.title, "title_label": officers.title_label(r.title, lang),
            "han": r.han_name, "state": r.state,
            "perms": tr(lang, "officer.perm_sep").join(tr(lang, "officer.perm." + p) for p in r.permissions),
            "from": fmt_dt(r.valid_from, lang), "until": until_text(r.valid_until, lang),
            "han_id": str(r.han_id or ""), "from_date": _local(r.valid_from),
            "until_date": officers.end_day(r.valid_until).isoformat() if r.valid_until else "",
            "perm_keys": " ".join(r.permissions),
        } for r in rows]

    @rx.event
    async def load(self):
        actor, lang = await actor_or_none(self)
        self._clear()
        self.notice = ""
        if actor is None:
            return rx.redirect(routes.LOGIN)
        await self._refresh(actor, lang)
        if self.allowed:
            self.title_options = ([[x, officers.title_label(x, lang)] for x in officers.PRESET_TITLES]
                                  + [[OTHER, tr(lang, "officer.other_title")]])
            # The han the officer may give roles in (manage_members' scope, as grant_role checks), names only.
            self.han_options = [[str(i), n] for i, n in await run_service(roster.han_choices, actor,
                                                                           my_association(actor))]

    @rx.event
    async def toggle_ended(self):
        actor, lang = await actor_or_none(self)
        if actor is None:
            return rx.redirect(routes.LOGIN)
        self.show_ended = not self.show_ended
        await self._refresh(actor, lang)

    @rx.event
    async def find_members(self, form: dict):
        actor, lang = await actor_or_none(self)
        if actor is None:
            return rx.redirect(routes.LOGIN)
        if not isinstance(form, dict):
            return
        await pick_members(self, actor, lang, form)

    @rx.event
    def start(self, mode: str, role_id: str = ""):
        if not self.allowed or mode not in ("grant", "edit", "handover", ""):
            return
        rid = as_id(role_id)
        if mode in ("edit", "handover") and rid not in self._role_ids:
            return
        self.mode, self.role_id, self.errors, self.error = mode, rid, {}, ""
        self.member_options = []
        row = next((r for r in self.roles if r["id"] == str(rid)), None)
        self.edit = dict(row) if row else {}
        self.edit_perms = {p: p in row["perm_keys"].split() for p in OFFICER_PERMISSIONS} if row else {}
        if row is not None:
            self.edit["preset"] = row["title"] if row["title"] in officers.PRESET_TITLES else OTHER

    async def _done(self, actor: Actor, lang: str, key: str) -> None:
        self.mode, self.role_id, self.member_options, self.errors = "", 0, [], {}
        self.notice = tr(lang, key)
        await self._refresh(actor, lang)

    @rx.event
    async def grant(self, form: dict):
        actor, lang = await actor_or_none(self)
        if actor is None:
            return rx.redirect(routes.LOGIN)
        if not isinstance(form, dict):
            return
        ok, _r, self.error, self.errors = await attempt(self, lang, officers.grant_role, actor,
                                                        my_association(actor), role_form_data(form))
        if ok:
            await self._done(actor, lang, "officer.granted")

    @rx.event
    async def change(self, form: dict):
        actor, lang = await actor_or_none(self)
        if actor is None:
            return rx.redirect(routes.LOGIN)
        if not isinstance(form, dict) or self.role_id not in self._role_ids:
            return
        data = role_form_data(form)
        data.pop("membership_id")
        ok, _r, self.error, self.errors = await attempt(self, lang, officers.change_role, actor, self.role_id, data)
        if ok:
            await self._done(actor, lang, "officer.changed")

    @rx.event
    async def revoke(self, role_id: str):
        actor, lang = await actor_or_none(self)
        if actor is None:
            return rx.redirect(routes.LOGIN)
        ok, _r, self.error, _ = await attempt(self, lang, officers.revoke_role, actor, as_id(role_id))
        if ok:
            await self._done(actor, lang, "officer.revoked")

    @rx.event
    async def handover(self, form: dict):
        actor, lang = await actor_or_none(self)
        if actor is None:
            return rx.redirect(routes.LOGIN)
        if not isinstance(form, dict) or self.role_id not in self._role_ids:
            return
        ok, _r, self.error, self.errors = await attempt(
            self, lang, officers.handover_role, actor, self.role_id, form.get("to_membership_id", ""),
            form.get("handover_day", ""), form.get("handover_time", ""))
        if ok:
            await self._done(actor, lang, "officer.handed_over")


def _err(name: str) -> rx.Var:
    return OfficersState.errors.get(name, "")


def _role(r: rx.Var) -> rx.Component:
    return card(
        rx.hstack(
            rx.text(r["title_label"], size="5", weight="bold"),
            rx.text(r["holder"], size="4"),
            rx.cond(r["han"] != "", rx.badge(r["han"], size="2")),
            rx.badge(rx.match(r["state"], ("current", t("officer.state_current")),
                              ("future", t("officer.state_future")), t("officer.state_ended")), size="2",
                     color_scheme=rx.match(r["state"], ("current", "green"), ("future", "blue"), "gray")),
            align="center", spacing="3", wrap="wrap",
        ),
        rx.text(r["perms"], size="3"),
        rx.text(r["from"], " 〜 ", r["until"], size="3", color=rx.color("gray", 11)),
        rx.cond(
            r["state"] != "ended",
            rx.hstack(
                secondary_button("common.edit", on_click=OfficersState.start("edit", r["id"])),
                secondary_button("officer.handover", on_click=OfficersState.start("handover", r["id"])),
                button(t("officer.revoke"), on_click=OfficersState.revoke(r["id"]), color_scheme="red",
                          variant="outline", size="3", style={"min_height": "48px"}),
                spacing="3", wrap="wrap", margin_top="0.5em",
            ),
        ),
    )


def _member_picker(name: str) -> rx.Component:
    return rx.box(
        rx.form(
            text_field("officer.member_query", "member_query", max_length=100, help_key="officer.member_query_help"),
            secondary_button("common.search", type="submit", id=f"find-{name}"),
            on_submit=OfficersState.find_members,
        ),
        rx.cond(OfficersState.member_options.length() > 0,
                rx.text(t("officer.pick_below"), size="3", margin_top="0.5em")),
        margin_bottom="1em",
    )


def _permission_boxes(edit: bool) -> rx.Component:
    return rx.el.fieldset(
        rx.el.legend(t("officer.permissions"), style={"font_weight": "600", "font_size": "var(--font-size-3)"}),
        *[checkbox_field("officer.perm." + p, "perm_" + p, checked=OfficersState.edit_perms.get(p, False) if edit else False)
          for p in OFFICER_PERMISSIONS],
        rx.cond(_err("permissions") != "", rx.text(_err("permissions"), color=rx.color("red", 11), role="alert")),
        style={"border": "none", "padding": "0", "margin_bottom": "1em"},
    )


def _role_fields(edit: bool) -> list[rx.Component]:
    e = OfficersState.edit
    return [
        select_field("officer.title_preset", "title_preset", OfficersState.title_options,
                     default_value=e.get("preset", "") if edit else officers.PRESET_TITLES[0], error=_err("title")),
        text_field("officer.title_other", "title_other", default_value=e.get("title", "") if edit else "",
                   max_length=50),
        _permission_boxes(edit),
        select_field("officer.han", "han_id", OfficersState.han_options, placeholder_key="officer.whole",
                     default_value=e.get("han_id", "") if edit else "", error=_err("han_id")),
        text_field("officer.valid_from", "valid_from", type_="date", error=_err("valid_from"),
                   default_value=e.get("from_date", "") if edit else ""),
        text_field("officer.valid_until", "valid_until", type_="date", error=_err("valid_until"),
                   default_value=e.get("until_date", "") if edit else ""),
    ]


def _grant_form() -> rx.Component:
    return card(
        rx.heading(t("officer.grant"), as_="h2", size="5", margin_bottom="0.6em"),
        _member_picker("grant"),
        rx.form(
            select_field("officer.holder", "membership_id", OfficersState.member_options,
                         error=_err("membership_id"), placeholder_key="officer.pick"),
            *_role_fields(False),
            rx.hstack(secondary_button("common.cancel", type="button", on_click=OfficersState.start("", "")),
                      primary_button("officer.grant", type="submit", id="grant-submit"), spacing="3"),
            on_submit=OfficersState.grant,
        ),
        id="grant-form",
    )


def _edit_form() -> rx.Component:
    return card(
        rx.heading(t("officer.edit"), " — ", OfficersState.edit.get("holder", ""), as_="h2", size="5",
                   margin_bottom="0.6em"),
        rx.form(
            *_role_fields(True),
            rx.hstack(secondary_button("common.cancel", type="button", on_click=OfficersState.start("", "")),
                      primary_button("mypage.save", type="submit", id="change-submit"), spacing="3"),
            on_submit=OfficersState.change,
            key=OfficersState.role_id,
        ),
    )


def _handover_form() -> rx.Component:
    return card(
        rx.heading(t("officer.handover"), " — ", OfficersState.edit.get("title_label", ""), " ",
                   OfficersState.edit.get("holder", ""), as_="h2", size="5", margin_bottom="0.6em"),
        rx.text(t("officer.handover_help"), size="3", margin_bottom="0.6em"),
        _member_picker("handover"),
        rx.form(
            select_field("officer.new_holder", "to_membership_id", OfficersState.member_options,
                         error=_err("to_membership_id"), placeholder_key="officer.pick"),
            text_field("officer.handover_day", "handover_day", type_="date", error=_err("handover_at"),
                       required=True),
            text_field("officer.handover_time", "handover_time", type_="time"),
            rx.hstack(secondary_button("common.cancel", type="button", on_click=OfficersState.start("", "")),
                      primary_button("officer.handover", type="submit", id="handover-submit"), spacing="3"),
            on_submit=OfficersState.handover,
        ),
    )


@template(route=routes.OFFICERS, title_key="officer.title", on_load=[OfficersState.load])
def officers_page() -> rx.Component:
    return rx.vstack(
        heading("officer.title", help_key="help.officers"),
        message(OfficersState.notice),
        error_banner(OfficersState.error),
        rx.cond(
            OfficersState.allowed,
            rx.vstack(
                rx.match(
                    OfficersState.mode,
                    ("grant", _grant_form()),
                    ("edit", _edit_form()),
                    ("handover", _handover_form()),
                    primary_button("officer.grant", on_click=OfficersState.start("grant", ""), id="grant-open"),
                ),
                rx.foreach(OfficersState.roles, _role),
                secondary_button("officer.toggle_ended", on_click=OfficersState.toggle_ended),
                width="100%", align="stretch",
            ),
        ),
        width="100%", align="stretch",
    )
