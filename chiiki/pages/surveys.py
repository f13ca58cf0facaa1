"""Surveys (アンケート・出欠・安否確認): the list, answering on a phone, the builder, and the officers' results."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import reflex as rx

from chiiki import routes
from chiiki.components.shell import register_nav, template
from chiiki.components.ui import (
    BUTTON_STYLE,
    INPUT_STYLE,
    button,
    card,
    checkbox_field,
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
from chiiki.i18n import TZ, fmt_date, fmt_dt, t, tr
from chiiki.models import utcnow
from chiiki.pages.association import as_id, attempt, attempt_read, my_association
from chiiki.services import surveys
from chiiki.services.policy import ALL_HAN, RUN_SURVEYS, han_scope
from chiiki.state import AuthState, current_actor, error_text, field_errors, refresh_badges, run_counted

SURVEY_NEW = routes.SURVEYS + "/new"
SURVEY_ANSWER = surveys.ANSWER_PATH
SURVEY_RESULTS = routes.SURVEYS + "/results"
PAGE_SIZE = 20
PEOPLE_PAGE = 50
# An answer sent again unchanged within this many seconds of the last one is the same tap twice (elderly hands
# double-tap, or tap again while the page is slow to answer), not a change.
SAME_ANSWER_AGAIN_S = 10.0

register_nav("nav.surveys", routes.SURVEYS, "is_member", badge="urgent_surveys")


def answer_url(survey_id: rx.Var | int) -> Any:
    return SURVEY_ANSWER + "?id=" + (survey_id.to_string() if isinstance(survey_id, rx.Var) else str(survey_id))


def results_url(survey_id: rx.Var | int) -> Any:
    return SURVEY_RESULTS + "?id=" + (survey_id.to_string() if isinstance(survey_id, rx.Var) else str(survey_id))


def _query_id(state: rx.State) -> int:
    return as_id(state.router.url.query_parameters.get("id", ""))


async def _open_from_query(state: Any):
    """on_load of a page about one survey: the id comes from ?id=, and the service checks it."""
    actor, lang = await current_actor(state)
    state._clear()
    if not actor.authenticated:
        return rx.redirect(routes.LOGIN)
    await state._open(actor, lang, _query_id(state))
    return None


def _pages(total: int, size: int) -> int:
    return max((total + size - 1) // size, 1)


def _survey_dict(info: surveys.SurveyInfo, lang: str) -> dict[str, Any]:
    """What every page shows about a survey (no personal data)."""
    return {
        "id": info.id, "title": info.title, "description": info.description, "kind": info.kind,
        "kind_label": tr(lang, "survey.kind." + info.kind), "deadline": fmt_dt(info.deadline, lang),
        "anonymous": info.anonymous, "per_household": info.per_household, "is_open": info.is_open,
        "targets": (tr(lang, "survey.targets_all") if info.target_all
                    else tr(lang, "survey.sep").join(info.han_names)),
    }


def _person(row: surveys.PersonRow, lang: str) -> dict[str, Any]:
    # hid: the household an officer may record an answer for (per-household surveys); the service checks it.
    return {"han": row.han, "name": row.name, "address": row.address, "paper": row.paper_only,
            "date": fmt_date(row.answered_on, lang) if row.answered_on else "", "answers": list(row.answers),
            "hid": str(row.household_id or ""), "recorded": row.recorded}


def _question(q: surveys.QuestionView, mine: Any, lang: str, kind: str) -> dict[str, Any]:
    """A question of an answer form, with the unit's current answer (`mine`) filled in."""
    chosen = set(mine) if isinstance(mine, list) else set()
    hint = ""
    if q.kind == "number":
        is_count = kind == "attendance" and q.position == 1
        hint = tr(lang, "survey.count_hint") if is_count else tr(lang, "survey.number_hint", lo=q.min_value,
                                                                     hi=q.max_value)
    elif q.kind == "text":
        hint = tr(lang, "survey.text_hint", max=surveys.TEXT_ANSWER_MAX)
    return {"id": str(q.id), "kind": q.kind, "text": q.text, "required": q.required, "hint": hint,
            "min": str(q.min_value), "max": str(q.max_value),
            "value": "" if mine is None or isinstance(mine, list) else str(mine),
            "options": [{"id": str(o.id), "label": o.label, "checked": o.id in chosen} for o in q.options]}


def _answers_from(questions: list[dict[str, Any]], form: dict) -> dict[str, Any]:
    """Build {q<id>: value} from a submitted answer form; question ids come from the server-side list of the
    form's questions, not the browser."""
    out: dict[str, Any] = {}
    for q in questions:
        key = "q" + q["id"]
        if q["kind"] == "multiple":
            out[key] = [o["id"] for o in q["options"] if form.get(f"{key}_o{o['id']}") in ("on", True, "true")]
        else:
            value = form.get(key)
            out[key] = value if isinstance(value, str) else ""
    # Anything else the browser sent under a question-like name is passed on, so that the service
    # refuses it (an option or question of another survey) instead of it being silently dropped.
    for name, value in form.items():
        if isinstance(name, str) and name.startswith("q") and name[1:].isdigit() and name not in out:
            out[name] = value
    return out


# =========================================================================== list


class SurveyListState(rx.State):
    items: list[dict[str, Any]] = []
    total: int = 0
    page: int = 1
    error: str = ""
    loaded: bool = False  # "no surveys" only once they were read (not in the page before it loads)

    @rx.event
    async def load(self):
        actor, lang = await current_actor(self)
        self.items, self.total, self.error = [], 0, ""
        if not actor.authenticated:
            return rx.redirect(routes.LOGIN)
        self.page = 1
        await self._fetch(actor, lang)

    async def _relabel(self, actor, lang: str) -> None:
        """After a language switch (chiiki.state.relabel_page): the same page of surveys in `lang`."""
        await self._fetch(actor, lang)

    async def _fetch(self, actor, lang: str) -> None:
        self.loaded = True
        aid = my_association(actor)
        if not aid:
            self.items, self.total = [], 0
            return
        ok, res, self.error, _ = await attempt_read(self, lang, surveys.list_surveys, actor, aid, PAGE_SIZE,
                                                    (self.page - 1) * PAGE_SIZE)
        if not ok:
            self.items, self.total = [], 0
            return
        self.total = res.total
        self.items = [self._item(i, lang) for i in res.items]

    @staticmethod
    def _item(i: surveys.ListItem, lang: str) -> dict[str, Any]:
        status = ("closed" if not i.survey.is_open else "answered" if i.answered
                  else "unanswered" if i.targeted else "not_asked")
        return {**_survey_dict(i.survey, lang), "status": status, "status_label": tr(lang, "survey.status." + status),
                "answered": i.answered, "can_answer": i.can_answer, "targeted": i.targeted,
                "can_manage": i.can_manage,
                "respondents": tr(lang, "survey.respondents", n=i.respondents) if i.can_manage else ""}

    @rx.var
    def pages(self) -> int:
        return _pages(self.total, PAGE_SIZE)

    @rx.event
    async def next_page(self):
        actor, lang = await current_actor(self)
        if not actor.authenticated:
            return rx.redirect(routes.LOGIN)
        if self.page < _pages(self.total, PAGE_SIZE):
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


def _kind_badge(kind: rx.Var, label: rx.Var) -> rx.Component:
    return rx.badge(label, size="3", color_scheme=rx.match(kind, ("safety", "red"), ("attendance", "green"), "blue"))


