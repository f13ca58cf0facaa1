"""Register (three short screens), log in, and set a new password through a link (a forgotten password)."""

from __future__ import annotations

import reflex as rx

from chiiki import routes
from chiiki.components.shell import template
from chiiki.components.ui import (
    checkbox_field,
    error_banner,
    heading,
    link_button,
    primary_button,
    secondary_button,
    select_field,
    text_field,
)
from chiiki.i18n import t, tf, tr
from chiiki.services import accounts, password_reset
from chiiki.services.errors import ServiceError
from chiiki.state import AuthState, UIState, error_keys, home_path, login_client, run_service, shown_errors

# Which screen of the registration form each field is on, to jump back to the first error.
_STEP_OF = {"name": 1, "kana": 1, "address": 1, "birth_year": 2, "area_id": 2, "display_name": 2,
            "has_small_children": 2, "login_id": 3, "password": 3, "password_confirm": 3}
_FIELDS = tuple(_STEP_OF)


class _FormMessages:
    """A form's messages kept as what they were made from (chiiki.state.error_keys), for a language switch."""

    def _show(self, lang: str, keys: list) -> None:
        self._shown = keys
        self.errors, self.error = shown_errors(lang, keys)

    def _retranslate(self, lang: str) -> None:
        self._show(lang, self._shown)


class RegisterState(_FormMessages, rx.State):
    step: int = 1
    errors: dict[str, str] = {}
    error: str = ""
    area_options: list[list[str]] = []
    _shown: list = []

    @rx.event
    async def load(self):
        self.step = 1
        self._show("", [])  # no message
        _key, options = await run_service(accounts.area_options)
        self.area_options = [list(o) for o in options]

    @rx.event
    def go(self, step: int):
        if isinstance(step, int) and 1 <= step <= 3:
            self.step = step

    @rx.event
    async def submit(self, form: dict):
        auth = await self.get_state(AuthState)
        ui = await self.get_state(UIState)
        lang = ui.lang
        if not isinstance(form, dict):
            return
        data = {k: form.get(k) for k in _FIELDS}
        data["has_small_children"] = form.get("has_small_children") in ("on", True, "true")
        data["locale"], data["large_text"] = lang, ui.large_text == "1"
        self._show(lang, [])
        if data.get("password") != data.get("password_confirm"):
            self._show(lang, [("password_confirm", "register.password_mismatch", {})])
            self.step = 3
            return
        try:
            result = await run_service(accounts.register_and_sign_in, data)
        except ServiceError as e:
            self._show(lang, error_keys(e))
            self.step = min((_STEP_OF.get(f, 3) for f in self.errors), default=self.step)
            return
        # A new account belongs to no association yet: joining one is the next step (with the invite code
        # of the link that brought them here, if one did). The page refreshes the navigation (load_page).
        next_path = auth._take_after_login(within=routes.JOIN) or routes.JOIN
        ui._lang_chosen = ui._large_chosen = False  # on the new account now (register saved them)
        await auth._replace_session(result.token)
        auth._show_next(tr(lang, "register.done"))
        self.step = 1
        return await auth._hand_off(result.token, next_path)


def _err(name: str) -> rx.Var:
    return RegisterState.errors.get(name, "")


def _step(n: int, *children) -> rx.Component:
    # All three screens stay in the DOM (hidden) so typed values survive moving between them.
    return rx.box(*children, display=rx.cond(RegisterState.step == n, "block", "none"), width="100%")


