"""City notices: the resident's feed (only what is meant for them) and the city staff's editor, with attachments."""

from __future__ import annotations

import re

import reflex as rx

from chiiki import routes
from chiiki.api import NOTICE_ATTACHMENT_PATH
from chiiki.components.shell import register_nav, template
from chiiki.components.ui import (
    button,
    card,
    checkbox_field,
    error_banner,
    field_error,
    heading,
    link_button,
    message,
    pager,
    primary_button,
    secondary_button,
    text_area,
    text_field,
)
from chiiki.i18n import STRINGS, fmt_dt, t, tf, tr
from chiiki.pages.circulars import BACKEND_ORIGIN, body_view
from chiiki.pages.officers import until_text
from chiiki.services import attachments, notices
from chiiki.services.errors import ServiceError
from chiiki.services.markup import Block
from chiiki.services.policy import CITY_ADMIN, can
from chiiki.state import (FileDrop, UIState, current_actor, error_text, field_errors, receive_uploads, run_read,
                          run_service)

NOTICE_ADMIN = "/notices/admin"
PAGE_SIZE = 20
UPLOAD_ID = "notice-files"
# What the file chooser offers; the server decides by the content (chiiki.services.attachments.sniff).
ACCEPT = {"application/pdf": [".pdf"], "image/png": [".png"], "image/jpeg": [".jpg", ".jpeg"],
          "image/gif": [".gif"], "image/webp": [".webp"]}
# Form fields the editor sends; area and band checkboxes are named area_<id> and band_<name>.
_FIELDS = ("title", "body", "publish_from_date", "publish_from_time", "publish_until_date", "publish_until_time",
           "urgent", "everyone")

register_nav("nav.notices", routes.NOTICES, "logged_in")
register_nav("notice.nav_admin", NOTICE_ADMIN, "is_city_staff")


