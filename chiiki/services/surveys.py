"""Surveys, attendance (出欠) and safety checks (安否確認): build, answer, totals, non-responders, export.

Anonymity (anonymous surveys) is kept by the data, not only by the pages:
- SurveyResponse/SurveyAnswer rows of an anonymous survey carry no account, household or han id;
- their ids are random (never in insertion order), so they cannot be lined up with the (sequential)
  SurveyParticipation rows that record who answered;
- the response's only date is the survey's own creation day (the same for every response), so the
  day recorded in SurveyParticipation cannot be joined to it either;
- nothing about an anonymous answer goes into the audit log or the mail queue.
As a consequence an anonymous answer is final: nothing links it to its author, so nobody can change it.
"""

from __future__ import annotations

import functools
import secrets
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Integer, String, and_, bindparam, case, cast, delete, exists, func, null, or_, true, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from chiiki.i18n import TZ, fmt_dt, tr
from chiiki.models import (
    Account,
    Han,
    Household,
    Membership,
    Survey,
    SurveyAnswer,
    SurveyOption,
    SurveyParticipation,
    SurveyQuestion,
    SurveyResponse,
    SurveyTarget,
    as_utc,
    recount_survey_answers,
    utcnow,
)
from chiiki.services import audit, mail, tabular, validate
from chiiki.services.associations import in_scope, moment, page_args
from chiiki.services.db import fetch_in, fetch, fetch_one, reading, reading_session, session
from chiiki.services.errors import Denied, NotFound, ServiceError, ValidationErrors
from chiiki.services.policy import ALL_HAN, EXPORT, MEMBER, RUN_SURVEYS, VIEW_MEMBERS, Actor, Assoc, can, han_scope

KINDS = ("general", "attendance", "safety")
# How many of a safety check's calls for help its page lists (it says how many more; the export has all).
NEEDS_HELP_SHOWN = 500
QUESTION_KINDS = ("single", "multiple", "text", "number")
MAX_QUESTIONS = 30
MAX_OPTIONS = 20
TITLE_MAX = 200
DESCRIPTION_MAX = 2000
QUESTION_MAX = 500
OPTION_MAX = 200
TEXT_ANSWER_MAX = 1000
NUMBER_LIMIT = 1_000_000
MAX_DEADLINE_DAYS = 366
# Members see the totals of a survey they answered only once this many have answered, so that
# nobody can work out a neighbour's answer from two or three.
MEMBER_TOTALS_MIN = 5
# The officers see an anonymous survey's totals, texts and export from the same number on: with one or two
# answers, whoever knows who answered (a small han, a neighbour seen answering) would read their answers.
ANONYMOUS_TOTALS_MIN = MEMBER_TOTALS_MIN
TEXTS_SHOWN = 50
REMIND_INTERVAL = timedelta(hours=1)
# Anonymous rows get random ids in this range: above any sequence value a real deployment reaches,
# and inside a 32-bit INTEGER column (PostgreSQL) with room left for sequences that continue after them.
_RANDOM_ID_LO = 2**30
_RANDOM_ID_HI = 2**30 + 2**29
ATTEND_MAX = 20
# Where a member answers (linked from mails); the page module registers it.
ANSWER_PATH = "/surveys/answer"


# --------------------------------------------------------------------------- plain results


@dataclass(frozen=True)
class SurveyInfo:
    id: int
    association_id: int
    title: str
    description: str
    kind: str
    deadline: datetime
    created_at: datetime
    anonymous: bool
    per_household: bool
    target_all: bool
    han_names: tuple[str, ...]
    is_open: bool


@dataclass(frozen=True)
class ListItem:
    survey: SurveyInfo
    targeted: bool  # the actor is asked to answer
    answered: bool  # the actor (or their household) has answered
    can_answer: bool  # open, targeted, and not a final (anonymous) answer already
    can_manage: bool  # may see results / non-responders
    respondents: int  # only filled when can_manage


@dataclass(frozen=True)
class SurveyPage:
    items: tuple[ListItem, ...]
    total: int


@dataclass(frozen=True)
class OptionView:
    id: int
    label: str


@dataclass(frozen=True)
class QuestionView:
    id: int
    position: int
    kind: str
    text: str
    required: bool
    min_value: int
    max_value: int
    options: tuple[OptionView, ...]


@dataclass(frozen=True)
class AnswerForm:
    """What a member needs to answer: the questions and, for a named survey, their current answers."""

    survey: SurveyInfo
    questions: tuple[QuestionView, ...]
    answered: bool
    can_answer: bool
    can_change: bool
    # {question id: option ids | text | number} for the actor's own named answer; empty otherwise.
    mine: dict
    answered_by_other: bool  # per-household: someone else of the household answered (or an officer recorded it)
    recorded_by_officer: bool = False  # per-household: the answer now stands as an officer recorded it


@dataclass(frozen=True)
class OptionTotal:
    id: int
    label: str
    count: int


@dataclass(frozen=True)
class QuestionTotal:
    id: int
    position: int
    kind: str
    text: str
    answered: int
    options: tuple[OptionTotal, ...]
    number_sum: int | None
    number_min: int | None
    number_max: int | None
    number_avg: float | None
    texts: tuple[str, ...]
    text_count: int


@dataclass(frozen=True)
class Results:
    survey: SurveyInfo
    respondents: int
    target_units: int
    questions: tuple[QuestionTotal, ...]
    attendees: int | None  # attendance: answers choosing the "attend" option
    head_count: int | None  # attendance: people coming
    safe: int | None  # safety: 無事
    needs_help: int | None  # safety: 支援が必要
    withheld: bool = False  # an anonymous survey answered by fewer than ANONYMOUS_TOTALS_MIN: counts only
    # Of target_units (the units asked now), those that have answered: target_units minus this is the
    # non-responders list. respondents also counts answers of members who have left since (they stay in totals).
    answered_targets: int | None = None


@dataclass(frozen=True)
class AnswerPage:
    """The answer page: the form, and the totals members may see (None before answering, or when hidden)."""

    form: AnswerForm
    totals: Results | None


@dataclass(frozen=True)
class PersonRow:
    """One respondent's or non-respondent's row in an officer's list."""

    account_id: int | None
    household_id: int | None
    han: str
    name: str
    address: str  # only when the officer also holds view_members there
    paper_only: bool
    answered_on: date | None
    answers: tuple[str, ...]  # one cell per question (responses); empty for non-responders
    recorded: bool = False  # the answer was recorded by an officer (for a household, after a visit or a call)


@dataclass(frozen=True)
class PersonPage:
    rows: tuple[PersonRow, ...]
    total: int
    questions: tuple[str, ...]


@dataclass(frozen=True)
class HouseholdForm:
    """What an officer needs to record a household's answer: the questions, the household as they may see it and
    its current answers."""

    survey: SurveyInfo
    questions: tuple[QuestionView, ...]
    household_id: int
    name: str  # its members' (or its head's) names, or display names for an officer without view_members
    address: str  # only with view_members there
    paper_only: bool
    mine: dict  # its current answers, as AnswerForm.mine
    answered: bool
    recorded: bool  # its current answer was recorded by an officer (else a member wrote it)
    # The answer the form was filled from (record_for_household refuses to replace another one).
    version: str = ""


@dataclass(frozen=True)
class HanStatus:
    han_id: int | None
    han: str
    targets: int
    answered: int
    safe: int
    needs_help: int

    @property
    def not_answered(self) -> int:
        return max(self.targets - self.answered, 0)


@dataclass(frozen=True)
class SafetyBoard:
    survey: SurveyInfo
    hans: tuple[HanStatus, ...]
    needs_help: tuple[PersonRow, ...]  # the first NEEDS_HELP_SHOWN, in route order
    not_answered: PersonPage
    needs_help_total: int = 0  # all of them (the export lists every one)


# --------------------------------------------------------------------------- small helpers


def today_local() -> date:
    return utcnow().astimezone(TZ).date()


def _is_open(sv: Survey, now: datetime) -> bool:
    return sv.closed_at is None and sv.deadline > now


def _survey_or_404(s: Session, survey_id: object) -> Survey:
    sid = validate.ident(survey_id, "survey_id")
    sv = s.get(Survey, sid)
    if sv is None:
        raise NotFound()
    return sv


# What the answer page reads on every open and every answer: Core statements prepared once (db.fetch_in).
_TARGETS = select(SurveyTarget.han_id).where(SurveyTarget.survey_id == bindparam("t_survey", type_=Integer))
_HAN_NAMES = (select(Han.name).where(Han.id.in_(bindparam("t_han", expanding=True)))
              .order_by(Han.route_order))
_ANSWERED_UNITS = (select(func.count()).select_from(SurveyParticipation)
                   .where(SurveyParticipation.survey_id == bindparam("t_survey", type_=Integer)))
_SURVEY = select(*Survey.__table__.c).where(Survey.id == bindparam("t_survey", type_=Integer))
_PARTICIPATION = (select(SurveyParticipation.id, SurveyParticipation.account_id)
                  .where(SurveyParticipation.survey_id == bindparam("t_survey", type_=Integer),
                         SurveyParticipation.unit_key == bindparam("t_unit", type_=String)))


def _targets(s: Session, survey_id: int) -> list[int]:
    return list(fetch_in(s, _TARGETS, {"t_survey": survey_id}).scalars())


def _info(s: Session, sv: Survey, now: datetime, targets: list[int] | None = None) -> SurveyInfo:
    targets = _targets(s, sv.id) if targets is None else targets
    names: tuple[str, ...] = ()
    if not sv.target_all and targets:
        names = tuple(fetch_in(s, _HAN_NAMES, {"t_han": targets}).scalars())
    return SurveyInfo(sv.id, sv.association_id, sv.title, sv.description, sv.kind, sv.deadline, sv.created_at,
                      sv.anonymous, sv.per_household, sv.target_all, names, _is_open(sv, now))


def _member_of(actor: Actor, sv: Survey):
    """The actor's membership when they may see this survey at all (a member of its association)."""
    if not can(actor, MEMBER, Assoc(sv.association_id)):
        raise Denied()
    return actor.membership(sv.association_id)