@template(route=routes.REGISTER, title_key="register.title", on_load=[RegisterState.load])
def register() -> rx.Component:
    return rx.vstack(
        heading("register.title"),
        rx.text(tf("register.step_of", n=RegisterState.step), size="3", color=rx.color("gray", 11)),
        error_banner(RegisterState.error),
        rx.form(
            _step(
                1,
                rx.heading(t("register.step1"), as_="h2", size="5", margin_bottom="0.6em"),
                text_field("field.name", "name", error=_err("name"), help_key="field.name_help", required=True,
                           autocomplete="name", max_length=100),
                text_field("field.kana", "kana", error=_err("kana"), help_key="field.kana_help", required=True,
                           max_length=200),
                text_field("field.address", "address", error=_err("address"), help_key="field.address_help",
                           required=True, autocomplete="street-address", max_length=200),
                primary_button("register.next", type="button", on_click=RegisterState.go(2), width="100%",
                               id="register-next-1"),
            ),
            _step(
                2,
                rx.heading(t("register.step2"), as_="h2", size="5", margin_bottom="0.6em"),
                text_field("field.birth_year", "birth_year", error=_err("birth_year"),
                           help_key="field.birth_year_help", required=True, input_mode="numeric", max_length=4),
                select_field("field.area", "area_id", RegisterState.area_options, error=_err("area_id"),
                             placeholder_key="field.area_choose", required=True),
                text_field("field.display_name", "display_name", error=_err("display_name"),
                           help_key="field.display_name_help", max_length=50),
                checkbox_field("field.has_small_children", "has_small_children"),
                rx.hstack(
                    secondary_button("register.back", type="button", on_click=RegisterState.go(1)),
                    primary_button("register.next", type="button", on_click=RegisterState.go(3), flex="1",
                                   id="register-next-2"),
                    width="100%",
                ),
            ),
            _step(
                3,
                rx.heading(t("register.step3"), as_="h2", size="5", margin_bottom="0.6em"),
                text_field("field.login_id", "login_id", error=_err("login_id"), help_key="field.login_id_help",
                           required=True, autocomplete="username", max_length=254),
                text_field("field.password", "password", error=_err("password"), help_key="field.password_help",
                           type_="password", required=True, autocomplete="new-password", max_length=72),
                text_field("field.password_confirm", "password_confirm", error=_err("password_confirm"),
                           type_="password", required=True, autocomplete="new-password", max_length=72),
                rx.callout(t("register.privacy"), icon="shield-check", color_scheme="blue", size="2",
                           margin_bottom="1em"),
                rx.hstack(
                    secondary_button("register.back", type="button", on_click=RegisterState.go(2)),
                    primary_button("register.submit", type="submit", flex="1", id="register-submit"),
                    width="100%",
                ),
            ),
            on_submit=RegisterState.submit,
            width="100%",
            # Browser validation would stop the submit on a hidden screen; the server checks everything.
            no_validate=True,
        ),
        rx.link(t("top.have_account"), href=routes.LOGIN,
                size="3", style={"min_height": "44px", "display": "flex", "align_items": "center"}),
        width="100%",
        max_width="560px",
    )


class LoginState(rx.State):
    error: str = ""
    _shown: list = []  # what the message shown was made from (chiiki.state.error_keys)

    def _show(self, lang: str, keys: list) -> None:
        self._shown = keys
        self.error = shown_errors(lang, keys)[1]

    def _retranslate(self, lang: str) -> None:
        self._show(lang, self._shown)

    @rx.event
    def load(self):
        self._show("", [])  # no message

    @rx.event
    async def submit(self, form: dict):
        auth = await self.get_state(AuthState)
        lang = (await self.get_state(UIState)).lang
        if not isinstance(form, dict):
            return
        try:
            result = await run_service(accounts.login, form.get("login_id"), form.get("password"),
                                       client=login_client(self))
        except ServiceError as e:
            self._show(lang, [("", e.key, dict(e.params))])  # one message for the whole form
            return
        self._show(lang, [])
        next_path = auth._take_after_login()
        await auth._replace_session(result.token)
        actor = await auth._actor()
        prefs = await (await self.get_state(UIState))._apply_login_prefs(actor, result.locale, result.large_text)
        return [*prefs, await auth._hand_off(result.token, next_path or home_path(actor))]


@template(route=routes.LOGIN, title_key="login.title", on_load=[LoginState.load])
def login() -> rx.Component:
    return rx.vstack(
        heading("login.title"),
        error_banner(LoginState.error),
        rx.form(
            text_field("field.login_id", "login_id", required=True, autocomplete="username", max_length=254),
            text_field("field.password", "password", type_="password", required=True,
                       autocomplete="current-password", max_length=72),
            primary_button("login.submit", type="submit", width="100%", id="login-submit"),
            on_submit=LoginState.submit,
            width="100%",
        ),
        link_button("login.no_account", routes.REGISTER, variant="outline"),
        rx.link(t("login.forgot"), href=routes.PASSWORD_FORGOT, id="forgot-link",
                size="3", style={"min_height": "44px", "display": "flex", "align_items": "center"}),
        width="100%",
        max_width="560px",
        spacing="3",
    )


