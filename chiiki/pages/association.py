"""The association page every member sees: name, member counts, officers' titles and display names."""

from __future__ import annotations

from typing import Any, Callable

import reflex as rx

from chiiki import routes
from chiiki.components.shell import register_nav, template
from chiiki.components.ui import button, card, error_banner, heading, link_button, secondary_button
from chiiki.i18n import t, tf, tr
from chiiki.services import associations, membership, validate
from chiiki.services.errors import ServiceError
from chiiki.services.officers import title_label
from chiiki.services.policy import Actor
from chiiki.state import AuthState, current_actor, error_text, field_errors, run_read, run_service

register_nav("nav.association", routes.ASSOCIATION, "is_member")


def my_association(actor: Actor) -> int:
    """The association a page works on is always the actor's own, found on the server, never sent by a browser."""
    return actor.memberships[0].association_id if actor.memberships else 0


def as_id(value: Any) -> int:
    """A browser-sent id as a positive int, or 0 (which no row has), whatever was sent (validate.ident's rule)."""
    try:
        return validate.ident(value)
    except ServiceError:
        return 0


async def actor_or_none(state: rx.State) -> tuple[Actor | None, str]:
    """The authenticated actor (None when the session is gone) and the language, for a handler."""
    actor, lang = await current_actor(state)
    return (actor if actor.authenticated else None), lang


def checked(form: dict, name: str) -> bool:
    return form.get(name) in ("on", True, "true", "1")


async def attempt(state: rx.State, lang: str, fn: Callable, *args: Any,
                  **kwargs: Any) -> tuple[bool, Any, str, dict[str, str]]:
    """Run a service off the event loop: (ok, result, message, field messages)."""
    return await _attempt(run_service, lang, fn, *args, **kwargs)


async def attempt_read(state: rx.State, lang: str, fn: Callable, *args: Any,
                       **kwargs: Any) -> tuple[bool, Any, str, dict[str, str]]:
    """attempt() for a page's bounded read (see chiiki.state.run_read)."""
    return await _attempt(run_read, lang, fn, *args, **kwargs)


async def _attempt(runner: Callable, lang: str, fn: Callable, *args: Any,
                   **kwargs: Any) -> tuple[bool, Any, str, dict[str, str]]:
    try:
        return True, await runner(fn, *args, **kwargs), "", {}
    except ServiceError as e:
        errors = field_errors(lang, e)
        return False, None, "" if errors else error_text(lang, e), errors


class AssociationState(rx.State):
    # Only what every member may see (privacy rule 1): no member rows, no names beyond officers' display names.
    name: str = ""
    description: str = ""
    area: str = ""
    households: int = 0
    members: int = 0
    officers: list[dict[str, str]] = []
    loaded: bool = False
    confirm_leave: bool = False
    error: str = ""

    def _clear(self) -> None:
        self.name = self.description = self.area = self.error = ""
        self.households = self.members = 0
        self.officers = []
        self.loaded = self.confirm_leave = False

    @rx.event
    async def load(self):
        actor, lang = await current_actor(self)
        self._clear()
        if not actor.authenticated:
            return rx.redirect(routes.LOGIN)
        aid = my_association(actor)
        if not aid:
            return
        ok, info, self.error, _ = await attempt(self, lang, associations.summary, actor, aid)
        if not ok:
            return
        self.name, self.description, self.area = info.name, info.description, info.area_label
        self.households, self.members = info.households, info.member_accounts
        self.officers = [{"title": title_label(o.title, lang), "name": o.display_name, "han": o.han_name}
                         for o in info.officers]
        self.loaded = True

    @rx.event
    def ask_leave(self):
        self.confirm_leave = True

    @rx.event
    def keep(self):
        self.confirm_leave = False

    @rx.event
    async def leave(self):
        actor, lang = await current_actor(self)
        if not actor.authenticated:
            return rx.redirect(routes.LOGIN)
        ok, _r, self.error, _ = await attempt(self, lang, membership.leave, actor, my_association(actor))
        self.confirm_leave = False
        if ok:
            self._clear()
            auth = await self.get_state(AuthState)
            auth._show_next(tr(lang, "association.left"))
            # The next page's load shows it, with the navigation of a non-member.
            return rx.redirect(routes.JOIN)


def _officer(o: rx.Var) -> rx.Component:
    return rx.hstack(
        rx.text(o["title"], size="4", weight="bold", min_width="6em"),
        rx.text(o["name"], size="4"),
        rx.cond(o["han"] != "", rx.badge(o["han"], size="2")),
        align="center", spacing="3", min_height="48px",
    )


def _tools() -> rx.Component:
    return rx.cond(
        AuthState.is_officer,
        card(
            rx.heading(t("association.tools"), as_="h2", size="5", margin_bottom="0.6em"),
            rx.vstack(
                rx.cond(AuthState.can_view_members, link_button("nav.roster", routes.ROSTER, variant="outline")),
                rx.cond(AuthState.can_manage_members,
                        link_button("nav.members_admin", routes.MEMBERS_ADMIN, variant="outline", id="to-members")),
                rx.cond(AuthState.can_manage_members,
                        link_button("nav.officers", routes.OFFICERS, variant="outline", id="to-officers")),
                rx.cond(AuthState.can_send_circulars,
                        link_button("nav.circular_admin", routes.CIRCULAR_ADMIN, variant="outline")),
                align="stretch", spacing="3",
            ),
        ),
    )


def _leave() -> rx.Component:
    return card(
        rx.heading(t("association.leave"), as_="h2", size="5", margin_bottom="0.6em"),
        rx.text(t("association.leave_help"), size="3", margin_bottom="0.8em"),
        rx.cond(
            AssociationState.confirm_leave,
            rx.hstack(
                secondary_button("common.cancel", on_click=AssociationState.keep),
                button(t("association.leave_confirm"), on_click=AssociationState.leave, color_scheme="red",
                          size="3", style={"min_height": "48px"}, id="leave-confirm"),
                spacing="3", wrap="wrap",
            ),
            secondary_button("association.leave", on_click=AssociationState.ask_leave, id="leave-ask"),
        ),
    )


@template(route=routes.ASSOCIATION, title_key="association.title", on_load=[AssociationState.load])
def association_page() -> rx.Component:
    return rx.vstack(
        error_banner(AssociationState.error),
        rx.cond(
            AssociationState.loaded,
            rx.vstack(
                rx.heading(AssociationState.name, as_="h1", size="7", id="association-name"),
                rx.text(AssociationState.area, size="3", color=rx.color("gray", 11)),
                rx.cond(AssociationState.description != "", rx.text(AssociationState.description, size="4",
                                                                      white_space="pre-wrap")),
                card(
                    rx.heading(t("association.counts"), as_="h2", size="5", margin_bottom="0.6em"),
                    rx.text(tf("association.households", n=AssociationState.households), size="4"),
                    rx.text(tf("association.members", n=AssociationState.members), size="4"),
                ),
                card(
                    rx.heading(t("association.officers"), as_="h2", size="5", margin_bottom="0.6em"),
                    rx.foreach(AssociationState.officers, _officer),
                    id="officer-list",
                ),
                _tools(),
                _leave(),
                width="100%", align="stretch",
            ),
            rx.vstack(
                heading("association.title"),
                rx.text(t("association.not_member"), size="4", id="not-member"),
                link_button("nav.join", routes.JOIN),
                width="100%", align="stretch",
            ),
        ),
        width="100%", align="stretch",
    )
