"""My page: my details, password, my data download, account deletion, and who accessed my data."""

from __future__ import annotations

import json
from dataclasses import asdict

import reflex as rx

from chiiki import routes
from chiiki.components.shell import template
from chiiki.components.ui import (
    button,
    card,
    checkbox_field,
    error_banner,
    heading,
    link_button,
    message,
    more_pager,
    primary_button,
    secondary_button,
    select_field,
    text_field,
)
from chiiki.i18n import STRINGS, fmt_dt, t, tr
from chiiki.services import accounts, officers
from chiiki.services.errors import ServiceError
from chiiki.state import (
    AuthState,
    current_actor,
    error_keys,
    refresh_nav,
    reset_user_states,
    run_read,
    run_service,
    shown_errors,
)

_PROFILE_FIELDS = ("name", "kana", "display_name", "address", "area_id", "birth_year", "email", "phone")
_FLAGS = ("has_small_children", "email_circulars", "email_notices")


class MyPageState(rx.State):
    # The logged-in person's own details only (privacy rule 1: the viewer is that person).
    profile: dict[str, str] = {}
    flags: dict[str, bool] = {}
    area_options: list[list[str]] = []
    _areas_key: str = ""  # which areas area_options holds (accounts.area_options)
    editing: bool = False
    errors: dict[str, str] = {}
    error: str = ""
    notice: str = ""
    password_errors: dict[str, str] = {}
    password_notice: str = ""
    delete_errors: dict[str, str] = {}
    delete_error: str = ""
    sessions_notice: str = ""
    _ended: int = 0  # how many other devices the last click logged out (its notice, after a language switch)
    # What the messages shown were made from, by form ("profile", "password", "delete": chiiki.state.error_keys)
    # and notice ("notice", "password_notice": a message key), for a language switch.
    _shown: dict[str, list] = {}
    _notices: dict[str, str] = {}

    def _show(self, lang: str, form: str, keys: list) -> None:
        self._shown = {**self._shown, form: keys}
        fields, whole = shown_errors(lang, keys)
        if form == "profile":
            self.errors, self.error = fields, whole
        elif form == "password":
            self.password_errors = fields or ({"old_password": whole} if whole else {})
        else:  # the deletion form's only field is its password
            self.delete_errors = {"delete_password": fields["password"]} if "password" in fields else {}
            self.delete_error = "" if self.delete_errors else whole

    def _note(self, lang: str, which: str, key: str) -> None:
        self._notices = {**self._notices, which: key}
        setattr(self, which, tr(lang, key, n=self._ended) if key else "")

    def _retranslate(self, lang: str) -> None:
        for form, keys in self._shown.items():
            self._show(lang, form, keys)
        for which, key in self._notices.items():
            self._note(lang, which, key)

    def _clear_messages(self) -> None:
        for form in ("profile", "password", "delete"):
            self._show("", form, [])
        for which in ("notice", "password_notice", "sessions_notice"):
            self._note("", which, "")

    @rx.event
    async def load(self):
        actor, _lang = await current_actor(self)
        if not actor.authenticated:
            return rx.redirect(routes.LOGIN)
        self.editing = False
        self._clear_messages()
        # One trip for both: the areas are mostly kept in memory, a trip of their own would cost more.
        profile, (key, options) = await run_read(lambda: (accounts.get_profile(actor), accounts.area_options()))
        self._set_profile(profile)
        if self._areas_key != key:  # 166 areas, 10 KB: sent on the first visit and after they change only
            self.area_options = [list(o) for o in options]
            self._areas_key = key

    def _set_profile(self, p: accounts.Profile) -> None:
        d = asdict(p)
        self.profile = {k: ("" if d[k] in (None, 0) and k in ("area_id", "birth_year") else str(d[k]))
                        for k in (*_PROFILE_FIELDS, "login_id", "area_name")}
        self.flags = {k: bool(d[k]) for k in _FLAGS}

    @rx.event
    def start_edit(self):
        self.editing = True
        self._show("", "profile", [])
        self._note("", "notice", "")

    @rx.event
    def cancel_edit(self):
        self.editing = False
        self._show("", "profile", [])

    @rx.event
    async def save(self, form: dict):
        actor, lang = await current_actor(self)
        if not actor.authenticated:
            return rx.redirect(routes.LOGIN)
        if not isinstance(form, dict):
            return
        data = {k: form.get(k) for k in (*_PROFILE_FIELDS, "current_password")}
        data.update({k: form.get(k) in ("on", True, "true") for k in _FLAGS})
        try:
            self._set_profile(await run_service(accounts.update_profile, actor, data))
        except ServiceError as e:
            self._show(lang, "profile", error_keys(e))
            return
        self._show(lang, "profile", [])
        self.editing = False
        self._note(lang, "notice", "mypage.saved")
        await refresh_nav(self)

    @rx.event
    async def change_password(self, form: dict):
        actor, lang = await current_actor(self)
        if not actor.authenticated:
            return rx.redirect(routes.LOGIN)
        if not isinstance(form, dict):
            return
        try:
            token = await run_service(accounts.change_password, actor, form.get("old_password"),
                                      form.get("new_password"))
        except ServiceError as e:
            self._show(lang, "password", error_keys(e))
            self._note(lang, "password_notice", "")
            return
        auth = await self.get_state(AuthState)
        self._show(lang, "password", [])
        self._note(lang, "password_notice", "mypage.password_changed")
        auth._show_next(self.password_notice)  # shown again after the reload
        # Every other session ended; this browser's cookie takes the new one (the page reloads).
        return await auth._hand_off(token, routes.MYPAGE)

    @rx.event
    async def end_other_sessions(self):
        actor, lang = await current_actor(self)
        if not actor.authenticated:
            return rx.redirect(routes.LOGIN)
        auth = await self.get_state(AuthState)
        self._ended = await run_service(accounts.end_other_sessions, actor, auth._session_token())
        self._note(lang, "sessions_notice", "mypage.sessions_done")
        return None

    @rx.event
    async def download(self):
        actor, _lang = await current_actor(self)
        if not actor.authenticated:
            return rx.redirect(routes.LOGIN)
        data = await run_service(accounts.export_my_data, actor)
        text = json.dumps(data, ensure_ascii=False, indent=2, default=str)
        return rx.download(data=text, filename="chiiki-my-data.json", mime_type="application/json")

    @rx.event
    async def delete_account(self, form: dict):
        actor, lang = await current_actor(self)
        if not actor.authenticated:
            return rx.redirect(routes.LOGIN)
        if not isinstance(form, dict):
            return
        try:
            await run_service(accounts.delete_account, actor, form.get("delete_password"))
        except ServiceError as e:
            self._show(lang, "delete", error_keys(e))
            return
        await reset_user_states(self)
        auth = await self.get_state(AuthState)
        auth._show_next(tr(lang, "mypage.deleted"))
        return await auth._hand_off("", routes.TOP)