class ForgotState(_FormMessages, rx.State):
    """Asking for a link: the same answer whether the login id exists or not."""

    errors: dict[str, str] = {}
    error: str = ""
    asked: bool = False
    _shown: list = []

    @rx.event
    def load(self):
        self.asked = False
        self._show("", [])

    @rx.event
    async def submit(self, form: dict):
        lang = (await self.get_state(UIState)).lang
        if not isinstance(form, dict):
            return
        try:
            await run_service(password_reset.request_link, form.get("login_id"))
        except ServiceError as e:
            self._show(lang, error_keys(e))
            return
        self._show(lang, [])
        self.asked = True


@template(route=routes.PASSWORD_FORGOT, title_key="reset.title", on_load=[ForgotState.load])
def password_forgot() -> rx.Component:
    return rx.vstack(
        heading("reset.title"),
        rx.cond(
            ForgotState.asked,
            rx.callout(t("reset.asked"), color_scheme="green", size="3", role="status", width="100%",
                       id="reset-asked"),
            rx.form(
                rx.text(t("reset.ask_help"), size="3", margin_bottom="0.8em"),
                error_banner(ForgotState.error),
                text_field("field.login_id", "login_id", required=True, autocomplete="username", max_length=254,
                           error=ForgotState.errors.get("login_id", "")),
                primary_button("reset.ask_submit", type="submit", width="100%", id="reset-ask-submit"),
                on_submit=ForgotState.submit,
                width="100%",
            ),
        ),
        rx.callout(t("reset.counter"), color_scheme="gray", size="2", width="100%"),
        link_button("login.title", routes.LOGIN, variant="outline"),
        width="100%",
        max_width="560px",
        spacing="3",
    )


class ResetState(_FormMessages, rx.State):
    """The page a mailed link opens: a new password, twice. The link's token stays on the server."""

    valid: bool = False
    checked: bool = False
    errors: dict[str, str] = {}
    error: str = ""
    _shown: list = []
    _token: str = ""

    @rx.event
    async def load(self):
        self._token = str(self.router.url.query_parameters.get("token", ""))[:200]
        self._show("", [])
        self.valid = await run_service(password_reset.link_is_valid, self._token)
        self.checked = True

    @rx.event
    async def submit(self, form: dict):
        auth = await self.get_state(AuthState)
        lang = (await self.get_state(UIState)).lang
        if not isinstance(form, dict) or not self._token:
            return None
        if form.get("new_password") != form.get("password_confirm"):
            self._show(lang, [("password_confirm", "register.password_mismatch", {})])
            return None
        try:
            await run_service(password_reset.set_new_password, self._token, form.get("new_password"))
        except ServiceError as e:
            self._show(lang, error_keys(e))
            self.valid = e.key != "reset.error.invalid_link"
            return None
        self._token = ""
        self.valid = False
        auth._show_next(tr(lang, "reset.done"))
        return rx.redirect(routes.LOGIN)


@template(route=routes.PASSWORD_RESET, title_key="reset.title", on_load=[ResetState.load])
def password_reset_page() -> rx.Component:
    return rx.vstack(
        heading("reset.title"),
        error_banner(ResetState.error),
        rx.cond(
            ResetState.valid,
            rx.form(
                rx.text(t("reset.form_help"), size="3", margin_bottom="0.8em"),
                text_field("field.new_password", "new_password", type_="password", required=True,
                           autocomplete="new-password", help_key="field.password_help", max_length=72,
                           error=ResetState.errors.get("new_password", "")),
                text_field("field.password_confirm", "password_confirm", type_="password", required=True,
                           autocomplete="new-password", max_length=72,
                           error=ResetState.errors.get("password_confirm", "")),
                primary_button("reset.submit", type="submit", width="100%", id="reset-submit"),
                on_submit=ResetState.submit,
                width="100%",
            ),
            rx.cond(ResetState.checked,
                    rx.vstack(rx.cond(ResetState.error == "",
                                      rx.callout(t("reset.error.invalid_link"), color_scheme="orange", size="3",
                                                 width="100%", id="reset-invalid")),
                              link_button("reset.ask_again", routes.PASSWORD_FORGOT, variant="outline"),
                              width="100%", align="stretch")),
        ),
        width="100%",
        max_width="560px",
        spacing="3",
    )
