"""Top page: what Chiiki is, and the way in (register or log in)."""

import reflex as rx

from chiiki import routes
from chiiki.components.shell import template
from chiiki.components.ui import card, link_button
from chiiki.i18n import t, tf
from chiiki.state import AuthState


def _point(key: str) -> rx.Component:
    return rx.hstack(rx.icon("circle-check", size=28, color=rx.color("green", 10), flex_shrink="0"),
                     rx.text(t(key), size="4"), align="center", spacing="3")


@template(route=routes.TOP, title_key="app.tagline")
def top() -> rx.Component:
    return rx.vstack(
        rx.heading(t("top.title"), as_="h1", size="8"),
        rx.text(t("top.lead"), size="4"),
        card(rx.vstack(_point("top.point1"), _point("top.point2"), _point("top.point3"), spacing="3")),
        rx.cond(
            AuthState.logged_in,
            rx.vstack(
                rx.text(tf("top.welcome", name=AuthState.display_name), size="5", weight="bold"),
                rx.cond(
                    AuthState.is_member,
                    link_button("top.go_inbox", routes.CIRCULARS, id="go-home"),
                    rx.cond(AuthState.is_city_staff,
                            link_button("top.go_city", routes.CITY, id="go-home"),
                            link_button("top.go_join", routes.JOIN, id="go-home")),
                ),
                link_button("top.go_mypage", routes.MYPAGE, variant="outline"),
                width="100%",
            ),
            rx.vstack(
                link_button("top.start", routes.REGISTER, id="start-register"),
                link_button("top.have_account", routes.LOGIN, variant="outline", id="start-login"),
                width="100%",
                spacing="3",
            ),
        ),
        spacing="4",
        width="100%",
    )
