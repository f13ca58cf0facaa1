"""The members' board (掲示板): thread list, one thread with its replies, and the moderators' reports queue."""

from __future__ import annotations

import dataclasses
from typing import Any

import reflex as rx

from chiiki import routes
from chiiki.components.shell import register_nav, template
from chiiki.components.ui import (
    BUTTON_STYLE,
    button,
    card,
    error_banner,
    heading,
    link_button,
    message,
    pager,
    primary_button,
    secondary_button,
    text_area,
    text_field,
)
from chiiki.i18n import fmt_dt, t, tf, tr
from chiiki.pages.association import as_id, attempt, attempt_read, my_association
from chiiki.services import board
from chiiki.state import current_actor, run_read

BOARD_MODERATION = routes.BOARD + "/moderation"
THREAD_ARG = "board_thread_id"
BOARD_THREAD = routes.BOARD + "/[" + THREAD_ARG + "]"

register_nav("nav.board", routes.BOARD, "is_member")
register_nav("board.moderation", BOARD_MODERATION, "can_moderate_board")


def thread_url(thread_id: int | rx.Var) -> Any:
    return routes.BOARD + "/" + (thread_id.to_string() if isinstance(thread_id, rx.Var) else str(thread_id))


# --------------------------------------------------------------------------- what the browser receives
# Plain values only, and only what the service let this viewer see (a hidden post's text reaches only
# its author and moderators; names are display names).


@dataclasses.dataclass
class Seg:
    kind: str = "text"
    text: str = ""
    href: str = ""


@dataclasses.dataclass
class PostRow:
    id: int = 0
    author: str = ""
    when: str = ""
    edited: bool = False
    opening: bool = False
    state: str = "visible"
    body: str = ""
    paras: list[list[Seg]] = dataclasses.field(default_factory=list)
    reason: str = ""
    mine: bool = False
    under_review: bool = False
    can_edit: bool = False
    can_delete: bool = False
    can_report: bool = False
    reported: bool = False
    can_hide: bool = False
    can_unhide: bool = False


@dataclasses.dataclass
class ReportRow:
    post_id: int = 0
    thread_id: int = 0
    thread_title: str = ""
    author: str = ""
    paras: list[list[Seg]] = dataclasses.field(default_factory=list)
    reports: list[dict[str, str]] = dataclasses.field(default_factory=list)


def _paras(paragraphs) -> list[list[Seg]]:
    return [[Seg(s.kind, s.text, s.href) for s in p] for p in paragraphs]


def _author(lang: str, name: str) -> str:
    return name or tr(lang, "board.member")


def _form_text(form: Any, name: str) -> Any:
    return form.get(name) if isinstance(form, dict) else None


async def _signed_in(state: Any) -> tuple[Any, str]:
    """The actor and language; a tab whose session ended loses everything the page showed."""
    actor, lang = await current_actor(state)
    if not actor.authenticated:
        state._clear()
    return actor, lang


async def _show(state: Any, page: int | None = None):
    """Load or turn the page of any board state: check the session first, then fetch from the service."""
    actor, lang = await _signed_in(state)
    if not actor.authenticated:
        return rx.redirect(routes.LOGIN)
    if page is not None:
        state.page = max(1, page)
        state._close_forms()
    await state._fetch(actor, lang)
    return None


async def _relabel(state: Any, actor, lang: str) -> None:
    """After a language switch (chiiki.state.relabel_page): the same page of any board state in `lang`; open
    forms and the message shown with them stay."""
    if state.loaded:
        shown = state.error
        await state._fetch(actor, lang)
        if state.loaded and not state.error:
            state.error = shown


# --------------------------------------------------------------------------- list page


