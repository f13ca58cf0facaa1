"""Survey services: building, answering and changing answers, totals, head counts, non-responders, reminders,
safety checks, exports, and bad input refused with nothing written."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from openpyxl import load_workbook
from sqlalchemy import func
from sqlmodel import select

from chiiki.models import (
    Account,
    AuditEvent,
    Household,
    Membership,
    OutboxMail,
    Survey,
    SurveyAnswer,
    SurveyParticipation,
    SurveyResponse,
    utcnow,
)
from chiiki.services import surveys
from chiiki.services.db import session
from chiiki.services.errors import Denied, ServiceError, ValidationErrors
from tests.conftest import DemoCity

PW = "chiiki-demo-2026"


# --------------------------------------------------------------------------- helpers (used by the other survey tests)


def deadline_in(days: float = 3) -> str:
    return (utcnow() + timedelta(days=days)).astimezone(surveys.TZ).strftime("%Y-%m-%dT%H:%M")


def make_survey(demo: DemoCity, login: str = "kaicho@example.jp", **over) -> int:
    data = {"kind": "general", "title": "テスト", "deadline": deadline_in(), "target_all": True,
            "questions": [{"kind": "single", "text": "好きな季節", "required": True, "options": ["春", "夏", "秋"]},
                          {"kind": "multiple", "text": "参加できる日", "options": "土曜\n日曜"},
                          {"kind": "text", "text": "ご意見"},
                          {"kind": "number", "text": "家族の人数", "required": True, "min": 1, "max": 10}]}
    data.update(over)
    return surveys.create_survey(demo.actor(login), demo.association_id(DemoCity.A1), data)


def qmap(demo: DemoCity, survey_id: int, login: str = "member@example.jp"):
    """The questions of a survey as seen by a member: [(question id, [option ids])]."""
    form = surveys.get_for_answer(demo.actor(login), survey_id)
    return [(q.id, [o.id for o in q.options]) for q in form.questions]


def answer_general(demo, survey_id, login="member@example.jp", season=0, days=(0,), text="", number="3"):
    qs = qmap(demo, survey_id, login)
    surveys.submit_answer(demo.actor(login), survey_id, {
        f"q{qs[0][0]}": str(qs[0][1][season]), f"q{qs[1][0]}": [str(qs[1][1][d]) for d in days],
        f"q{qs[2][0]}": text, f"q{qs[3][0]}": number})


def counts() -> tuple[int, int, int]:
    with session() as s:
        return tuple(s.exec(select(func.count()).select_from(m)).one()
                     for m in (SurveyResponse, SurveyAnswer, SurveyParticipation))


def add_housemate(demo: DemoCity, login: str = "member@example.jp", new_login: str = "housemate@example.jp") -> int:
    """A second account in the same household as `login` (the demo has one account per household)."""
    from chiiki.services.accounts import hash_password

    with session() as s:
        m = s.exec(select(Membership).join(Account, Account.id == Membership.account_id)
                   .where(Account.login_id == login)).one()
        acc = Account(login_id=new_login, password_hash=hash_password(PW, 4), name="同居 家族", kana="ドウキョ カゾク",
                      display_name="同居", email=new_login)
        s.add(acc)
        s.flush()
        s.add(Membership(account_id=acc.id, association_id=m.association_id, household_id=m.household_id,
                         status="active", consent_version="2026-1", consented_at=utcnow(), decided_at=utcnow()))
        return acc.id


def grant(demo: DemoCity, login: str, permissions: str, han_index: int | None = None) -> None:
    """Give a member an officer role (e.g. a han-scoped run_surveys) for a test."""
    from chiiki.models import OfficerRole

    han = None if han_index is None else demo.han_ids(DemoCity.A1)[han_index]
    with session() as s:
        m = s.exec(select(Membership).join(Account, Account.id == Membership.account_id)
                   .where(Account.login_id == login, Membership.status == "active")).one()
        s.add(OfficerRole(association_id=m.association_id, membership_id=m.id, title="係", permissions=permissions,
                          han_id=han, valid_from=utcnow() - timedelta(minutes=1)))


def set_deadline_past(survey_id: int) -> None:
    with session() as s:
        sv = s.get(Survey, survey_id)
        sv.deadline = utcnow() - timedelta(minutes=1)
        s.add(sv)


# --------------------------------------------------------------------------- building


def test_officer_builds_a_survey_with_every_question_kind(demo):
    sid = make_survey(demo)
    form = surveys.get_for_answer(demo.actor("member@example.jp"), sid)
    assert [q.kind for q in form.questions] == ["single", "multiple", "text", "number"]
    assert [o.label for o in form.questions[1].options] == ["土曜", "日曜"]
    assert (form.questions[3].min_value, form.questions[3].max_value) == (1, 10)
    assert form.questions[0].required and not form.questions[2].required
    assert form.can_answer and not form.answered


def test_attendance_template_has_attend_and_head_count_questions(demo):
    sid = make_survey(demo, kind="attendance", questions=[])
    form = surveys.get_for_answer(demo.actor("member@example.jp"), sid)
    assert [q.kind for q in form.questions] == ["single", "number"]
    assert [o.label for o in form.questions[0].options] == ["出席", "欠席"]
    assert form.questions[1].max_value == surveys.ATTEND_MAX


def test_safety_check_cannot_be_anonymous(demo):
    with pytest.raises(ValidationErrors) as e:
        make_survey(demo, kind="safety", anonymous=True, questions=[])
    assert "anonymous" in e.value.errors


def test_builder_errors_are_reported_per_field_and_nothing_is_written(demo):
    with session() as s:
        before = s.exec(select(func.count()).select_from(Survey)).one()
    with pytest.raises(ValidationErrors) as e:
        make_survey(demo, title="", deadline="2001-01-01T10:00",
                    questions=[{"uid": 7, "kind": "single", "text": "色", "options": "赤"},
                               {"uid": 8, "kind": "number", "text": "数", "min": "9", "max": "1"},
                               {"uid": 9, "kind": "text", "text": "x" * 501}])
    errs = e.value.errors
    assert errs["title"][0] == "error.required"
    assert errs["deadline"][0] == "survey.error_deadline_past"
    assert errs["q7_options"][0] == "survey.error_options_few"
    assert errs["q8_range"][0] == "survey.error_range_order"
    assert errs["q9_text"][0] == "error.too_long"
    with session() as s:
        assert s.exec(select(func.count()).select_from(Survey)).one() == before


def test_a_general_survey_needs_a_question(demo):
    with pytest.raises(ValidationErrors) as e:
        make_survey(demo, questions=[])
    assert e.value.errors["questions"][0] == "survey.error_no_questions"


def test_target_han_must_belong_to_the_association(demo):
    foreign = demo.han_ids(DemoCity.A3)[0]
    with pytest.raises(Denied):
        make_survey(demo, target_all=False, han_ids=[foreign])
    with pytest.raises(ValidationErrors) as e:
        make_survey(demo, target_all=False, han_ids=[])
    assert "targets" in e.value.errors


def test_a_survey_for_one_han_is_not_shown_to_other_han(demo):
    han1 = demo.han_ids(DemoCity.A1)[0]
    sid = make_survey(demo, target_all=False, han_ids=[han1])
    aid = demo.association_id(DemoCity.A1)
    assert sid in [i.survey.id for i in surveys.list_surveys(demo.actor("member@example.jp"), aid).items]
    assert sid not in [i.survey.id for i in surveys.list_surveys(demo.actor("member2@example.jp"), aid).items]
    with pytest.raises(Denied):
        surveys.get_for_answer(demo.actor("member2@example.jp"), sid)


# --------------------------------------------------------------------------- answering


def test_member_answers_and_changes_a_named_answer_before_the_deadline(demo):
    sid = make_survey(demo)
    answer_general(demo, sid, season=0, text="最初", number="2")
    answer_general(demo, sid, season=2, days=(0, 1), text="変更後", number="4")
    form = surveys.get_for_answer(demo.actor("member@example.jp"), sid)
    assert form.answered and form.can_change
    qs = form.questions
    assert form.mine[qs[0].id] == [qs[0].options[2].id]
    assert sorted(form.mine[qs[1].id]) == sorted(o.id for o in qs[1].options)
    assert form.mine[qs[2].id] == "変更後" and form.mine[qs[3].id] == 4
    with session() as s:
        assert s.exec(select(func.count()).select_from(SurveyResponse).where(SurveyResponse.survey_id == sid)).one() == 1
        assert s.exec(select(func.count()).select_from(SurveyParticipation)
                      .where(SurveyParticipation.survey_id == sid)).one() == 1
        resp = s.exec(select(SurveyResponse).where(SurveyResponse.survey_id == sid)).one()
        assert resp.updated_at is not None


def test_answer_after_the_deadline_is_refused_and_nothing_written(demo):
    sid = make_survey(demo)
    set_deadline_past(sid)
    before = counts()
    with pytest.raises(ServiceError) as e:
        answer_general(demo, sid)
    assert e.value.key == "survey.error_closed"
    assert counts() == before


def test_a_closed_survey_takes_no_more_answers(demo):
    sid = make_survey(demo)
    surveys.close_survey(demo.actor("fukukaicho@example.jp"), sid)
    with pytest.raises(ServiceError) as e:
        answer_general(demo, sid)
    assert e.value.key == "survey.error_closed"


def test_answer_to_another_associations_survey_is_refused(demo):
    sid = make_survey(demo)
    before = counts()
    with pytest.raises(Denied):
        surveys.submit_answer(demo.actor("other@example.jp"), sid, {})
    with pytest.raises(Denied):
        surveys.get_for_answer(demo.actor("other@example.jp"), sid)
    assert counts() == before


def test_option_id_from_another_survey_is_refused(demo):
    sid = make_survey(demo)
    other = make_survey(demo, title="別")
    foreign_option = qmap(demo, other)[0][1][0]
    qs = qmap(demo, sid)
    before = counts()
    with pytest.raises(ValidationErrors) as e:
        surveys.submit_answer(demo.actor("member@example.jp"), sid, {
            f"q{qs[0][0]}": str(foreign_option), f"q{qs[3][0]}": "2"})
    assert e.value.errors[f"q{qs[0][0]}"][0] == "survey.error_option"
    # A question of another survey is refused as a whole.
    with pytest.raises(ServiceError):
        surveys.submit_answer(demo.actor("member@example.jp"), sid, {
            f"q{qs[0][0]}": str(qs[0][1][0]), f"q{qs[3][0]}": "2", f"q{qmap(demo, other)[0][0]}": "x"})
    assert counts() == before


def test_missing_required_out_of_range_and_overlong_answers_are_refused(demo):
    sid = make_survey(demo)
    qs = qmap(demo, sid)
    before = counts()
    with pytest.raises(ValidationErrors) as e:
        surveys.submit_answer(demo.actor("member@example.jp"), sid, {
            f"q{qs[0][0]}": "", f"q{qs[2][0]}": "あ" * (surveys.TEXT_ANSWER_MAX + 1), f"q{qs[3][0]}": "11"})
    errs = e.value.errors
    assert errs[f"q{qs[0][0]}"][0] == "error.required"
    assert errs[f"q{qs[2][0]}"] == ("error.too_long", {"max": surveys.TEXT_ANSWER_MAX})
    assert errs[f"q{qs[3][0]}"] == ("error.range", {"lo": 1, "hi": 10})
    with pytest.raises(ValidationErrors) as e:
        surveys.submit_answer(demo.actor("member@example.jp"), sid, {f"q{qs[0][0]}": [str(qs[0][1][0]),
                                                                                     str(qs[0][1][1])],
                                                                     f"q{qs[3][0]}": "abc"})
    assert e.value.errors[f"q{qs[0][0]}"][0] == "error.invalid"
    assert e.value.errors[f"q{qs[3][0]}"][0] == "error.number"
    assert counts() == before


def test_garbage_payloads_are_refused(demo):
    sid = make_survey(demo)
    for payload in (None, [], "x", {"qx": "1"}, {"q0": "1"}, {"../1": 1}):
        with pytest.raises(ServiceError):
            surveys.submit_answer(demo.actor("member@example.jp"), sid, payload)
    for bad_id in ("abc", -1, None, True, 10**20):
        with pytest.raises(ServiceError):
            surveys.submit_answer(demo.actor("member@example.jp"), bad_id, {})


def test_per_household_survey_takes_one_answer_which_a_housemate_may_change(demo):
    add_housemate(demo)
    sid = make_survey(demo, per_household=True)
    answer_general(demo, sid, season=0)
    mate = surveys.get_for_answer(demo.actor("housemate@example.jp"), sid)
    assert mate.answered and mate.answered_by_other and mate.can_change
    answer_general(demo, sid, login="housemate@example.jp", season=1)
    with session() as s:
        rows = s.exec(select(SurveyResponse).where(SurveyResponse.survey_id == sid)).all()
        assert len(rows) == 1 and rows[0].respondent_account_id == demo.account_id("housemate@example.jp")
        assert s.exec(select(func.count()).select_from(SurveyParticipation)
                      .where(SurveyParticipation.survey_id == sid)).one() == 1


# --------------------------------------------------------------------------- totals and head count


def test_officer_sees_totals_and_the_attendance_head_count(demo):
    sid = make_survey(demo, kind="attendance", questions=[])
    for login, attend, n in (("member@example.jp", 0, "3"), ("member2@example.jp", 0, ""),
                             ("hancho@example.jp", 1, ""), ("kaikei@example.jp", 0, "2"), ("kaicho@example.jp", 0, "0")):
        qs = qmap(demo, sid, login)
        surveys.submit_answer(demo.actor(login), sid, {f"q{qs[0][0]}": str(qs[0][1][attend]), f"q{qs[1][0]}": n})
    res = surveys.results(demo.actor("fukukaicho@example.jp"), sid)
    assert res.respondents == 5
    assert res.attendees == 4
    assert res.head_count == 3 + 1 + 2 + 1  # a blank count, or 0 with 出席, is one person
    assert [o.count for o in res.questions[0].options] == [4, 1]
    assert res.target_units > 40


def test_number_and_text_totals(demo):
    sid = make_survey(demo)
    answer_general(demo, sid, number="2", text="よい")
    answer_general(demo, sid, login="member2@example.jp", number="6", text="")
    q = surveys.results(demo.actor("kaicho@example.jp"), sid).questions
    assert (q[3].number_sum, q[3].number_min, q[3].number_max, q[3].number_avg) == (8, 2, 6, 4.0)
    assert q[2].texts == ("よい",) and q[2].text_count == 1


def test_members_see_totals_only_after_answering_and_when_enough_answered(demo):
    sid = make_survey(demo)
    member = demo.actor("member@example.jp")
    assert surveys.member_totals(member, sid) is None
    answer_general(demo, sid)
    assert surveys.member_totals(member, sid) is None  # only one answer so far
    for login in ("member2@example.jp", "hancho@example.jp", "kaikei@example.jp", "fukukaicho@example.jp"):
        answer_general(demo, sid, login=login, text="秘密の意見")
    res = surveys.member_totals(member, sid)
    assert res is not None and res.respondents == 5
    assert all(q.texts == () for q in res.questions)


# --------------------------------------------------------------------------- people, reminders, audit


def test_each_persons_answers_reach_run_surveys_officers_and_are_audited(demo):
    sid = make_survey(demo)
    answer_general(demo, sid, text="こんにちは")
    page = surveys.responses(demo.actor("fukukaicho@example.jp"), sid)
    assert page.total == 1
    row = page.rows[0]
    assert row.account_id == demo.account_id("member@example.jp") and row.name
    assert row.answers[0] == "春" and row.answers[2] == "こんにちは"
    assert row.address  # 副会長 also holds view_members
    with session() as s:
        ev = s.exec(select(AuditEvent).where(AuditEvent.action == "survey.responses")).all()
        assert [e.subject_account_id for e in ev] == [demo.account_id("member@example.jp")]


def test_names_and_addresses_only_for_officers_who_also_hold_view_members(demo):
    """run_surveys alone shows who answered what by display name only (privacy rule 1), in the lists and the
    export; an officer who also holds view_members sees the real names."""
    grant(demo, "member2@example.jp", "run_surveys")
    grant(demo, "member2@example.jp", "export")
    sid = make_survey(demo)
    answer_general(demo, sid)
    with session() as s:
        people = {a.id: (a.name, a.display_name) for a in s.exec(select(Account)).all()}
    name, display = people[demo.account_id("member@example.jp")]
    assert name != display
    officer = demo.actor("member2@example.jp")
    row = surveys.responses(officer, sid).rows[0]
    assert (row.name, row.address) == (display, "")
    missing = surveys.non_responders(officer, sid, limit=100).rows
    assert missing and all(r.address == "" for r in missing)
    assert {r.name for r in missing} == {people[r.account_id][1] for r in missing}
    assert not {r.name for r in missing} & {n for n, _d in people.values()} - {d for _n, d in people.values()}
    _file, data, _mime = surveys.export_results(officer, sid, "csv")
    assert display in data.decode("utf-8-sig") and name not in data.decode("utf-8-sig")
    # With view_members too, the real names.
    grant(demo, "member2@example.jp", "view_members")
    officer = demo.actor("member2@example.jp")
    assert surveys.responses(officer, sid).rows[0].name == name
    assert name in surveys.export_results(officer, sid, "csv")[1].decode("utf-8-sig")


def test_per_household_lists_hide_names_without_view_members(demo):
    grant(demo, "member2@example.jp", "run_surveys")
    sid = make_survey(demo, kind="safety", questions=[], per_household=True)
    board = surveys.safety_board(demo.actor("member2@example.jp"), sid, limit=100)
    rows = board.not_answered.rows
    assert rows and all(r.household_id and r.address == "" for r in rows)
    with session() as s:
        heads = set(s.exec(select(Household.head_name)).all())
        names = set(s.exec(select(Account.name)).all())
        displays = set(s.exec(select(Account.display_name)).all())
    shown = {part for r in rows for part in r.name.split("・") if part}
    assert shown and shown <= displays and not shown & ((heads | names) - displays)
    assert any(r.paper_only and r.name == "" for r in rows)  # a paper-only household: nothing to name it by
    kaicho = surveys.safety_board(demo.actor("kaicho@example.jp"), sid, limit=100).not_answered.rows
    assert any(r.paper_only and r.name in heads for r in kaicho)


def test_han_scoped_officer_sees_only_their_han_on_a_safety_check(demo):
    grant(demo, "member2@example.jp", "run_surveys", han_index=1)
    sid = make_survey(demo, kind="safety", questions=[])
    board = surveys.safety_board(demo.actor("member2@example.jp"), sid, limit=100)
    assert [h.han for h in board.hans] == ["2班"]
    assert {r.han for r in board.not_answered.rows} == {"2班"}
    with pytest.raises(Denied):
        surveys.results(demo.actor("member2@example.jp"), sid)  # totals mix every han


def test_non_responders_list_and_reminder_mail_to_those_who_take_mail(demo):
    sid = make_survey(demo)
    answer_general(demo, sid)
    kaicho = demo.actor("kaicho@example.jp")
    page = surveys.non_responders(kaicho, sid, limit=100)
    ids = {r.account_id for r in page.rows}
    assert demo.account_id("member@example.jp") not in ids
    assert demo.account_id("member2@example.jp") in ids
    assert page.total == surveys.results(kaicho, sid).target_units - 1
    with session() as s:
        want = set(s.exec(select(Account.email).join(Membership, Membership.account_id == Account.id)
                          .where(Membership.association_id == demo.association_id(DemoCity.A1),
                                 Membership.status == "active", Account.email_circulars.is_(True),
                                 Account.id != demo.account_id("member@example.jp"))).all())
    n = surveys.send_reminder(kaicho, sid)
    with session() as s:
        sent = set(s.exec(select(OutboxMail.to_address).where(OutboxMail.kind == "survey")).all())
    assert n == len(want) and sent == want and n > 0
    with pytest.raises(ServiceError) as e:
        surveys.send_reminder(kaicho, sid)
    assert e.value.key == "survey.error_remind_soon"


@pytest.mark.postgres
@pytest.mark.parametrize("per_household", [False, True])
def test_non_responders_on_postgresql(pg_app_db, per_household):
    """The anti-join and the count of the non-responder list on PostgreSQL, per member and per household."""
    from chiiki.seed import seed_demo

    seed_demo()
    demo = DemoCity()
    sid = make_survey(demo, per_household=per_household)
    answer_general(demo, sid)
    kaicho = demo.actor("kaicho@example.jp")
    page = surveys.non_responders(kaicho, sid, limit=100)
    assert page.total == surveys.results(kaicho, sid).target_units - 1 == len(page.rows)
    member = demo.actor("member@example.jp")
    if per_household:
        assert member.memberships[0].household_id not in {r.household_id for r in page.rows}
    else:
        assert member.account_id not in {r.account_id for r in page.rows}
        assert demo.account_id("member2@example.jp") in {r.account_id for r in page.rows}


def test_safety_check_banner_until_answered_and_board_by_han(demo):
    aid = demo.association_id(DemoCity.A1)
    member = demo.actor("member@example.jp")
    assert surveys.urgent_open_count(member, aid) == 0
    sid = make_survey(demo, kind="safety", questions=[], per_household=True)
    with session() as s:
        assert s.exec(select(func.count()).select_from(OutboxMail).where(OutboxMail.kind == "survey")).one() > 0
    assert surveys.urgent_open_count(member, aid) == 1
    assert surveys.urgent_open_count(demo.actor("member2@example.jp"), aid) == 1
    assert surveys.urgent_open_count(demo.actor("other@example.jp"), aid) == 0
    assert surveys.urgent_open_count(demo.actor("city@example.jp"), aid) == 0
    qs = qmap(demo, sid)
    surveys.submit_answer(member, sid, {f"q{qs[0][0]}": str(qs[0][1][1]), f"q{qs[1][0]}": "足をけがしました"})
    assert surveys.urgent_open_count(member, aid) == 0
    board = surveys.safety_board(demo.actor("kaicho@example.jp"), sid)
    han1 = board.hans[0]
    assert (han1.answered, han1.needs_help, han1.safe) == (1, 1, 0)
    assert han1.targets == 20  # households, paper-only ones included
    assert [r.name for r in board.needs_help] and board.needs_help[0].answers[1] == "足をけがしました"
    assert board.needs_help[0].address  # 会長 holds view_members
    assert board.not_answered.total == sum(h.targets for h in board.hans) - 1
    assert any(r.paper_only for r in board.not_answered.rows)
    surveys.close_survey(demo.actor("kaicho@example.jp"), sid)
    assert surveys.urgent_open_count(demo.actor("member2@example.jp"), aid) == 0


def test_a_housemate_cannot_take_back_a_call_for_help_in_a_safety_check(demo):
    """Grandmother answers 支援が必要; her son answering 無事 for the household would take her off the officers'
    list. Only she changes it."""
    add_housemate(demo)
    sid = make_survey(demo, kind="safety", questions=[], per_household=True)
    qs = qmap(demo, sid)
    safe, help_ = ({f"q{qs[0][0]}": str(qs[0][1][i]), f"q{qs[1][0]}": note} for i, note in ((0, ""), (1, "足が痛い")))
    member, housemate = demo.actor("member@example.jp"), demo.actor("housemate@example.jp")
    surveys.submit_answer(member, sid, help_)
    before = counts()
    with pytest.raises(ServiceError) as e:
        surveys.submit_answer(housemate, sid, safe)
    assert e.value.key == "survey.error_help_kept"
    assert counts() == before
    board = surveys.safety_board(demo.actor("kaicho@example.jp"), sid)
    assert len(board.needs_help) == 1 and board.needs_help[0].answers[1] == "足が痛い"
    # Nor by answering 支援が必要 again first, which would make the answer theirs to take back.
    with pytest.raises(ServiceError):
        surveys.submit_answer(housemate, sid, {**help_, f"q{qs[1][0]}": "薬が必要"})
    assert counts() == before
    surveys.submit_answer(member, sid, {**help_, f"q{qs[1][0]}": "足が痛い。薬が必要"})
    surveys.submit_answer(member, sid, safe)  # her own call for help: she may take it back
    assert surveys.safety_board(demo.actor("kaicho@example.jp"), sid).needs_help == ()


def test_housemate_answer_clears_the_banner_for_the_household(demo):
    add_housemate(demo)
    aid = demo.association_id(DemoCity.A1)
    sid = make_survey(demo, kind="safety", questions=[], per_household=True)
    qs = qmap(demo, sid)
    assert surveys.urgent_open_count(demo.actor("housemate@example.jp"), aid) == 1
    surveys.submit_answer(demo.actor("member@example.jp"), sid, {f"q{qs[0][0]}": str(qs[0][1][0])})
    assert surveys.urgent_open_count(demo.actor("housemate@example.jp"), aid) == 0


def test_urgent_count_is_one_indexed_query(demo):
    from sqlalchemy import event

    from chiiki.services import db

    make_survey(demo, kind="safety", questions=[])
    member, aid = demo.actor("member@example.jp"), demo.association_id(DemoCity.A1)
    seen: list[tuple[str, tuple]] = []

    def capture(conn, cursor, statement, parameters, *args):
        seen.append((statement, parameters))

    eng = db.engine()
    event.listen(eng, "before_cursor_execute", capture)
    try:
        assert surveys.urgent_open_count(member, aid) == 1
    finally:
        event.remove(eng, "before_cursor_execute", capture)
    assert len(seen) == 1
    statement, params = seen[0]
    with session() as s:
        plan = " ".join(str(r) for r in s.connection().exec_driver_sql("EXPLAIN QUERY PLAN " + statement,
                                                                        params).all())
    # The association's surveys come from its index; participation is probed by its unique index.
    assert "SEARCH survey USING INDEX ix_survey_assoc_created" in plan
    assert "SEARCH surveyparticipation USING INDEX" in plan and "(survey_id=? AND unit_key=?)" in plan
    assert "SCAN survey" not in plan and "SCAN surveyparticipation" not in plan


# --------------------------------------------------------------------------- export


def test_export_csv_has_bom_and_names_and_is_audited(demo):
    sid = make_survey(demo)
    answer_general(demo, sid, text="=cmd()")
    name, data, mime = surveys.export_results(demo.actor("kaicho@example.jp"), sid, "csv")
    assert name.endswith(".csv") and mime == "text/csv"
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows[0][:3] == ["班", "氏名", "回答日"] and rows[0][3] == "好きな季節"
    assert rows[1][1] and rows[1][3] == "春" and rows[1][5] == "'=cmd()"
    with session() as s:
        ev = s.exec(select(AuditEvent).where(AuditEvent.action == "survey.export")).one()
        assert ev.subject_account_id == demo.account_id("member@example.jp") and ev.record_count == 1


def test_export_xlsx_opens(demo):
    sid = make_survey(demo)
    answer_general(demo, sid)
    name, data, _ = surveys.export_results(demo.actor("kaicho@example.jp"), sid, "xlsx")
    ws = load_workbook(io.BytesIO(data)).active
    assert name.endswith(".xlsx") and ws.cell(1, 2).value == "氏名" and ws.cell(2, 4).value == "春"


def test_export_needs_both_run_surveys_and_export(demo):
    sid = make_survey(demo)
    for login in ("fukukaicho@example.jp", "kaikei@example.jp", "member@example.jp"):
        with pytest.raises(Denied):
            surveys.export_results(demo.actor(login), sid, "csv")
    with pytest.raises(ServiceError):
        surveys.export_results(demo.actor("kaicho@example.jp"), sid, "pdf")


# --------------------------------------------------------------------------- demo content


def test_demo_content_seeds_surveys_without_an_open_safety_check(demo):
    from chiiki.demo_survey import seed_demo_content
    from chiiki.seed import DemoIds

    aid = demo.association_id(DemoCity.A1)
    ids = DemoIds(associations=[aid, demo.association_id(DemoCity.A2), demo.association_id(DemoCity.A3)],
                  officers={"kaicho@example.jp": demo.account_id("kaicho@example.jp")})
    with session() as s:
        seed_demo_content(s, ids)
    kaicho = demo.actor("kaicho@example.jp")
    items = surveys.list_surveys(kaicho, aid).items
    kinds = {i.survey.kind: i for i in items}
    assert set(kinds) >= {"attendance", "general", "safety"}
    assert surveys.results(kaicho, kinds["attendance"].survey.id).head_count > 0
    assert surveys.urgent_open_count(demo.actor("member@example.jp"), aid) == 0
    # The officer's list shows each survey's respondents (from the survey's counters): as many as took part.
    with session() as s:
        for item in items:
            took_part = s.exec(select(func.count()).select_from(SurveyParticipation)
                               .where(SurveyParticipation.survey_id == item.survey.id)).one()
            assert item.can_manage and item.respondents == took_part
    assert any(item.respondents > 0 for item in items)
    anon = next(i for i in items if i.survey.anonymous)
    with session() as s:
        rows = s.exec(select(SurveyResponse).where(SurveyResponse.survey_id == anon.survey.id)).all()
        assert rows and all(r.respondent_account_id is None and r.household_id is None and r.id >= 2**30
                            for r in rows)


def test_a_member_named_on_a_households_row_sees_the_read_on_their_access_page(demo):
    from chiiki.services import audit

    sid = make_survey(demo, per_household=True)
    member = demo.account_id("member@example.jp")
    rows = surveys.non_responders(demo.actor("kaicho@example.jp"), sid, limit=100).rows
    with session() as s:
        name = s.get(Account, member).name
        mine = s.exec(select(Membership.household_id).where(Membership.account_id == member,
                                                            Membership.status == "active")).one()
        seen = audit.accesses_to(s, member)
    assert any(r.household_id == mine and name in r.name for r in rows)
    assert [e.action for e in seen] == ["survey.nonresponders"]



def test_a_safety_check_reads_and_mails_in_each_residents_language(demo):
    """The fixed questions are stored in the residents' language whatever the officer's screen shows, and
    each member's mail is in the language on their account."""
    from chiiki.services import accounts

    accounts.set_preferences(demo.actor("member@example.jp"), locale="en")
    with session() as s:
        acc = s.get(Account, demo.account_id("member@example.jp"))
        acc.email_circulars = True
        s.add(acc)
    sid = make_survey(demo, kind="safety", questions=[])
    form = surveys.get_for_answer(demo.actor("member2@example.jp"), sid)
    assert form.questions[0].text == "あなたの安否"
    with session() as s:
        english = s.get(Account, demo.account_id("member@example.jp")).email
        mails = {m.to_address: m.subject for m in s.exec(select(OutboxMail).where(OutboxMail.kind == "survey"))}
    assert mails[english].startswith("[URGENT safety check]")
    others = [subject for to, subject in mails.items() if to != english]
    assert others and all(subject.startswith("【至急・安否確認】") for subject in others)


def test_an_anonymous_surveys_totals_and_export_wait_for_enough_answers(demo):
    """With fewer than ANONYMOUS_TOTALS_MIN answers an officer sees how many answered, not what: whoever
    knows who answered (a small han) would otherwise read their answers."""
    from tests.test_survey_anonymity import _members

    kaicho = demo.actor("kaicho@example.jp")
    sid = make_survey(demo, anonymous=True)
    logins = _members(demo, surveys.ANONYMOUS_TOTALS_MIN)
    for n, login in enumerate(logins, 1):
        answer_general(demo, sid, login=login, text=f"意見{n}")
        res = surveys.results(kaicho, sid)
        assert res.respondents == n
        if n < surveys.ANONYMOUS_TOTALS_MIN:
            assert res.withheld and res.questions == () and res.safe is None
            with pytest.raises(ServiceError) as e:
                surveys.export_results(kaicho, sid, "csv")
            assert e.value.key == "survey.error_too_few_anonymous"
    assert not res.withheld and sum(o.count for o in res.questions[0].options) == n
    assert len(surveys.export_results(kaicho, sid, "csv")[1].decode("utf-8-sig").splitlines()) == n + 1