def _is_targeted(sv: Survey, targets: list[int], han_id: int | None) -> bool:
    return sv.target_all or (han_id is not None and han_id in targets)


def _unit(sv: Survey, account_id: int, household_id: int | None) -> str:
    """The answering unit: the household for per-household surveys (when the member has one)."""
    return f"h{household_id}" if sv.per_household and household_id else f"a{account_id}"


def _manage_scope(actor: Actor, sv: Survey, targets: list[int]):
    """Han ids (or ALL_HAN) of this survey the actor may manage; Denied when none."""
    scope = han_scope(actor, RUN_SURVEYS, sv.association_id)
    if scope == ALL_HAN:
        return ALL_HAN
    if not scope:
        raise Denied()
    mine = frozenset(scope) if sv.target_all else frozenset(scope) & frozenset(targets)
    if not mine:
        raise Denied()
    return mine


def _covers(scope, sv: Survey, targets: list[int]) -> bool:
    return scope == ALL_HAN or (bool(scope) and not sv.target_all and set(targets) <= set(scope))


def _require_full(actor: Actor, sv: Survey, targets: list[int], permission: str = RUN_SURVEYS) -> None:
    """Totals and exports mix every targeted han: only an officer covering all of them sees them."""
    if not _covers(han_scope(actor, permission, sv.association_id), sv, targets):
        raise Denied()


# A survey's questions and their options (the answer form, every submission): prepared once, Core rows.
_QUESTIONS = (select(SurveyQuestion.id, SurveyQuestion.position, SurveyQuestion.kind, SurveyQuestion.text,
                     SurveyQuestion.required, SurveyQuestion.min_value, SurveyQuestion.max_value)
              .where(SurveyQuestion.survey_id == bindparam("q_survey", type_=Integer))
              .order_by(SurveyQuestion.position, SurveyQuestion.id))
_OPTIONS = (select(SurveyOption.id, SurveyOption.question_id, SurveyOption.label)
            .join(SurveyQuestion, SurveyQuestion.id == SurveyOption.question_id)
            .where(SurveyQuestion.survey_id == bindparam("q_survey", type_=Integer))
            .order_by(SurveyOption.position, SurveyOption.id))


def _questions(s: Session, survey_id: int) -> list[QuestionView]:
    s.flush()  # Core statements do not flush the session: see the questions it has added too
    conn = s.connection()
    qs = conn.execute(_QUESTIONS, {"q_survey": survey_id}).all()
    by_q: dict[int, list[OptionView]] = {}
    if qs:
        for oid, qid, label in conn.execute(_OPTIONS, {"q_survey": survey_id}):
            by_q.setdefault(qid, []).append(OptionView(oid, label))
    return [QuestionView(q.id, q.position, q.kind, q.text, q.required, q.min_value, q.max_value,
                         tuple(by_q.get(q.id, ()))) for q in qs]


def _random_ids(s: Session, model, n: int) -> list[int]:
    """n unused random primary keys for anonymous rows (their order says nothing about time)."""
    out: set[int] = set()
    while len(out) < n:
        want = {_RANDOM_ID_LO + secrets.randbelow(_RANDOM_ID_HI - _RANDOM_ID_LO) for _ in range(n - len(out))}
        want -= out
        taken = set(s.exec(select(model.id).where(model.id.in_(want))).all()) if want else set()
        out |= want - taken
    return list(out)


# --------------------------------------------------------------------------- templates and building


RESIDENTS_LANG = "ja"  # the language a survey's fixed questions are stored in: what the residents read


def template_questions(kind: str, lang: str = RESIDENTS_LANG) -> list[dict]:
    """The fixed first questions of a template kind (attendance, safety); general has none."""
    if kind == "attendance":
        return [
            {"kind": "single", "text": tr(lang, "survey.tpl.attend_q"), "required": True,
             "options": [tr(lang, "survey.tpl.attend_yes"), tr(lang, "survey.tpl.attend_no")]},
            {"kind": "number", "text": tr(lang, "survey.tpl.count_q"), "required": False, "options": [],
             "min": 0, "max": ATTEND_MAX},
        ]
    if kind == "safety":
        return [
            {"kind": "single", "text": tr(lang, "survey.tpl.safety_q"), "required": True,
             "options": [tr(lang, "survey.tpl.safe"), tr(lang, "survey.tpl.help")]},
            {"kind": "text", "text": tr(lang, "survey.tpl.safety_note"), "required": False, "options": []},
        ]
    return []


def _flag(value: object) -> bool:
    return value is True or value in ("on", "true", "1", 1)


def _clean_question(q: object, key: str, errors: dict) -> dict | None:
    if not isinstance(q, dict):
        errors[f"{key}_text"] = "error.invalid"
        return None
    out: dict = {}
    try:
        out["kind"] = validate.choice(q.get("kind"), f"{key}_kind", QUESTION_KINDS)
    except ServiceError as e:
        errors[f"{key}_text"] = e
        return None
    try:
        out["text"] = validate.text(q.get("text"), f"{key}_text", max_len=QUESTION_MAX)
    except ServiceError as e:
        errors[f"{key}_text"] = e
    out["required"] = _flag(q.get("required"))
    out["options"] = []
    out["min"], out["max"] = 0, 999
    if out["kind"] in ("single", "multiple"):
        raw = q.get("options")
        if isinstance(raw, str):
            raw = raw.splitlines()
        if not isinstance(raw, (list, tuple)):
            errors[f"{key}_options"] = "error.invalid"
            return out
        labels: list[str] = []
        try:
            for item in raw:
                label = validate.text(item, f"{key}_options", max_len=OPTION_MAX, required=False)
                if label and label not in labels:
                    labels.append(label)
        except ServiceError as e:
            errors[f"{key}_options"] = e
            return out
        if len(labels) < 2:
            errors[f"{key}_options"] = "survey.error_options_few"
        elif len(labels) > MAX_OPTIONS:
            errors[f"{key}_options"] = ServiceError("survey.error_options_many", max=MAX_OPTIONS)
        out["options"] = labels
    elif out["kind"] == "number":
        try:
            lo = validate.integer(q.get("min"), f"{key}_range", lo=-NUMBER_LIMIT, hi=NUMBER_LIMIT, required=False)
            hi = validate.integer(q.get("max"), f"{key}_range", lo=-NUMBER_LIMIT, hi=NUMBER_LIMIT, required=False)
        except ServiceError as e:
            errors[f"{key}_range"] = e
            return out
        lo = 0 if lo is None else lo
        hi = 999 if hi is None else hi
        if lo > hi:
            errors[f"{key}_range"] = "survey.error_range_order"
        out["min"], out["max"] = lo, hi
    return out


def _clean_survey(s: Session, actor: Actor, association_id: int, data: dict) -> tuple[dict, list[dict]]:
    errors: dict = {}
    out: dict = {}

    def run(field: str, fn) -> None:
        try:
            out[field] = fn()
        except Denied:
            raise
        except ServiceError as e:
            errors[field] = e

    run("kind", lambda: validate.choice(data.get("kind") or "general", "kind", KINDS))
    run("title", lambda: validate.text(data.get("title"), "title", max_len=TITLE_MAX))
    run("description", lambda: validate.text(data.get("description"), "description", max_len=DESCRIPTION_MAX,
                                             required=False, multiline=True))
    run("deadline", lambda: _deadline(data.get("deadline")))
    out["anonymous"] = _flag(data.get("anonymous"))
    out["per_household"] = _flag(data.get("per_household"))
    if out.get("kind") == "safety" and out["anonymous"]:
        # A safety check exists so that officers can go to those who need help.
        errors["anonymous"] = "survey.error_safety_named"
    out["target_all"] = _flag(data.get("target_all"))
    run("targets", lambda: _clean_targets(s, actor, association_id, out["target_all"], data.get("han_ids")))
    raw_qs = data.get("questions") or []
    if not isinstance(raw_qs, (list, tuple)):
        raw_qs = []
        errors["questions"] = "error.invalid"
    # In the residents' language, whichever language the officer's screen is in.
    questions = template_questions(out.get("kind", "general"))
    for i, q in enumerate(raw_qs[:MAX_QUESTIONS + 1]):
        key = f"q{q.get('uid', i)}" if isinstance(q, dict) else f"q{i}"
        cleaned = _clean_question(q, key, errors)
        if cleaned:
            questions.append(cleaned)
    if not questions:
        errors.setdefault("questions", "survey.error_no_questions")
    elif len(questions) > MAX_QUESTIONS:
        errors["questions"] = ServiceError("survey.error_questions_many", max=MAX_QUESTIONS)
    if errors:
        raise ValidationErrors(errors)
    return out, questions


def _deadline(value: object) -> datetime:
    """A local 'YYYY-MM-DDTHH:MM' (datetime-local input) or an aware datetime, in the future."""
    if isinstance(value, str) and "T" in value:
        day, _, clock = value.strip().partition("T")
        when = moment(day, clock[:5], "deadline")
    else:
        when = moment(value, "", "deadline")
    now = utcnow()
    if when <= now:
        raise ServiceError("survey.error_deadline_past", "deadline")
    if when > now + timedelta(days=MAX_DEADLINE_DAYS):
        raise ServiceError("survey.error_deadline_far", "deadline", days=MAX_DEADLINE_DAYS)
    return when


def _clean_targets(s: Session, actor: Actor, association_id: int, target_all: bool, han_ids: object) -> list[int]:
    scope = han_scope(actor, RUN_SURVEYS, association_id)
    if target_all:
        if scope != ALL_HAN:
            raise Denied()
        return []
    if isinstance(han_ids, (str, int)):
        han_ids = [han_ids]
    if not isinstance(han_ids, (list, tuple, set)) or not han_ids:
        raise ServiceError("survey.error_no_target", "targets")
    ids = sorted({validate.ident(h, "targets") for h in han_ids})
    rows = s.exec(select(Han.id).where(Han.id.in_(ids), Han.association_id == association_id)).all()
    if len(rows) != len(ids) or not all(in_scope(scope, h) for h in ids):
        raise Denied()
    return ids