def _row(label_key: str, value: rx.Var) -> rx.Component:
    return rx.box(
        rx.text(t(label_key), size="2", color=rx.color("gray", 11)),
        rx.text(rx.cond(value != "", value, "—"), size="4"),
        margin_bottom="0.6em",
    )


def _profile_view() -> rx.Component:
    p = MyPageState.profile
    return rx.box(
        _row("mypage.login_id", p["login_id"]),
        _row("field.name", p["name"]),
        _row("field.kana", p["kana"]),
        _row("field.display_name", p["display_name"]),
        _row("field.address", p["address"]),
        _row("field.area", p["area_name"]),
        _row("field.birth_year", p["birth_year"]),
        _row("field.email", p["email"]),
        _row("field.phone", p["phone"]),
        secondary_button("mypage.edit", on_click=MyPageState.start_edit, id="edit-profile"),
        id="profile-view",
    )


def _err(name: str) -> rx.Var:
    return MyPageState.errors.get(name, "")


def _profile_form() -> rx.Component:
    p = MyPageState.profile
    return rx.form(
        text_field("field.name", "name", default_value=p["name"], error=_err("name"), required=True, max_length=100),
        text_field("field.kana", "kana", default_value=p["kana"], error=_err("kana"), required=True, max_length=200),
        text_field("field.display_name", "display_name", default_value=p["display_name"],
                   error=_err("display_name"), help_key="field.display_name_help", max_length=50),
        text_field("field.address", "address", default_value=p["address"], error=_err("address"), required=True,
                   max_length=200),
        select_field("field.area", "area_id", MyPageState.area_options, default_value=p["area_id"],
                     error=_err("area_id"), required=True),
        text_field("field.birth_year", "birth_year", default_value=p["birth_year"], error=_err("birth_year"),
                   required=True, input_mode="numeric", max_length=4),
        text_field("field.email", "email", default_value=p["email"], error=_err("email"), type_="email",
                   max_length=254),
        text_field("field.phone", "phone", default_value=p["phone"], error=_err("phone"), type_="tel",
                   max_length=30),
        text_field("field.old_password", "current_password", type_="password", autocomplete="current-password",
                   help_key="mypage.current_password_help", error=_err("current_password"), max_length=72),
        checkbox_field("field.has_small_children", "has_small_children",
                       checked=MyPageState.flags["has_small_children"]),
        checkbox_field("field.email_circulars", "email_circulars", checked=MyPageState.flags["email_circulars"]),
        checkbox_field("field.email_notices", "email_notices", checked=MyPageState.flags["email_notices"]),
        rx.hstack(
            secondary_button("mypage.cancel", type="button", on_click=MyPageState.cancel_edit),
            primary_button("mypage.save", type="submit", flex="1", id="save-profile"),
            width="100%",
        ),
        on_submit=MyPageState.save,
        width="100%",
        id="profile-form",
    )


