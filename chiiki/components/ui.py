"""Small accessible building blocks: labelled fields, buttons, messages, pagination. No state arguments."""

from __future__ import annotations

import reflex as rx

from chiiki.i18n import t

# Touch targets of at least 44 px and body text of at least 16 px everywhere (elderly users, phones).
BUTTON_STYLE = {"min_height": "48px", "padding_x": "1.1em", "font_size": "var(--font-size-3)", "cursor": "pointer"}
INPUT_STYLE = {"min_height": "48px", "font_size": "var(--font-size-3)", "width": "100%"}


def field_error(error: rx.Var | str, field_id: str) -> rx.Component:
    return rx.cond(
        error != "",
        rx.text(error, id=f"{field_id}-error", color=rx.color("red", 11), size="3", role="alert", weight="medium"),
    )


def text_field(
    label_key: str,
    name: str,
    *,
    error: rx.Var | str = "",
    help_key: str | None = None,
    type_: str = "text",
    default_value: rx.Var | str | None = None,
    required: bool = False,
    autocomplete: str | None = None,
    input_mode: str | None = None,
    max_length: int | None = None,
    field_id: str | None = None,
) -> rx.Component:
    """A label above a large input, optional help text, and the field's error right beneath it."""
    fid = field_id or f"f-{name}"
    props: dict = {}
    if default_value is not None:
        props["default_value"] = default_value
    if autocomplete:
        props["auto_complete"] = autocomplete
    if input_mode:
        props["input_mode"] = input_mode
    if max_length:
        props["max_length"] = max_length
    return rx.box(
        rx.el.label(
            t(label_key),
            rx.cond(required, rx.text.span(" *", color=rx.color("red", 11), aria_hidden="true")),
            html_for=fid,
            style={"font_weight": "600", "display": "block", "margin_bottom": "0.3em",
                   "font_size": "var(--font-size-3)"},
        ),
        rx.cond(help_key is not None, rx.text(t(help_key) if help_key else "", size="2", color=rx.color("gray", 11),
                                              id=f"{fid}-help")),
        rx.input(
            id=fid,
            name=name,
            type=type_,
            required=required,
            aria_invalid=rx.cond(error != "", "true", "false"),
            aria_describedby=f"{fid}-error" if not help_key else f"{fid}-help {fid}-error",
            size="3",
            style=INPUT_STYLE,
            **props,
        ),
        field_error(error, fid),
        width="100%",
        margin_bottom="1em",
    )


def text_area(label_key: str, name: str, *, error: rx.Var | str = "", default_value: rx.Var | str | None = None,
              required: bool = False, max_length: int | None = None, rows: str = "6",
              field_id: str | None = None) -> rx.Component:
    fid = field_id or f"f-{name}"
    props: dict = {}
    if default_value is not None:
        props["default_value"] = default_value
    if max_length:
        props["max_length"] = max_length
    return rx.box(
        rx.el.label(t(label_key), html_for=fid,
                    style={"font_weight": "600", "display": "block", "margin_bottom": "0.3em",
                           "font_size": "var(--font-size-3)"}),
        rx.text_area(id=fid, name=name, required=required, rows=rows, size="3",
                     aria_invalid=rx.cond(error != "", "true", "false"), aria_describedby=f"{fid}-error",
                     style={"font_size": "var(--font-size-3)", "width": "100%"}, **props),
        field_error(error, fid),
        width="100%",
        margin_bottom="1em",
    )


def checkbox_field(label_key: str, name: str, *, checked: rx.Var | bool = False,
                   field_id: str | None = None) -> rx.Component:
    fid = field_id or f"f-{name}"
    return rx.el.label(
        rx.el.input(type="checkbox", name=name, id=fid, default_checked=checked,
                    style={"width": "28px", "height": "28px", "margin_right": "0.6em", "flex_shrink": "0"}),
        t(label_key),
        html_for=fid,
        style={"display": "flex", "align_items": "center", "min_height": "48px", "font_size": "var(--font-size-3)",
               "cursor": "pointer", "margin_bottom": "0.5em"},
    )