class BoardState(rx.State):
    threads: list[dict[str, str]] = []
    page: int = 1
    pages: int = 1
    total: int = 0
    can_moderate: bool = False
    open_reports: int = 0
    show_form: bool = False
    errors: dict[str, str] = {}
    error: str = ""
    loaded: bool = False

    def _clear(self) -> None:
        self.threads, self.errors, self.error = [], {}, ""
        self.page, self.pages, self.total, self.open_reports = 1, 1, 0, 0
        self.can_moderate = self.loaded = self.show_form = False

    async def _relabel(self, actor, lang: str) -> None:
        await _relabel(self, actor, lang)

    async def _fetch(self, actor, lang: str) -> None:
        aid = my_association(actor)
        ok, result, self.error, _ = await attempt_read(self, lang, board.list_threads, actor, aid, self.page)
        if not ok:
            self.threads, self.loaded = [], False
            return
        self.page, self.pages, self.total = result.page, result.pages, result.total
        self.threads = [{
            "id": str(x.id), "state": x.state, "title": x.title, "author": _author(lang, x.author),
            "replies": str(x.replies), "last": fmt_dt(x.last_post_at, lang), "mine": "1" if x.mine else "",
        } for x in result.items]
        self.can_moderate = board.may_moderate(actor, aid)
        # Only a moderator has a reports queue: nobody else's page load makes a trip for it.
        self.open_reports = await run_read(board.open_report_count, actor, aid) if self.can_moderate else 0
        self.loaded = True

    def _close_forms(self) -> None:
        self.show_form = False

    @rx.event
    async def load(self):
        self._clear()
        return await _show(self)

    @rx.event
    async def next_page(self):
        return await _show(self, self.page + 1)

    @rx.event
    async def prev_page(self):
        return await _show(self, self.page - 1)

    @rx.event
    def toggle_form(self):
        self.show_form = not self.show_form
        self.errors, self.error = {}, ""

    @rx.event
    async def create(self, form: dict):
        actor, lang = await _signed_in(self)
        if not actor.authenticated:
            return rx.redirect(routes.LOGIN)
        ok, tid, self.error, self.errors = await attempt(
            self, lang, board.create_thread, actor, my_association(actor), _form_text(form, "title"),
            _form_text(form, "body"))
        if ok:
            self.show_form = False
            return rx.redirect(thread_url(tid))


def _thread_item(x: rx.Var) -> rx.Component:
    title = rx.match(
        x["state"],
        ("deleted", rx.text(t("board.deleted"), size="4", color=rx.color("gray", 11))),
        ("hidden", rx.cond(x["title"] != "",
                           rx.vstack(rx.text(x["title"], size="4", weight="bold"),
                                     rx.badge(t("board.hidden"), color_scheme="orange", size="2"), spacing="1"),
                           rx.text(t("board.hidden"), size="4", color=rx.color("gray", 11)))),
        rx.text(x["title"], size="4", weight="bold"),
    )
    return rx.link(
        card(
            title,
            rx.hstack(
                rx.cond(x["state"] != "deleted", rx.text(tf("board.by", name=x["author"]), size="3")),
                rx.text(tf("board.replies", n=x["replies"]), size="3"),
                rx.text(tf("board.last_activity", at=x["last"]), size="2", color=rx.color("gray", 11)),
                spacing="3", wrap="wrap", margin_top="0.4em",
            ),
        ),
        href=routes.BOARD + "/" + x["id"],
        underline="none",
        style={"display": "block", "color": "inherit"},
        class_name="board-thread",
    )


def _new_thread_form() -> rx.Component:
    return card(
        rx.form(
            text_field("board.field.title", "title", error=BoardState.errors.get("title", ""), required=True,
                       max_length=board.TITLE_MAX),
            rx.text(t("board.body_help"), size="2", color=rx.color("gray", 11), margin_bottom="0.3em"),
            text_area("board.field.body", "body", error=BoardState.errors.get("body", ""), required=True,
                      max_length=board.BODY_MAX, field_id="f-thread-body"),
            rx.hstack(
                secondary_button("board.cancel", type="button", on_click=BoardState.toggle_form),
                primary_button("board.post_thread", type="submit", id="thread-submit", flex="1"),
                width="100%",
            ),
            on_submit=BoardState.create,
            width="100%",
            id="new-thread-form",
        ),
    )