def _list_item(i: rx.Var) -> rx.Component:
    return card(
        rx.hstack(
            _kind_badge(i["kind"], i["kind_label"]),
            rx.cond(i["anonymous"].to(bool), rx.badge(t("survey.anonymous_badge"), size="2", variant="outline")),
            rx.badge(i["status_label"], size="3",
                     color_scheme=rx.match(i["status"], ("unanswered", "orange"), ("answered", "green"), "gray")),
            wrap="wrap", spacing="2",
        ),
        rx.heading(i["title"], as_="h2", size="5", margin_y="0.4em"),
        rx.text(t("survey.deadline_label"), ": ", i["deadline"], size="3"),
        rx.cond(i["can_manage"].to(bool), rx.text(i["targets"], " · ", i["respondents"], size="2",
                                                   color=rx.color("gray", 11))),
        rx.vstack(
            rx.cond(i["can_answer"].to(bool),
                    rx.cond(i["answered"].to(bool),
                            link_button("survey.change", answer_url(i["id"]), variant="outline",
                                        id="answer-" + i["id"].to_string()),
                            link_button("survey.answer", answer_url(i["id"]), id="answer-" + i["id"].to_string())),
                    rx.cond(i["targeted"].to(bool),
                            link_button("survey.view", answer_url(i["id"]), variant="outline"))),
            rx.cond(i["can_manage"].to(bool),
                    link_button("survey.results", results_url(i["id"]), variant="outline",
                                id="results-" + i["id"].to_string())),
            align="stretch", spacing="2", margin_top="0.6em",
        ),
    )


@template(route=routes.SURVEYS, title_key="survey.title", on_load=[SurveyListState.load])
def survey_list() -> rx.Component:
    return rx.vstack(
        heading("survey.title"),
        rx.text(t("survey.intro"), size="3"),
        error_banner(SurveyListState.error),
        rx.cond(AuthState.can_run_surveys, link_button("survey.new", SURVEY_NEW, id="new-survey")),
        rx.cond(
            SurveyListState.items.length() > 0,
            rx.vstack(rx.foreach(SurveyListState.items, _list_item), width="100%", id="survey-list"),
            rx.cond(SurveyListState.loaded, rx.text(t("survey.none"), size="4")),
        ),
        pager(SurveyListState.page, SurveyListState.pages, SurveyListState.prev_page, SurveyListState.next_page),
        width="100%", align="stretch",
    )


# =========================================================================== answering


class SurveyAnswerState(rx.State):
    """One survey's questions and, for a named survey, the actor's own current answers."""

    survey: dict[str, Any] = {}
    questions: list[dict[str, Any]] = []
    answered: bool = False
    answered_by_other: bool = False
    recorded_by_officer: bool = False
    can_answer: bool = False
    can_change: bool = False
    targeted: bool = True
    totals: list[dict[str, Any]] = []
    head_line: str = ""
    errors: dict[str, str] = {}
    error: str = ""
    notice: str = ""
    # Remounts the form after each load so its default values follow the stored answers.
    form_key: int = 0
    _survey_id: int = 0
    # The last answer this tab stored, when, the key of the message it got, and the answers as stored.
    _sent_answers: dict[str, Any] = {}
    _sent_at: float = 0.0
    _sent_notice: str = ""
    _sent_mine: dict[int, Any] = {}

    def _clear(self) -> None:
        self.survey, self.questions, self.totals = {}, [], []
        self.answered = self.answered_by_other = self.recorded_by_officer = self.can_answer = self.can_change = False
        self.targeted = True
        self.head_line = self.error = self.notice = ""
        self.errors = {}
        self._survey_id = 0
        self._sent_answers, self._sent_at, self._sent_notice, self._sent_mine = {}, 0.0, "", {}

    @rx.event
    async def load(self):
        return await _open_from_query(self)

    async def _open(self, actor, lang: str, survey_id: int) -> bool:
        # The form and, once the member has answered, the totals (which group every answer of the survey, so
        # this goes to a thread): one reading session.
        ok, page, err, _ = await attempt(self, lang, surveys.answer_page, actor, survey_id)
        if not ok:
            self._clear()
            self.error = err
            return False
        self._show(page, lang)
        return True

    def _show(self, page: surveys.AnswerPage, lang: str) -> None:
        form, totals = page.form, page.totals
        self._survey_id = form.survey.id
        self.survey = _survey_dict(form.survey, lang)
        self.answered, self.answered_by_other = form.answered, form.answered_by_other
        self.recorded_by_officer = form.recorded_by_officer
        self.can_answer, self.can_change = form.can_answer, form.can_change
        self.targeted = form.can_answer or form.answered or not form.survey.is_open
        mine = form.mine
        self.questions = [_question(q, mine.get(q.id), lang, form.survey.kind) for q in form.questions]
        self.form_key += 1
        self.totals, self.head_line = [], ""
        if totals is not None:
            self.totals = [{"text": q.text, "options": [{"label": o.label, "count": str(o.count)}
                                                        for o in q.options]}
                           for q in totals.questions if q.kind in ("single", "multiple")]
            if totals.head_count is not None:
                self.head_line = tr(lang, "survey.head_count", attendees=totals.attendees, people=totals.head_count)

    @rx.event
    async def submit(self, form: dict):
        actor, lang = await current_actor(self)
        if not actor.authenticated:
            return rx.redirect(routes.LOGIN)
        if not isinstance(form, dict) or not self._survey_id:
            return
        answers = _answers_from(self.questions, form)
        if self._sent_notice and answers == self._sent_answers \
                and 0 <= time.time() - self._sent_at < SAME_ANSWER_AGAIN_S \
                and await self._still_stands(actor, lang):
            # The same answer again at once: a second tap queued before the first one's answer came back. The
            # answer stands as the first tap stored it; writing it again would call a first answer "changed"
            # (and an anonymous one, which cannot change, refused beside its thanks).
            self.error, self.errors = "", {}
            self.notice = tr(lang, self._sent_notice)
            return None
        was_answered = self.answered
        # The answer, the page as it is now and the badges: one trip to the database.
        actor, page, e = await run_counted(self, surveys.answer_and_reopen, self._survey_id, answers,
                                           refresh=lambda _page, error: error is None, bounded=False)
        if not actor.authenticated:
            return rx.redirect(routes.LOGIN)
        if e is not None:
            self.errors = field_errors(lang, e)
            self.error = "" if self.errors else error_text(lang, e)
            if self.errors and not self.error:
                self.error = tr(lang, "survey.errors_below")
            return
        self.error, self.errors = "", {}
        self._show(page, lang)
        self._sent_notice = "survey.updated" if was_answered else "survey.sent"
        self._sent_answers, self._sent_at, self._sent_mine = answers, time.time(), dict(page.form.mine)
        self.notice = tr(lang, self._sent_notice)

    async def _still_stands(self, actor, lang: str) -> bool:
        """Whether the answer this tab stored last is still the unit's answer, read through the service (which
        also checks that the actor may still answer there); the page then shows it as it is now. Otherwise (a
        change from another tab, a housemate or an officer meanwhile, or the actor refused now) the answer sent
        again is a submission of its own."""
        ok, page, _err, _errors = await attempt(self, lang, surveys.answer_page, actor, self._survey_id)
        form = page.form if ok else None
        if form is None or not form.answered or form.answered_by_other or form.recorded_by_officer \
                or form.mine != self._sent_mine:
            return False
        self._show(page, lang)
        return True


