"""An officer records a household's answer (a paper-only household visited in a safety check, a call for help
answered on the spot): who may, for which households, what the lists and the household then show, and bad input
refused with nothing written."""

from __future__ import annotations

import pytest
from sqlmodel import select

from chiiki.models import AuditEvent, Household, Membership, SurveyParticipation, SurveyResponse
from chiiki.services import membership, surveys
from chiiki.services.db import session
from chiiki.services.errors import Denied, NotFound, ServiceError, ValidationErrors
from tests.conftest import DemoCity, login_state
from tests.test_survey_services import counts, grant, make_survey, qmap, set_deadline_past

KAICHO = "kaicho@example.jp"


def _safety(demo, **over) -> int:
    return make_survey(demo, kind="safety", questions=[], per_household=True, **over)


def _paper_household(demo, han_index: int = 0) -> Household:
    with session() as s:
        return s.exec(select(Household).where(Household.association_id == demo.association_id(DemoCity.A1),
                                              Household.paper_only.is_(True), Household.removed_at.is_(None),
                                              Household.han_id == demo.han_ids(DemoCity.A1)[han_index])
                      .order_by(Household.id)).first()


def _household_of(demo, login: str) -> int:
    return demo.actor(login).membership(demo.association_id(DemoCity.A1)).household_id


def _choice(demo, sid: int, option: int, note: str = "") -> dict:
    """The safety check's answer: option 0 無事, 1 支援が必要, and the free note."""
    qs = qmap(demo, sid)
    return {f"q{qs[0][0]}": str(qs[0][1][option]), f"q{qs[1][0]}": note}


def test_a_visited_paper_household_leaves_the_non_responders_and_counts_as_safe(demo):
    sid = _safety(demo)
    hh = _paper_household(demo)
    kaicho = demo.actor(KAICHO)
    before = surveys.safety_board(kaicho, sid, limit=100)
    assert hh.id in {r.household_id for r in before.not_answered.rows}
    han_before = next(h for h in before.hans if h.han_id == hh.han_id)

    surveys.record_for_household(kaicho, sid, hh.id, _choice(demo, sid, 0, "訪問して確認"))

    after = surveys.safety_board(kaicho, sid, limit=100)
    assert hh.id not in {r.household_id for r in after.not_answered.rows}
    han_after = next(h for h in after.hans if h.han_id == hh.han_id)
    assert (han_after.answered, han_after.safe, han_after.not_answered) == (
        han_before.answered + 1, han_before.safe + 1, han_before.not_answered - 1)
    res = surveys.results(kaicho, sid)
    assert (res.answered_targets, res.safe) == (1, 1)
    # The officer's answer is the household's: listed under its head's name, marked as recorded.
    rows = surveys.responses(kaicho, sid, limit=100).rows
    (row,) = [r for r in rows if r.household_id == hh.id]
    assert (row.name, row.recorded, row.account_id) == (hh.head_name, True, None)
    with session() as s:
        part = s.exec(select(SurveyParticipation).where(SurveyParticipation.survey_id == sid)).one()
        resp = s.exec(select(SurveyResponse).where(SurveyResponse.survey_id == sid)).one()
        logged = s.exec(select(AuditEvent.action).where(AuditEvent.subject_household_id == hh.id)).all()
    assert (part.account_id, part.household_id, part.unit_key) == (None, hh.id, f"h{hh.id}")
    assert resp.recorded_by == kaicho.account_id and resp.respondent_account_id is None
    assert "survey.record" in logged