def target_choices(actor: Actor, association_id: object) -> list[tuple[int, str]]:
    """The han a survey builder may target: all of them, or those of a han-scoped officer."""
    aid = validate.ident(association_id, "association_id")
    scope = han_scope(actor, RUN_SURVEYS, aid)
    if not scope:
        raise Denied()
    with session() as s:
        rows = s.exec(select(Han.id, Han.name).where(Han.association_id == aid).order_by(Han.route_order)).all()
        return [(i, name) for i, name in rows if in_scope(scope, i)]


def create_survey(actor: Actor, association_id: object, data: dict) -> int:
    """Build and open a survey. Safety checks are mailed at once to members who take mail."""
    aid = validate.ident(association_id, "association_id")
    if not han_scope(actor, RUN_SURVEYS, aid):
        raise Denied()
    if not isinstance(data, dict):
        raise ServiceError("error.invalid")
    with session() as s:
        clean, questions = _clean_survey(s, actor, aid, data)
        sv = Survey(association_id=aid, title=clean["title"], description=clean["description"], kind=clean["kind"],
                    deadline=clean["deadline"], target_all=clean["target_all"], anonymous=clean["anonymous"],
                    per_household=clean["per_household"], created_by=actor.account_id, created_at=utcnow())
        s.add(sv)
        s.flush()
        s.add_all([SurveyTarget(survey_id=sv.id, han_id=h) for h in clean["targets"]])
        for pos, q in enumerate(questions):
            row = SurveyQuestion(survey_id=sv.id, position=pos, kind=q["kind"], text=q["text"],
                                 required=q["required"], min_value=q["min"] if "min" in q else 0,
                                 max_value=q["max"] if "max" in q else 999)
            s.add(row)
            s.flush()
            s.add_all([SurveyOption(question_id=row.id, position=i, label=label)
                       for i, label in enumerate(q["options"])])
        if sv.kind == "safety":
            _mail_units(s, sv, clean["targets"], None, reminder=False)
        return sv.id


def close_survey(actor: Actor, survey_id: object) -> None:
    with session() as s:
        sv = _survey_or_404(s, survey_id)
        # Closing ends the survey for every han it asked: only for an officer who covers them all.
        _require_full(actor, sv, _targets(s, sv.id))
        if sv.closed_at is None:
            sv.closed_at = utcnow()
            s.add(sv)


def reopen_survey(actor: Actor, survey_id: object) -> None:
    """Take back a closing made before the deadline (closed by mistake, or too early): members can answer again
    until the deadline. Like closing, only for an officer covering every han the survey asks."""
    with session() as s:
        sv = _survey_or_404(s, survey_id)
        _require_full(actor, sv, _targets(s, sv.id))
        if sv.closed_at is None:
            return
        if as_utc(sv.deadline) <= utcnow():
            raise ServiceError("survey.error_reopen_deadline")
        sv.closed_at = None
        s.add(sv)


def can_reopen(info: SurveyInfo, now: datetime | None = None) -> bool:
    """Closed before its deadline (what reopen_survey takes back)."""
    return not info.is_open and as_utc(info.deadline) > (now or utcnow())


# --------------------------------------------------------------------------- who is asked


def _answered_units(s: Session, survey_id: int) -> int:
    return fetch_in(s, _ANSWERED_UNITS, {"t_survey": survey_id}).scalar_one()


@functools.lru_cache(maxsize=None)
def _unit_count_statement(per_household: bool, target_all: bool, answered: bool = False):
    """How many units a survey asks, prepared once per shape; parameters: the association and, unless it asks
    everyone, the han. A unit is an active member of the association (per member), or a household on its
    roster plus each active member without a household (per household); with han targets, only those whose
    household is in one of them."""
    members = (select(func.count()).select_from(Membership)
               .join(Household, Household.id == Membership.household_id, isouter=True)
               .where(Membership.association_id == bindparam("u_association", type_=Integer),
                      Membership.status == "active"))
    households = select(func.count()).select_from(Household).where(
        Household.association_id == bindparam("u_association", type_=Integer), Household.removed_at.is_(None))
    if not target_all:
        members = members.where(Household.han_id.in_(bindparam("u_han", expanding=True)))
        households = households.where(Household.han_id.in_(bindparam("u_han", expanding=True)))
    if answered:
        # Only the units asked now that have answered (a member who has left is neither asked nor counted).
        def has_answered(key):
            return exists().where(SurveyParticipation.survey_id == bindparam("u_survey", type_=Integer),
                                  SurveyParticipation.unit_key == key)
        # Members answer for themselves here: per household, only those without a household are counted.
        members = members.where(has_answered("a" + cast(Membership.account_id, String)))
        households = households.where(has_answered("h" + cast(Household.id, String)))
    if not per_household:
        return members
    # Members without a household answer for themselves.
    return select(households.scalar_subquery()
                  + members.where(Membership.household_id.is_(None)).scalar_subquery())


def _target_unit_count(s: Session, sv: Survey, targets: list[int], answered: bool = False) -> int:
    """The units the survey asks now (answered=True: those of them that have answered)."""
    params = {"u_association": sv.association_id}
    if not sv.target_all:
        params["u_han"] = targets or [-1]
    if answered:
        params["u_survey"] = sv.id
    stmt = _unit_count_statement(bool(sv.per_household), bool(sv.target_all), answered)
    return fetch_in(s, stmt, params).scalar_one()


def _answered_by_unit(s: Session, sv: Survey, account_id: int, household_id: int | None):
    """The unit's participation as (id, account_id), or None."""
    return fetch_in(s, _PARTICIPATION, {"t_survey": sv.id, "t_unit": _unit(sv, account_id, household_id)}).first()


# --------------------------------------------------------------------------- member side


def _unanswered(of_kind: bool):
    """The count of open surveys asking someone that they (or their household) have not answered, prepared
    once with parameters (see unanswered_params)."""
    targeted = or_(Survey.target_all.is_(True),
                   exists().where(SurveyTarget.survey_id == Survey.id,
                                  SurveyTarget.han_id == bindparam("ua_han", type_=Integer)))
    unit = case((Survey.per_household.is_(True), bindparam("ua_house_key", type_=String)),
                else_=bindparam("ua_own_key", type_=String))
    answered = exists().where(SurveyParticipation.survey_id == Survey.id, SurveyParticipation.unit_key == unit)
    q = (select(func.count()).select_from(Survey)
         .where(Survey.association_id == bindparam("ua_association", type_=Integer), Survey.closed_at.is_(None),
                Survey.deadline > bindparam("ua_now", type_=Survey.__table__.c.deadline.type), targeted, ~answered))
    if of_kind:
        q = q.where(Survey.kind == bindparam("ua_kind", type_=String))
    return q


UNANSWERED = _unanswered(False)
UNANSWERED_OF_KIND = _unanswered(True)  # the urgent banner on every page: kind "safety"


def unanswered_params(actor: Actor, association_id: object, kind: str | None = None) -> dict | None:
    """Parameters of UNANSWERED (or UNANSWERED_OF_KIND with a kind) for the actor (None: not a member)."""
    if not isinstance(association_id, int) or not can(actor, MEMBER, Assoc(association_id)):
        return None
    m = actor.membership(association_id)
    own_key = f"a{actor.account_id}"
    params = {"ua_han": m.han_id or -1, "ua_own_key": own_key,
              "ua_house_key": f"h{m.household_id}" if m.household_id else own_key,
              "ua_association": association_id, "ua_now": utcnow()}
    if kind:
        params["ua_kind"] = kind
    return params


def _unanswered_open(actor: Actor, association_id: object, kind: str | None) -> int:
    params = unanswered_params(actor, association_id, kind)
    if params is None:
        return 0
    with session() as s:
        return s.connection().execute(UNANSWERED_OF_KIND if kind else UNANSWERED, params).scalar_one()


def urgent_open_count(actor: Actor, association_id: int) -> int:
    """Open safety checks the actor (or their household) has not answered: the red banner on every page."""
    return _unanswered_open(actor, association_id, "safety")


def unanswered_count(actor: Actor, association_id: int) -> int:
    """Open surveys of any kind waiting for the actor's answer (a menu badge)."""
    return _unanswered_open(actor, association_id, None)


@functools.lru_cache(maxsize=None)
def _list_statements(shape: str):
    """The survey list's statements for a scope shape, prepared once with parameters (every member opens this
    page): "all" (runs every han's surveys), "hans" (runs some hans' surveys), "" (only answers)."""
    in_han = exists().where(SurveyTarget.survey_id == Survey.id, SurveyTarget.han_id == bindparam("sl_han", type_=Integer))
    targeted = or_(Survey.target_all.is_(True), in_han)
    if shape == "all":
        visible = true()
    elif shape == "hans":
        visible = or_(targeted, exists().where(SurveyTarget.survey_id == Survey.id,
                                               SurveyTarget.han_id.in_(bindparam("sl_scope", expanding=True))))
    else:
        visible = targeted
    unit = case((Survey.per_household.is_(True), bindparam("sl_house_key", type_=String)),
                else_=bindparam("sl_own_key", type_=String))
    answered = exists().where(SurveyParticipation.survey_id == Survey.id, SurveyParticipation.unit_key == unit)
    is_open = and_(Survey.closed_at.is_(None), Survey.deadline > bindparam("sl_now", type_=Survey.__table__.c.deadline.type))
    rank = case((and_(is_open, Survey.kind == "safety"), 0), (is_open, 1), else_=2)
    where = (Survey.association_id == bindparam("sl_association", type_=Integer), visible)
    c = Survey.__table__.c
    count = select(func.count()).select_from(Survey).where(*where)
    page = (select(c.id, c.title, c.description, c.kind, c.deadline, c.created_at, c.anonymous, c.per_household,
                   c.target_all, c.closed_at, targeted.label("asks_me"), answered.label("answered")).where(*where)
            .order_by(rank, case((is_open, Survey.deadline), else_=None), Survey.deadline.desc(), Survey.id.desc())
            .offset(bindparam("sl_offset", type_=Integer)).limit(bindparam("sl_limit", type_=Integer)))
    ids = bindparam("sl_ids", expanding=True)
    targets = select(SurveyTarget.survey_id, SurveyTarget.han_id).where(SurveyTarget.survey_id.in_(ids))
    names = select(Han.id, Han.name).where(Han.association_id == bindparam("sl_association", type_=Integer))
    # Respondents from each survey's counter (kept with every participation written), not a count of them.
    counts = select(Survey.id, Survey.answered_accounts).where(Survey.id.in_(ids))
    return count, page, targets, names, counts