def _choice(q: rx.Var, o: rx.Var) -> rx.Component:
    """A whole-width, 56 px tall choice: the label is the touch target."""
    fid = "o-" + o["id"].to(str)
    is_single = q["kind"] == "single"
    return rx.el.label(
        rx.el.input(
            type=rx.cond(is_single, "radio", "checkbox"),
            name=rx.cond(is_single, "q" + q["id"].to(str), "q" + q["id"].to(str) + "_o" + o["id"].to(str)),
            value=rx.cond(is_single, o["id"].to(str), "on"),
            id=fid,
            default_checked=o["checked"].to(bool),
            style={"width": "28px", "height": "28px", "margin_right": "0.8em", "flex_shrink": "0"},
        ),
        rx.text(o["label"], size="4"),
        html_for=fid,
        style={"display": "flex", "align_items": "center", "min_height": "56px", "padding": "0.4em 0.9em",
               "border": "2px solid var(--gray-7)", "border_radius": "var(--radius-4)", "cursor": "pointer",
               "margin_bottom": "0.5em", "background": "var(--color-surface)",
               "_has_checked": {"border_color": "var(--accent-9)", "background": "var(--accent-3)"}},
    )


def _question_block(q: rx.Var, errors: rx.Var = SurveyAnswerState.errors,
                    enabled: rx.Var | None = SurveyAnswerState.can_answer) -> rx.Component:
    """One question of an answer form (the member's, or an officer's record of a household's answer: always
    enabled)."""
    key = "q" + q["id"].to(str)
    err = errors.get(key, "")
    return rx.el.fieldset(
        rx.el.legend(
            rx.text(q["text"], size="5", weight="bold", as_="span"),
            rx.badge(rx.cond(q["required"].to(bool), t("survey.required"), t("survey.optional")), size="2",
                     margin_left="0.5em", color_scheme=rx.cond(q["required"].to(bool), "red", "gray")),
            style={"margin_bottom": "0.5em"},
        ),
        rx.cond(q["hint"] != "", rx.text(q["hint"], size="2", color=rx.color("gray", 11), margin_bottom="0.4em")),
        rx.match(
            q["kind"],
            ("text", rx.text_area(name=key, id="f-" + key, aria_label=q["text"].to(str), default_value=q["value"].to(str), rows="4", size="3",
                                  max_length=surveys.TEXT_ANSWER_MAX, aria_invalid=rx.cond(err != "", "true", "false"),
                                  style={"font_size": "var(--font-size-3)", "width": "100%"})),
            ("number", rx.input(name=key, id="f-" + key, aria_label=q["text"].to(str), type="number", input_mode="numeric",
                                default_value=q["value"].to(str), min=q["min"].to(str), max=q["max"].to(str), size="3",
                                aria_invalid=rx.cond(err != "", "true", "false"), style=INPUT_STYLE)),
            rx.foreach(q["options"].to(list[dict[str, Any]]), lambda o: _choice(q, o)),
        ),
        rx.cond(err != "", rx.text(err, id="f-" + key + "-error", color=rx.color("red", 11), size="3", role="alert",
                                   weight="medium")),
        disabled=False if enabled is None else ~enabled,
        style={"border": "none", "padding": "0", "margin": "0 0 1.4em 0", "min_width": "0"},
    )


@template(route=SURVEY_ANSWER, title_key="survey.answer_title", on_load=[SurveyAnswerState.load])
def survey_answer() -> rx.Component:
    s = SurveyAnswerState.survey
    return rx.vstack(
        link_button("survey.back", routes.SURVEYS, variant="ghost"),
        error_banner(SurveyAnswerState.error),
        message(SurveyAnswerState.notice),
        rx.cond(
            SurveyAnswerState.questions.length() > 0,
            rx.vstack(
                rx.hstack(_kind_badge(s["kind"].to(str), s["kind_label"].to(str)),
                          rx.cond(s["anonymous"].to(bool), rx.badge(t("survey.anonymous_badge"), size="3")),
                          rx.cond(s["per_household"].to(bool), rx.badge(t("survey.per_household_badge"), size="3")),
                          wrap="wrap"),
                rx.heading(s["title"].to(str), as_="h1", size="7", id="survey-title"),
                rx.cond(s["description"].to(str) != "", rx.text(s["description"].to(str), size="4",
                                                                white_space="pre-wrap")),
                rx.text(t("survey.deadline_label"), ": ", s["deadline"].to(str), size="4", weight="medium"),
                rx.callout(rx.cond(s["anonymous"].to(bool), t("survey.anonymous_note"), t("survey.named_note")),
                           size="2", color_scheme="gray", width="100%"),
                rx.cond(~s["is_open"].to(bool), rx.callout(t("survey.closed_note"), color_scheme="orange", size="2",
                                                           width="100%")),
                rx.cond(~SurveyAnswerState.targeted, rx.callout(t("survey.not_asked_note"), color_scheme="orange",
                                                                size="2", width="100%")),
                rx.cond(SurveyAnswerState.answered & s["anonymous"].to(bool),
                        rx.callout(rx.cond(s["per_household"].to(bool), t("survey.anonymous_done_household"),
                                           t("survey.anonymous_done")),
                                   color_scheme="green", size="2", width="100%", id="anonymous-done")),
                rx.cond(SurveyAnswerState.can_change,
                        rx.callout(rx.cond(SurveyAnswerState.recorded_by_officer, t("survey.answered_recorded"),
                                           rx.cond(SurveyAnswerState.answered_by_other, t("survey.answered_household"),
                                                   t("survey.answered_note"))),
                                   color_scheme="green", size="2", width="100%", id="answered-note")),
                rx.cond(
                    SurveyAnswerState.can_answer | SurveyAnswerState.answered,
                    rx.form(
                        rx.foreach(SurveyAnswerState.questions, lambda q: _question_block(q)),
                        rx.cond(SurveyAnswerState.can_answer,
                                button(rx.cond(SurveyAnswerState.can_change, t("survey.update"), t("survey.submit")),
                                          type="submit", size="4", width="100%",
                                          style={**BUTTON_STYLE, "min_height": "56px"}, id="survey-submit")),
                        on_submit=SurveyAnswerState.submit,
                        key=SurveyAnswerState.form_key,
                        width="100%",
                        id="survey-form",
                    ),
                ),
                rx.cond(
                    SurveyAnswerState.totals.length() > 0,
                    card(
                        rx.heading(t("survey.member_totals"), as_="h2", size="5", margin_bottom="0.5em"),
                        rx.cond(SurveyAnswerState.head_line != "",
                                rx.text(SurveyAnswerState.head_line, size="4", weight="bold")),
                        rx.foreach(SurveyAnswerState.totals, lambda q: rx.box(
                            rx.text(q["text"], size="4", weight="medium"),
                            rx.foreach(q["options"].to(list[dict[str, str]]),
                                       lambda o: rx.text(o["label"], ": ", o["count"], size="3")),
                            margin_bottom="0.6em")),
                        id="member-totals",
                    ),
                ),
                width="100%", align="stretch", spacing="3",
            ),
        ),
        width="100%", align="stretch",
    )


# =========================================================================== builder