@template(route=routes.BOARD, title_key="board.title", on_load=[BoardState.load])
def board_page() -> rx.Component:
    return rx.vstack(
        heading("board.title"),
        error_banner(BoardState.error),
        rx.cond(
            BoardState.loaded,
            rx.vstack(
                rx.text(t("board.intro"), size="3"),
                rx.cond(BoardState.can_moderate,
                        rx.link(rx.button(t("board.moderation_link"), rx.cond(BoardState.open_reports > 0,
                                          rx.badge(BoardState.open_reports, color_scheme="red")),
                                          variant="outline", size="3", style={**BUTTON_STYLE, "width": "100%"}),
                                href=BOARD_MODERATION, id="to-moderation", style={"display": "block"})),
                rx.cond(BoardState.show_form, _new_thread_form(),
                        primary_button("board.new_thread", on_click=BoardState.toggle_form, id="new-thread")),
                rx.text(tf("board.total", total=BoardState.total), size="3", color=rx.color("gray", 11)),
                rx.cond(BoardState.threads.length() > 0,
                        rx.vstack(rx.foreach(BoardState.threads, _thread_item), width="100%", id="thread-list"),
                        rx.text(t("board.none"), size="4", id="thread-list-empty")),
                rx.cond(BoardState.pages > 1,
                        pager(BoardState.page, BoardState.pages, BoardState.prev_page, BoardState.next_page)),
                width="100%", align="stretch",
            ),
        ),
        width="100%", align="stretch",
    )



# --------------------------------------------------------------------------- one thread

_ACTIONS = ("edit", "delete", "report", "hide")