@template(route=routes.MYPAGE, title_key="mypage.title", on_load=[MyPageState.load])
def mypage() -> rx.Component:
    return rx.vstack(
        heading("mypage.title"),
        message(MyPageState.notice),
        error_banner(MyPageState.error),
        card(
            rx.heading(t("mypage.profile"), as_="h2", size="5", margin_bottom="0.6em"),
            rx.cond(MyPageState.editing, _profile_form(), _profile_view()),
        ),
        card(
            rx.heading(t("mypage.my_data"), as_="h2", size="5", margin_bottom="0.6em"),
            rx.text(t("mypage.download_help"), size="3", margin_bottom="0.8em"),
            rx.vstack(
                primary_button("mypage.download", on_click=MyPageState.download, id="download-my-data"),
                link_button("nav.access_log", routes.ACCESS_LOG, variant="outline"),
                align="stretch",
                spacing="3",
            ),
        ),
        card(
            rx.heading(t("mypage.password"), as_="h2", size="5", margin_bottom="0.6em"),
            message(MyPageState.password_notice),
            rx.form(
                text_field("field.old_password", "old_password", type_="password", required=True,
                           autocomplete="current-password", error=MyPageState.password_errors.get("old_password", ""),
                           max_length=72),
                text_field("field.new_password", "new_password", type_="password", required=True,
                           autocomplete="new-password", help_key="field.password_help",
                           error=MyPageState.password_errors.get("new_password", ""), max_length=72),
                primary_button("mypage.password_submit", type="submit"),
                on_submit=MyPageState.change_password,
                reset_on_submit=True,
            ),
        ),
        card(
            rx.heading(t("mypage.sessions"), as_="h2", size="5", margin_bottom="0.6em"),
            rx.text(t("mypage.sessions_help"), size="3", margin_bottom="0.8em"),
            message(MyPageState.sessions_notice),
            secondary_button("mypage.sessions_submit", on_click=MyPageState.end_other_sessions,
                             id="end-other-sessions"),
        ),
        card(
            rx.heading(t("mypage.delete"), as_="h2", size="5", margin_bottom="0.6em"),
            rx.text(t("mypage.delete_help"), size="3", margin_bottom="0.8em"),
            error_banner(MyPageState.delete_error),
            rx.form(
                text_field("mypage.delete_confirm", "delete_password", type_="password", required=True,
                           autocomplete="current-password",
                           error=MyPageState.delete_errors.get("delete_password", ""), max_length=72),
                button(t("mypage.delete"), type="submit", color_scheme="red", size="3",
                          style={"min_height": "48px"}),
                on_submit=MyPageState.delete_account,
            ),
        ),
        width="100%",
        align="stretch",
    )


class AccessLogState(rx.State):
    """Who accessed my data: only the person's own entries, by title and name of the officer."""

    rows: list[dict[str, str]] = []
    page: int = 1
    has_more: bool = False
    loaded: bool = False  # "nothing recorded" only once the log was read (not in the page before it loads)

    @rx.event
    async def load(self):
        actor, lang = await current_actor(self)
        if not actor.authenticated:
            return rx.redirect(routes.LOGIN)
        self.page = 1
        await self._fetch(actor, lang)

    async def _relabel(self, actor, lang: str) -> None:
        """After a language switch (chiiki.state.relabel_page): the same page of the log in `lang`."""
        await self._fetch(actor, lang)

    async def _fetch(self, actor, lang: str) -> None:
        size = 30

        entries = await run_service(accounts.my_accesses, actor, size + 1, (self.page - 1) * size)
        self.loaded = True
        self.has_more = len(entries) > size
        self.rows = [
            {"at": fmt_dt(e.at, lang),
             "who": (officers.held_title_label(e.actor_title, lang) + " " + e.actor_name).strip()
                    or tr(lang, "audit.system"),
             "what": tr(lang, "audit.action." + e.action) if ("audit.action." + e.action) in STRINGS else e.action,
             "count": str(e.record_count)}
            for e in entries[:size]
        ]

    @rx.event
    async def next_page(self):
        actor, lang = await current_actor(self)
        if actor.authenticated and self.has_more:
            self.page += 1
            await self._fetch(actor, lang)

    @rx.event
    async def prev_page(self):
        actor, lang = await current_actor(self)
        if actor.authenticated and self.page > 1:
            self.page -= 1
            await self._fetch(actor, lang)


@template(route=routes.ACCESS_LOG, title_key="nav.access_log", on_load=[AccessLogState.load])
def access_log() -> rx.Component:
    return rx.vstack(
        heading("nav.access_log"),
        rx.text(t("audit.intro"), size="3"),
        rx.cond(
            AccessLogState.rows.length() > 0,
            rx.vstack(
                rx.foreach(
                    AccessLogState.rows,
                    lambda r: card(
                        rx.text(r["at"], size="2", color=rx.color("gray", 11)),
                        rx.text(r["who"], size="4", weight="bold"),
                        rx.text(r["what"], size="3"),
                    ),
                ),
                width="100%",
            ),
            rx.cond(AccessLogState.loaded, rx.text(t("audit.none"), size="4", id="access-log-empty")),
        ),
        more_pager(AccessLogState.page, AccessLogState.has_more, AccessLogState.prev_page, AccessLogState.next_page),
        width="100%",
        align="stretch",
    )
