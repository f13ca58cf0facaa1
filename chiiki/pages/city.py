"""City administration: the area tree, associations with their counts (never member rows), first officers."""

from __future__ import annotations

import reflex as rx

from chiiki import routes
from chiiki.components.shell import register_nav, template
from chiiki.components.ui import (
    card,
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
from chiiki.i18n import t, tr
from chiiki.pages.association import actor_or_none, as_id, attempt
from chiiki.services import associations
from chiiki.services.associations import AREA_LEVELS
from chiiki.services.policy import Actor

register_nav("nav.city", routes.CITY, "is_city_staff")
PAGE = 20


class CityState(rx.State):
    # Public place and association details plus aggregate counts only (privacy rule 1: city staff see counts).
    allowed: bool = False
    areas: list[dict[str, str]] = []
    area_options: list[list[str]] = []
    level_options: list[list[str]] = []
    area_form: str = ""  # "" | new | edit
    area_edit: dict[str, str] = {}
    rows: list[dict[str, str]] = []
    total: int = 0
    pages: int = 0
    page: int = 1
    query: str = ""
    assoc_form: str = ""  # "" | new | edit | appoint
    assoc_edit: dict[str, str] = {}
    errors: dict[str, str] = {}
    error: str = ""
    notice: str = ""
    _area_ids: list[int] = []
    _row_ids: list[int] = []

    def _clear(self) -> None:
        self.allowed, self.areas, self.area_options, self.rows, self._area_ids, self._row_ids = False, [], [], [], [], []
        self.area_form, self.area_edit, self.assoc_form, self.assoc_edit = "", {}, "", {}
        self.total, self.pages, self.errors, self.error = 0, 0, {}, ""

    @rx.event
    async def load(self):
        actor, lang = await actor_or_none(self)
        self._clear()
        self.notice, self.page, self.query = "", 1, ""
        if actor is None:
            return rx.redirect(routes.LOGIN)
        await self._refresh(actor, lang)

    async def _relabel(self, actor: Actor, lang: str) -> None:
        """After a language switch (chiiki.state.relabel_page): the same search and page read again, with the
        area levels in `lang`; an open form stays open."""
        if self.allowed:
            await self._refresh(actor, lang)
            if self.area_edit:
                self.area_edit = next((a for a in self.areas if a["id"] == self.area_edit.get("id")), {})

    async def _refresh(self, actor: Actor, lang: str) -> None:
        ok, res, self.error, _ = await attempt(self, lang, associations.city_associations, actor, self.query, PAGE,
                                               (self.page - 1) * PAGE)
        self.allowed = ok
        if not ok:
            self._clear()
            self.error = tr(lang, "error.denied")
            return
        rows, self.total = res
        self.pages = -(-self.total // PAGE)
        self._row_ids = [r.id for r in rows]
        self.rows = [{
            "id": str(r.id), "name": r.name, "name_kana": r.name_kana, "area_id": str(r.area_id),
            "area": r.area_label, "description": r.description, "households": str(r.households),
            "members": _shown(r.member_accounts), "digital": _shown(r.digital_households),
            "paper": _shown(r.paper_only_households), "has_manager": "1" if r.has_manager else "",
            "has_president": "1" if r.has_president else "",
        } for r in rows]
        ok, items, _e, _ = await attempt(self, lang, associations.list_areas, actor)
        items = items if ok else []
        self._area_ids = [a.id for a in items]
        self.areas = [{"id": str(a.id), "name": a.name, "label": a.label, "level": a.level,
                       "level_label": tr(lang, "cityadmin.level." + a.level), "parent_id": str(a.parent_id or ""),
                       "indent": str(a.depth * 1.5) + "em"} for a in items]
        self.area_options = [[str(a.id), a.label] for a in items]
        self.level_options = [[lv, tr(lang, "cityadmin.level." + lv)] for lv in AREA_LEVELS]

    @rx.event
    async def search(self, form: dict):
        actor, lang = await actor_or_none(self)
        if actor is None:
            return rx.redirect(routes.LOGIN)
        if isinstance(form, dict) and isinstance(form.get("query", ""), str):
            self.query, self.page = form.get("query", "")[:100], 1
            await self._refresh(actor, lang)

    async def _turn(self, step: int):
        actor, lang = await actor_or_none(self)
        if actor is None:
            return rx.redirect(routes.LOGIN)
        self.page = min(max(1, self.page + step), max(1, self.pages))
        await self._refresh(actor, lang)

    @rx.event
    async def next_page(self):
        return await self._turn(1)

    @rx.event
    async def prev_page(self):
        return await self._turn(-1)

    @rx.event
    def open_area(self, area_id: str = ""):
        if not self.allowed:
            return
        aid = as_id(area_id)
        if area_id and aid not in self._area_ids:
            return
        self.area_form = "edit" if aid else "new"
        self.area_edit = next((a for a in self.areas if a["id"] == str(aid)), {}) if aid else {}
        self.errors, self.error = {}, ""

    @rx.event
    def open_association(self, mode: str, association_id: str = ""):
        if not self.allowed or mode not in ("new", "edit", "appoint", ""):
            return
        aid = as_id(association_id)
        if mode in ("edit", "appoint") and aid not in self._row_ids:
            return
        self.assoc_form, self.errors, self.error = mode, {}, ""
        self.assoc_edit = next((r for r in self.rows if r["id"] == str(aid)), {}) if aid else {}
        self.area_form = ""

    @rx.event
    def close_forms(self):
        self.area_form, self.assoc_form, self.area_edit, self.assoc_edit, self.errors = "", "", {}, {}, {}

    async def _submit(self, fn, *args, done_key: str):
        actor, lang = await actor_or_none(self)
        if actor is None:
            return rx.redirect(routes.LOGIN)
        ok, result, self.error, self.errors = await attempt(self, lang, fn, actor, *args)
        if ok:
            self.area_form, self.assoc_form, self.area_edit, self.assoc_edit = "", "", {}, {}
            self.notice = tr(lang, done_key, name=result if isinstance(result, str) else "")
            await self._refresh(actor, lang)

    @rx.event
    async def save_area(self, form: dict):
        if not isinstance(form, dict):
            return
        data = {k: form.get(k, "") for k in ("name", "level", "parent_id")}
        if self.area_form == "edit":
            return await self._submit(associations.update_area, as_id(self.area_edit.get("id", "")), data,
                                      done_key="cityadmin.area_saved")
        return await self._submit(associations.create_area, data, done_key="cityadmin.area_saved")

    @rx.event
    async def save_association(self, form: dict):
        if not isinstance(form, dict):
            return
        data = {k: form.get(k, "") for k in ("name", "name_kana", "area_id", "description")}
        if self.assoc_form == "edit":
            return await self._submit(associations.update_association, as_id(self.assoc_edit.get("id", "")), data,
                                      done_key="cityadmin.association_saved")
        return await self._submit(associations.create_association, data, done_key="cityadmin.association_saved")

    @rx.event
    async def appoint(self, form: dict):
        if not isinstance(form, dict) or self.assoc_form != "appoint":
            return
        return await self._submit(associations.appoint_first_officer, as_id(self.assoc_edit.get("id", "")),
                                  form.get("login_id", ""), done_key="cityadmin.appointed")


def _shown(count: int | None) -> str:
    """A count city staff may see, or — where the service withholds it (an association of a few households)."""
    return "—" if count is None else str(count)


def _err(name: str) -> rx.Var:
    return CityState.errors.get(name, "")


def _area_row(a: rx.Var) -> rx.Component:
    return rx.hstack(
        rx.text(a["name"], size="4", padding_left=a["indent"]),
        rx.badge(a["level_label"], size="2"),
        rx.spacer(),
        secondary_button("common.edit", on_click=CityState.open_area(a["id"])),
        width="100%", align="center", border_bottom="1px solid var(--gray-5)", padding_y="0.2em",
    )


def _area_form() -> rx.Component:
    e = CityState.area_edit
    return rx.form(
        text_field("cityadmin.area_name", "name", default_value=e.get("name", ""), error=_err("name"), required=True,
                   max_length=100),
        select_field("cityadmin.area_level", "level", CityState.level_options, default_value=e.get("level", "block"),
                     error=_err("level")),
        select_field("cityadmin.area_parent", "parent_id", CityState.area_options, default_value=e.get("parent_id", ""),
                     placeholder_key="cityadmin.no_parent", error=_err("parent_id")),
        rx.hstack(secondary_button("common.cancel", type="button", on_click=CityState.close_forms),
                  primary_button("mypage.save", type="submit", id="area-save"), spacing="3"),
        on_submit=CityState.save_area,
        key=e.get("id", "new"),
        id="area-form",
    )


def _areas() -> rx.Component:
    return card(
        rx.heading(t("cityadmin.areas"), as_="h2", size="5", margin_bottom="0.6em"),
        rx.cond(CityState.area_form != "", _area_form(),
                primary_button("cityadmin.new_area", on_click=CityState.open_area(""), id="area-new")),
        rx.foreach(CityState.areas, _area_row),
    )


def _count(key: str, value: rx.Var) -> rx.Component:
    return rx.vstack(rx.text(t(key), size="2", color=rx.color("gray", 11)), rx.text(value, size="5", weight="bold"),
                     spacing="0", min_width="6em")


def _association_row(r: rx.Var) -> rx.Component:
    return card(
        rx.hstack(rx.text(r["name"], size="5", weight="bold"), rx.text(r["area"], size="3",
                                                                        color=rx.color("gray", 11)),
                  wrap="wrap", align="center", spacing="3"),
        rx.hstack(_count("cityadmin.households", r["households"]), _count("cityadmin.members", r["members"]),
                  _count("cityadmin.digital", r["digital"]), _count("cityadmin.paper", r["paper"]), wrap="wrap", spacing="4",
                  margin_y="0.5em"),
        rx.cond(r["has_manager"] == "", rx.text(t("cityadmin.no_manager"), color=rx.color("orange", 11), size="3"),
                rx.cond(r["has_president"] == "",
                        rx.text(t("cityadmin.no_president"), color=rx.color("orange", 11), size="3"))),
        rx.hstack(
            secondary_button("common.edit", on_click=CityState.open_association("edit", r["id"])),
            rx.cond(r["has_president"] == "",
                    secondary_button("cityadmin.appoint", on_click=CityState.open_association("appoint", r["id"]))),
            spacing="3", wrap="wrap",
        ),
    )


def _association_form() -> rx.Component:
    e = CityState.assoc_edit
    return card(
        rx.form(
            text_field("cityadmin.association_name", "name", default_value=e.get("name", ""), error=_err("name"),
                       required=True, max_length=100),
            text_field("cityadmin.association_kana", "name_kana", default_value=e.get("name_kana", ""),
                       error=_err("name_kana"), required=True, max_length=200),
            select_field("field.area", "area_id", CityState.area_options, default_value=e.get("area_id", ""),
                         placeholder_key="field.area_choose", error=_err("area_id")),
            text_area("cityadmin.description", "description", default_value=e.get("description", ""),
                      error=_err("description"), max_length=2000, rows="4"),
            rx.hstack(secondary_button("common.cancel", type="button", on_click=CityState.close_forms),
                      primary_button("mypage.save", type="submit", id="association-save"), spacing="3"),
            on_submit=CityState.save_association,
            key=e.get("id", "new"),
        ),
        id="association-form",
    )


def _appoint_form() -> rx.Component:
    return card(
        rx.heading(t("cityadmin.appoint"), " — ", CityState.assoc_edit.get("name", ""), as_="h3", size="5",
                   margin_bottom="0.4em"),
        rx.text(t("cityadmin.appoint_help"), size="3", margin_bottom="0.6em"),
        rx.form(
            text_field("field.login_id", "login_id", error=_err("login_id"), required=True, max_length=254,
                       autocomplete="off"),
            rx.hstack(secondary_button("common.cancel", type="button", on_click=CityState.close_forms),
                      primary_button("cityadmin.appoint", type="submit", id="appoint-submit"), spacing="3"),
            on_submit=CityState.appoint,
        ),
        id="appoint-form",
    )


def _associations() -> rx.Component:
    return rx.vstack(
        rx.heading(t("cityadmin.associations"), as_="h2", size="5"),
        rx.text(t("cityadmin.counts_only"), size="3"),
        rx.match(CityState.assoc_form, ("new", _association_form()), ("edit", _association_form()),
                 ("appoint", _appoint_form()),
                 primary_button("cityadmin.new_association", on_click=CityState.open_association("new", ""),
                                id="association-new")),
        rx.form(
            text_field("cityadmin.search", "query", max_length=100),
            secondary_button("common.search", type="submit"),
            on_submit=CityState.search,
        ),
        rx.foreach(CityState.rows, _association_row),
        rx.cond(CityState.pages > 1, pager(CityState.page, CityState.pages, CityState.prev_page, CityState.next_page)),
        width="100%", align="stretch",
    )


@template(route=routes.CITY, title_key="cityadmin.title", on_load=[CityState.load])
def city_page() -> rx.Component:
    return rx.vstack(
        heading("cityadmin.title", help_key="help.city"),
        message(CityState.notice),
        error_banner(CityState.error),
        rx.cond(CityState.allowed, rx.vstack(_associations(), _areas(), width="100%", align="stretch")),
        width="100%", align="stretch",
    )
