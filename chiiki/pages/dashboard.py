"""The city's dashboard (city staff only): counts and rates per association and per month — no person's data."""

from __future__ import annotations

from typing import Any

import reflex as rx

from chiiki import routes
from chiiki.components.shell import register_nav, template
from chiiki.components.ui import button, card, error_banner, heading, pager, secondary_button
from chiiki.i18n import t, tf
from chiiki.services import dashboard, policy
from chiiki.services.errors import Denied, ServiceError
from chiiki.services.policy import CITY_ADMIN
from chiiki.state import current_actor, error_text, run_service

PAGE_SIZE = 25
SORTS = ("name", "read_rate", "digital_share")

register_nav("nav.dashboard", routes.CITY_DASHBOARD, "is_city_staff")


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}%"


def _num(value: int | None) -> str:
    return "—" if value is None else str(value)


class DashboardState(rx.State):
    """Only aggregates reach this state: the service never returns a person's row."""

    overview: dict[str, str] = {}
    rows: list[dict[str, str]] = []
    total: int = 0
    page: int = 1
    sort: str = "name"
    months: list[dict[str, Any]] = []
    selected_id: str = ""
    selected_name: str = ""
    error: str = ""
    # All association rows (aggregates only) for server-side paging without recomputing, and the city's
    # monthly series, shown again when no association is chosen.
    _all: list[dashboard.AssociationRow] = []
    _city_months: list[dict[str, Any]] = []

    @rx.event
    async def load(self):
        actor, lang = await current_actor(self)
        if not actor.authenticated:
            return rx.redirect(routes.LOGIN)
        self.page, self.sort, self.selected_id, self.selected_name = 1, "name", "", ""
        await self._compute(actor, lang)

    async def _compute(self, actor, lang: str) -> None:
        try:
            d = await run_service(dashboard.dashboard, actor)
        except ServiceError as e:
            self.overview, self.rows, self.months, self._all, self.total = {}, [], [], [], 0
            self._city_months = []
            self.error = error_text(lang, e)
            return
        self.error = ""
        o = d.overview
        self.overview = {"associations": str(o.associations), "households": str(o.households),
                         "member_households": str(o.member_households), "digital_share": _pct(o.digital_share),
                         "residents": str(o.residents), "circulars": str(o.circulars), "read_rate": _pct(o.read_rate),
                         "confirm_rate": _pct(o.confirm_rate), "survey_rate": _pct(o.survey_rate)}
        self._city_months = _series(d.months)
        self.months = _series(d.months)
        self._all = d.associations
        self.total = len(d.associations)
        self._page_rows()

    def _page_rows(self) -> None:
        def key(r: dashboard.AssociationRow):
            if self.sort == "name":
                return (0, "")
            value = r.read_rate if self.sort == "read_rate" else r.digital_share
            return (value is None, value or 0.0)

        ordered = sorted(self._all, key=key)  # stable: name order within equal values
        start = (self.page - 1) * PAGE_SIZE
        self.rows = [{"id": str(r.id), "name": r.name, "area": r.area, "households": _num(r.households),
                      "member_households": _num(r.member_households), "digital_share": _pct(r.digital_share),
                      "circulars": str(r.circulars), "read_rate": _pct(r.read_rate),
                      "confirm_rate": _pct(r.confirm_rate), "survey_rate": _pct(r.survey_rate)}
                     for r in ordered[start:start + PAGE_SIZE]]

    async def _staff(self):
        """The signed-in actor when they may still see the dashboard (the figures kept in this tab are shown
        again without asking the services, so the right is checked here); otherwise the kept figures are
        dropped and the reason shown. Returns (actor, lang, redirect or None)."""
        actor, lang = await current_actor(self)
        if not actor.authenticated:
            return None, lang, rx.redirect(routes.LOGIN)
        if not policy.can(actor, CITY_ADMIN):
            self.overview, self.rows, self.months, self._all, self.total = {}, [], [], [], 0
            self._city_months, self.selected_id, self.selected_name = [], "", ""
            self.error = error_text(lang, Denied())
            return None, lang, None
        return actor, lang, None

    @rx.event
    async def set_sort(self, sort: str):
        actor, _lang, leave = await self._staff()
        if actor is None:
            return leave
        if sort in SORTS and self._all:
            self.sort, self.page = sort, 1
            self._page_rows()

    @rx.event
    async def select(self, association_id: str):
        """Show the monthly chart of one association (its id must be one the dashboard listed), or the
        city's again."""
        actor, lang, leave = await self._staff()
        if actor is None:
            return leave
        chosen = next((r for r in self._all if str(r.id) == str(association_id)), None)
        if chosen is None:
            self.selected_id, self.selected_name, self.error = "", "", ""
            self.months = [dict(m) for m in self._city_months]
            return
        try:
            months = await run_service(dashboard.association_months, actor, chosen.id)
        except ServiceError as e:
            self.error = error_text(lang, e)
            return
        self.error = ""
        self.selected_id, self.selected_name, self.months = str(chosen.id), chosen.name, _series(months)

    @rx.event
    async def next_page(self):
        actor, _lang, leave = await self._staff()
        if actor is None:
            return leave
        if self.page * PAGE_SIZE < self.total:
            self.page += 1
            self._page_rows()

    @rx.event
    async def prev_page(self):
        actor, _lang, leave = await self._staff()
        if actor is None:
            return leave
        if self.page > 1:
            self.page -= 1
            self._page_rows()

    @rx.var
    def pages(self) -> int:
        return max(1, -(-self.total // PAGE_SIZE))


def _series(months: list[dashboard.MonthPoint]) -> list[dict[str, Any]]:
    return [{"month": m.month, "circulars": m.circulars, "read": m.read_rate, "confirmed": m.confirm_rate,
             "surveys": m.survey_rate} for m in months]


def _figure(label_key: str, value: rx.Var, fid: str) -> rx.Component:
    return rx.card(
        rx.text(t(label_key), size="3", color=rx.color("gray", 11)),
        rx.text(value, size="7", weight="bold", id="fig-" + fid),
        size="2",
        min_width="150px",
        flex="1",
    )


def _chart() -> rx.Component:
    return rx.recharts.line_chart(
        rx.recharts.line(data_key="read", name=t("dashboard.read_rate"), stroke="#3e63dd", stroke_width=3,
                         connect_nulls=True),
        rx.recharts.line(data_key="confirmed", name=t("dashboard.confirm_rate"), stroke="#30a46c", stroke_width=3,
                         connect_nulls=True),
        rx.recharts.line(data_key="surveys", name=t("dashboard.survey_rate"), stroke="#f76b15", stroke_width=3,
                         connect_nulls=True),
        rx.recharts.x_axis(data_key="month"),
        rx.recharts.y_axis(domain=[0, 100], unit="%"),
        rx.recharts.cartesian_grid(stroke_dasharray="3 3"),
        rx.recharts.legend(),
        rx.recharts.graphing_tooltip(),
        data=DashboardState.months,
        width="100%",
        height=320,
    )


def _sort_button(key: str, sort: str) -> rx.Component:
    return button(t(key), on_click=DashboardState.set_sort(sort), size="3",
                     variant=rx.cond(DashboardState.sort == sort, "solid", "outline"), style={"min_height": "48px"})


def _row(r: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.table.cell(button(r["name"], on_click=DashboardState.select(r["id"]), variant="ghost", size="3",
                                style={"min_height": "44px", "text_align": "left", "white_space": "normal"}),
                      rx.text(r["area"], size="2", color=rx.color("gray", 11)), min_width="180px"),
        rx.table.cell(r["households"]),
        rx.table.cell(r["member_households"]),
        rx.table.cell(r["digital_share"]),
        rx.table.cell(r["circulars"]),
        rx.table.cell(r["read_rate"]),
        rx.table.cell(r["confirm_rate"]),
        rx.table.cell(r["survey_rate"]),
    )


@template(route=routes.CITY_DASHBOARD, title_key="nav.dashboard", on_load=[DashboardState.load])
def dashboard_page() -> rx.Component:
    o = DashboardState.overview
    return rx.vstack(
        heading("nav.dashboard", help_key="help.dashboard"),
        error_banner(DashboardState.error),
        rx.cond(
            DashboardState.overview.contains("associations"),
            rx.vstack(
                rx.text(t("dashboard.period"), size="3", color=rx.color("gray", 11)),
                rx.text(t("dashboard.small_left_out"), size="3", color=rx.color("gray", 11),
                        id="dashboard-small-left-out"),
                rx.flex(
                    _figure("dashboard.associations", o["associations"], "associations"),
                    _figure("dashboard.member_households", o["member_households"], "member-households"),
                    _figure("dashboard.households", o["households"], "households"),
                    _figure("dashboard.digital_share", o["digital_share"], "digital-share"),
                    _figure("dashboard.read_rate", o["read_rate"], "read-rate"),
                    _figure("dashboard.confirm_rate", o["confirm_rate"], "confirm-rate"),
                    _figure("dashboard.survey_rate", o["survey_rate"], "survey-rate"),
                    _figure("dashboard.residents", o["residents"], "residents"),
                    wrap="wrap", gap="3", width="100%",
                ),
                card(
                    rx.heading(rx.cond(DashboardState.selected_name != "",
                                       tf("dashboard.monthly_of", name=DashboardState.selected_name),
                                       t("dashboard.monthly_city")), as_="h2", size="5"),
                    rx.cond(DashboardState.months.length() > 0, _chart(),
                            rx.text(t("dashboard.no_data"), size="4")),
                    rx.cond(DashboardState.selected_id != "",
                            secondary_button("dashboard.show_city", on_click=DashboardState.select(""))),
                    id="dashboard-chart",
                ),
                rx.heading(t("dashboard.per_association"), as_="h2", size="5"),
                rx.hstack(rx.text(t("dashboard.sort"), size="3"),
                          _sort_button("dashboard.sort_name", "name"),
                          _sort_button("dashboard.sort_read", "read_rate"),
                          _sort_button("dashboard.sort_digital", "digital_share"),
                          spacing="2", wrap="wrap", align="center"),
                rx.box(
                    rx.table.root(
                        rx.table.header(rx.table.row(
                            *[rx.table.column_header_cell(t(k)) for k in (
                                "dashboard.association", "dashboard.households", "dashboard.member_households",
                                "dashboard.digital_share", "dashboard.circulars", "dashboard.read_rate",
                                "dashboard.confirm_rate", "dashboard.survey_rate")]
                        )),
                        rx.table.body(rx.foreach(DashboardState.rows, _row)),
                        size="2",
                        width="100%",
                        # Scroll sideways on a phone rather than squeezing the columns to one character.
                        min_width="760px",
                    ),
                    overflow_x="auto",
                    width="100%",
                    id="dashboard-table",
                ),
                pager(DashboardState.page, DashboardState.pages, DashboardState.prev_page, DashboardState.next_page),
                rx.text(t("dashboard.definitions"), size="2", color=rx.color("gray", 11)),
                width="100%",
                align="stretch",
            ),
        ),
        width="100%",
        align="stretch",
    )

