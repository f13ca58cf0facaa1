"""Membership administration for managers: join requests (approve into a household or reject), invite codes,
and recording that a member has left."""

from __future__ import annotations

import reflex as rx

from chiiki import routes
from chiiki.components.shell import register_nav, template
from chiiki.components.ui import (
    button,
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
from chiiki.i18n import fmt_dt, t, tf, tr
from chiiki.pages.association import actor_or_none, as_id, attempt, my_association
from chiiki.pages.officers import pick_members
from chiiki.services import membership, roster
from chiiki.services.policy import MANAGE_MEMBERS, Actor, han_scope
from chiiki.state import refresh_badges, run_service

register_nav("nav.members_admin", routes.MEMBERS_ADMIN, "can_manage_members", badge="pending_requests")
PAGE = 10


class MembersAdminState(rx.State):
    # Applicants' name/kana/address only for whole-association managers, audited by the service on each load.
    whole: bool = False
    allowed: bool = False
    requests: list[dict[str, str]] = []
    request_total: int = 0
    request_pages: int = 0
    request_page: int = 1
    deciding: int = 0
    deciding_label: str = ""
    deciding_address: str = ""  # the applicant's address (this officer sees it in the request above)
    households: list[list[str]] = []
    han_options: list[list[str]] = []
    invites: list[dict[str, str]] = []
    new_code: str = ""
    new_link: str = ""
    member_options: list[list[str]] = []
    # The member picked in the end form, shown for a second tap: one tap must not remove someone.
    ending: str = ""
    ending_label: str = ""
    errors: dict[str, str] = {}
    error: str = ""
    notice: str = ""
    _request_ids: list[int] = []

    def _clear(self) -> None:
        self.whole = self.allowed = False
        self.requests, self._request_ids, self.request_total, self.request_pages = [], [], 0, 0
        self.deciding, self.deciding_label, self.households, self.deciding_address = 0, "", [], ""
        self.invites, self.new_code, self.new_link, self.member_options = [], "", "", []
        self.ending = self.ending_label = ""
        self.errors, self.error = {}, ""

    @rx.event
    async def load(self):
        actor, lang = await actor_or_none(self)
        self._clear()
        self.notice, self.request_page = "", 1
        if actor is None:
            return rx.redirect(routes.LOGIN)
        aid = my_association(actor)
        scope = han_scope(actor, MANAGE_MEMBERS, aid) if aid else frozenset()
        if not scope:
            self.error = tr(lang, "error.denied")
            return
        # Join requests carry the applicants' names and addresses: only for those who decide them.
        self.allowed, self.whole = True, membership.may_decide(actor, aid)
        # The han the officer may invite to (manage_members' scope), names only.
        self.han_options = [[str(i), n] for i, n in await run_service(roster.han_choices, actor, aid)]
        await self._refresh(actor, lang)

    async def _refresh(self, actor: Actor, lang: str) -> None:
        aid = my_association(actor)
        if self.whole:
            ok, res, self.error, _ = await attempt(self, lang, membership.pending_requests, actor, aid, PAGE,
                                                   (self.request_page - 1) * PAGE)
            rows, self.request_total = res if ok else ([], 0)
            self.request_pages = -(-self.request_total // PAGE)
            self._request_ids = [r.membership_id for r in rows]
            self.requests = [{"id": str(r.membership_id), "name": r.name, "kana": r.kana, "address": r.address,
                              "message": r.message, "at": fmt_dt(r.requested_at, lang)} for r in rows]
        ok, res, err, _ = await attempt(self, lang, membership.list_invites, actor, aid)
        self.error = self.error or err
        self.invites = [{"id": str(i.id), "han": i.han_name, "household": i.household_address,
                         "expires": fmt_dt(i.expires_at, lang), "uses": f"{i.uses} / {i.max_uses}",
                         "state": i.state} for i in (res[0] if ok else [])]

    async def _turn(self, step: int):
        actor, lang = await actor_or_none(self)
        if actor is None:
            return rx.redirect(routes.LOGIN)
        self.request_page = min(max(1, self.request_page + step), max(1, self.request_pages))
        await self._refresh(actor, lang)

    @rx.event
    async def next_page(self):
        return await self._turn(1)

    @rx.event
    async def prev_page(self):
        return await self._turn(-1)

    @rx.event
    async def start_decide(self, membership_id: str):
        actor, lang = await actor_or_none(self)
        if actor is None:
            return rx.redirect(routes.LOGIN)
        mid = as_id(membership_id)
        if mid not in self._request_ids:
            return
        row = next(r for r in self.requests if r["id"] == str(mid))
        self.deciding, self.deciding_label, self.errors, self.error = mid, f'{row["name"]} — {row["address"]}', {}, ""
        self.deciding_address = row["address"]  # a new household's address, to start from (shown just above)
        # Suggest the households at the applicant's address first (often their paper-only household).
        await self._find_households(actor, lang, row["address"])

    async def _find_households(self, actor: Actor, lang: str, query: object) -> None:
        ok, opts, self.error, self.errors = await attempt(self, lang, membership.household_options, actor,
                                                          my_association(actor), query)
        self.households = [[str(o.id), tr(lang, "members.household_option", address=o.address, han=o.han_name or "-",
                                          paper=tr(lang, "members.paper") if o.paper_only else "")]
                           for o in opts] if ok else []

    @rx.event
    async def find_households(self, form: dict):
        actor, lang = await actor_or_none(self)
        if actor is None:
            return rx.redirect(routes.LOGIN)
        if isinstance(form, dict) and self.deciding:
            await self._find_households(actor, lang, form.get("household_query", ""))

    @rx.event
    def stop_decide(self):
        self.deciding, self.deciding_label, self.households, self.errors = 0, "", [], {}
        self.deciding_address = ""

    @rx.event
    async def approve(self, form: dict):
        actor, lang = await actor_or_none(self)
        if actor is None:
            return rx.redirect(routes.LOGIN)
        if not isinstance(form, dict) or not self.deciding:
            return
        choice = {k: form.get(k, "") for k in ("household_id", "address", "han_id")}
        ok, _r, self.error, self.errors = await attempt(self, lang, membership.approve, actor, self.deciding, choice)
        if ok:
            await self._decided(actor, lang, "members.approved")

    @rx.event
    async def reject(self, form: dict):
        actor, lang = await actor_or_none(self)
        if actor is None:
            return rx.redirect(routes.LOGIN)
        if not isinstance(form, dict) or not self.deciding:
            return
        ok, _r, self.error, self.errors = await attempt(self, lang, membership.reject, actor, self.deciding,
                                                        form.get("reason", ""))
        if ok:
            await self._decided(actor, lang, "members.rejected")

    async def _decided(self, actor: Actor, lang: str, key: str) -> None:
        self.deciding, self.deciding_label, self.households, self.errors = 0, "", [], {}
        self.deciding_address = ""
        self.notice = tr(lang, key)
        await self._refresh(actor, lang)
        await refresh_badges(self, actor)  # one request fewer waiting

    @rx.event
    async def create_invite(self, form: dict):
        actor, lang = await actor_or_none(self)
        if actor is None:
            return rx.redirect(routes.LOGIN)
        if not isinstance(form, dict):
            return
        data = {k: form.get(k, "") for k in ("days", "max_uses", "han_id")}
        ok, inv, self.error, self.errors = await attempt(self, lang, membership.create_invite, actor,
                                                         my_association(actor), data)
        if ok:
            # Shown once, to this officer only; it is not kept anywhere else in readable form.
            self.new_code, self.new_link = inv.code, inv.link
            await self._refresh(actor, lang)

    @rx.event
    def hide_code(self):
        self.new_code = self.new_link = ""

    @rx.event
    async def revoke_invite(self, invite_id: str):
        actor, lang = await actor_or_none(self)
        if actor is None:
            return rx.redirect(routes.LOGIN)
        ok, _r, self.error, _ = await attempt(self, lang, membership.revoke_invite, actor, as_id(invite_id))
        if ok:
            self.notice = tr(lang, "members.invite_revoked")
            await self._refresh(actor, lang)

    @rx.event
    async def find_members(self, form: dict):
        actor, lang = await actor_or_none(self)
        if actor is None:
            return rx.redirect(routes.LOGIN)
        if not isinstance(form, dict):
            return
        self.ending = self.ending_label = ""
        await pick_members(self, actor, lang, form)

    @rx.event
    async def ask_end(self, form: dict):
        """The first tap: which member, asked again before anything is written (only one the search listed)."""
        actor, _lang = await actor_or_none(self)
        if actor is None:
            return rx.redirect(routes.LOGIN)
        if not isinstance(form, dict):
            return
        picked = form.get("end_membership_id", "")
        label = next((o[1] for o in self.member_options if o[0] == picked), None) if isinstance(picked, str) else None
        if label is not None:
            self.ending, self.ending_label, self.errors = picked, label, {}

    @rx.event
    def keep_member(self):
        self.ending = self.ending_label = ""

    @rx.event
    async def end_membership(self, form: dict):
        actor, lang = await actor_or_none(self)
        if actor is None:
            return rx.redirect(routes.LOGIN)
        if not isinstance(form, dict) or not self.ending or form.get("end_membership_id") != self.ending:
            return  # only the member the officer was asked about and confirmed (ask_end)
        ok, _r, self.error, self.errors = await attempt(self, lang, membership.end_membership, actor, self.ending)
        self.ending = self.ending_label = ""
        if ok:
            self.member_options = []
            self.notice = tr(lang, "members.ended")


def _err(name: str) -> rx.Var:
    return MembersAdminState.errors.get(name, "")


def _request(r: rx.Var) -> rx.Component:
    return card(
        rx.text(r["name"], " (", r["kana"], ")", size="5", weight="bold"),
        rx.text(r["address"], size="4"),
        rx.text(r["at"], size="2", color=rx.color("gray", 11)),
        rx.cond(r["message"] != "", rx.text(r["message"], size="3", white_space="pre-wrap")),
        secondary_button("members.decide", on_click=MembersAdminState.start_decide(r["id"]), margin_top="0.5em"),
    )


def _decide_form() -> rx.Component:
    return card(
        rx.heading(t("members.decide"), as_="h3", size="5", margin_bottom="0.4em"),
        rx.text(MembersAdminState.deciding_label, size="4", weight="bold", margin_bottom="0.6em"),
        rx.form(
            text_field("members.household_query", "household_query", max_length=200),
            secondary_button("common.search", type="submit"),
            on_submit=MembersAdminState.find_households,
            margin_bottom="1em",
        ),
        rx.form(
            select_field("members.household", "household_id", MembersAdminState.households,
                         placeholder_key="members.new_household", error=_err("household_id")),
            rx.text(t("members.new_household_help"), size="3", margin_bottom="0.5em"),
            text_field("field.address", "address", default_value=MembersAdminState.deciding_address,
                       error=_err("address"), max_length=200),
            select_field("members.han", "han_id", MembersAdminState.han_options, placeholder_key="members.pick_han",
                         error=_err("han_id")),
            primary_button("members.approve", type="submit", id="approve-submit"),
            on_submit=MembersAdminState.approve,
            key=MembersAdminState.deciding,  # a fresh form (its address) for each request
            margin_bottom="1.5em",
        ),
        rx.form(
            text_area("members.reason", "reason", error=_err("reason"), max_length=500, rows="3"),
            rx.hstack(
                secondary_button("common.cancel", type="button", on_click=MembersAdminState.stop_decide),
                button(t("members.reject"), type="submit", color_scheme="red", variant="outline", size="3",
                          style={"min_height": "48px"}, id="reject-submit"),
                spacing="3",
            ),
            on_submit=MembersAdminState.reject,
        ),
        id="decide-form",
    )


def _requests() -> rx.Component:
    return card(
        rx.heading(t("members.requests"), as_="h2", size="5", margin_bottom="0.6em"),
        rx.text(t("members.requests_audit"), size="2", color=rx.color("gray", 11), margin_bottom="0.6em"),
        rx.cond(
            MembersAdminState.deciding > 0,
            _decide_form(),
            rx.fragment(
                rx.cond(MembersAdminState.request_total == 0, rx.text(t("members.no_requests"), size="4")),
                rx.foreach(MembersAdminState.requests, _request),
                rx.cond(MembersAdminState.request_pages > 1,
                        pager(MembersAdminState.request_page, MembersAdminState.request_pages,
                              MembersAdminState.prev_page, MembersAdminState.next_page)),
            ),
        ),
    )


def _invite(i: rx.Var) -> rx.Component:
    return rx.hstack(
        rx.vstack(
            rx.text(rx.cond(i["han"] != "", i["han"], t("officer.whole")), " ", i["household"], size="3"),
            rx.text(t("members.expires"), ": ", i["expires"], " / ", t("members.uses"), ": ", i["uses"], size="2"),
            spacing="0",
        ),
        rx.spacer(),
        rx.match(
            i["state"],
            ("open", button(t("members.revoke_invite"), on_click=MembersAdminState.revoke_invite(i["id"]),
                               variant="outline", color_scheme="red", size="3", style={"min_height": "48px"})),
            rx.badge(rx.match(i["state"], ("used", t("members.invite_used")), ("expired", t("members.invite_expired")),
                              t("members.invite_revoked_state")), size="2"),
        ),
        width="100%", align="center", padding_y="0.4em", border_bottom="1px solid var(--gray-5)",
    )


def _invites() -> rx.Component:
    return card(
        rx.heading(t("members.invites"), as_="h2", size="5", margin_bottom="0.6em"),
        rx.cond(
            MembersAdminState.new_code != "",
            rx.callout(
                rx.vstack(
                    rx.text(t("members.code_once"), size="3"),
                    rx.text(MembersAdminState.new_code, size="7", weight="bold", id="new-invite-code",
                            style={"letter_spacing": "0.1em"}),
                    rx.text(MembersAdminState.new_link, size="3", id="new-invite-link", style={"word_break": "break-all"}),
                    secondary_button("common.close", on_click=MembersAdminState.hide_code),
                ),
                color_scheme="green", size="2", margin_bottom="1em",
            ),
        ),
        rx.form(
            text_field("members.days", "days", default_value="14", input_mode="numeric", error=_err("days"),
                       max_length=3),
            text_field("members.max_uses", "max_uses", default_value="1", input_mode="numeric",
                       error=_err("max_uses"), max_length=3),
            select_field("members.han", "han_id", MembersAdminState.han_options,
                         placeholder_key="officer.whole", error=_err("han_id")),
            rx.cond(MembersAdminState.whole,
                    rx.text(t("members.invite_whole_help"), size="3", margin_bottom="0.5em")),
            primary_button("members.create_invite", type="submit", id="create-invite"),
            on_submit=MembersAdminState.create_invite,
        ),
        rx.foreach(MembersAdminState.invites, _invite),
    )


def _end() -> rx.Component:
    return card(
        rx.heading(t("members.end_title"), as_="h2", size="5", margin_bottom="0.6em"),
        rx.text(t("members.end_help"), size="3", margin_bottom="0.6em"),
        rx.form(
            text_field("officer.member_query", "member_query", max_length=100, help_key="officer.member_query_help"),
            secondary_button("common.search", type="submit"),
            on_submit=MembersAdminState.find_members,
            margin_bottom="1em",
        ),
        rx.cond(
            MembersAdminState.ending != "",
            rx.form(
                rx.text(tf("members.end_confirm", name=MembersAdminState.ending_label), size="4", weight="bold"),
                rx.text(t("members.end_confirm_help"), size="3", margin_bottom="0.6em"),
                rx.el.input(type="hidden", name="end_membership_id", value=MembersAdminState.ending),
                rx.hstack(
                    secondary_button("common.cancel", type="button", on_click=MembersAdminState.keep_member),
                    button(t("members.end_yes"), type="submit", color_scheme="red", size="3",
                           style={"min_height": "48px"}, id="end-confirm"),
                    spacing="3", wrap="wrap",
                ),
                on_submit=MembersAdminState.end_membership,
                id="end-confirm-form",
            ),
            rx.cond(
                MembersAdminState.member_options.length() > 0,
                rx.form(
                    select_field("officer.holder", "end_membership_id", MembersAdminState.member_options,
                                 placeholder_key="officer.pick", error=_err("membership_id")),
                    button(t("members.end"), type="submit", color_scheme="red", size="3",
                           style={"min_height": "48px"}, id="end-ask"),
                    on_submit=MembersAdminState.ask_end,
                ),
            ),
        ),
    )


@template(route=routes.MEMBERS_ADMIN, title_key="members.title", on_load=[MembersAdminState.load])
def members_admin_page() -> rx.Component:
    return rx.vstack(
        heading("members.title", help_key="help.members_admin"),
        message(MembersAdminState.notice),
        error_banner(MembersAdminState.error),
        rx.cond(
            MembersAdminState.allowed,
            rx.vstack(
                rx.cond(MembersAdminState.whole, _requests()),
                _invites(),
                _end(),
                width="100%", align="stretch",
            ),
        ),
        width="100%", align="stretch",
    )