def test_a_call_for_help_answered_on_the_spot_leaves_the_list_and_the_household_is_told(demo):
    """A member asked for help; the 会長 went and helped, and records 無事. The member sees that an officer
    recorded their household's answer, and cannot quietly take back a 支援が必要 an officer recorded."""
    sid = _safety(demo)
    member = demo.actor("member@example.jp")
    surveys.submit_answer(member, sid, _choice(demo, sid, 1, "足をけがしました"))
    kaicho = demo.actor(KAICHO)
    hid = _household_of(demo, "member@example.jp")
    assert [r.household_id for r in surveys.safety_board(kaicho, sid).needs_help] == [hid]

    form = surveys.household_form(kaicho, sid, hid)
    assert form.answered and not form.recorded and form.mine  # the member's answer, to start from
    surveys.record_for_household(kaicho, sid, hid, _choice(demo, sid, 0, "病院へ送りました"))
    assert surveys.safety_board(kaicho, sid).needs_help == ()
    seen = surveys.get_for_answer(member, sid)
    assert (seen.answered, seen.answered_by_other, seen.recorded_by_officer) == (True, True, True)

    # Recorded as needing help: the household's member cannot change that (they tell an officer).
    surveys.record_for_household(kaicho, sid, hid, _choice(demo, sid, 1, "まだ支援が必要"))
    with pytest.raises(ServiceError) as e:
        surveys.submit_answer(member, sid, _choice(demo, sid, 0))
    assert e.value.key == "survey.error_help_kept"
    # A member who answers for themselves makes the answer theirs again.
    surveys.record_for_household(kaicho, sid, hid, _choice(demo, sid, 0))
    surveys.submit_answer(member, sid, _choice(demo, sid, 0, "元気です"))
    assert not surveys.get_for_answer(member, sid).recorded_by_officer
    with session() as s:
        assert s.exec(select(SurveyParticipation).where(SurveyParticipation.survey_id == sid)).all()[0].account_id \
            == member.account_id


def test_who_may_record_and_for_which_households(demo):
    sid = _safety(demo, target_all=False, han_ids=[str(demo.han_ids(DemoCity.A1)[0])])
    in_target = _paper_household(demo, 0)
    outside = _paper_household(demo, 1)
    answer = _choice(demo, sid, 0)
    # A household of a han the survey does not ask.
    with pytest.raises(Denied):
        surveys.record_for_household(demo.actor(KAICHO), sid, outside.id, answer)
    # A member, and an officer of another association.
    for login in ("member@example.jp", "other@example.jp"):
        with pytest.raises(Denied):
            surveys.record_for_household(demo.actor(login), sid, in_target.id, answer)
    # A 班長 of 2班 (run_surveys there) does not reach a household of 1班.
    grant(demo, "member2@example.jp", "run_surveys view_members", han_index=1)
    with pytest.raises(Denied):
        surveys.record_for_household(demo.actor("member2@example.jp"), sid, in_target.id, answer)
    # A household of another association, an unknown one, a removed one, nonsense.
    with session() as s:
        foreign = s.exec(select(Household.id).where(Household.association_id == demo.association_id(DemoCity.A2))
                         ).first()
    for bad in (foreign, 10**9, "x", None, -1):
        with pytest.raises((NotFound, ServiceError)):
            surveys.record_for_household(demo.actor(KAICHO), sid, bad, answer)
    with session() as s:
        gone = s.get(Household, in_target.id)
        gone.removed_at = gone.created_at
        s.add(gone)
    with pytest.raises(NotFound):
        surveys.household_form(demo.actor(KAICHO), sid, in_target.id)
    assert counts() == (0, 0, 0)


def test_recording_is_refused_where_it_would_mislead(demo):
    hh = _paper_household(demo)
    kaicho = demo.actor(KAICHO)
    # Per member (a household has no single answer), anonymous (the officer would know the answer).
    for over in ({"per_household": False}, {"per_household": True, "anonymous": True}):
        sid = make_survey(demo, **over)
        with pytest.raises(ServiceError) as e:
            surveys.household_form(kaicho, sid, hh.id)
        assert e.value.key == "survey.error_record_kind"
    sid = _safety(demo)
    # Bad answers: field messages, nothing written.
    qs = qmap(demo, sid)
    with pytest.raises(ValidationErrors) as e:
        surveys.record_for_household(kaicho, sid, hh.id, {f"q{qs[0][0]}": ""})
    assert f"q{qs[0][0]}" in e.value.errors
    with pytest.raises(ServiceError):
        surveys.record_for_household(kaicho, sid, hh.id, {f"q{qs[0][0]}": "999999"})
    assert counts() == (0, 0, 0)
    set_deadline_past(sid)
    with pytest.raises(ServiceError) as e:
        surveys.record_for_household(kaicho, sid, hh.id, _choice(demo, sid, 0))
    assert e.value.key == "survey.error_closed"
    assert counts() == (0, 0, 0)