def list_surveys(actor: Actor, association_id: object, limit: object = 20, offset: object = 0) -> SurveyPage:
    """Surveys asking the actor, plus those they manage; open safety checks first, then open, then closed."""
    aid = validate.ident(association_id, "association_id")
    if not can(actor, MEMBER, Assoc(aid)):
        raise Denied()
    lim, off = page_args(limit, offset)
    m = actor.membership(aid)
    scope = han_scope(actor, RUN_SURVEYS, aid)
    now = utcnow()
    own_key = f"a{actor.account_id}"
    params = {"sl_association": aid, "sl_han": m.han_id or -1, "sl_own_key": own_key, "sl_now": now,
              "sl_house_key": f"h{m.household_id}" if m.household_id else own_key}
    if scope == ALL_HAN:
        shape = "all"
    elif scope:
        shape = "hans"
        params["sl_scope"] = sorted(scope)
    else:
        shape = ""
    count, page, targets_q, names_q, counts_q = _list_statements(shape)
    with reading() as conn:  # prepared Core statements: no ORM session
        total = fetch_one(conn, count, params)[0]
        rows = fetch(conn, page, {**params, "sl_offset": off, "sl_limit": lim})
        ids = [r.id for r in rows]
        targets: dict[int, list[int]] = {i: [] for i in ids}
        if ids:
            for sid, hid in conn.execute(targets_q, {"sl_ids": ids}):
                targets[sid].append(hid)
        han_names = dict(fetch(conn, names_q, {"sl_association": aid}))
        counts = dict(conn.execute(counts_q, {"sl_ids": ids}).all()) if ids and scope else {}
    items = []
    for sv in rows:
        tg = targets[sv.id]
        info = SurveyInfo(sv.id, aid, sv.title, sv.description, sv.kind, sv.deadline, sv.created_at,
                          sv.anonymous, sv.per_household, sv.target_all,
                          tuple(han_names.get(h, "") for h in tg) if not sv.target_all else (), _is_open(sv, now))
        manage = bool(scope) and (scope == ALL_HAN or sv.target_all or bool(set(tg) & set(scope)))
        can_answer = bool(sv.asks_me) and info.is_open and not (sv.answered and sv.anonymous)
        items.append(ListItem(info, bool(sv.asks_me), bool(sv.answered), can_answer, manage, counts.get(sv.id, 0) if manage else 0))
    return SurveyPage(tuple(items), total)


def get_for_answer(actor: Actor, survey_id: object) -> AnswerForm:
    with session() as s:
        return _answer_form(s, actor, *_asked(s, actor, survey_id))[0]


def answer_page(actor: Actor, survey_id: object) -> AnswerPage:
    """The answer form and, once the actor has answered, the totals members may see: one reading session."""
    with reading_session() as s:
        sv, m, targets = _asked(s, actor, survey_id)
        form, _ = _answer_form(s, actor, sv, m, targets)
        return AnswerPage(form, _member_totals_in(s, sv, targets, form))


def answer_and_reopen(actor: Actor, survey_id: object, answers: object) -> AnswerPage:
    """submit_answer(), then the page as it now is, read once the answer is committed (a reading session: on
    PostgreSQL no transaction of its own), taking the questions and the member's answers from what was written.

    Every check comes before the commit, so the read after it raises no ServiceError; only a database failure
    could, and then the answer is kept although the caller sees an error (the next opening shows it)."""
    with session() as s:
        sv, m, targets = _asked(s, actor, survey_id)
        questions, rows, part = _store_answer(s, actor, sv, m, targets, answers)
    # Committed. The page is read outside that transaction (on PostgreSQL no BEGIN and COMMIT around it).
    mine = {} if sv.anonymous else _mine(rows)
    with reading_session() as r:
        form, _ = _answer_form(r, actor, sv, m, targets, known=(questions, part, mine))
        return AnswerPage(form, _member_totals_in(r, sv, targets, form))


def _asked(s: Session, actor: Actor, survey_id: object) -> tuple[Survey, object, list[int]]:
    """The survey (a row with the Survey's columns: read, never written, on these paths), the actor's
    membership of its association and the survey's target han."""
    sv = fetch_in(s, _SURVEY, {"t_survey": validate.ident(survey_id, "survey_id")}).first()
    if sv is None:
        raise NotFound()
    m = _member_of(actor, sv)
    return sv, m, _targets(s, sv.id)


def _answer_form(s: Session, actor: Actor, sv: Survey, m, targets: list[int],
                 known: tuple[list[QuestionView], Any, dict] | None = None) -> tuple[AnswerForm, Any]:
    """The form, and the unit's participation (anything with .account_id: a row of _PARTICIPATION or the
    SurveyParticipation just added; None before an answer). `known` is (questions, participation, own
    answers) when the caller has just written them."""
    info = _info(s, sv, utcnow(), targets)
    targeted = _is_targeted(sv, targets, m.han_id)
    if not targeted and not han_scope(actor, RUN_SURVEYS, sv.association_id):
        raise Denied()
    if known is not None:
        questions, part, mine = known
        by_other = recorded = False  # the actor has just written the unit's answer
    else:
        part = _answered_by_unit(s, sv, actor.account_id, m.household_id)
        mine = (_named_answers(s, sv, actor.account_id, m.household_id)
                if part is not None and not sv.anonymous else {})
        questions = _questions(s, sv.id)
        row = _household_response(s, sv, m.household_id) if part is not None else None
        by_other = row is not None and row.respondent_account_id != actor.account_id
        recorded = row is not None and row.recorded_by is not None
    answered = part is not None
    can_answer = targeted and info.is_open and not (answered and sv.anonymous)
    return AnswerForm(info, tuple(questions), answered, can_answer, can_answer and answered and not sv.anonymous,
                      mine, by_other, recorded), part


def _named_response_statement(by_household: bool, lock: bool = True):
    """The unit's named response as (id, respondent_account_id): the household's, or the account's own."""
    r = SurveyResponse.__table__.c
    unit = (r.household_id == bindparam("n_household", type_=Integer) if by_household
            else r.respondent_account_id == bindparam("n_account", type_=Integer))
    # Locked (PostgreSQL) until the answer is replaced: a second change sent at the same moment waits and then
    # replaces this one's answers, instead of deleting the old ones only and leaving both new sets.
    q = (select(r.id, r.respondent_account_id, r.recorded_by, r.updated_at)
         .where(r.survey_id == bindparam("n_survey", type_=Integer), unit)
         .order_by(r.id).limit(1))
    return q.with_for_update() if lock else q


_RESPONSE_OF_HOUSEHOLD, _RESPONSE_OF_ACCOUNT = _named_response_statement(True), _named_response_statement(False)
_RESPONDENT_OF_HOUSEHOLD = _named_response_statement(True, lock=False)


def _household_response(s: Session, sv: Survey, household_id: int | None):
    """Per household: the household's named response as (id, respondent_account_id, recorded_by, updated_at),
    unlocked; None without one (and for other surveys). Its respondent is who last wrote it (a housemate who changed it
    counts as its author, as the officers' lists show it; the participation keeps the first)."""
    if sv.anonymous or not (sv.per_household and household_id):
        return None
    return fetch_in(s, _RESPONDENT_OF_HOUSEHOLD, {"n_survey": sv.id, "n_household": household_id}).first()


def _answer_version(resp) -> str:
    """Which answer a household's response (a row of _named_response_statement) holds now: its id and when it was
    last written ("" for none)."""
    if resp is None:
        return ""
    return f"{resp.id}:{resp.updated_at.isoformat() if resp.updated_at else ''}"


def _named_response(s: Session, sv: Survey, account_id: int, household_id: int | None):
    """The unit's named response as a row (id, respondent_account_id), or None (anonymous: always None)."""
    if sv.anonymous:
        return None
    if sv.per_household and household_id:
        return s.connection().execute(_RESPONSE_OF_HOUSEHOLD, {"n_survey": sv.id, "n_household": household_id}).first()
    return s.connection().execute(_RESPONSE_OF_ACCOUNT, {"n_survey": sv.id, "n_account": account_id}).first()


def _mine_statement(by_household: bool):
    """The answers of the unit's named response (the household's, or the account's own)."""
    unit = (SurveyResponse.household_id == bindparam("m_household", type_=Integer) if by_household
            else SurveyResponse.respondent_account_id == bindparam("m_account", type_=Integer))
    response = (select(SurveyResponse.id)
                .where(SurveyResponse.survey_id == bindparam("m_survey", type_=Integer), unit)
                .order_by(SurveyResponse.id).limit(1).scalar_subquery())
    return (select(SurveyAnswer.question_id, SurveyAnswer.option_id, SurveyAnswer.text_value,
                   SurveyAnswer.number_value)
            .where(SurveyAnswer.response_id == response).order_by(SurveyAnswer.id))


_MINE_OF_HOUSEHOLD, _MINE_OF_ACCOUNT = _mine_statement(True), _mine_statement(False)


def _named_answers(s: Session, sv: Survey, account_id: int, household_id: int | None) -> dict:
    """The unit's current named answers, as _mine() gives them (as _named_response finds the response)."""
    if sv.anonymous:
        return {}
    if sv.per_household and household_id:
        return _mine(fetch_in(s, _MINE_OF_HOUSEHOLD, {"m_survey": sv.id, "m_household": household_id}))
    return _mine(fetch_in(s, _MINE_OF_ACCOUNT, {"m_survey": sv.id, "m_account": account_id}))