class ThreadState(rx.State):
    thread_id: int = 0
    title: str = ""
    title_state: str = "visible"
    posts: list[PostRow] = []
    page: int = 1
    pages: int = 1
    total: int = 0
    # The one post a small form is open for (edit, delete confirmation, report, hide), and which form.
    action: str = ""
    action_id: int = 0
    errors: dict[str, str] = {}  # the small form's fields
    reply_errors: dict[str, str] = {}  # the reply form's (both have a "body")
    error: str = ""
    notice: str = ""
    loaded: bool = False

    def _clear(self) -> None:
        self.thread_id, self.title, self.title_state, self.posts = 0, "", "visible", []
        self.page, self.pages, self.total = 1, 1, 0
        self.action, self.action_id = "", 0
        self.errors, self.reply_errors, self.error, self.notice, self.loaded = {}, {}, "", "", False

    async def _relabel(self, actor, lang: str) -> None:
        await _relabel(self, actor, lang)

    async def _fetch(self, actor, lang: str) -> None:
        ok, view, error, _ = await attempt(self, lang, board.get_thread, actor, self.thread_id, self.page)
        if not ok:
            keep = self.thread_id
            self._clear()
            # A malformed id in the address is simply a page that does not exist.
            self.thread_id, self.error = keep, error if keep else tr(lang, "error.not_found")
            return
        self.title, self.title_state = view.title, view.state
        self.page, self.pages, self.total = view.page, view.pages, view.total
        self.posts = [PostRow(
            id=p.id, author=_author(lang, p.author), when=fmt_dt(p.created_at, lang), edited=p.edited_at is not None,
            opening=p.opening, state=p.state, body=p.body if p.mine else "", paras=_paras(p.paragraphs),
            reason=p.hidden_reason, mine=p.mine, under_review=p.under_review, can_edit=p.can_edit,
            can_delete=p.can_delete, can_report=p.can_report, reported=p.reported_by_me, can_hide=p.can_hide,
            can_unhide=p.can_unhide,
        ) for p in view.posts]
        self.loaded = True

    def _close_forms(self) -> None:
        self.action, self.action_id = "", 0

    @rx.event
    async def load(self):
        self._clear()
        # The id is the last part of the URL (/board/<id>); the service checks it like any browser input.
        self.thread_id = as_id(str(self.router.url.path).rstrip("/").rsplit("/", 1)[-1])
        return await _show(self)

    @rx.event
    async def next_page(self):
        return await _show(self, self.page + 1)

    @rx.event
    async def prev_page(self):
        return await _show(self, self.page - 1)

    @rx.event
    def start(self, action: str, post_id: Any):
        """Open one small form under a post; the service re-checks everything when it is sent."""
        pid = as_id(post_id)
        if action not in _ACTIONS or not any(p.id == pid for p in self.posts):
            return
        self.action, self.action_id = action, pid
        self.errors, self.error, self.notice = {}, "", ""

    @rx.event
    def cancel(self):
        self.action, self.action_id, self.errors = "", 0, {}

    async def _run(self, fn, *args, done_key: str, page: int | None = None,
                   reply: bool = False) -> tuple[bool, Any]:
        """Call a board service for the open thread; on success refresh the page and say what happened. Field
        messages go under the reply form for a reply, else under the small form that is open.

        Returns (succeeded, event for the browser or None)."""
        actor, lang = await _signed_in(self)
        if not actor.authenticated:
            return False, rx.redirect(routes.LOGIN)
        ok, _r, self.error, errors = await attempt(self, lang, fn, actor, *args)
        if reply:
            self.reply_errors = errors
        else:
            self.errors = errors
        if not ok:
            return False, None
        self._close_forms()
        if page is not None:
            self.page = page
        await self._fetch(actor, lang)
        self.notice = tr(lang, done_key)
        return True, None

    @rx.event
    async def send_reply(self, form: dict):
        # The service clamps the page, so a huge number shows the last page, where the reply is.
        ok, event = await self._run(board.reply, self.thread_id, _form_text(form, "body"), done_key="board.posted",
                                    page=10**6, reply=True)
        return rx.set_value("f-reply-body", "") if ok else event

    @rx.event
    async def save_edit(self, form: dict):
        if self.action != "edit":
            return None
        opening = any(p.id == self.action_id and p.opening for p in self.posts)
        title = _form_text(form, "title") if opening else None
        return (await self._run(board.edit_post, self.action_id, _form_text(form, "body"), title,
                                done_key="board.saved"))[1]

    @rx.event
    async def confirm_delete(self):
        if self.action != "delete":
            return None
        return (await self._run(board.delete_post, self.action_id, done_key="board.deleted_done"))[1]

    @rx.event
    async def send_report(self, form: dict):
        if self.action != "report":
            return None
        return (await self._run(board.report_post, self.action_id, _form_text(form, "reason"),
                                done_key="board.reported"))[1]

    @rx.event
    async def send_hide(self, form: dict):
        if self.action != "hide":
            return None
        return (await self._run(board.hide_post, self.action_id, _form_text(form, "hide_reason"),
                                done_key="board.hidden_done"))[1]

    @rx.event
    async def unhide(self, post_id: Any):
        return (await self._run(board.unhide_post, as_id(post_id), done_key="board.unhidden_done"))[1]


def _segment(s: rx.Var) -> rx.Component:
    return rx.match(
        s.kind,
        ("br", rx.el.br()),
        ("link", rx.link(s.text, href=s.href, is_external=True, rel="nofollow noopener noreferrer ugc",
                         style={"word_break": "break-all"})),
        rx.text.span(s.text),
    )


def formatted(paras: rx.Var) -> rx.Component:
    """Paragraphs built element by element from plain pieces: user text is never parsed as HTML."""
    return rx.box(
        rx.foreach(paras, lambda p: rx.el.p(rx.foreach(p, _segment),
                                            style={"margin": "0 0 0.8em 0", "overflow_wrap": "anywhere"})),
        class_name="board-body",
        style={"font_size": "var(--font-size-4)", "line_height": "1.7"},
    )


def _small_button(key: str, **props) -> rx.Component:
    return button(t(key), size="3", variant="soft", style=BUTTON_STYLE, **props)


