"""The page frame every page shares (header, navigation, language and text size) via @template."""

from __future__ import annotations

from typing import Callable

import reflex as rx

from chiiki import routes
from chiiki.components.ui import BUTTON_STYLE
from chiiki.i18n import t
from chiiki.state import AuthState, UIState, register_page_load

class NavState(rx.State):
    """Only whether the phone menu is open; everything it shows comes from AuthState."""

    open: bool = False

    @rx.event
    def toggle(self):
        self.open = not self.open

    @rx.event
    def close(self):
        self.open = False


def _nav_link(key: str, href: str, badge: rx.Var | None = None) -> rx.Component:
    return rx.link(
        rx.hstack(
            rx.text(t(key), size="3", weight="medium"),
            rx.cond(badge is not None and badge > 0, rx.badge(badge, color_scheme="red", size="2", radius="full"))
            if badge is not None else rx.fragment(),
            align="center",
            spacing="2",
        ),
        href=href,
        on_click=NavState.close,
        underline="none",
        style={"display": "flex", "align_items": "center", "min_height": "48px", "padding": "0 0.8em",
               "border_radius": "var(--radius-3)", "color": "var(--gray-12)",
               "_hover": {"background": "var(--accent-3)"}},
    )


# (string key, route, which AuthState flag shows it, optional badge). A page appears in the menu only
# when the policy lets the user do something there; the page itself re-checks on the server.
NAV_ITEMS: list[tuple[str, str, str, str | None]] = []


def register_nav(key: str, href: str, flag: str, badge: str | None = None, position: int | None = None) -> None:
    """Feature modules add their menu entries here when they are imported."""
    item = (key, href, flag, badge)
    if item not in NAV_ITEMS:
        NAV_ITEMS.insert(len(NAV_ITEMS) if position is None else position, item)


def _nav_items() -> rx.Component:
    items = []
    for key, href, flag, badge in NAV_ITEMS:
        cond = getattr(AuthState, flag)
        items.append(rx.cond(cond, _nav_link(key, href, getattr(AuthState, badge) if badge else None)))
    return rx.fragment(*items)


def navigation() -> rx.Component:
    return rx.el.nav(
        rx.vstack(
            rx.cond(
                AuthState.logged_in,
                rx.fragment(
                    _nav_items(),
                    _nav_link("nav.mypage", routes.MYPAGE),
                    rx.button(t("nav.logout"), on_click=AuthState.logout, variant="ghost", size="3",
                              style={**BUTTON_STYLE, "justify_content": "flex-start", "width": "100%"},
                              id="logout-button"),
                ),
                rx.fragment(
                    _nav_link("nav.home", routes.TOP),
                    _nav_link("nav.login", routes.LOGIN),
                    _nav_link("nav.register", routes.REGISTER),
                    _nav_link("nav.inquiry", routes.INQUIRY) if any(i[1] == routes.INQUIRY for i in NAV_ITEMS)
                    else rx.fragment(),
                ),
            ),
            spacing="1",
            align="stretch",
            width="100%",
        ),
        aria_label=t("nav.menu"),
        id="main-nav",
    )