def _mine(rows) -> dict:
    """{question id: option ids | number | text} from (question, option, text, number) answer rows."""
    out: dict = {}
    for qid, oid, text, number in rows:
        if oid is not None:
            out.setdefault(qid, []).append(oid)
        elif number is not None:
            out[qid] = number
        else:
            out[qid] = text
    return out


def _clean_answers(questions: list[QuestionView], answers: object) -> list[tuple[int, int | None, str, int | None]]:
    """(question id, option id, text, number) rows, or ValidationErrors keyed "q<question id>"."""
    if not isinstance(answers, dict):
        raise ServiceError("error.invalid")
    by_id = {q.id: q for q in questions}
    given: dict[int, object] = {}
    for key, value in answers.items():
        raw = key[1:] if isinstance(key, str) and key.startswith("q") else key
        try:
            qid = validate.ident(raw, "question")
        except ServiceError:
            raise ServiceError("error.invalid") from None
        if qid not in by_id:
            # A question of another survey: refuse the whole answer, write nothing.
            raise ServiceError("error.invalid")
        given[qid] = value
    rows: list[tuple[int, int | None, str, int | None]] = []
    errors: dict = {}
    for q in questions:
        field = f"q{q.id}"
        value = given.get(q.id)
        try:
            rows.extend(_clean_one(q, value, field))
        except ServiceError as e:
            errors[field] = e
    if errors:
        raise ValidationErrors(errors)
    return rows


def _clean_one(q: QuestionView, value: object, field: str) -> list[tuple[int, int | None, str, int | None]]:
    option_ids = {o.id for o in q.options}
    if q.kind in ("single", "multiple"):
        if value in (None, "", [], ()):
            if q.required:
                raise ServiceError("error.required", field)
            return []
        values = value if isinstance(value, (list, tuple)) else [value]
        if q.kind == "single" and len(values) != 1:
            raise ServiceError("error.invalid", field)
        chosen: list[int] = []
        for v in values:
            try:
                oid = validate.ident(v, field)
            except ServiceError:
                raise ServiceError("error.invalid", field) from None
            if oid not in option_ids:
                raise ServiceError("survey.error_option", field)
            if oid not in chosen:
                chosen.append(oid)
        return [(q.id, oid, "", None) for oid in chosen]
    if q.kind == "number":
        number = validate.integer(value, field, lo=q.min_value, hi=q.max_value, required=q.required)
        return [] if number is None else [(q.id, None, "", number)]
    text = validate.text(value, field, max_len=TEXT_ANSWER_MAX, required=q.required, multiline=True)
    return [(q.id, None, text, None)] if text else []


def submit_answer(actor: Actor, survey_id: object, answers: object) -> None:
    """Record (or, for a named survey before its deadline, replace) the actor's answer. All or nothing."""
    with session() as s:
        _store_answer(s, actor, *_asked(s, actor, survey_id), answers)


def _store_answer(s: Session, actor: Actor, sv: Survey, m, targets: list[int], answers: object
                  ) -> tuple[list[QuestionView], list, Any]:
    """Write the answer (not yet committed): (the questions, the rows written, the unit's participation: the
    row of an earlier answer, or the one inserted now, as (id, account_id)).

    Core statements on the session's connection: an answer is a handful of rows, and the ORM's unit of work
    cost more than the database's own work for them. The survey's answer counters are recounted here (the
    ORM's flush hook, models._recount_after_orm_writes, sees no Core insert)."""
    if not _is_targeted(sv, targets, m.han_id):
        raise Denied()
    if not _is_open(sv, utcnow()):
        raise ServiceError("survey.error_closed")
    questions = _questions(s, sv.id)
    rows = _clean_answers(questions, answers)
    part = _answered_by_unit(s, sv, actor.account_id, m.household_id)
    if part is not None and sv.anonymous:
        raise ServiceError("survey.error_anonymous_final")
    conn = s.connection()
    if sv.anonymous:
        _write_anonymous(s, sv, rows)
    else:
        resp = _named_response(s, sv, actor.account_id, m.household_id)
        if resp is not None and sv.kind == "safety":
            _keep_a_call_for_help(s, questions, actor.account_id, resp)
        _write_named(conn, sv, resp, actor.account_id, m.household_id, m.han_id, rows)
    if part is None:
        try:
            pid = conn.execute(_ADD_PARTICIPATION, {
                "survey_id": sv.id, "account_id": actor.account_id, "household_id": m.household_id,
                "answered_on": today_local(), "unit_key": _unit(sv, actor.account_id, m.household_id),
            }).inserted_primary_key[0]
        except IntegrityError:
            # Someone of the same household answered at the same moment.
            raise ServiceError("survey.error_already") from None
        part = _Participation(pid, actor.account_id)
        recount_survey_answers(conn, [sv.id])
    elif part.account_id is None and not sv.anonymous:
        # The household's answer had been recorded by an officer: now a member has answered it themselves, and
        # the participation (what the dashboard counts) is theirs, unless they answered for another household.
        mine = SurveyParticipation.__table__.alias("mine")
        if conn.execute(_CLAIM_PARTICIPATION.where(~exists().where(
                mine.c.survey_id == sv.id, mine.c.account_id == actor.account_id)),
                {"c_part": part.id, "c_account": actor.account_id}).rowcount:
            part = _Participation(part.id, actor.account_id)
            recount_survey_answers(conn, [sv.id])
    return questions, rows, part


@dataclass(frozen=True)
class _Participation:
    """A participation just written, as _PARTICIPATION reads one."""

    id: int
    account_id: int


_ADD_PARTICIPATION = SurveyParticipation.__table__.insert()
_CLAIM_PARTICIPATION = (update(SurveyParticipation.__table__)
                        .where(SurveyParticipation.id == bindparam("c_part", type_=Integer),
                               SurveyParticipation.account_id.is_(None))
                        .values(account_id=bindparam("c_account", type_=Integer)))
_ADD_RESPONSE = SurveyResponse.__table__.insert()
_ADD_ANSWERS = SurveyAnswer.__table__.insert()
_DROP_ANSWERS = delete(SurveyAnswer).where(SurveyAnswer.response_id == bindparam("d_response", type_=Integer))
_RENEW_RESPONSE = (update(SurveyResponse.__table__)
                   .where(SurveyResponse.id == bindparam("d_response", type_=Integer)))


def _keep_a_call_for_help(s: Session, questions: list[QuestionView], account_id: int, resp) -> None:
    """In a safety check, a household's 支援が必要 stays as its sender wrote it: another member of the household
    answering 無事 would take the household off the officers' list of those to go to, and answering again (even
    支援が必要) would make the answer theirs, and then theirs to take back. They tell an officer instead."""
    first = next((q for q in questions if q.kind == "single" and len(q.options) >= 2), None)
    # An officer's record of a visit counts as another sender; the answer of a deleted account as no one's.
    if first is None or (resp.recorded_by is None and resp.respondent_account_id in (None, account_id)):
        return
    help_id = first.options[1].id
    asked = s.exec(select(SurveyAnswer.id).where(SurveyAnswer.response_id == resp.id,
                                                 SurveyAnswer.option_id == help_id)).first() is not None
    if asked:
        raise ServiceError("survey.error_help_kept")


def _answer_rows(response_id: int, rows: list) -> list[dict]:
    """SurveyAnswer rows to insert from (question, option, text, number) tuples."""
    return [{"response_id": response_id, "question_id": q, "option_id": o, "text_value": t, "number_value": n}
            for q, o, t, n in rows]


def _write_anonymous(s: Session, sv: Survey, rows: list) -> None:
    conn = s.connection()
    rid = _random_ids(s, SurveyResponse, 1)[0]
    # The survey's own creation day for every response: no date to join with SurveyParticipation.
    conn.execute(_ADD_RESPONSE, {"id": rid, "survey_id": sv.id, "respondent_account_id": None,
                                 "household_id": None, "han_id": None,
                                 "submitted_on": sv.created_at.astimezone(TZ).date(), "updated_at": None,
                                 "recorded_by": None})
    if rows:
        ids = _random_ids(s, SurveyAnswer, len(rows))
        conn.execute(_ADD_ANSWERS, [{"id": i, **a} for i, a in zip(ids, _answer_rows(rid, rows))])


def _write_named(conn, sv: Survey, resp, account_id: int | None, household_id: int | None, han_id: int | None,
                 rows: list, recorded_by: int | None = None) -> None:
    """The unit's named answer: a new response, or `resp` (its earlier one, _named_response) replaced. An
    officer recording a household's answer passes no account and themselves as recorded_by."""
    if resp is None:
        rid = conn.execute(_ADD_RESPONSE, {
            "survey_id": sv.id, "respondent_account_id": account_id, "household_id": household_id,
            "han_id": han_id, "submitted_on": today_local(), "updated_at": None,
            "recorded_by": recorded_by}).inserted_primary_key[0]
    else:
        rid = resp.id
        conn.execute(_DROP_ANSWERS, {"d_response": rid})
        conn.execute(_RENEW_RESPONSE, {"d_response": rid, "respondent_account_id": account_id, "han_id": han_id,
                                       "updated_at": utcnow(), "recorded_by": recorded_by})
    if rows:
        conn.execute(_ADD_ANSWERS, _answer_rows(rid, rows))


# --------------------------------------------------------------------------- totals


_RESPONSES = select(SurveyResponse.id).where(SurveyResponse.survey_id == bindparam("o_survey", type_=Integer))
# Answers per option, and per question: the responses answering it and the sum, min and max of numbers.
_OPTION_COUNTS = (select(SurveyAnswer.option_id, func.count())
                  .where(SurveyAnswer.response_id.in_(_RESPONSES), SurveyAnswer.option_id.is_not(None))
                  .group_by(SurveyAnswer.option_id))
_QUESTION_COUNTS = (select(SurveyAnswer.question_id, func.count(func.distinct(SurveyAnswer.response_id)),
                           func.sum(SurveyAnswer.number_value), func.min(SurveyAnswer.number_value),
                           func.max(SurveyAnswer.number_value))
                    .where(SurveyAnswer.response_id.in_(_RESPONSES)).group_by(SurveyAnswer.question_id))