def test_a_household_whose_member_has_answered_keeps_one_answer(demo):
    """The officer's record replaces the household's answer: still one response, one participation."""
    sid = _safety(demo)
    surveys.submit_answer(demo.actor("member@example.jp"), sid, _choice(demo, sid, 0))
    hid = _household_of(demo, "member@example.jp")
    surveys.record_for_household(demo.actor(KAICHO), sid, hid, _choice(demo, sid, 1, "停電で困っている"))
    surveys.record_for_household(demo.actor(KAICHO), sid, hid, _choice(demo, sid, 1, "停電、発電機を届けた"))
    assert counts() == (1, 2, 1)
    res = surveys.results(demo.actor(KAICHO), sid)
    assert (res.answered_targets, res.safe, res.needs_help) == (1, 0, 1)


def test_the_household_can_see_the_officer_recorded_it_in_their_access_log(demo):
    from chiiki.services import audit

    sid = _safety(demo)
    hid = _household_of(demo, "member@example.jp")
    surveys.record_for_household(demo.actor(KAICHO), sid, hid, _choice(demo, sid, 0))
    with session() as s:
        mine = audit.accesses_to(s, demo.actor("member@example.jp").account_id)
    assert "survey.record" in {e.action for e in mine}


def test_a_member_who_left_is_no_longer_named_on_the_form(demo):
    sid = _safety(demo)
    hid = _household_of(demo, "member@example.jp")
    membership.leave(demo.actor("member@example.jp"), demo.association_id(DemoCity.A1))
    with session() as s:
        head = s.get(Household, hid).head_name
        assert s.exec(select(Membership).where(Membership.household_id == hid,
                                               Membership.status == "active")).first() is None
    form = surveys.household_form(demo.actor(KAICHO), sid, hid)
    assert form.name == head


# --------------------------------------------------------------------------- the results page


async def test_the_officer_records_a_visit_from_the_safety_board(demo, app_state):
    from chiiki.pages.surveys import SurveyResultsState
    from tests.test_survey_states import _results_page

    sid = _safety(demo)
    hh = _paper_household(demo)
    await login_state(app_state, KAICHO)
    st = await _results_page(app_state, sid)
    row = next(p for p in st.people if p["hid"] == str(hh.id))
    assert row["paper"] and st.people_mode == "missing"
    missing_before = st.people_total

    await SurveyResultsState.open_record.fn(st, row["hid"])
    assert st.record_open and st.record_household["name"] == hh.head_name
    assert [q["kind"] for q in st.record_questions] == ["single", "text"]
    q0 = st.record_questions[0]
    # Nothing chosen: a message under the question, the dialog stays open, nothing written.
    await SurveyResultsState.save_record.fn(st, {})
    assert st.record_open and st.record_errors.get("q" + q0["id"]) and counts() == (0, 0, 0)

    await SurveyResultsState.save_record.fn(st, {"q" + q0["id"]: q0["options"][0]["id"]})
    assert not st.record_open and st.notice == "回答を記録しました"
    assert st.people_total == missing_before - 1
    assert str(hh.id) not in {p["hid"] for p in st.people}
    # An id the officer may not touch: an error, no dialog.
    with session() as s:
        foreign = s.exec(select(Household.id).where(Household.association_id == demo.association_id(DemoCity.A2))
                         ).first()
    await SurveyResultsState.open_record.fn(st, str(foreign))
    assert not st.record_open and st.error