def _post_body(p: rx.Var) -> rx.Component:
    return rx.match(
        p.state,
        ("deleted", rx.text(t("board.deleted"), size="4", color=rx.color("gray", 11), class_name="post-deleted")),
        ("hidden", rx.cond(
            p.paras.length() > 0,
            rx.box(
                rx.callout(rx.cond(p.mine, tf("board.hidden_yours", reason=p.reason),
                                   tf("board.hidden_mod", reason=p.reason)),
                           color_scheme="orange", size="2", margin_bottom="0.6em", class_name="post-hidden-reason"),
                formatted(p.paras),
            ),
            rx.text(t("board.hidden"), size="4", color=rx.color("gray", 11), class_name="post-hidden"),
        )),
        formatted(p.paras),
    )


def _post_actions(p: rx.Var) -> rx.Component:
    return rx.hstack(
        rx.cond(p.can_edit, _small_button("board.edit", on_click=ThreadState.start("edit", p.id))),
        rx.cond(p.can_delete, _small_button("board.delete", color_scheme="red",
                                            on_click=ThreadState.start("delete", p.id))),
        rx.cond(p.can_report, _small_button("board.report", on_click=ThreadState.start("report", p.id),
                                            class_name="post-report")),
        rx.cond(p.reported, rx.badge(t("board.reported_already"), size="2")),
        rx.cond(p.under_review, rx.text(t("board.error.under_review"), size="3", color=rx.color("gray", 11),
                                        class_name="post-under-review")),
        rx.cond(p.can_hide, _small_button("board.hide", color_scheme="orange",
                                          on_click=ThreadState.start("hide", p.id), class_name="post-hide")),
        rx.cond(p.can_unhide, _small_button("board.unhide", on_click=ThreadState.unhide(p.id),
                                            class_name="post-unhide")),
        spacing="2", wrap="wrap", margin_top="0.4em",
    )


def _err(name: str) -> rx.Var:
    return ThreadState.errors.get(name, "")


def _form_buttons(submit_key: str, submit_id: str, **props) -> rx.Component:
    return rx.hstack(
        secondary_button("board.cancel", type="button", on_click=ThreadState.cancel),
        primary_button(submit_key, type="submit", id=submit_id, flex="1", **props),
        width="100%",
    )


def _post_form(p: rx.Var) -> rx.Component:
    open_ = ThreadState.action_id == p.id
    return rx.cond(open_, rx.match(
        ThreadState.action,
        ("edit", rx.form(
            rx.cond(p.opening, text_field("board.field.title", "title", default_value=ThreadState.title,
                                          error=_err("title"), required=True, max_length=board.TITLE_MAX,
                                          field_id="f-edit-title")),
            text_area("board.field.body", "body", default_value=p.body, error=_err("body"), required=True,
                      max_length=board.BODY_MAX, field_id="f-edit-body"),
            _form_buttons("board.save", "edit-submit"),
            on_submit=ThreadState.save_edit, width="100%",
        )),
        ("delete", rx.box(
            rx.text(t("board.delete_confirm"), size="4", margin_bottom="0.6em"),
            rx.hstack(
                secondary_button("board.cancel", on_click=ThreadState.cancel),
                button(t("board.delete_yes"), on_click=ThreadState.confirm_delete, color_scheme="red", size="3",
                          style=BUTTON_STYLE, id="delete-confirm"),
                spacing="3",
            ),
        )),
        ("report", rx.form(
            text_area("board.report_reason", "reason", error=_err("reason"), required=True,
                      max_length=board.REASON_MAX, rows="3", field_id="f-report-reason"),
            _form_buttons("board.report_send", "report-submit"),
            on_submit=ThreadState.send_report, width="100%",
        )),
        ("hide", rx.form(
            text_area("board.hide_reason", "hide_reason", error=_err("hide_reason"), required=True,
                      max_length=board.REASON_MAX, rows="3", field_id="f-hide-reason"),
            _form_buttons("board.hide_send", "hide-submit", color_scheme="orange"),
            on_submit=ThreadState.send_hide, width="100%",
        )),
        rx.fragment(),
    ))