def _totals(s: Session, sv: Survey, targets: list[int], *, with_texts: bool,
            known: tuple[SurveyInfo, tuple[QuestionView, ...], int] | None = None) -> Results:
    """`known` is (the survey's info, its questions, the answered units) when the caller has read them."""
    info, questions, answered = known if known is not None else (
        _info(s, sv, utcnow(), targets), _questions(s, sv.id), _answered_units(s, sv.id))
    resp_ids = select(SurveyResponse.id).where(SurveyResponse.survey_id == sv.id)
    opt_counts = dict(fetch_in(s, _OPTION_COUNTS, {"o_survey": sv.id}).all())
    per_q = {qid: (n, tot, lo, hi) for qid, n, tot, lo, hi in fetch_in(s, _QUESTION_COUNTS, {"o_survey": sv.id})}
    out = []
    for q in questions:
        n, tot, lo, hi = per_q.get(q.id, (0, None, None, None))
        texts: tuple[str, ...] = ()
        if q.kind == "text" and with_texts:
            # Ordered by id: random for anonymous surveys, so the order says nothing about who or when.
            texts = tuple(s.exec(select(SurveyAnswer.text_value)
                                 .where(SurveyAnswer.question_id == q.id, SurveyAnswer.response_id.in_(resp_ids))
                                 .order_by(SurveyAnswer.id).limit(TEXTS_SHOWN)).all())
        is_num = q.kind == "number"
        out.append(QuestionTotal(
            q.id, q.position, q.kind, q.text, n,
            tuple(OptionTotal(o.id, o.label, opt_counts.get(o.id, 0)) for o in q.options),
            tot if is_num and n else None, lo if is_num else None, hi if is_num else None,
            round(tot / n, 1) if is_num and n and tot is not None else None,
            texts, n if q.kind == "text" else 0))
    attendees = head = safe = help_ = None
    first_single = next((q for q in questions if q.kind == "single" and len(q.options) >= 2), None)
    if sv.kind == "attendance" and first_single:
        attendees, head = _head_count(s, questions, first_single, resp_ids)
    if sv.kind == "safety" and first_single:
        safe = opt_counts.get(first_single.options[0].id, 0)
        help_ = opt_counts.get(first_single.options[1].id, 0)
    return Results(info, answered, _target_unit_count(s, sv, targets), tuple(out), attendees, head, safe, help_)


def _head_count(s: Session, questions: list[QuestionView], attend_q: QuestionView, resp_ids) -> tuple[int, int]:
    """Responses choosing "attend", and the people they bring (a blank count, or 0 with 出席, means one person)."""
    attend_id = attend_q.options[0].id
    attending = select(SurveyAnswer.response_id).where(SurveyAnswer.response_id.in_(resp_ids),
                                                       SurveyAnswer.option_id == attend_id)
    attendees = s.exec(select(func.count()).select_from(attending.subquery())).one()
    count_q = next((q for q in questions if q.kind == "number"), None)
    if count_q is None:
        return attendees, attendees
    people = case((SurveyAnswer.number_value < 1, 1), else_=SurveyAnswer.number_value)
    counted = s.exec(select(func.count(), func.coalesce(func.sum(people), 0))
                     .where(SurveyAnswer.question_id == count_q.id, SurveyAnswer.response_id.in_(attending),
                            SurveyAnswer.number_value.is_not(None))).one()
    return attendees, int(counted[1]) + (attendees - counted[0])


def results(actor: Actor, survey_id: object) -> Results:
    """Totals, charts and free-text answers (without names) for officers with run_surveys."""
    with session() as s:
        sv = _survey_or_404(s, survey_id)
        targets = _targets(s, sv.id)
        _require_full(actor, sv, targets)
        return replace(_results(s, sv, targets),
                       answered_targets=_target_unit_count(s, sv, targets, answered=True))


def _results(s: Session, sv: Survey, targets: list[int]) -> Results:
    if not sv.anonymous:
        return _totals(s, sv, targets, with_texts=True)
    info, answered = _info(s, sv, utcnow(), targets), _answered_units(s, sv.id)
    if answered < ANONYMOUS_TOTALS_MIN:
        return Results(info, answered, _target_unit_count(s, sv, targets), (), None, None, None, None,
                       withheld=True)
    return _totals(s, sv, targets, with_texts=True, known=(info, tuple(_questions(s, sv.id)), answered))


def member_totals(actor: Actor, survey_id: object) -> Results | None:
    """Totals a member sees after answering (no free text), when enough have answered; None otherwise.

    Never for safety checks: who needs help is for the officers who act on it.
    """
    with session() as s:
        sv = _survey_or_404(s, survey_id)
        m = _member_of(actor, sv)
        if sv.kind == "safety" or _answered_by_unit(s, sv, actor.account_id, m.household_id) is None:
            return None
        targets = _targets(s, sv.id)
        return _shown_totals(s, sv, targets, _info(s, sv, utcnow(), targets), _questions(s, sv.id))


def _member_totals_in(s: Session, sv: Survey, targets: list[int], form: AnswerForm) -> Results | None:
    """member_totals() for the actor whose form this is."""
    if sv.kind == "safety" or not form.answered:
        return None
    return _shown_totals(s, sv, targets, form.survey, form.questions)


def _shown_totals(s: Session, sv: Survey, targets: list[int], info: SurveyInfo,
                  questions: tuple[QuestionView, ...] | list[QuestionView]) -> Results | None:
    answered = _answered_units(s, sv.id)
    if answered < MEMBER_TOTALS_MIN:
        return None
    return _totals(s, sv, targets, with_texts=False, known=(info, tuple(questions), answered))


# --------------------------------------------------------------------------- people (named surveys only)


def _named_only(sv: Survey) -> None:
    if sv.anonymous:
        # No one may see who answered what, or who has not answered, in an anonymous survey.
        raise Denied()


def _view_scope(actor: Actor, association_id: int):
    return han_scope(actor, VIEW_MEMBERS, association_id)


def _cell(q: QuestionView, values: list) -> str:
    labels = {o.id: o.label for o in q.options}
    if q.kind in ("single", "multiple"):
        return "、".join(labels.get(v, "") for v in values)
    return "" if not values else str(values[0])


def _answer_cells(s: Session, questions: list[QuestionView], resp_ids: list[int]) -> dict[int, tuple[str, ...]]:
    got: dict[int, dict[int, list]] = {r: {} for r in resp_ids}
    for a in s.exec(select(SurveyAnswer).where(SurveyAnswer.response_id.in_(resp_ids))
                    .order_by(SurveyAnswer.id)).all() if resp_ids else []:
        value = a.option_id if a.option_id is not None else (a.number_value if a.number_value is not None
                                                              else a.text_value)
        got[a.response_id].setdefault(a.question_id, []).append(value)
    return {r: tuple(_cell(q, got[r].get(q.id, [])) for q in questions) for r in resp_ids}


def _shown_name(view, han_id: int | None, name: str | None, display_name: str | None) -> str:
    """A person's real name for an officer who also holds view_members over their han; otherwise the display
    name every member sees (privacy rule 1: run_surveys alone does not show who someone is)."""
    return (name if in_scope(view, han_id) else display_name) or ""


def _han_of(response: SurveyResponse, household_han: int | None) -> int | None:
    return household_han if household_han is not None else response.han_id


def _current_han():
    """A response's han: its household's han now (the roster may have moved it since), else the one it had."""
    return func.coalesce(Household.han_id, SurveyResponse.han_id)


def _response_query(sv: Survey, scope):
    # The respondent's name; for an answer an officer recorded, the household's head as the roster has it.
    name = func.coalesce(Account.name, case((SurveyResponse.recorded_by.is_not(None), Household.head_name)))
    q = (select(SurveyResponse, name, Account.display_name, Han.name, Household.address, Household.han_id)
         .join(Account, Account.id == SurveyResponse.respondent_account_id, isouter=True)
         .join(Household, Household.id == SurveyResponse.household_id, isouter=True)
         .join(Han, Han.id == _current_han(), isouter=True)
         .where(SurveyResponse.survey_id == sv.id))
    if scope != ALL_HAN:
        q = q.where(_current_han().in_(scope))
    return q


def responses(actor: Actor, survey_id: object, limit: object = 50, offset: object = 0,
              option_id: object = None) -> PersonPage:
    """Each person's answers (named surveys, officers with run_surveys in their han scope). Audited.

    option_id narrows the list to those who chose one option (e.g. 支援が必要).
    """
    lim, off = page_args(limit, offset)
    with session() as s:
        sv = _survey_or_404(s, survey_id)
        targets = _targets(s, sv.id)
        scope = _manage_scope(actor, sv, targets)
        _named_only(sv)
        questions = _questions(s, sv.id)
        q = _response_query(sv, scope)
        if option_id not in (None, "", 0):
            oid = validate.ident(option_id, "option_id")
            if oid not in {o.id for qq in questions for o in qq.options}:
                raise Denied()
            q = q.where(exists().where(SurveyAnswer.response_id == SurveyResponse.id, SurveyAnswer.option_id == oid))
        total = s.exec(select(func.count()).select_from(q.subquery())).one()
        rows = s.exec(q.order_by(Han.route_order, Household.route_position, SurveyResponse.id)
                      .offset(off).limit(lim)).all()
        out = _response_rows(s, actor, sv, questions, rows, "survey.responses")
        return PersonPage(out, total, tuple(q.text for q in questions))


def _response_rows(s: Session, actor: Actor, sv: Survey, questions: list[QuestionView], rows,
                   action: str) -> tuple[PersonRow, ...]:
    """PersonRows of rows of _response_query, the read recorded (an answer an officer recorded for a household
    is the household's: the household is the subject)."""
    cells = _answer_cells(s, questions, [r.id for r, *_ in rows])
    view = _view_scope(actor, sv.association_id)
    out = tuple(PersonRow(r.respondent_account_id, r.household_id, han or "",
                          _shown_name(view, _han_of(r, hh_han), name, display),
                          (addr or "") if in_scope(view, hh_han) else "", False, r.submitted_on, cells[r.id],
                          r.recorded_by is not None)
                for r, name, display, han, addr, hh_han in rows)
    if out:
        subjects, households = _answer_subjects(s, sv, [(r.account_id, r.household_id, r.recorded) for r in out])
        audit.record(s, actor, action, association_id=sv.association_id, subjects=subjects,
                     household_ids=households, count=len(out), detail=f"survey {sv.id}")
    return out