async def test_the_member_sees_an_officer_recorded_their_household_answer(demo, app_state):
    from chiiki.pages.surveys import SurveyAnswerState
    from tests.test_survey_states import _at

    sid = _safety(demo)
    hid = _household_of(demo, "member@example.jp")
    surveys.record_for_household(demo.actor(KAICHO), sid, hid, _choice(demo, sid, 0))
    await login_state(app_state, "member@example.jp")
    st = await app_state.get_state(SurveyAnswerState)
    _at(st, surveys.ANSWER_PATH, sid)
    await SurveyAnswerState.load.fn(st)
    assert st.recorded_by_officer and st.can_change
    assert st.questions[0]["options"][0]["checked"]


def test_an_officers_form_opened_before_a_call_for_help_does_not_erase_it(demo):
    """The officer opens the form while the household has not answered; a member then asks for help. Saving
    無事 from the old form must not silently take the household off the list of those to go to."""
    sid = _safety(demo)
    hid = _household_of(demo, "member@example.jp")
    kaicho = demo.actor(KAICHO)
    form = surveys.household_form(kaicho, sid, hid)
    assert not form.answered
    surveys.submit_answer(demo.actor("member@example.jp"), sid, _choice(demo, sid, 1, "助けて"))
    with pytest.raises(ServiceError) as e:
        surveys.record_for_household(kaicho, sid, hid, _choice(demo, sid, 0), form.version)
    assert e.value.key == "survey.error_record_changed"
    assert [r.household_id for r in surveys.safety_board(kaicho, sid).needs_help] == [hid]
    # Opened again, the form shows the call for help, and the officer's record of the visit is taken.
    form = surveys.household_form(kaicho, sid, hid)
    assert form.answered and not form.recorded
    surveys.record_for_household(kaicho, sid, hid, _choice(demo, sid, 0, "訪問済み"), form.version)
    assert surveys.safety_board(kaicho, sid).needs_help == ()


def test_the_dashboard_counts_members_answers_not_the_officers_records(demo):
    """The city's participation rate is members' answers over member households: 37 paper-only households
    recorded by an officer must not raise it; a member answering over a record counts as their participation."""
    from chiiki.models import Survey

    sid = _safety(demo)
    kaicho = demo.actor(KAICHO)
    with session() as s:
        paper = s.exec(select(Household.id).where(Household.association_id == demo.association_id(DemoCity.A1),
                                                  Household.paper_only.is_(True),
                                                  Household.removed_at.is_(None))).all()
    for hid in paper[:6]:
        surveys.record_for_household(kaicho, sid, hid, _choice(demo, sid, 0))
    hid = _household_of(demo, "member@example.jp")
    surveys.record_for_household(kaicho, sid, hid, _choice(demo, sid, 0))
    with session() as s:
        sv = s.get(Survey, sid)
        assert (sv.answered_accounts, sv.answered_households) == (0, 0)
    surveys.submit_answer(demo.actor("member@example.jp"), sid, _choice(demo, sid, 0, "元気です"))
    with session() as s:
        sv = s.get(Survey, sid)
        assert (sv.answered_accounts, sv.answered_households) == (1, 1)
    assert surveys.results(kaicho, sid).answered_targets == 7


