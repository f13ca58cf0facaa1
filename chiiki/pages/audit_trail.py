"""City staff's view of the audit trail: accesses to personal data per association, without the persons."""

from __future__ import annotations

import reflex as rx

from chiiki.components.shell import register_nav, template
from chiiki.components.ui import card, heading, more_pager
from chiiki.i18n import STRINGS, fmt_dt, t, tr
from chiiki import routes
from chiiki.services import audit, officers
from chiiki.services.errors import ServiceError
from chiiki.state import current_actor, error_text, run_service

AUDIT_TRAIL = "/city/audit"
PAGE_SIZE = 50
register_nav("audit.trail_nav", AUDIT_TRAIL, "is_city_staff")


class AuditTrailState(rx.State):
    rows: list[dict[str, str]] = []
    page: int = 1
    has_more: bool = False
    error: str = ""

    async def _show(self):
        """Authenticate, then show the current page (a login redirect when the session has ended)."""
        actor, lang = await current_actor(self)
        if not actor.authenticated:
            return rx.redirect(routes.LOGIN)
        await self._fetch(actor, lang)

    async def _fetch(self, actor, lang: str) -> None:
        try:
            entries, more = await run_service(audit.city_trail, actor, limit=PAGE_SIZE,
                                              offset=(self.page - 1) * PAGE_SIZE)
        except ServiceError as e:
            self.rows, self.has_more, self.error = [], False, error_text(lang, e)
            return
        self.error = ""
        self.has_more = more
        self.rows = [{"at": fmt_dt(e.at, lang), "association": e.association or "—",
                      "who": officers.held_title_label(e.actor_title, lang) or tr(lang, "audit.system"),
                      "what": tr(lang, "audit.action." + e.action) if "audit.action." + e.action in STRINGS
                      else e.action,
                      "count": str(e.record_count)} for e in entries]

    async def _relabel(self, actor, lang: str) -> None:
        """After a language switch (chiiki.state.relabel_page, which checked `actor`): the same page in `lang`."""
        await self._fetch(actor, lang)

    @rx.event
    async def load(self):
        self.page = 1
        return await self._show()

    @rx.event
    async def next_page(self):
        if self.has_more:
            self.page += 1
        return await self._show()

    @rx.event
    async def prev_page(self):
        if self.page > 1:
            self.page -= 1
        return await self._show()


@template(route=AUDIT_TRAIL, title_key="audit.trail_title", on_load=[AuditTrailState.load])
def audit_trail() -> rx.Component:
    return rx.vstack(
        heading("audit.trail_title", help_key="audit.trail_intro"),
        rx.cond(AuditTrailState.error != "", rx.callout(AuditTrailState.error, color_scheme="red", role="alert")),
        rx.cond(
            AuditTrailState.rows.length() > 0,
            rx.foreach(AuditTrailState.rows, lambda r: card(
                rx.text(r["at"], size="2", color=rx.color("gray", 11)),
                rx.text(r["association"], size="4", weight="bold"),
                rx.text(r["who"], " — ", r["what"], size="3"),
                rx.text(t("audit.trail_records"), ": ", r["count"], size="3"),
            )),
            rx.cond(AuditTrailState.error == "", rx.text(t("audit.trail_none"), size="4", id="audit-trail-empty")),
        ),
        more_pager(AuditTrailState.page, AuditTrailState.has_more, AuditTrailState.prev_page,
                   AuditTrailState.next_page),
        width="100%",
        align="stretch",
    )