def _answer_subjects(s: Session, sv: Survey, answers: list[tuple[int | None, int | None, bool]]
                     ) -> tuple[list[int], list[int]]:
    """Whom a read of these answers ((respondent account, household, recorded by an officer)) concerns: each
    respondent; for a survey answered per household, every active member of each household shown (the answer,
    its address and its calls for help are the household's, whoever sent it, an officer recording it, or a
    member who has since deleted their account); the households with no member to name (paper-only), and
    those an officer answered for, by household."""
    subjects = [a for a, _h, _r in answers if a]
    households = [h for _a, h, recorded in answers if recorded and h]
    if sv.per_household:
        shown = sorted({h for _a, h, _r in answers if h})
        members = _household_members(s, sv.association_id, shown)
        subjects += [i for h in shown for i, _n, _d in members.get(h, [])]
        households += [h for h in shown if not members.get(h)]
    return subjects, households


def _non_responder_query(sv: Survey, targets: list[int], scope):
    """Non-answering units in scope: households (per-household) or member accounts, by han and route."""
    def unanswered(unit):
        # NOT EXISTS, not NOT IN: an anti-join over this survey's participations on every database (PostgreSQL
        # plans NOT IN over a subquery as a filter on every account of the city).
        return ~exists().where(SurveyParticipation.survey_id == sv.id, SurveyParticipation.unit_key == unit)

    if sv.per_household:
        # Households (paper-only ones too: an officer visits them), plus members without a household.
        q = (select(Household.id, Household.head_name, null(), Household.address, Household.paper_only,
                    Han.name, Household.han_id)
             .join(Han, Han.id == Household.han_id, isouter=True)
             .where(Household.association_id == sv.association_id, Household.removed_at.is_(None),
                    unanswered("h" + cast(Household.id, String))))
        if not sv.target_all:
            q = q.where(Household.han_id.in_(targets or [-1]))
        if scope != ALL_HAN:
            q = q.where(Household.han_id.in_(scope))
        return q.order_by(Han.route_order, Household.route_position, Household.id), "household"
    q = (select(Account.id, Account.name, Account.display_name, Household.address, Household.paper_only, Han.name,
                Household.han_id)
         .join(Membership, Membership.account_id == Account.id)
         .join(Household, Household.id == Membership.household_id, isouter=True)
         .join(Han, Han.id == Household.han_id, isouter=True)
         .where(Membership.association_id == sv.association_id, Membership.status == "active",
                unanswered("a" + cast(Account.id, String))))
    if not sv.target_all:
        q = q.where(Household.han_id.in_(targets or [-1]))
    if scope != ALL_HAN:
        q = q.where(Household.han_id.in_(scope))
    return q.order_by(Han.route_order, Household.route_position, Account.id), "account"


def _non_responder_page(s: Session, actor: Actor, sv: Survey, targets: list[int], scope, lim: int, off: int,
                        action: str) -> PersonPage:
    q, kind = _non_responder_query(sv, targets, scope)
    # Counted without the ordering, so that PostgreSQL can drop the joins the count does not need.
    total = s.exec(select(func.count()).select_from(q.order_by(None).subquery())).one()
    rows = s.exec(q.offset(off).limit(lim)).all()
    view = _view_scope(actor, sv.association_id)
    out = []
    hh_ids = [r[0] for r in rows] if kind == "household" else []
    members = _household_members(s, sv.association_id, hh_ids)
    named: list[int] = []  # the members whose names this page shows
    for rid, name, display, addr, paper, han, han_id in rows:
        if kind == "household":
            # The members' names (the head name of a paper-only household may be out of date); their display
            # names for an officer without view_members there, and nothing for a household without members.
            people = members.get(rid, [])
            name = "・".join(n for _i, n, _d in people) or name
            display = "・".join(d for _i, _n, d in people)
            # Named by their names or their display names: either way the row tells that they have not answered.
            named += [i for i, _n, _d in people]
        out.append(PersonRow(rid if kind == "account" else None, rid if kind == "household" else None, han or "",
                             _shown_name(view, han_id, name, display), (addr or "") if in_scope(view, han_id) else "",
                             bool(paper) if kind == "household" else False, None, ()))
    if out:
        # Each member named on a household's row is a subject too, so the read shows on their own access page.
        audit.record(s, actor, action, association_id=sv.association_id,
                     subjects=[*(r.account_id for r in out if r.account_id), *named],
                     household_ids=[r.household_id for r in out if r.household_id], count=len(out),
                     detail=f"survey {sv.id}")
    return PersonPage(tuple(out), total, ())


def _household_members(s: Session, association_id: int, household_ids: list[int]
                       ) -> dict[int, list[tuple[int, str, str]]]:
    """(account id, name, display name) of the active members of each household."""
    if not household_ids:
        return {}
    out: dict[int, list[tuple[int, str, str]]] = {}
    for hid, aid, name, display in s.exec(select(Membership.household_id, Account.id, Account.name,
                                                 Account.display_name)
                            .join(Account, Account.id == Membership.account_id)
                            .where(Membership.household_id.in_(household_ids), Membership.status == "active",
                                   Membership.association_id == association_id)
                            .order_by(Membership.id)).all():
        out.setdefault(hid, []).append((aid, name, display))
    return out


def non_responders(actor: Actor, survey_id: object, limit: object = 50, offset: object = 0) -> PersonPage:
    """Who has not answered a named survey (within the officer's han scope). Audited."""
    lim, off = page_args(limit, offset)
    with session() as s:
        sv = _survey_or_404(s, survey_id)
        targets = _targets(s, sv.id)
        scope = _manage_scope(actor, sv, targets)
        _named_only(sv)
        return _non_responder_page(s, actor, sv, targets, scope, lim, off, "survey.nonresponders")


def safety_board(actor: Actor, survey_id: object, limit: object = 50, offset: object = 0) -> SafetyBoard:
    """A safety check's live picture by han: counts, who needs help, who has not answered. Audited."""
    lim, off = page_args(limit, offset)
    with session() as s:
        sv = _survey_or_404(s, survey_id)
        if sv.kind != "safety":
            raise NotFound()
        targets = _targets(s, sv.id)
        scope = _manage_scope(actor, sv, targets)
        _named_only(sv)
        questions = _questions(s, sv.id)
        first = next((q for q in questions if q.kind == "single" and len(q.options) >= 2), None)
        hans = _han_status(s, sv, targets, scope, first)
        help_rows: list[PersonRow] = []
        help_total = 0
        if first is not None:
            q = _response_query(sv, scope).where(exists().where(
                SurveyAnswer.response_id == SurveyResponse.id, SurveyAnswer.option_id == first.options[1].id))
            rows = s.exec(q.order_by(Han.route_order, Household.route_position, SurveyResponse.id)
                          .limit(NEEDS_HELP_SHOWN)).all()
            help_total = len(rows) if len(rows) < NEEDS_HELP_SHOWN else s.exec(
                select(func.count()).select_from(q.subquery())).one()
            help_rows = list(_response_rows(s, actor, sv, questions, rows, "survey.safety_list"))
        missing = _non_responder_page(s, actor, sv, targets, scope, lim, off, "survey.safety_list")
        return SafetyBoard(_info(s, sv, utcnow(), targets), tuple(hans), tuple(help_rows), missing, help_total)


def _han_status(s: Session, sv: Survey, targets: list[int], scope, first: QuestionView | None) -> list[HanStatus]:
    hans = s.exec(select(Han).where(Han.association_id == sv.association_id).order_by(Han.route_order)).all()
    wanted = [h for h in hans if (sv.target_all or h.id in targets) and in_scope(scope, h.id)]
    ids = [h.id for h in wanted]
    if sv.per_household:
        tq = (select(Household.han_id, func.count()).where(Household.association_id == sv.association_id,
                                                            Household.removed_at.is_(None), Household.han_id.in_(ids))
              .group_by(Household.han_id))
    else:
        tq = (select(Household.han_id, func.count()).select_from(Membership)
              .join(Household, Household.id == Membership.household_id)
              .where(Membership.association_id == sv.association_id, Membership.status == "active",
                     Household.han_id.in_(ids)).group_by(Household.han_id))
    target_n = dict(s.exec(tq).all())
    # Answered: those units (the ones counted above, and listed as non-responders) that have answered; not the
    # responses filed under the han, which keep a member who has left or a household moved to another han.
    unit = ("h" + cast(Household.id, String)) if sv.per_household else ("a" + cast(Membership.account_id, String))
    answered_n = dict(s.exec(tq.where(exists().where(SurveyParticipation.survey_id == sv.id,
                                                     SurveyParticipation.unit_key == unit))).all())
    by_opt: dict[tuple[int, int], int] = {}
    if first is not None:
        # 無事 / 支援 of the same units as 回答 (those asked now), each under its household's han now.
        owner = (SurveyResponse.household_id == Household.id if sv.per_household
                 else SurveyResponse.respondent_account_id == Membership.account_id)
        units = tq.with_only_columns(Household.han_id.label("han"), SurveyResponse.id.label("rid")).group_by(None) \
            .join(SurveyResponse, and_(SurveyResponse.survey_id == sv.id, owner)).subquery()
        for han_id, oid, n in s.exec(
            select(units.c.han, SurveyAnswer.option_id, func.count())
            .join(SurveyAnswer, SurveyAnswer.response_id == units.c.rid)
            .where(SurveyAnswer.question_id == first.id)
            .group_by(units.c.han, SurveyAnswer.option_id)).all():
            by_opt[(han_id, oid)] = n
    safe_id = first.options[0].id if first else 0
    help_id = first.options[1].id if first else 0
    return [HanStatus(h.id, h.name, target_n.get(h.id, 0), answered_n.get(h.id, 0), by_opt.get((h.id, safe_id), 0),
                      by_opt.get((h.id, help_id), 0)) for h in wanted]