def test_downgrading_0017_leaves_only_members_answers_and_counters_that_match_them(demo):
    """Down to 0016 (no officer-recorded answers there): the officer's records go, a household answer a member
    wrote over one stays theirs, and each survey's counters equal a recount of what is left."""
    import sqlalchemy as sa
    from alembic import command

    from chiiki import settings as settings_module
    from chiiki.services import db

    sid = _safety(demo)
    kaicho = demo.actor(KAICHO)
    paper = _paper_household(demo)
    surveys.record_for_household(kaicho, sid, paper.id, _choice(demo, sid, 0))
    hid = _household_of(demo, "member@example.jp")
    surveys.record_for_household(kaicho, sid, hid, _choice(demo, sid, 1))
    surveys.record_for_household(kaicho, sid, hid, _choice(demo, sid, 0))
    surveys.submit_answer(demo.actor("member@example.jp"), sid, _choice(demo, sid, 0, "元気"))
    surveys.submit_answer(demo.actor("member2@example.jp"), sid, _choice(demo, sid, 0))
    url = settings_module.settings.db_url
    db.dispose_all()
    command.stamp(db.alembic_config(url), "head")  # the test database is made from the models, at the head
    command.downgrade(db.alembic_config(url), "0016")
    eng = db.engine(url)
    with eng.connect() as c:
        left = c.execute(sa.text("SELECT household_id, account_id FROM surveyparticipation WHERE survey_id = :s "
                                 "ORDER BY household_id"), {"s": sid}).all()
        counters = c.execute(sa.text("SELECT answered_accounts, answered_households FROM survey WHERE id = :s"),
                             {"s": sid}).one()
        responses = c.execute(sa.text("SELECT count(*) FROM surveyresponse WHERE survey_id = :s"), {"s": sid}).scalar()
    assert paper.id not in {h for h, _a in left} and all(a is not None for _h, a in left)
    assert len(left) == 2 and tuple(counters) == (2, 2) and responses == 2
    db.dispose_all()
    db.migrate(url)


def test_my_data_download_includes_the_household_answer_an_officer_recorded(demo):
    from chiiki.services import accounts

    sid = _safety(demo)
    hid = _household_of(demo, "member@example.jp")
    surveys.record_for_household(demo.actor(KAICHO), sid, hid, _choice(demo, sid, 1, "玄関で転倒、通院の支援"))
    data = accounts.export_my_data(demo.actor("member@example.jp"))
    texts = [a["text"] for a in data["household_answers_recorded_by_officers"]]
    assert "玄関で転倒、通院の支援" in texts and data["survey_answers"] == []
    other = accounts.export_my_data(demo.actor("member2@example.jp"))
    assert other["household_answers_recorded_by_officers"] == []


def test_every_member_of_a_household_sees_reads_of_its_answer_on_their_access_page(demo):
    """A household's answer (its address, its call for help) is every member's: an officer reading the list,
    the safety board or the export is on the access page of each member of the household, whoever sent the
    answer (a housemate, or an officer recording it after a visit)."""
    from chiiki.services import accounts
    from tests.test_survey_services import add_housemate

    add_housemate(demo)
    member, housemate = demo.actor("member@example.jp"), demo.actor("housemate@example.jp")
    sid = _safety(demo)
    surveys.submit_answer(member, sid, _choice(demo, sid, 1, "足をけがしました"))
    kaicho = demo.actor(KAICHO)

    def seen_by(actor) -> list[str]:
        return [e.action for e in accounts.my_accesses(actor)]

    surveys.responses(kaicho, sid, limit=100)
    surveys.safety_board(kaicho, sid)
    surveys.export_results(kaicho, sid, "csv")
    for actor in (member, housemate):
        assert {"survey.responses", "survey.safety_list", "survey.export"} <= set(seen_by(actor)), seen_by(actor)
    # Recorded by an officer: the answer names no member, and still concerns them all.
    surveys.record_for_household(kaicho, sid, _household_of(demo, "member@example.jp"), _choice(demo, sid, 0))
    before = len(seen_by(housemate))
    surveys.responses(kaicho, sid, limit=100)
    assert len(seen_by(housemate)) == before + 1 and len(seen_by(member)) == before + 1


def test_households_not_answered_named_by_display_name_are_on_their_members_access_page(demo):
    """An officer running surveys without the roster sees who has not answered by display name: that is still
    about them, on each member's access page."""
    from chiiki.services import accounts
    from tests.test_survey_services import grant

    grant(demo, "member2@example.jp", "run_surveys")  # the whole association, without view_members
    sid = _safety(demo)
    runner = demo.actor("member2@example.jp")
    page = surveys.non_responders(runner, sid, limit=100)
    hid = _household_of(demo, "member@example.jp")
    (row,) = [r for r in page.rows if r.household_id == hid]
    assert row.address == ""  # not the roster: the display name only
    assert "survey.nonresponders" in [e.action for e in accounts.my_accesses(demo.actor("member@example.jp"))]