class SurveyBuilderState(rx.State):
    """The builder form. Question kinds live here on the server; the browser sends only texts and choices."""

    kind: str = "general"
    fixed: list[dict[str, Any]] = []
    extra: list[dict[str, str]] = []
    han_options: list[list[str]] = []
    can_target_all: bool = False
    default_deadline: str = ""
    errors: dict[str, str] = {}
    error: str = ""
    form_key: int = 0
    _next_uid: int = 1

    @rx.event
    async def load(self):
        actor, lang = await current_actor(self)
        self.errors, self.error, self.extra, self.fixed, self.han_options = {}, "", [], [], []
        if not actor.authenticated:
            return rx.redirect(routes.LOGIN)
        aid = my_association(actor)
        scope = han_scope(actor, RUN_SURVEYS, aid) if aid else frozenset()
        if not scope:
            self.error = tr(lang, "error.denied")
            return
        self.can_target_all = scope == ALL_HAN
        ok, hans, self.error, _ = await attempt(self, lang, surveys.target_choices, actor, aid)
        if not ok:
            return
        self.han_options = [[str(i), name] for i, name in hans]
        self._set_kind("general", lang)
        self.form_key += 1

    def _set_kind(self, kind: str, lang: str) -> None:
        self.kind = kind
        # The fixed questions as the residents will read them, with the officer's language beside them.
        shown = surveys.template_questions(kind)
        mine = surveys.template_questions(kind, lang)

        def both(a: str, b: str) -> str:
            return a if a == b else f"{a}({b})"

        self.fixed = [{"text": both(q["text"], m["text"]), "kind_label": tr(lang, "survey.qkind." + q["kind"]),
                       "options": tr(lang, "survey.sep").join(both(o, p) for o, p in zip(q["options"], m["options"]))}
                      for q, m in zip(shown, mine)]
        days = 2 if kind == "safety" else 7
        when = (utcnow() + timedelta(days=days)).astimezone(TZ)
        self.default_deadline = when.strftime("%Y-%m-%dT18:00" if kind != "safety" else "%Y-%m-%dT%H:00")
        self.errors = {}

    @rx.event
    async def choose_kind(self, kind: str):
        actor, lang = await current_actor(self)
        if not actor.authenticated:
            return rx.redirect(routes.LOGIN)
        if kind not in surveys.KINDS or kind == self.kind:
            return
        # What the officer has typed stays; only the deadline moves to the new kind's default (a safety
        # check closes sooner). Remounting the form here would wipe the title a quick hand typed meanwhile.
        self._set_kind(kind, lang)
        # A safety check asks per household by default: paper-only households are asked too (an officer records
        # what a visit found), which asking each member would leave out.
        return [rx.set_value("f-deadline", self.default_deadline),
                rx.call_script("var b = document.getElementById('f-per_household'); if (b) { b.checked = "
                               + ("true" if kind == "safety" else "false") + "; }")]

    @rx.event
    async def add_question(self, kind: str):
        actor, lang = await current_actor(self)
        if not actor.authenticated:
            return rx.redirect(routes.LOGIN)
        if kind in surveys.QUESTION_KINDS and len(self.extra) + len(self.fixed) < surveys.MAX_QUESTIONS:
            self.extra = [*self.extra, {"uid": str(self._next_uid), "kind": kind,
                                        "kind_label": tr(lang, "survey.qkind." + kind)}]
            self._next_uid += 1

    @rx.event
    def remove_question(self, uid: str):
        self.extra = [q for q in self.extra if q["uid"] != uid]

    @rx.event
    async def submit(self, form: dict):
        actor, lang = await current_actor(self)
        if not actor.authenticated:
            return rx.redirect(routes.LOGIN)
        if not isinstance(form, dict):
            return
        aid = my_association(actor)
        data = {
            "kind": self.kind, "title": form.get("title"), "description": form.get("description"),
            "deadline": form.get("deadline"), "target_all": form.get("target") == "all",
            "han_ids": [h for h, _name in self.han_options if form.get("han_" + h) in ("on", True, "true")],
            "anonymous": form.get("anonymous") in ("on", True, "true"),
            "per_household": form.get("per_household") in ("on", True, "true"),
            "questions": [{"uid": q["uid"], "kind": q["kind"], "text": form.get(f"q{q['uid']}_text"),
                           "required": form.get(f"q{q['uid']}_required") in ("on", True, "true"),
                           "options": form.get(f"q{q['uid']}_options") or "",
                           "min": form.get(f"q{q['uid']}_min"), "max": form.get(f"q{q['uid']}_max")}
                          for q in self.extra],
        }
        ok, sid, self.error, self.errors = await attempt(self, lang, surveys.create_survey, actor, aid, data)
        if not ok:
            if self.errors and not self.error:
                self.error = tr(lang, "survey.errors_below")
            return
        auth = await self.get_state(AuthState)
        auth._show_next(tr(lang, "survey.safety_created" if self.kind == "safety" else "survey.created"))
        self.extra, self.errors = [], {}
        return rx.redirect(results_url(sid))


def _kind_button(kind: str) -> rx.Component:
    chosen = SurveyBuilderState.kind == kind
    return button(
        rx.vstack(rx.text(t("survey.kind." + kind), size="4", weight="bold"),
                  rx.text(t("survey.kind_help." + kind), size="2", white_space="normal", text_align="left"),
                  align="start", spacing="1"),
        type="button", on_click=SurveyBuilderState.choose_kind(kind), size="4",
        variant=rx.cond(chosen, "solid", "outline"), color_scheme="red" if kind == "safety" else None,
        aria_pressed=rx.cond(chosen, "true", "false"), id="kind-" + kind,
        style={"height": "auto", "min_height": "64px", "padding": "0.6em 1em", "justify_content": "flex-start",
               "width": "100%"},
    )


def _err(name: str | rx.Var) -> rx.Var:
    return SurveyBuilderState.errors.get(name, "")


def _extra_question(q: rx.Var) -> rx.Component:
    uid = q["uid"].to(str)
    prefix = "q" + uid
    return card(
        rx.hstack(rx.badge(q["kind_label"], size="3"), rx.spacer(),
                  button(t("survey.remove_question"), type="button", variant="ghost", color_scheme="red", size="3",
                            on_click=SurveyBuilderState.remove_question(uid), style=BUTTON_STYLE),
                  align="center", width="100%"),
        rx.el.label(t("survey.field.q_text"), html_for="f-" + prefix + "_text",
                    style={"font_weight": "600", "display": "block", "margin_top": "0.5em"}),
        rx.input(name=prefix + "_text", id="f-" + prefix + "_text", max_length=surveys.QUESTION_MAX, size="3",
                 style=INPUT_STYLE),
        rx.cond(_err(prefix + "_text") != "", rx.text(_err(prefix + "_text"), color=rx.color("red", 11), size="3",
                                                      role="alert")),
        rx.cond((q["kind"] == "single") | (q["kind"] == "multiple"), rx.box(
            rx.el.label(t("survey.field.q_options"), html_for="f-" + prefix + "_options",
                        style={"font_weight": "600", "display": "block", "margin_top": "0.5em"}),
            rx.text_area(name=prefix + "_options", id="f-" + prefix + "_options", rows="4", size="3",
                         style={"width": "100%", "font_size": "var(--font-size-3)"}),
            rx.cond(_err(prefix + "_options") != "", rx.text(_err(prefix + "_options"), color=rx.color("red", 11),
                                                             size="3", role="alert")),
        )),
        rx.cond(q["kind"] == "number", rx.box(
            rx.hstack(
                rx.box(rx.el.label(t("survey.field.q_min"), html_for="f-" + prefix + "_min"),
                       rx.input(name=prefix + "_min", id="f-" + prefix + "_min", type="number", default_value="0",
                                size="3", style=INPUT_STYLE), flex="1"),
                rx.box(rx.el.label(t("survey.field.q_max"), html_for="f-" + prefix + "_max"),
                       rx.input(name=prefix + "_max", id="f-" + prefix + "_max", type="number", default_value="999",
                                size="3", style=INPUT_STYLE), flex="1"),
                width="100%", margin_top="0.5em"),
            rx.cond(_err(prefix + "_range") != "", rx.text(_err(prefix + "_range"), color=rx.color("red", 11),
                                                           size="3", role="alert")),
        )),
        rx.el.label(
            rx.el.input(type="checkbox", name=prefix + "_required", id="f-" + prefix + "_required",
                        style={"width": "28px", "height": "28px", "margin_right": "0.6em"}),
            t("survey.field.q_required"), html_for="f-" + prefix + "_required",
            style={"display": "flex", "align_items": "center", "min_height": "48px", "margin_top": "0.4em"},
        ),
        key=uid,
    )