# --------------------------------------------------------------------------- an officer records a household's answer


def _recordable(s: Session, actor: Actor, survey_id: object,
                household_id: object) -> tuple[Survey, list[int], Household]:
    """The survey and a household whose answer the actor may record: a named per-household survey, an officer
    with run_surveys over the household's han, a household on the roster that the survey asks."""
    sv = _survey_or_404(s, survey_id)
    targets = _targets(s, sv.id)
    scope = _manage_scope(actor, sv, targets)
    if sv.anonymous or not sv.per_household:
        raise ServiceError("survey.error_record_kind")
    hh = s.get(Household, validate.ident(household_id, "household_id"))
    if hh is None or hh.association_id != sv.association_id or hh.removed_at is not None:
        raise NotFound()
    if not _is_targeted(sv, targets, hh.han_id) or not in_scope(scope, hh.han_id):
        raise Denied()
    return sv, targets, hh


def household_form(actor: Actor, survey_id: object, household_id: object) -> HouseholdForm:
    """The form an officer fills in for a household (after a visit or a call), with its current answers. Audited:
    it shows the household's names and answers."""
    with session() as s:
        sv, targets, hh = _recordable(s, actor, survey_id, household_id)
        questions = _questions(s, sv.id)
        row = _household_response(s, sv, hh.id)
        mine = _named_answers(s, sv, 0, hh.id) if row is not None else {}
        people = _household_members(s, sv.association_id, [hh.id]).get(hh.id, [])
        view = _view_scope(actor, sv.association_id)
        name = _shown_name(view, hh.han_id, "・".join(n for _i, n, _d in people) or hh.head_name,
                           "・".join(d for _i, _n, d in people))
        address = hh.address if in_scope(view, hh.han_id) else ""
        audit.record(s, actor, "survey.responses", association_id=sv.association_id,
                     subjects=[i for i, _n, _d in people], household_ids=[hh.id], count=1,
                     detail=f"survey {sv.id} household {hh.id}")
        return HouseholdForm(_info(s, sv, utcnow(), targets), tuple(questions), hh.id, name, address,
                             bool(hh.paper_only), mine, row is not None,
                             row is not None and row.recorded_by is not None,
                             _answer_version(row))


def record_for_household(actor: Actor, survey_id: object, household_id: object, answers: object,
                         version: object = None) -> None:
    """Record (or replace) a household's answer as an officer learnt it: a paper-only household visited in a
    safety check, a call for help answered on the spot. All or nothing; the household's members see that an
    officer recorded it, and the access log names the officer.

    `version` is HouseholdForm.version of the form the officer filled in: when the household's answer changed
    since (a member sent 支援が必要 meanwhile), nothing is written and the officer is asked to look again."""
    with session() as s:
        sv, _targets_, hh = _recordable(s, actor, survey_id, household_id)
        if not _is_open(sv, utcnow()):
            raise ServiceError("survey.error_closed")
        questions = _questions(s, sv.id)
        rows = _clean_answers(questions, answers)
        conn = s.connection()
        resp = _named_response(s, sv, 0, hh.id)  # locked until the commit
        if version is not None and version != _answer_version(resp):
            raise ServiceError("survey.error_record_changed")
        _write_named(conn, sv, resp, None, hh.id, hh.han_id, rows, recorded_by=actor.account_id)
        if _answered_by_unit(s, sv, 0, hh.id) is None:
            try:
                conn.execute(_ADD_PARTICIPATION, {
                    "survey_id": sv.id, "account_id": None, "household_id": hh.id, "answered_on": today_local(),
                    "unit_key": _unit(sv, 0, hh.id)})
            except IntegrityError:
                # A member of the household answered at the same moment: theirs stands, and the officer sees it.
                raise ServiceError("survey.error_already") from None
            recount_survey_answers(conn, [sv.id])
        people = _household_members(s, sv.association_id, [hh.id]).get(hh.id, [])
        audit.record(s, actor, "survey.record", association_id=sv.association_id,
                     subjects=[i for i, _n, _d in people], household_ids=[hh.id], count=1,
                     detail=f"survey {sv.id} household {hh.id}")


# --------------------------------------------------------------------------- reminders and mail


def _mail_units(s: Session, sv: Survey, targets: list[int], only_missing_scope, *, reminder: bool) -> int:
    """Queue a mail to every asked member who takes mail (Account.email_circulars), in one query.

    only_missing_scope: None = everyone asked (a new safety check); ALL_HAN / han ids = non-responders there.
    """
    q = (select(Account.email).join(Membership, Membership.account_id == Account.id)
         .join(Household, Household.id == Membership.household_id, isouter=True)
         .where(Membership.association_id == sv.association_id, Membership.status == "active",
                Account.email_circulars.is_(True), Account.email != "", Account.deleted_at.is_(None)))
    if not sv.target_all:
        q = q.where(Household.han_id.in_(targets or [-1]))
    if only_missing_scope is not None:
        answered = select(SurveyParticipation.unit_key).where(SurveyParticipation.survey_id == sv.id)
        own = "a" + cast(Account.id, String)
        house = "h" + cast(Membership.household_id, String)
        unit = case((Membership.household_id.is_not(None), house), else_=own) if sv.per_household else own
        q = q.where(unit.not_in(answered))
        if only_missing_scope != ALL_HAN:
            q = q.where(Household.han_id.in_(only_missing_scope))
    locales = {email: locale for email, locale in s.execute(q.add_columns(Account.locale)).all()}
    from chiiki import settings as settings_module

    link = settings_module.settings.public_url.rstrip("/") + f"{ANSWER_PATH}?id={sv.id}"
    key = "survey.mail.reminder" if reminder else ("survey.mail.safety" if sv.kind == "safety" else "survey.mail.new")
    # Each in the language the recipient uses (Account.locale), not the officer's.
    texts = {lang: (tr(lang, key + "_subject", title=sv.title),
                    tr(lang, key + "_body", title=sv.title, deadline=fmt_dt(sv.deadline, lang), link=link))
             for lang in ("ja", "en")}
    return mail.enqueue_many(s, ((address, *texts["en" if locales[address] == "en" else "ja"])
                                 for address in sorted(locales)), "survey")


def send_reminder(actor: Actor, survey_id: object) -> int:
    """Mail every non-responder (in the officer's scope) who takes mail; at most once an hour per survey."""
    with session() as s:
        sv = _survey_or_404(s, survey_id)
        targets = _targets(s, sv.id)
        scope = _manage_scope(actor, sv, targets)
        # One reminder an hour for the whole survey: a 班長 of one of its hans would spend everyone else's.
        _require_full(actor, sv, targets)
        now = utcnow()
        if not _is_open(sv, now):
            raise ServiceError("survey.error_closed")
        # Claimed by the UPDATE itself: two officers (or two taps) at the same moment send one reminder.
        claimed = s.execute(update(Survey).where(
            Survey.id == sv.id, or_(Survey.reminded_at.is_(None), Survey.reminded_at <= now - REMIND_INTERVAL))
            .values(reminded_at=now).execution_options(synchronize_session=False)).rowcount
        if not claimed:
            s.refresh(sv)
            raise ServiceError("survey.error_remind_soon", when=as_utc(sv.reminded_at) + REMIND_INTERVAL)
        # For an anonymous survey, who has answered is still known (never what): reminding is fine.
        n = _mail_units(s, sv, targets, scope, reminder=True)
        audit.record(s, actor, "survey.remind", association_id=sv.association_id, count=n, detail=f"survey {sv.id}")
        return n


# --------------------------------------------------------------------------- export


def export_results(actor: Actor, survey_id: object, fmt: object, lang: str = "ja") -> tuple[str, bytes, str]:
    """(filename, bytes, mime type) of every response: named with han and name, anonymous without. Audited."""
    fmt = validate.choice(fmt, "format", ("csv", "xlsx"))
    with session() as s:
        sv = _survey_or_404(s, survey_id)
        targets = _targets(s, sv.id)
        _require_full(actor, sv, targets)
        _require_full(actor, sv, targets, EXPORT)
        questions = _questions(s, sv.id)
        q_heads = [q.text for q in questions]
        if sv.anonymous:
            resp_ids = list(s.exec(select(SurveyResponse.id).where(SurveyResponse.survey_id == sv.id)
                                   .order_by(SurveyResponse.id)).all())
            if len(resp_ids) < ANONYMOUS_TOTALS_MIN:
                raise ServiceError("survey.error_too_few_anonymous", min=ANONYMOUS_TOTALS_MIN)
            cells = _answer_cells(s, questions, resp_ids)
            headers = q_heads
            rows = [list(cells[r]) for r in resp_ids]
            subjects: list[int] = []
            households: list[int] = []
        else:
            found = s.exec(_response_query(sv, ALL_HAN)
                           .order_by(Han.route_order, Household.route_position, SurveyResponse.id)).all()
            cells = _answer_cells(s, questions, [r.id for r, *_ in found])
            view = _view_scope(actor, sv.association_id)
            headers = [tr(lang, "survey.col.han"), tr(lang, "survey.col.name"), tr(lang, "survey.col.date"), *q_heads]
            rows = [[han or "", _shown_name(view, _han_of(r, hh_han), name, display), r.submitted_on.isoformat(),
                     *cells[r.id]]
                    for r, name, display, han, _addr, hh_han in found]
            subjects, households = _answer_subjects(s, sv, [(r.respondent_account_id, r.household_id,
                                                              r.recorded_by is not None) for r, *_ in found])
        audit.record(s, actor, "survey.export", association_id=sv.association_id, subjects=subjects,
                     household_ids=households, count=len(rows), detail=f"survey {sv.id} {fmt}")
    stem = f"survey-{sv.id}"
    if fmt == "csv":
        return stem + ".csv", tabular.to_csv_bytes(headers, rows), "text/csv"
    return (stem + ".xlsx", tabular.to_xlsx_bytes(headers, rows, sheet_name=sv.title[:31]),
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")