def select_field(label_key: str, name: str, options: rx.Var, *, error: rx.Var | str = "",
                 default_value: rx.Var | str = "", placeholder_key: str | None = None, required: bool = False,
                 field_id: str | None = None) -> rx.Component:
    """A native <select>: the most reliable control for screen readers and elderly phone users.

    `options` is a Var of [value, label] pairs.
    """
    fid = field_id or f"f-{name}"
    return rx.box(
        rx.el.label(t(label_key), html_for=fid,
                    style={"font_weight": "600", "display": "block", "margin_bottom": "0.3em",
                           "font_size": "var(--font-size-3)"}),
        rx.el.select(
            rx.cond(placeholder_key is not None, rx.el.option(t(placeholder_key) if placeholder_key else "", value="")),
            rx.foreach(options, lambda o: rx.el.option(o[1], value=o[0])),
            id=fid,
            name=name,
            default_value=default_value,
            required=required,
            aria_invalid=rx.cond(error != "", "true", "false"),
            aria_describedby=f"{fid}-error",
            style={**INPUT_STYLE, "padding": "0 0.6em", "border_radius": "var(--radius-3)",
                   "border": "1px solid var(--gray-8)", "background": "var(--color-surface)",
                   "color": "var(--gray-12)"},
        ),
        field_error(error, fid),
        width="100%",
        margin_bottom="1em",
    )


def _until_loaded(props: dict) -> dict:
    """Buttons that send an event wait for the page's load. An event sent earlier is handled before that
    load, which then undoes it (a registration step shown again, a typed form emptied), and until then the
    page may still show what the tab held from its last visit (another circular's confirm button)."""
    disabled = props.pop("disabled", False)
    waiting = ~rx.State.is_hydrated
    props["disabled"] = True if disabled is True else waiting if disabled is False else (disabled | waiting)
    return props


def button(*children, **props) -> rx.Component:
    """rx.button, disabled until the page has loaded (and whenever `disabled` says so)."""
    return rx.button(*children, **_until_loaded(props))


def primary_button(label_key: str, **props) -> rx.Component:
    return button(t(label_key), size="3", style=BUTTON_STYLE, **props)


def secondary_button(label_key: str, **props) -> rx.Component:
    return button(t(label_key), size="3", variant="outline", style=BUTTON_STYLE, **props)


def link_button(label_key: str, href: str, *, variant: str = "solid", **props) -> rx.Component:
    return rx.link(
        rx.button(t(label_key), size="3", variant=variant, style={**BUTTON_STYLE, "width": "100%"}, tab_index=-1),
        href=href,
        underline="none",
        style={"display": "block"},
        **props,
    )


def message(text: rx.Var | str, *, color: str = "green", role: str = "status") -> rx.Component:
    return rx.cond(
        text != "",
        rx.callout(text, color_scheme=color, size="2", role=role, width="100%", margin_bottom="1em"),
    )


def error_banner(text: rx.Var | str) -> rx.Component:
    return message(text, color="red", role="alert")


def heading(key: str, level: int = 1, *, help_key: str | None = None) -> rx.Component:
    """A page or section heading; `help_key` adds a plain-language line on what the page is for."""
    size = {1: "7", 2: "6", 3: "5"}.get(level, "4")
    title = rx.heading(t(key), as_=f"h{level}", size=size, margin_bottom="0.6em")
    if help_key is None:
        return title
    return rx.fragment(title, rx.text(t(help_key), size="3", id="page-help", margin_bottom="0.4em"))


def card(*children, **props) -> rx.Component:
    return rx.card(*children, size="3", width="100%", margin_bottom="1em", **props)


def _pager(page: rx.Var, label, last, on_prev, on_next) -> rx.Component:
    """前へ, a label, 次へ: 前へ is off on the first page, 次へ when `last`; nothing at all when there is only the
    one page (two buttons that do nothing would only puzzle)."""
    return rx.cond((page <= 1) & last, rx.fragment(), rx.hstack(
        button(t("common.prev"), on_click=on_prev, disabled=page <= 1, variant="outline", size="3",
                  style=BUTTON_STYLE),
        rx.text(label, size="3"),
        button(t("common.next"), on_click=on_next, disabled=last, variant="outline", size="3",
                  style=BUTTON_STYLE),
        align="center",
        spacing="3",
        margin_y="1em",
    ))


def more_pager(page: rx.Var, has_more: rx.Var, on_prev, on_next) -> rx.Component:
    """Pagination for a list too long to count on every view (logs): the page number, and 次へ while more
    entries follow."""
    return _pager(page, t("common.page_n").to(str).replace("{page}", page.to_string()), ~has_more, on_prev, on_next)


def pager(page: rx.Var, pages: rx.Var, on_prev, on_next) -> rx.Component:
    """Server-side pagination controls."""
    return _pager(page, rx.cond(pages > 0, page.to_string() + " / " + pages.to_string(), ""), page >= pages,
                  on_prev, on_next)