@template(route=SURVEY_NEW, title_key="survey.builder_title", on_load=[SurveyBuilderState.load])
def survey_builder() -> rx.Component:
    return rx.vstack(
        heading("survey.builder_title", help_key="help.survey_builder"),
        error_banner(SurveyBuilderState.error),
        rx.cond(SurveyBuilderState.han_options.length() > 0, rx.vstack(
            rx.text(t("survey.choose_kind"), size="4", weight="bold"),
            _kind_button("general"), _kind_button("attendance"), _kind_button("safety"),
            rx.form(
                text_field("survey.field.title", "title", error=_err("title"), required=True,
                           max_length=surveys.TITLE_MAX),
                text_area("survey.field.description", "description", error=_err("description"),
                          max_length=surveys.DESCRIPTION_MAX, rows="3"),
                text_field("survey.field.deadline", "deadline", type_="datetime-local", required=True,
                           default_value=SurveyBuilderState.default_deadline, error=_err("deadline")),
                rx.el.fieldset(
                    rx.el.legend(t("survey.field.target"), style={"font_weight": "600", "margin_bottom": "0.3em"}),
                    rx.cond(SurveyBuilderState.can_target_all, _radio("target", "all", "survey.field.target_all", True)),
                    _radio("target", "han", "survey.field.target_han", ~SurveyBuilderState.can_target_all),
                    rx.box(rx.foreach(SurveyBuilderState.han_options, lambda h: rx.el.label(
                        rx.el.input(type="checkbox", name="han_" + h[0], id="f-han_" + h[0],
                                    style={"width": "28px", "height": "28px", "margin_right": "0.6em"}),
                        h[1], html_for="f-han_" + h[0],
                        style={"display": "flex", "align_items": "center", "min_height": "48px"})),
                        padding_left="2em"),
                    rx.cond(_err("targets") != "", rx.text(_err("targets"), color=rx.color("red", 11), size="3",
                                                           role="alert")),
                    style={"border": "none", "padding": "0", "margin_bottom": "1em"},
                ),
                rx.cond(SurveyBuilderState.kind != "safety",
                        checkbox_field("survey.field.anonymous", "anonymous")),
                rx.cond(_err("anonymous") != "", rx.text(_err("anonymous"), color=rx.color("red", 11), size="3",
                                                         role="alert")),
                checkbox_field("survey.field.per_household", "per_household",
                               checked=SurveyBuilderState.kind == "safety"),
                rx.text(t("survey.field.per_household_help"), size="2", color=rx.color("gray", 11)),
                rx.cond(SurveyBuilderState.fixed.length() > 0, card(
                    rx.heading(t("survey.fixed_questions"), as_="h2", size="4", margin_bottom="0.4em"),
                    rx.foreach(SurveyBuilderState.fixed, lambda q: rx.box(
                        rx.text(q["text"], size="4", weight="bold"),
                        rx.text(q["kind_label"], " ", q["options"], size="3", color=rx.color("gray", 11)),
                        margin_bottom="0.4em")),
                )),
                rx.heading(rx.cond(SurveyBuilderState.fixed.length() > 0, t("survey.more_questions"),
                                   t("survey.questions")), as_="h2", size="5", margin_y="0.5em"),
                rx.foreach(SurveyBuilderState.extra, _extra_question),
                rx.cond(_err("questions") != "", rx.text(_err("questions"), color=rx.color("red", 11), size="3",
                                                         role="alert")),
                rx.grid(
                    *[secondary_button("survey.add." + k, type="button",
                                       on_click=SurveyBuilderState.add_question(k), id="add-" + k)
                      for k in surveys.QUESTION_KINDS],
                    columns=rx.breakpoints(initial="1", sm="2"), spacing="2", width="100%", margin_bottom="1.2em",
                ),
                primary_button("survey.create", type="submit", width="100%", id="survey-create"),
                on_submit=SurveyBuilderState.submit,
                key=SurveyBuilderState.form_key,
                width="100%",
                id="survey-builder",
            ),
            width="100%", align="stretch", spacing="3",
        )),
        width="100%", align="stretch",
    )


def _radio(name: str, value: str, label_key: str, checked: rx.Var | bool) -> rx.Component:
    fid = f"f-{name}-{value}"
    return rx.el.label(
        rx.el.input(type="radio", name=name, value=value, id=fid, default_checked=checked,
                    style={"width": "28px", "height": "28px", "margin_right": "0.6em"}),
        t(label_key), html_for=fid,
        style={"display": "flex", "align_items": "center", "min_height": "48px", "cursor": "pointer"},
    )


# =========================================================================== results