def _pages(total: int) -> int:
    return max(1, -(-total // PAGE_SIZE))


def text_var(key: str, **params: rx.Var) -> rx.Var:
    """Like tf(), but a plain string Var, for attributes such as aria-label where a component is not text."""
    def build(text: str) -> rx.Var:
        out = rx.Var.create("")
        for piece in re.split(r"(\{\w+\})", text):
            if piece.startswith("{") and piece.endswith("}") and piece[1:-1] in params:
                out = out + params[piece[1:-1]].to(str)
            elif piece:
                out = out + piece
        return out

    ja, en = STRINGS[key]
    return rx.cond(UIState.lang == "en", build(en), build(ja))


def file_rows(items) -> list[dict[str, str]]:
    """Attachments as links to the private route, which checks again who may open them."""
    return [{"id": str(f.id), "name": f.filename, "size": str(max(1, round(f.size / 1024))),
             "path": f"{NOTICE_ATTACHMENT_PATH}/{f.id}"} for f in items]


def _file_link(f: rx.Var) -> rx.Component:
    return rx.el.a(
        rx.hstack(rx.icon("paperclip", size=20, aria_hidden="true"), rx.text(f["name"], size="4"),
                  rx.text(tf("notice.file_size", size=f["size"]), size="2", color=rx.color("gray", 11)),
                  align="center", spacing="2"),
        href=BACKEND_ORIGIN + f["path"], target="_blank", rel="noopener",
        aria_label=text_var("notice.open_file", name=f["name"]),
        class_name="notice-attachment",
        style={"display": "flex", "min_height": "48px", "align_items": "center", "color": "var(--accent-11)",
               "overflow_wrap": "anywhere"},
    )


def _file_list(files: rx.Var, **props) -> rx.Component:
    return rx.box(
        rx.heading(t("notice.attachments"), as_="h3", size="4", margin_bottom="0.2em"),
        rx.foreach(files, _file_link),
        width="100%", **props,
    )


def files_view(files: rx.Var, **props) -> rx.Component:
    """The attachments of one notice, as links (nothing when there are none)."""
    return rx.cond(files.length() > 0, _file_list(files, **props))


class NoticeFeedState(rx.State):
    """One resident's notices: what the policy and the targeting rule chose for them, nothing else."""

    items: list[dict[str, str]] = []
    total: int = 0
    unread: int = 0
    page: int = 1
    open_id: str = ""
    open_blocks: list[Block] = []
    open_files: list[dict[str, str]] = []
    error: str = ""
    loaded: bool = False  # "no notices" only once they were read (not in the page before it loads)
    _bodies: dict[str, list[Block]] = {}
    _files: dict[str, list[dict[str, str]]] = {}

    @rx.event
    async def load(self):
        actor, lang = await current_actor(self)
        if not actor.authenticated:
            return rx.redirect(routes.LOGIN)
        self.page = 1
        await self._fetch(actor, lang)

    async def _relabel(self, actor, lang: str) -> None:
        """After a language switch (chiiki.state.relabel_page): the same page in `lang`, the open notice kept open."""
        keep = self.open_id
        await self._fetch(actor, lang)
        if keep in self._bodies:
            self.open_id, self.open_blocks, self.open_files = keep, self._bodies[keep], self._files[keep]

    async def _fetch(self, actor, lang: str) -> None:
        self.open_id, self.open_blocks, self.open_files, self.error = "", [], [], ""
        self.loaded = True
        try:
            f = await run_read(notices.feed, actor, PAGE_SIZE, (self.page - 1) * PAGE_SIZE)
        except ServiceError as e:
            self.items, self.total, self.unread, self._bodies, self._files = [], 0, 0, {}, {}
            self.error = error_text(lang, e)
            return
        self.total, self.unread = f.total, f.unread
        self.items = [{"id": str(i.id), "title": i.title, "date": fmt_dt(i.publish_from, lang, with_time=False),
                       "urgent": "1" if i.urgent else "", "read": "1" if i.read else "",
                       "files": str(len(i.attachments))} for i in f.items]
        self._bodies = {str(i.id): i.blocks for i in f.items}
        self._files = {str(i.id): file_rows(i.attachments) for i in f.items}

    @rx.event
    async def toggle(self, notice_id: str, want_open: bool | None = None):
        """Open a notice (marking it read) or close it. The button sends what its tap meant (its label then):
        a double tap on 読む opens it once, instead of opening and closing it."""
        actor, lang = await current_actor(self)
        if not actor.authenticated:
            return rx.redirect(routes.LOGIN)
        key = str(notice_id)
        opening = self.open_id != key if want_open is None else want_open is True
        if not opening:
            if self.open_id == key:
                self.open_id, self.open_blocks, self.open_files = "", [], []
            return None
        if self.open_id == key:
            return None  # open already: a second tap
        if key not in self._bodies:  # not a notice of this page: nothing opens
            self.open_id, self.open_blocks, self.open_files = "", [], []
            return None
        try:
            await run_service(notices.mark_read, actor, key)
        except ServiceError as e:
            self.error = error_text(lang, e)
            return
        self.open_id, self.open_blocks, self.open_files = key, self._bodies[key], self._files.get(key, [])
        for item in self.items:
            if item["id"] == key and not item["read"]:
                item["read"] = "1"
                self.unread = max(0, self.unread - 1)
        self.items = list(self.items)

    @rx.event
    async def next_page(self):
        actor, lang = await current_actor(self)
        if not actor.authenticated:
            return rx.redirect(routes.LOGIN)
        if self.page < _pages(self.total):
            self.page += 1
            await self._fetch(actor, lang)

    @rx.event
    async def prev_page(self):
        actor, lang = await current_actor(self)
        if not actor.authenticated:
            return rx.redirect(routes.LOGIN)
        if self.page > 1:
            self.page -= 1
            await self._fetch(actor, lang)

    @rx.var
    def pages(self) -> int:
        return _pages(self.total)


def _feed_item(item: rx.Var) -> rx.Component:
    return card(
        rx.hstack(
            rx.cond(item["urgent"] != "", rx.badge(t("notice.urgent"), color_scheme="red", size="3")),
            rx.cond(item["read"] == "", rx.badge(t("notice.unread"), color_scheme="blue", size="3")),
            rx.cond(item["files"] != "0", rx.badge(rx.icon("paperclip", size=14, aria_hidden="true"),
                                                    t("notice.has_files"), color_scheme="gray", size="3")),
            rx.text(item["date"], size="3", color=rx.color("gray", 11)),
            spacing="2",
            align="center",
            wrap="wrap",
        ),
        rx.heading(item["title"], as_="h2", size="5", margin_y="0.4em"),
        button(rx.cond(NoticeFeedState.open_id == item["id"], t("notice.close"), t("notice.open")),
                  on_click=NoticeFeedState.toggle(item["id"], NoticeFeedState.open_id != item["id"]), size="3",
                  variant="outline",
                  aria_expanded=rx.cond(NoticeFeedState.open_id == item["id"], "true", "false"),
                  style={"min_height": "48px"}, id="notice-open-" + item["id"]),
        rx.cond(NoticeFeedState.open_id == item["id"],
                rx.box(body_view(NoticeFeedState.open_blocks, margin_top="0.8em"),
                       files_view(NoticeFeedState.open_files, margin_top="0.4em"), width="100%")),
        border_left=rx.cond(item["urgent"] != "", "6px solid var(--red-9)", "none"),
    )


@template(route=routes.NOTICES, title_key="nav.notices", on_load=[NoticeFeedState.load])
def notices_page() -> rx.Component:
    return rx.vstack(
        heading("nav.notices"),
        error_banner(NoticeFeedState.error),
        rx.cond(NoticeFeedState.unread > 0, rx.text(tf("notice.unread_count", n=NoticeFeedState.unread), size="4")),
        rx.cond(
            NoticeFeedState.items.length() > 0,
            rx.vstack(rx.foreach(NoticeFeedState.items, _feed_item), width="100%", id="notice-feed"),
            rx.cond(NoticeFeedState.loaded, rx.text(t("notice.none"), size="4", id="notice-feed-empty")),
        ),
        rx.cond(NoticeFeedState.pages > 1,
                pager(NoticeFeedState.page, NoticeFeedState.pages, NoticeFeedState.prev_page,
                      NoticeFeedState.next_page)),
        width="100%",
        align="stretch",
    )


# --------------------------------------------------------------------------- city staff: the editor


def _draft_of(form: dict) -> dict:
    data = {k: form.get(k) for k in _FIELDS}
    data["area_ids"] = [k[len("area_"):] for k, v in form.items()
                        if isinstance(k, str) and k.startswith("area_") and v in ("on", True, "true")]
    data["bands"] = [k[len("band_"):] for k, v in form.items()
                     if isinstance(k, str) and k.startswith("band_") and v in ("on", True, "true")]
    return data


class NoticeAdminState(FileDrop, rx.State):
    """City staff only: the editor (with the reach count before publishing) and the list of notices."""

    area_options: list[list[str]] = []
    errors: dict[str, str] = {}
    error: str = ""
    notice: str = ""
    confirming: bool = False
    form_key: int = 0
    confirm_title: str = ""
    confirm_reach: str = ""  # "about 15" / "0" in the chosen language (notices.shown_count)
    confirm_reach_few: bool = False  # 1 to SMALL_GROUP - 1: shown as "fewer than", never the number
    rows: list[dict[str, str]] = []
    row_files: dict[str, list[dict[str, str]]] = {}
    total: int = 0
    page: int = 1
    # The staff member's own uploads for the notice being written (linked when it is published).
    files: list[dict[str, str]] = []
    file_error: str = ""
    _draft: dict = {}
    # What the counted draft reaches and what the last publish said, for a language switch (_relabel).
    _reach: int = 0
    _published: list[int] = []  # [reach, mailed] while notice says the notice was published

    async def _staff(self):
        actor, lang = await current_actor(self)
        if not actor.authenticated:
            return None, lang, rx.redirect(routes.LOGIN)
        if not can(actor, CITY_ADMIN):
            self._clear()
            self.error = tr(lang, "error.denied")
            return None, lang, None
        return actor, lang, None

    def _clear(self) -> None:
        self.area_options, self.rows, self.row_files, self.total, self._draft = [], [], {}, 0, {}
        self.confirming, self.confirm_title, self.confirm_reach, self.confirm_reach_few = False, "", "", False
        self.files, self.file_error = [], ""

    def _file_ids(self) -> list[str]:
        return [f["id"] for f in self.files]

    @rx.event
    async def load(self):
        actor, lang, redirect = await self._staff()
        if actor is None:
            return redirect
        self.errors, self.error, self.notice, self._published, self.page = {}, "", "", [], 1
        # Uploads left from an earlier visit are not shown again; the orphan job removes them.
        self.confirming, self.files, self.file_error = False, [], ""
        self.area_options = [[str(i), label, str(depth)]
                             for i, label, depth in await run_service(notices.area_choices, actor)]
        await self._fetch(actor, lang)

    async def _relabel(self, actor, lang: str) -> None:
        """After a language switch (chiiki.state.relabel_page): the same page of notices in `lang`, and the
        counted draft's reach and the publish message; the draft being written stays."""
        if not can(actor, CITY_ADMIN):
            return  # _staff cleared the page for someone who is not (or no longer) city staff
        await self._fetch(actor, lang)
        if self.confirming:
            self.confirm_reach = _count_text(lang, self._reach)
        if self._published:
            self.notice = _published_text(lang, *self._published)
        elif self.notice:
            self.notice = tr(lang, "notice.withdrawn")

    async def _fetch(self, actor, lang: str) -> None:
        items, self.total = await run_service(notices.admin_list, actor, PAGE_SIZE, (self.page - 1) * PAGE_SIZE)

        def targets(i: notices.AdminItem) -> str:
            if i.everyone:
                return tr(lang, "notice.everyone")
            parts = list(i.areas) + [tr(lang, "notice.band." + b) for b in i.bands]
            return tr(lang, "notice.list_sep").join(parts)

        self.rows = [{"id": str(i.id), "title": i.title, "urgent": "1" if i.urgent else "",
                      "from": fmt_dt(i.publish_from, lang), "until": until_text(i.publish_until, lang),
                      "status": i.status, "status_label": tr(lang, "notice.status." + i.status),
                      "targets": targets(i), "reads": _count_text(lang, i.read_count),
                      "reads_few": "" if notices.shown_count(i.read_count) is not None else "1",
                      "files": str(len(i.attachments))}
                     for i in items]
        self.row_files = {str(i.id): file_rows(i.attachments) for i in items}

    @rx.event
    async def preview(self, form: dict):
        actor, lang, redirect = await self._staff()
        if actor is None:
            return redirect
        if not isinstance(form, dict):
            return
        draft = _draft_of(form)
        try:
            reach = await run_service(notices.reach_count, actor, draft, self._file_ids())
        except ServiceError as e:
            self.errors = field_errors(lang, e)
            self.error = "" if self.errors else error_text(lang, e)
            self.confirming = False
            return
        self.errors, self.error, self.notice, self._published = {}, "", "", []
        self._draft, self._reach = draft, reach
        self.confirm_title = str(draft.get("title") or "")[:200]
        shown = notices.shown_count(reach)
        self.confirm_reach, self.confirm_reach_few = _count_text(lang, reach), shown is None
        self.confirming = True

    @rx.event
    def back_to_edit(self):
        self.confirming = False

    @rx.event
    async def publish(self):
        actor, lang, redirect = await self._staff()
        if actor is None:
            return redirect
        if not self.confirming or not self._draft:
            return
        try:
            result = await run_service(notices.publish, actor, self._draft, self._file_ids())
        except ServiceError as e:
            self.errors = field_errors(lang, e)
            self.error = "" if self.errors else error_text(lang, e)
            self.confirming = False
            return
        self._draft, self.confirming, self.files, self.file_error = {}, False, [], ""
        self.form_key += 1
        self._published = [result.reach, result.mailed]
        self.notice = _published_text(lang, *self._published)
        self.page = 1
        await self._fetch(actor, lang)

    @rx.event
    async def upload(self, files: list[rx.UploadFile]):
        actor, lang, redirect = await self._staff()
        if actor is None:
            return redirect
        self.files, problems = await receive_uploads(
            files, self.files, attachments.MAX_PER_NOTICE,
            tr(lang, "notice.error.too_many_files", max=attachments.MAX_PER_NOTICE), lang,
            lambda name, data: notices.upload_file(actor, name, data))
        self.file_error = " / ".join(problems)
        self.uploading = False
        if not problems:
            self.errors = {k: v for k, v in self.errors.items() if k != "attachments"}
        return rx.clear_selected_files(UPLOAD_ID)

    @rx.event
    async def remove_file(self, file_id: str):
        actor, lang, redirect = await self._staff()
        if actor is None:
            return redirect
        if not any(f["id"] == file_id for f in self.files):
            return
        try:
            await run_service(notices.discard_file, actor, file_id)
        except ServiceError as e:
            self.file_error = error_text(lang, e)
        self.files = [f for f in self.files if f["id"] != file_id]

    @rx.event
    async def withdraw(self, notice_id: str):
        actor, lang, redirect = await self._staff()
        if actor is None:
            return redirect
        try:
            await run_service(notices.withdraw, actor, notice_id)
        except ServiceError as e:
            self.error = error_text(lang, e)
            return
        self.notice, self._published = tr(lang, "notice.withdrawn"), []
        await self._fetch(actor, lang)

    @rx.event
    async def next_page(self):
        actor, lang, redirect = await self._staff()
        if actor is None:
            return redirect
        if self.page < _pages(self.total):
            self.page += 1
            await self._fetch(actor, lang)

    @rx.event
    async def prev_page(self):
        actor, lang, redirect = await self._staff()
        if actor is None:
            return redirect
        if self.page > 1:
            self.page -= 1
            await self._fetch(actor, lang)

    @rx.var
    def pages(self) -> int:
        return _pages(self.total)


def _err(name: str) -> rx.Var:
    return NoticeAdminState.errors.get(name, "")


def _area_box(a: rx.Var) -> rx.Component:
    fid = "f-area_" + a[0]
    return rx.el.label(
        rx.el.input(type="checkbox", name="area_" + a[0], id=fid,
                    style={"width": "28px", "height": "28px", "margin_right": "0.6em", "flex_shrink": "0"}),
        a[1],
        html_for=fid,
        style={"display": "flex", "align_items": "center", "min_height": "48px", "font_size": "var(--font-size-3)",
               "cursor": "pointer", "padding_left": rx.cond(a[2] == "2", "2em", rx.cond(a[2] == "1", "1em", "0"))},
    )


def _draft_file(f: rx.Var) -> rx.Component:
    return rx.hstack(
        rx.icon("paperclip", size=18, aria_hidden="true"), rx.text(f["name"], size="3"),
        rx.text(tf("notice.file_size", size=f["size"]), size="2", color=rx.color("gray", 11)),
        button(t("notice.remove_file"), type="button", variant="outline", size="2",
                  aria_label=text_var("notice.remove_file_named", name=f["name"]),
                  on_click=NoticeAdminState.remove_file(f["id"]), style={"min_height": "44px", "min_width": "44px"}),
        align="center", wrap="wrap", class_name="notice-draft-file",
    )


def _files_box() -> rx.Component:
    s = NoticeAdminState
    return rx.box(
        rx.el.label(t("notice.field.files"), id="notice-files-label",
                    style={"font_weight": "600", "display": "block", "margin_bottom": "0.3em"}),
        rx.upload(
            rx.vstack(rx.icon("upload", size=28, aria_hidden="true"), rx.text(t("notice.choose_files"), size="3"),
                      align="center"),
            id=UPLOAD_ID, multiple=True, no_keyboard=False, accept=ACCEPT,
            # assets/a11y.js names the dropzone's hidden file input by this label.
            custom_attrs={"data-label-id": "notice-files-label"},
            # Attached as soon as chosen: a file chosen and left waiting for a second button was left out.
            on_drop=s.upload(rx.upload_files(upload_id=UPLOAD_ID, on_upload_progress=s.upload_progress)),
            on_drop_rejected=s.upload_refused,
            disabled=s.uploading,
            style={"border": "2px dashed var(--gray-8)", "padding": "1em", "border_radius": "var(--radius-3)",
                   "cursor": "pointer", "min_height": "48px"},
        ),
        rx.cond(s.uploading, rx.text(t("upload.busy"), size="3", role="status", id="notice-upload-busy")),
        rx.cond(s.file_error != "", rx.text(s.file_error, color=rx.color("red", 11), size="3", role="alert",
                                            id="notice-file-error")),
        field_error(_err("attachments"), "f-attachments"),
        rx.foreach(s.files, _draft_file),
        rx.text(t("notice.files_help"), size="2", color=rx.color("gray", 11)),
        width="100%", margin_bottom="1em",
    )


def _editor() -> rx.Component:
    return rx.form(
        text_field("notice.field.title", "title", error=_err("title"), required=True, max_length=notices.TITLE_MAX),
        text_area("notice.field.body", "body", error=_err("body"), required=True, max_length=notices.BODY_MAX),
        rx.text(t("notice.body_help"), size="2", color=rx.color("gray", 11), margin_bottom="1em"),
        rx.hstack(
            text_field("notice.field.from_date", "publish_from_date", type_="date", error=_err("publish_from")),
            text_field("notice.field.from_time", "publish_from_time", type_="time"),
            width="100%", spacing="3",
        ),
        rx.hstack(
            text_field("notice.field.until_date", "publish_until_date", type_="date", error=_err("publish_until")),
            text_field("notice.field.until_time", "publish_until_time", type_="time"),
            width="100%", spacing="3",
        ),
        checkbox_field("notice.field.urgent", "urgent"),
        rx.el.fieldset(
            rx.el.legend(t("notice.field.target"), style={"font_weight": "600", "font_size": "var(--font-size-3)"}),
            rx.cond(_err("target") != "",
                    rx.text(_err("target"), id="f-target-error", color=rx.color("red", 11), size="3", role="alert")),
            checkbox_field("notice.everyone", "everyone"),
            rx.text(t("notice.areas"), size="3", weight="bold", margin_top="0.5em"),
            rx.foreach(NoticeAdminState.area_options, _area_box),
            rx.text(t("notice.bands"), size="3", weight="bold", margin_top="0.5em"),
            *[checkbox_field("notice.band." + b, "band_" + b) for b in notices.TARGETS],
            rx.text(t("notice.target_help"), size="2", color=rx.color("gray", 11)),
            style={"border": "1px solid var(--gray-6)", "border_radius": "var(--radius-3)", "padding": "1em",
                   "margin_bottom": "1em", "width": "100%"},
        ),
        _files_box(),
        primary_button("notice.preview", type="submit", id="notice-preview", disabled=NoticeAdminState.uploading),
        on_submit=NoticeAdminState.preview,
        # Remounted empty after a notice is published: what stays typed would be published again.
        key=NoticeAdminState.form_key,
        width="100%",
        id="notice-form",
    )


def _count_text(lang: str, n: int) -> str:
    """A count as staff may see it (notices.shown_count): "0" or "about 15"; "" for a small count, which the
    page says in a sentence of its own ("fewer than 5 …": 「5 未満 人」 reads wrong, see _count_sentence)."""
    shown = notices.shown_count(n)
    if shown is None:
        return ""
    return tr(lang, "notice.about", n=shown) if shown else "0"


def _count_sentence(lang: str, key: str, n: int) -> str:
    """`key` with a count as staff may see it, or its own `key`_few sentence for 1 to SMALL_GROUP - 1."""
    if notices.shown_count(n) is None:
        return tr(lang, key + "_few", n=notices.SMALL_GROUP)
    return tr(lang, key, n=_count_text(lang, n))


def _published_text(lang: str, reach: int, mailed: int) -> str:
    return tr(lang, "notice.published", reach=_count_sentence(lang, "notice.published_reach", reach),
              mailed=_count_sentence(lang, "notice.mailed", mailed))


def _confirm() -> rx.Component:
    return rx.box(
        rx.text(t("notice.confirm_title"), size="3", color=rx.color("gray", 11)),
        rx.heading(NoticeAdminState.confirm_title, as_="h3", size="5", margin_y="0.4em"),
        rx.text(rx.cond(NoticeAdminState.confirm_reach_few, tf("notice.reach_few", n=str(notices.SMALL_GROUP)),
                        tf("notice.reach", n=NoticeAdminState.confirm_reach)),
                size="5", weight="bold", id="notice-reach"),
        rx.foreach(NoticeAdminState.files, lambda f: rx.hstack(rx.icon("paperclip", size=18, aria_hidden="true"),
                                                               rx.text(f["name"], size="3"), align="center")),
        rx.hstack(
            secondary_button("notice.back", on_click=NoticeAdminState.back_to_edit),
            primary_button("notice.publish", on_click=NoticeAdminState.publish, id="notice-publish"),
            spacing="3", margin_top="1em", wrap="wrap",
        ),
    )


def _admin_row(r: rx.Var) -> rx.Component:
    return card(
        rx.hstack(
            rx.badge(r["status_label"], color_scheme=rx.match(r["status"], ("published", "green"),
                                                               ("scheduled", "blue"), "gray"), size="3"),
            rx.cond(r["urgent"] != "", rx.badge(t("notice.urgent"), color_scheme="red", size="3")),
            spacing="2", wrap="wrap",
        ),
        rx.heading(r["title"], as_="h3", size="4", margin_y="0.3em"),
        rx.text(r["from"], " – ", r["until"], size="3"),
        rx.text(t("notice.target_label"), ": ", r["targets"], size="3"),
        rx.text(rx.cond(r["reads_few"] != "", tf("notice.read_count_few", n=str(notices.SMALL_GROUP)),
                        tf("notice.read_count", n=r["reads"])), size="3"),
        # row_files has an entry for every row; the count keeps an empty list from rendering a heading.
        rx.cond(r["files"] != "0", _file_list(NoticeAdminState.row_files[r["id"]], margin_top="0.4em")),
        rx.cond(r["status"] != "ended",
                secondary_button("notice.withdraw", on_click=NoticeAdminState.withdraw(r["id"]),
                                 margin_top="0.5em")),
    )


@template(route=NOTICE_ADMIN, title_key="notice.nav_admin", on_load=[NoticeAdminState.load])
def notice_admin_page() -> rx.Component:
    return rx.vstack(
        heading("notice.nav_admin", help_key="help.notice_admin"),
        message(NoticeAdminState.notice),
        error_banner(NoticeAdminState.error),
        card(
            rx.heading(t("notice.new"), as_="h2", size="5", margin_bottom="0.6em"),
            # The form stays mounted while confirming, so "back" returns to what was typed.
            rx.cond(NoticeAdminState.confirming, _confirm()),
            rx.box(_editor(), display=rx.cond(NoticeAdminState.confirming, "none", "block")),
        ),
        rx.heading(t("notice.list"), as_="h2", size="5"),
        rx.foreach(NoticeAdminState.rows, _admin_row),
        rx.cond(NoticeAdminState.pages > 1,
                pager(NoticeAdminState.page, NoticeAdminState.pages, NoticeAdminState.prev_page,
                      NoticeAdminState.next_page)),
        link_button("nav.notices", routes.NOTICES, variant="outline"),
        width="100%",
        align="stretch",
    )