def _post(p: rx.Var) -> rx.Component:
    return card(
        rx.hstack(
            rx.cond(p.state != "deleted", rx.text(tf("board.by", name=p.author), size="3", weight="bold")),
            rx.text(p.when, size="2", color=rx.color("gray", 11)),
            rx.cond(p.edited & (p.state != "deleted"), rx.text(t("board.edited"), size="2",
                                                               color=rx.color("gray", 11))),
            spacing="3", wrap="wrap", align="center", margin_bottom="0.4em",
        ),
        _post_body(p),
        _post_actions(p),
        _post_form(p),
        id="post-" + p.id.to_string(),
        class_name="board-post",
    )


def _thread_title() -> rx.Component:
    return rx.heading(
        rx.match(
            ThreadState.title_state,
            ("deleted", t("board.deleted")),
            ("hidden", rx.cond(ThreadState.title != "", ThreadState.title, t("board.hidden"))),
            ThreadState.title,
        ),
        as_="h1", size="7", margin_bottom="0.4em", id="thread-title",
    )


def _reply_form() -> rx.Component:
    return card(
        rx.heading(t("board.reply_heading"), as_="h2", size="5", margin_bottom="0.6em"),
        rx.form(
            rx.text(t("board.body_help"), size="2", color=rx.color("gray", 11), margin_bottom="0.3em"),
            text_area("board.field.body", "body", error=ThreadState.reply_errors.get("body", ""), required=True,
                      max_length=board.BODY_MAX, rows="4", field_id="f-reply-body"),
            primary_button("board.reply", type="submit", id="reply-submit", width="100%"),
            on_submit=ThreadState.send_reply, width="100%",
        ),
    )


def _reply_area() -> rx.Component:
    # The form only under a visible opening post: board.reply refuses a hidden or deleted thread.
    return rx.cond(ThreadState.title_state == "visible", _reply_form(),
                   rx.text(t("board.replies_closed"), size="3", color=rx.color("gray", 11), id="replies-closed"))


@template(route=BOARD_THREAD, title_key="board.thread_title", on_load=[ThreadState.load])
def thread_page() -> rx.Component:
    return rx.vstack(
        link_button("board.back", routes.BOARD, variant="ghost"),
        error_banner(ThreadState.error),
        rx.cond(
            ThreadState.loaded,
            rx.vstack(
                _thread_title(),
                message(ThreadState.notice),
                rx.vstack(rx.foreach(ThreadState.posts, _post), width="100%", id="post-list"),
                rx.cond(ThreadState.pages > 1,
                        pager(ThreadState.page, ThreadState.pages, ThreadState.prev_page, ThreadState.next_page)),
                _reply_area(),
                width="100%", align="stretch",
            ),
        ),
        width="100%", align="stretch",
    )


# --------------------------------------------------------------------------- reports queue (moderators)