class SurveyResultsState(rx.State):
    """Totals for officers with run_surveys; person lists only for named surveys, only when asked for."""

    survey: dict[str, Any] = {}
    summary: str = ""
    head_line: str = ""
    safety_line: str = ""
    questions: list[dict[str, Any]] = []
    full: bool = False  # the officer covers every targeted han (totals, export)
    can_reopen: bool = False  # closed before its deadline, by an officer covering every han (reopen)
    people_title: str = ""
    people_mode: str = ""  # "" | responses | missing
    people_heads: list[str] = []
    people: list[dict[str, Any]] = []
    people_total: int = 0
    people_page: int = 1
    hans: list[dict[str, Any]] = []
    needs_help: list[dict[str, Any]] = []
    needs_help_more: str = ""  # "and N more" when the list shows only the first of them
    withheld: str = ""  # why an anonymous survey's totals are not shown yet
    error: str = ""
    notice: str = ""
    # Recording a household's answer (an officer after a visit or a call): the dialog and its form.
    record_open: bool = False
    record_household: dict[str, Any] = {}
    record_questions: list[dict[str, Any]] = []
    record_errors: dict[str, str] = {}
    record_error: str = ""
    record_key: int = 0
    _survey_id: int = 0
    _record_hid: int = 0
    _record_version: str = ""  # the household's answer the dialog was filled from

    def _clear(self) -> None:
        self.survey, self.questions, self.hans, self.needs_help, self.needs_help_more = {}, [], [], [], ""
        self.summary = self.head_line = self.safety_line = self.error = self.notice = self.withheld = ""
        self.full = self.can_reopen = False
        self._clear_people()
        self._clear_record()
        self._survey_id = 0

    def _clear_record(self) -> None:
        self.record_open, self.record_household, self.record_questions = False, {}, []
        self.record_errors, self.record_error = {}, ""
        self._record_hid = 0
        self._record_version = ""

    def _clear_people(self) -> None:
        self.people_mode, self.people_title, self.people_heads, self.people = "", "", [], []
        self.people_total, self.people_page = 0, 1

    @rx.event
    async def load(self):
        return await _open_from_query(self)

    async def _open(self, actor, lang: str, survey_id: int) -> None:
        self._clear()
        ok, res, err, _ = await attempt(self, lang, surveys.results, actor, survey_id)
        if ok:
            self._set_results(res, lang)
        else:
            # An officer covering only some han still acts on a safety check in their han.
            ok2, board, _e, _ = await attempt(self, lang, surveys.safety_board, actor, survey_id, PEOPLE_PAGE, 0)
            if not ok2:
                # A 班長 of some of the survey's han (the list offers them its results): no totals, which mix
                # every han, but who in their han has answered and who has not (the services check the scope).
                ok3, form, _e, _ = await attempt(self, lang, surveys.get_for_answer, actor, survey_id)
                if not ok3 or form.survey.anonymous or not han_scope(actor, RUN_SURVEYS, form.survey.association_id):
                    self.error = err
                    return
                self._survey_id = form.survey.id
                self.survey = _survey_dict(form.survey, lang)
                self.people_mode = "missing"
                await self._people(actor, lang)
                if not self.people_mode:  # refused: not a survey of their han after all
                    self._clear()
                    self.error = err
                return
            self._survey_id = board.survey.id
            self.survey = _survey_dict(board.survey, lang)
            self._set_board(board, lang)
            return
        if res.survey.kind == "safety" and not res.survey.anonymous:
            await self._board(actor, lang)

    def _set_results(self, res: surveys.Results, lang: str) -> None:
        self._survey_id = res.survey.id
        self.full = True
        self.can_reopen = surveys.can_reopen(res.survey)
        self.survey = _survey_dict(res.survey, lang)
        self.summary = tr(lang, "survey.answered_of", total=res.target_units,
                          n=res.respondents if res.answered_targets is None else res.answered_targets)
        self.head_line = ("" if res.head_count is None else
                          tr(lang, "survey.head_count", attendees=res.attendees, people=res.head_count))
        self.safety_line = ("" if res.needs_help is None else
                            tr(lang, "survey.safety_counts", safe=res.safe, help=res.needs_help))
        self.questions = [self._question(q, lang) for q in res.questions]
        self.withheld = tr(lang, "survey.totals_withheld", min=surveys.ANONYMOUS_TOTALS_MIN) if res.withheld else ""

    @staticmethod
    def _question(q: surveys.QuestionTotal, lang: str) -> dict[str, Any]:
        stats = ""
        if q.kind == "number" and q.answered:
            stats = tr(lang, "survey.number_stats", sum=q.number_sum, avg=q.number_avg, min=q.number_min,
                       max=q.number_max)
        return {"id": str(q.id), "text": q.text, "kind": q.kind, "answered": tr(lang, "survey.count_n", n=q.answered),
                "chart": [{"name": o.label, "count": o.count} for o in q.options],
                "rows": [{"label": o.label, "count": str(o.count)} for o in q.options],
                "stats": stats, "texts": list(q.texts),
                "texts_title": tr(lang, "survey.text_answers", n=q.text_count),
                "texts_more": tr(lang, "survey.text_shown", n=len(q.texts)) if q.text_count > len(q.texts) else ""}

    async def _board(self, actor, lang: str) -> None:
        ok, board, self.error, _ = await attempt(self, lang, surveys.safety_board, actor, self._survey_id,
                                                 PEOPLE_PAGE, (self.people_page - 1) * PEOPLE_PAGE)
        if ok:
            self._set_board(board, lang)
        else:  # refused now: the names shown before go too
            self._clear_people()
            self.hans, self.needs_help, self.needs_help_more = [], [], ""

    def _set_board(self, board: surveys.SafetyBoard, lang: str) -> None:
        self.hans = [{"han": h.han, "targets": str(h.targets), "answered": str(h.answered), "safe": str(h.safe),
                      "help": str(h.needs_help), "missing": str(h.not_answered)} for h in board.hans]
        self.needs_help = [_person(p, lang) for p in board.needs_help]
        more = board.needs_help_total - len(board.needs_help)
        self.needs_help_more = tr(lang, "survey.needs_help_more", n=more) if more > 0 else ""
        self.people_mode = "missing"
        self.people_title = tr(lang, "survey.missing_title")
        self.people = [_person(p, lang) for p in board.not_answered.rows]
        self.people_total = board.not_answered.total

    @rx.var
    def people_pages(self) -> int:
        return _pages(self.people_total, PEOPLE_PAGE)

    async def _people(self, actor, lang: str) -> None:
        if self.survey.get("kind") == "safety":
            await self._board(actor, lang)
            return
        fn = surveys.responses if self.people_mode == "responses" else surveys.non_responders
        ok, page, self.error, _ = await attempt(self, lang, fn, actor, self._survey_id, PEOPLE_PAGE,
                                                (self.people_page - 1) * PEOPLE_PAGE)
        if not ok:
            self._clear_people()
            return
        self.people_heads = list(page.questions)
        self.people = [_person(p, lang) for p in page.rows]
        self.people_total = page.total
        self.people_title = tr(lang, "survey.responses_title" if self.people_mode == "responses"
                               else "survey.nonresponders_title")

    @rx.event
    async def show_people(self, mode: str):
        actor, lang = await current_actor(self)
        if not actor.authenticated:
            return rx.redirect(routes.LOGIN)
        if mode not in ("responses", "missing") or not self._survey_id:
            return
        self.people_mode, self.people_page = mode, 1
        await self._people(actor, lang)

    @rx.event
    async def people_next(self):
        actor, lang = await current_actor(self)
        if not actor.authenticated:
            return rx.redirect(routes.LOGIN)
        if self.people_mode and self.people_page < _pages(self.people_total, PEOPLE_PAGE):
            self.people_page += 1
            await self._people(actor, lang)

    @rx.event
    async def people_prev(self):
        actor, lang = await current_actor(self)
        if not actor.authenticated:
            return rx.redirect(routes.LOGIN)
        if self.people_mode and self.people_page > 1:
            self.people_page -= 1
            await self._people(actor, lang)

    @rx.event
    async def refresh(self):
        actor, lang = await current_actor(self)
        if not actor.authenticated:
            return rx.redirect(routes.LOGIN)
        if self._survey_id:
            await self._open(actor, lang, self._survey_id)

    @rx.event
    async def remind(self):
        actor, lang = await current_actor(self)
        if not actor.authenticated:
            return rx.redirect(routes.LOGIN)
        ok, n, self.error, _ = await attempt(self, lang, surveys.send_reminder, actor, self._survey_id)
        self.notice = tr(lang, "survey.reminded", n=n) if ok else ""

    @rx.event
    async def close(self):
        return await self._open_or_close(surveys.close_survey, "survey.closed_done")

    @rx.event
    async def reopen(self):
        return await self._open_or_close(surveys.reopen_survey, "survey.reopened_done")

    async def _open_or_close(self, service, done_key: str):
        """Close or reopen the survey, then show it as it now is (and the badges: a safety check's counts)."""
        actor, lang = await current_actor(self)
        if not actor.authenticated:
            return rx.redirect(routes.LOGIN)
        ok, _r, self.error, _ = await attempt(self, lang, service, actor, self._survey_id)
        if ok:
            await self._open(actor, lang, self._survey_id)
            self.notice = tr(lang, done_key)
            await refresh_badges(self, actor)
        return None

    @rx.event
    async def open_record(self, household_id: str):
        """Open the form for recording a household's answer (its id from a listed row; the service checks it)."""
        actor, lang = await current_actor(self)
        if not actor.authenticated:
            return rx.redirect(routes.LOGIN)
        self._clear_record()
        if not self._survey_id:
            return None
        ok, form, self.error, _ = await attempt(self, lang, surveys.household_form, actor, self._survey_id,
                                                as_id(household_id))
        if not ok:
            return None
        self._record_hid = form.household_id
        self._record_version = form.version
        self.record_household = {"name": form.name or tr(lang, "survey.record_no_name"), "address": form.address,
                                 "paper": form.paper_only, "answered": form.answered, "recorded": form.recorded}
        self.record_questions = [_question(q, form.mine.get(q.id), lang, form.survey.kind) for q in form.questions]
        self.record_key += 1
        self.record_open = True
        return None

    @rx.event
    def record_dialog_change(self, is_open: bool):
        if not is_open:
            self._clear_record()

    @rx.event
    async def save_record(self, form: dict):
        actor, lang = await current_actor(self)
        if not actor.authenticated:
            return rx.redirect(routes.LOGIN)
        if not isinstance(form, dict) or not self._record_hid or not self._survey_id:
            return None
        ok, _r, err, errs = await attempt(self, lang, surveys.record_for_household, actor, self._survey_id,
                                          self._record_hid, _answers_from(self.record_questions, form),
                                          self._record_version)
        if not ok:
            self.record_errors = errs
            self.record_error = err or tr(lang, "survey.errors_below")
            return None
        self._clear_record()
        # The counts and lists as they now are (the household leaves the non-responders), on the same list
        # and page as far as it still reaches, and the badges.
        mode, page = self.people_mode, self.people_page
        await self._open(actor, lang, self._survey_id)
        if mode and (page > 1 or self.people_mode != mode):
            self.people_mode, self.people_page = mode, page
            await self._people(actor, lang)
            if self.people_mode and self.people_page > self.people_pages:
                self.people_page = self.people_pages
                await self._people(actor, lang)
        self.notice = tr(lang, "survey.recorded_done")
        await refresh_badges(self, actor)
        return None

    @rx.event
    async def export(self, fmt: str):
        actor, lang = await current_actor(self)
        if not actor.authenticated:
            return rx.redirect(routes.LOGIN)
        ok, out, err, field_errs = await attempt(self, lang, surveys.export_results, actor, self._survey_id, fmt,
                                                 lang)
        self.error = err or next(iter(field_errs.values()), "")
        if ok:
            filename, data, mime = out
            return rx.download(data=data, filename=filename, mime_type=mime)