def header() -> rx.Component:
    return rx.el.header(
        rx.hstack(
            rx.link(rx.heading(t("app.name"), size="6", as_="p"), href=routes.TOP, underline="none",
                    style={"color": "var(--accent-11)", "min_height": "44px", "display": "flex",
                           "align_items": "center"}),
            rx.cond(AuthState.association_name != "",
                    rx.text(AuthState.association_name, size="2", color=rx.color("gray", 11),
                            display=["none", "block"])),
            rx.spacer(),
            rx.cond(
                AuthState.unread_circulars > 0,
                rx.link(rx.badge(rx.text(t("nav.circulars")), rx.text(AuthState.unread_circulars),
                                 color_scheme="red", size="3", radius="full"),
                        href=routes.CIRCULARS, id="unread-badge",
                        style={"min_height": "44px", "display": "flex", "align_items": "center"}),
            ),
            rx.button(t("shell.language"), on_click=UIState.toggle_lang, variant="soft", size="2",
                      aria_label=t("shell.language_label"), style={"min_height": "44px", "min_width": "44px"},
                      id="lang-toggle", lang=rx.cond(UIState.lang == "en", "ja", "en")),
            # Says what a tap does now: 文字を大きく, or 文字を元に戻す while the text is large (solid then).
            rx.button(rx.cond(UIState.large_text == "1", t("shell.normal_text"), t("shell.large_text")),
                      on_click=UIState.toggle_large_text,
                      variant=rx.cond(UIState.large_text == "1", "solid", "soft"), size="2",
                      aria_pressed=rx.cond(UIState.large_text == "1", "true", "false"),
                      style={"min_height": "44px", "min_width": "44px"}, id="large-text-toggle"),
            rx.button(t("nav.menu"), on_click=NavState.toggle, variant="outline", size="2",
                      aria_expanded=rx.cond(NavState.open, "true", "false"), aria_controls="main-nav-phone",
                      display=["flex", "flex", "none"], style={"min_height": "44px", "min_width": "44px"},
                      id="menu-toggle"),
            align="center",
            spacing="2",
            wrap="wrap",
            width="100%",
        ),
        style={"padding": "0.5em 1em", "border_bottom": "1px solid var(--gray-6)",
               "background": "var(--color-panel-solid)", "position": "sticky", "top": "0", "z_index": "10"},
    )


def template(
    route: str,
    title_key: str,
    *,
    on_load: list | None = None,
) -> Callable[[Callable[[], rx.Component]], rx.Component]:
    """Wrap a page in the shared frame, register it with rx.page, and refresh navigation on load."""

    def decorator(page_fn: Callable[[], rx.Component]):
        from chiiki.i18n import STRINGS

        title = STRINGS[title_key][0] + " | " + STRINGS["app.name"][0]

        def page() -> rx.Component:
            return rx.box(
                rx.el.a(t("shell.skip"), href="#main", class_name="skip-link"),
                header(),
                rx.flex(
                    rx.box(navigation(), display=["none", "none", "block"], width="250px", flex_shrink="0",
                           padding="1em 0.5em", border_right="1px solid var(--gray-5)"),
                    rx.cond(NavState.open,
                            rx.box(rx.el.div(navigation(), id="main-nav-phone"), display=["block", "block", "none"],
                                   width="100%", padding="0.5em", border_bottom="1px solid var(--gray-6)")),
                    rx.el.main(
                        rx.cond(AuthState.flash != "",
                                rx.callout(AuthState.flash, color_scheme="green", size="2", role="status",
                                           margin_bottom="1em")),
                        rx.cond(
                            AuthState.urgent_surveys > 0,
                            rx.link(
                                rx.callout(t("shell.urgent_survey"), icon="triangle-alert", color_scheme="red",
                                           size="3", role="alert", margin_bottom="1em"),
                                href=routes.SURVEYS, underline="none", id="urgent-survey-banner",
                            ),
                        ),
                        page_fn(),
                        id="main",
                        tab_index=-1,
                        # "true" once the tab's latest page load has run (tests wait on it after opening a page;
                        # right after an in-app page change it still tells of the page before, until the new
                        # page's load starts).
                        custom_attrs={"data-loaded": rx.cond(rx.State.is_hydrated, "true", "false")},
                        style={"flex": "1", "min_width": "0", "padding": "1em", "max_width": "860px",
                               "width": "100%"},
                    ),
                    direction=rx.breakpoints(initial="column", md="row"),
                    width="100%",
                ),
                rx.el.footer(rx.text(t("shell.footer"), size="2", color=rx.color("gray", 11)),
                             style={"padding": "1.5em 1em", "border_top": "1px solid var(--gray-5)"}),
                # Font sizes for normal and large text live in assets/chiiki.css.
                class_name=rx.cond(UIState.large_text == "1", "chiiki-root large-text", "chiiki-root"),
                lang=UIState.html_lang,
                min_height="100vh",
            )

        rx.page(route=route, title=title, on_load=[register_page_load(route, on_load or [])])(page)
        return page

    return decorator