class ModerationState(rx.State):
    items: list[ReportRow] = []
    page: int = 1
    pages: int = 1
    total: int = 0
    hiding_id: int = 0
    errors: dict[str, str] = {}
    error: str = ""
    notice: str = ""
    loaded: bool = False

    def _clear(self) -> None:
        self.items, self.page, self.pages, self.total, self.hiding_id = [], 1, 1, 0, 0
        self.errors, self.error, self.notice, self.loaded = {}, "", "", False

    async def _fetch(self, actor, lang: str) -> None:
        ok, q, error, _ = await attempt(self, lang, board.report_queue, actor, my_association(actor), self.page)
        if not ok:
            self._clear()
            self.error = error
            return
        self.page, self.pages, self.total = q.page, q.pages, q.total
        self.items = [ReportRow(
            post_id=i.post_id, thread_id=i.thread_id, thread_title=i.thread_title, author=_author(lang, i.author),
            paras=_paras(i.paragraphs),
            reports=[{"text": tr(lang, "board.reporter", name=_author(lang, r.reporter), reason=r.reason),
                      "at": fmt_dt(r.created_at, lang)} for r in i.reports],
        ) for i in q.items]
        self.loaded = True

    def _close_forms(self) -> None:
        self.hiding_id = 0

    @rx.event
    async def load(self):
        self._clear()
        return await _show(self)

    @rx.event
    async def next_page(self):
        return await _show(self, self.page + 1)

    @rx.event
    async def prev_page(self):
        return await _show(self, self.page - 1)

    @rx.event
    def start_hide(self, post_id: Any):
        pid = as_id(post_id)
        if any(i.post_id == pid for i in self.items):
            self.hiding_id, self.errors, self.notice = pid, {}, ""

    @rx.event
    def cancel(self):
        self.hiding_id, self.errors = 0, {}

    async def _resolve(self, post_id: int, action: str, reason: Any, done_key: str):
        actor, lang = await _signed_in(self)
        if not actor.authenticated:
            return rx.redirect(routes.LOGIN)
        ok, _r, self.error, self.errors = await attempt(self, lang, board.resolve_reports, actor, post_id, action,
                                                        reason)
        if ok:
            self.hiding_id = 0
            await self._fetch(actor, lang)
            self.notice = tr(lang, done_key)

    @rx.event
    async def send_hide(self, form: dict):
        if not self.hiding_id:
            return
        return await self._resolve(self.hiding_id, "hide", _form_text(form, "hide_reason"), "board.hidden_done")

    @rx.event
    async def dismiss(self, post_id: Any):
        pid = as_id(post_id)
        # A second tap arrives after the first one's refresh took the post off the queue: nothing left to do.
        if not any(i.post_id == pid for i in self.items):
            return None
        return await self._resolve(pid, "dismiss", "", "board.dismissed")


def _report_item(i: rx.Var) -> rx.Component:
    return card(
        rx.text(tf("board.in_thread", title=i.thread_title), size="3", color=rx.color("gray", 11)),
        rx.text(tf("board.by", name=i.author), size="3", weight="bold", margin_y="0.3em"),
        formatted(i.paras),
        rx.badge(tf("board.report_count", n=i.reports.length()), color_scheme="red", size="2"),
        rx.vstack(rx.foreach(i.reports, lambda r: rx.text(r["text"], " (", r["at"], ")", size="3")),
                  spacing="1", margin_y="0.5em"),
        rx.cond(
            ModerationState.hiding_id == i.post_id,
            rx.form(
                text_area("board.hide_reason", "hide_reason", error=ModerationState.errors.get("hide_reason", ""),
                          required=True, max_length=board.REASON_MAX, rows="3", field_id="f-queue-hide-reason"),
                rx.hstack(
                    secondary_button("board.cancel", type="button", on_click=ModerationState.cancel),
                    primary_button("board.hide_send", type="submit", color_scheme="orange", flex="1",
                                   id="queue-hide-submit"),
                    width="100%",
                ),
                on_submit=ModerationState.send_hide, width="100%",
            ),
            rx.hstack(
                _small_button("board.hide", color_scheme="orange", on_click=ModerationState.start_hide(i.post_id)),
                _small_button("board.dismiss", on_click=ModerationState.dismiss(i.post_id)),
                rx.link(_small_button("board.open_thread", tab_index=-1), href=routes.BOARD + "/" + i.thread_id.to_string()),
                spacing="2", wrap="wrap",
            ),
        ),
        class_name="report-item",
    )


@template(route=BOARD_MODERATION, title_key="board.moderation", on_load=[ModerationState.load])
def moderation_page() -> rx.Component:
    return rx.vstack(
        heading("board.moderation", help_key="board.moderation_intro"),
        link_button("board.back", routes.BOARD, variant="ghost"),
        message(ModerationState.notice),
        error_banner(ModerationState.error),
        rx.cond(
            ModerationState.loaded,
            rx.vstack(
                rx.cond(ModerationState.items.length() > 0,
                        rx.vstack(rx.foreach(ModerationState.items, _report_item), width="100%", id="report-list"),
                        rx.text(t("board.queue_none"), size="4", id="report-list-empty")),
                rx.cond(ModerationState.pages > 1, pager(ModerationState.page, ModerationState.pages,
                                                         ModerationState.prev_page, ModerationState.next_page)),
                width="100%", align="stretch",
            ),
        ),
        width="100%", align="stretch",
    )