def _chart(q: rx.Var) -> rx.Component:
    return rx.recharts.bar_chart(
        rx.recharts.cartesian_grid(stroke_dasharray="3 3"),
        rx.recharts.x_axis(data_key="name"),
        rx.recharts.y_axis(allow_decimals=False),
        rx.recharts.bar(data_key="count", fill="var(--accent-9)", is_animation_active=False),
        data=q["chart"].to(list[dict[str, Any]]),
        width="100%",
        height=220,
    )


def _result_question(q: rx.Var) -> rx.Component:
    return card(
        rx.heading(q["text"], as_="h3", size="4"),
        rx.text(q["answered"], size="2", color=rx.color("gray", 11)),
        rx.cond((q["kind"] == "single") | (q["kind"] == "multiple"), rx.box(
            _chart(q),
            rx.el.table(rx.el.tbody(rx.foreach(q["rows"].to(list[dict[str, str]]), lambda o: rx.el.tr(
                rx.el.td(o["label"], style={"padding": "0.3em 1em 0.3em 0"}),
                rx.el.td(o["count"], style={"text_align": "right", "font_weight": "bold"})))),
                style={"font_size": "var(--font-size-3)"}),
            width="100%")),
        rx.cond(q["stats"] != "", rx.text(q["stats"], size="4")),
        rx.cond(q["kind"] == "text", rx.box(
            rx.text(q["texts_title"], size="3", weight="bold"),
            rx.foreach(q["texts"].to(list[str]), lambda txt: rx.text(txt, size="3", white_space="pre-wrap",
                                                                     border_left="3px solid var(--gray-6)",
                                                                     padding_left="0.6em", margin_y="0.3em")),
            rx.cond(q["texts_more"] != "", rx.text(q["texts_more"], size="2", color=rx.color("gray", 11))),
        )),
    )


def _people_table() -> rx.Component:
    return card(
        rx.heading(SurveyResultsState.people_title, as_="h2", size="5"),
        rx.text(t("survey.access_note"), size="2", color=rx.color("gray", 11)),
        rx.cond(
            SurveyResultsState.people.length() > 0,
            rx.box(rx.el.table(
                rx.el.thead(rx.el.tr(
                    rx.el.th(t("survey.col.han")), rx.el.th(t("survey.col.name")), rx.el.th(t("survey.col.address")),
                    rx.cond(SurveyResultsState.people_mode == "responses", rx.el.th(t("survey.col.date"))),
                    rx.foreach(SurveyResultsState.people_heads, lambda h: rx.el.th(h)),
                )),
                rx.el.tbody(rx.foreach(SurveyResultsState.people, lambda p: rx.el.tr(
                    rx.el.td(p["han"]),
                    rx.el.td(p["name"], rx.cond(p["paper"].to(bool), rx.badge(t("survey.paper"), margin_left="0.4em")),
                             _recorded_badge(p), _record_button(p)),
                    rx.el.td(p["address"]),
                    rx.cond(SurveyResultsState.people_mode == "responses", rx.el.td(p["date"])),
                    rx.foreach(p["answers"].to(list[str]), lambda a: rx.el.td(a)),
                ))),
                style={"font_size": "var(--font-size-3)", "border_collapse": "collapse", "width": "100%"},
                class_name="chiiki-table",
            ), overflow_x="auto", width="100%", id="people-table"),
            rx.text(rx.cond(SurveyResultsState.people_mode == "responses", t("survey.no_answers"),
                            t("survey.none_missing")), size="4"),
        ),
        pager(SurveyResultsState.people_page, SurveyResultsState.people_pages, SurveyResultsState.people_prev,
              SurveyResultsState.people_next),
    )


def _recorded_badge(p: rx.Var) -> rx.Component:
    return rx.cond(p["recorded"].to(bool), rx.badge(t("survey.recorded_badge"), color_scheme="blue",
                                                    margin_left="0.4em"))


def _record_button(p: rx.Var) -> rx.Component:
    """Record a household's answer: on a household's row of an open, named, per-household survey."""
    s = SurveyResultsState.survey
    return rx.cond(
        (p["hid"].to(str) != "") & s["is_open"].to(bool) & s["per_household"].to(bool) & ~s["anonymous"].to(bool),
        rx.box(button(t("survey.record"), variant="outline", size="2", style={"min_height": "44px"},
                      on_click=SurveyResultsState.open_record(p["hid"].to(str)), class_name="record-answer"),
               margin_top="0.3em"),
    )


def _record_dialog() -> rx.Component:
    h = SurveyResultsState.record_household
    return rx.dialog.root(
        rx.dialog.content(
            rx.dialog.title(t("survey.record_title")),
            rx.text(h["name"].to(str), rx.cond(h["paper"].to(bool), rx.badge(t("survey.paper"), margin_left="0.4em")),
                    size="5", weight="bold", id="record-household"),
            rx.cond(h["address"].to(str) != "", rx.text(h["address"].to(str), size="3")),
            rx.dialog.description(t("survey.record_note"), size="2", margin_y="0.6em"),
            rx.cond(h["answered"].to(bool), rx.callout(t("survey.record_replaces"), color_scheme="orange", size="2",
                                                       width="100%", margin_bottom="0.6em")),
            error_banner(SurveyResultsState.record_error),
            rx.form(
                rx.foreach(SurveyResultsState.record_questions,
                           lambda q: _question_block(q, SurveyResultsState.record_errors, None)),
                rx.hstack(
                    rx.dialog.close(secondary_button("common.cancel", type="button")),
                    primary_button("survey.record_save", type="submit", flex="1", id="record-save"),
                    width="100%",
                ),
                on_submit=SurveyResultsState.save_record,
                key=SurveyResultsState.record_key,
                width="100%",
                id="record-form",
            ),
            max_width="560px",
        ),
        open=SurveyResultsState.record_open,
        on_open_change=SurveyResultsState.record_dialog_change,
    )


def _safety_section() -> rx.Component:
    cell = {"padding": "0.4em 0.6em", "text_align": "right"}
    return rx.vstack(
        card(
            rx.heading(t("survey.safety_board"), as_="h2", size="5"),
            secondary_button("survey.refresh", on_click=SurveyResultsState.refresh, id="safety-refresh"),
            rx.box(rx.el.table(
                rx.el.thead(rx.el.tr(*[rx.el.th(t(k), style=cell) for k in (
                    "survey.col.han", "survey.col.targets", "survey.col.answered", "survey.col.safe",
                    "survey.col.help", "survey.col.missing")])),
                rx.el.tbody(rx.foreach(SurveyResultsState.hans, lambda h: rx.el.tr(
                    rx.el.td(h["han"], style=cell), rx.el.td(h["targets"], style=cell),
                    rx.el.td(h["answered"], style=cell), rx.el.td(h["safe"], style=cell),
                    rx.el.td(h["help"], style={**cell, "color": "var(--red-11)", "font_weight": "bold"}),
                    rx.el.td(h["missing"], style=cell)))),
                style={"font_size": "var(--font-size-3)", "width": "100%"},
            ), overflow_x="auto", width="100%", id="safety-hans"),
        ),
        card(
            rx.heading(t("survey.needs_help_title"), as_="h2", size="5", color=rx.color("red", 11)),
            rx.cond(SurveyResultsState.needs_help.length() > 0,
                    rx.vstack(rx.foreach(SurveyResultsState.needs_help, lambda p: rx.box(
                        rx.text(p["han"], " ", p["name"], _recorded_badge(p), size="4", weight="bold"),
                        rx.cond(p["address"] != "", rx.text(p["address"], size="3")),
                        rx.foreach(p["answers"].to(list[str]), lambda a: rx.cond(a != "", rx.text(a, size="3"))),
                        _record_button(p),
                        border_left="4px solid var(--red-9)", padding_left="0.8em", width="100%")),
                        width="100%", id="needs-help"),
                    rx.text(t("survey.none_help"), size="4")),
            rx.cond(SurveyResultsState.needs_help_more != "",
                    rx.callout(SurveyResultsState.needs_help_more, color_scheme="red", size="2", width="100%",
                               id="needs-help-more")),
        ),
        width="100%", align="stretch",
    )


@template(route=SURVEY_RESULTS, title_key="survey.results_title", on_load=[SurveyResultsState.load])
def survey_results() -> rx.Component:
    s = SurveyResultsState.survey
    is_named = ~s["anonymous"].to(bool)
    return rx.vstack(
        link_button("survey.back", routes.SURVEYS, variant="ghost"),
        error_banner(SurveyResultsState.error),
        message(SurveyResultsState.notice),
        rx.cond(SurveyResultsState.survey.length() > 0, rx.vstack(
            rx.hstack(_kind_badge(s["kind"].to(str), s["kind_label"].to(str)),
                      rx.cond(s["anonymous"].to(bool), rx.badge(t("survey.anonymous_badge"), size="3")),
                      rx.cond(~s["is_open"].to(bool), rx.badge(t("survey.status.closed"), size="3")),
                      wrap="wrap"),
            rx.heading(s["title"].to(str), as_="h1", size="7", id="results-title"),
            rx.text(t("survey.deadline_label"), ": ", s["deadline"].to(str), " · ", s["targets"].to(str), size="3"),
            rx.cond(SurveyResultsState.summary != "",
                    rx.text(SurveyResultsState.summary, size="5", weight="bold", id="results-summary")),
            rx.cond(SurveyResultsState.head_line != "",
                    rx.callout(SurveyResultsState.head_line, size="3", color_scheme="green", id="head-count",
                               width="100%")),
            rx.cond(SurveyResultsState.safety_line != "",
                    rx.callout(SurveyResultsState.safety_line, size="3", color_scheme="red", id="safety-line",
                               width="100%")),
            rx.cond(s["anonymous"].to(bool), rx.callout(t("survey.anonymous_results"), size="2", width="100%",
                                                        id="anonymous-results")),
            rx.cond(SurveyResultsState.withheld != "",
                    rx.callout(SurveyResultsState.withheld, size="3", width="100%", id="results-withheld")),
            rx.cond(s["kind"].to(str) == "safety", _safety_section()),
            rx.foreach(SurveyResultsState.questions, _result_question),
            rx.cond(is_named & (s["kind"].to(str) != "safety"), rx.vstack(
                secondary_button("survey.show_responses", on_click=SurveyResultsState.show_people("responses"),
                                 id="show-responses"),
                secondary_button("survey.show_nonresponders", on_click=SurveyResultsState.show_people("missing"),
                                 id="show-missing"),
                width="100%", align="stretch")),
            rx.cond(is_named & (SurveyResultsState.people_mode != ""), _people_table()),
            _record_dialog(),
            # Reminding and closing act on every han the survey asks: for an officer covering them all.
            rx.cond(s["is_open"].to(bool) & SurveyResultsState.full, rx.vstack(
                secondary_button("survey.remind", on_click=SurveyResultsState.remind, id="survey-remind"),
                rx.alert_dialog.root(
                    rx.alert_dialog.trigger(button(t("survey.close"), color_scheme="red", variant="outline",
                                                      size="3", style=BUTTON_STYLE, id="survey-close")),
                    rx.alert_dialog.content(
                        rx.alert_dialog.title(t("survey.close")),
                        rx.alert_dialog.description(t("survey.close_confirm")),
                        rx.hstack(
                            rx.alert_dialog.cancel(secondary_button("common.cancel")),
                            rx.alert_dialog.action(button(t("survey.close"), color_scheme="red", size="3",
                                                             style=BUTTON_STYLE, on_click=SurveyResultsState.close,
                                                             id="survey-close-confirm")),
                            justify="end", spacing="3", margin_top="1em"),
                    ),
                ),
                width="100%", align="stretch")),
            rx.cond(SurveyResultsState.can_reopen & SurveyResultsState.full,
                    secondary_button("survey.reopen", on_click=SurveyResultsState.reopen, id="survey-reopen")),
            rx.cond(AuthState.can_export & SurveyResultsState.full, card(
                rx.hstack(
                    secondary_button("common.download_csv", on_click=SurveyResultsState.export("csv"),
                                     id="export-csv"),
                    secondary_button("common.download_xlsx", on_click=SurveyResultsState.export("xlsx"),
                                     id="export-xlsx"),
                    wrap="wrap", spacing="3"),
                rx.text(t("survey.export_note"), size="2", color=rx.color("gray", 11)),
            )),
            width="100%", align="stretch", spacing="3",
        )),
        width="100%", align="stretch",
    )
