"""Surveys, attendance and safety checks at their edges: members who leave, households moved to another han, a
班長's results, a housemate who changed the household's answer."""

from __future__ import annotations

import pytest

from chiiki.services import membership, surveys
from chiiki.services.db import session
from tests.conftest import DemoCity
from tests.test_survey_services import add_housemate, answer_general, make_survey, qmap


def _han_of(demo, login):
    return demo.actor(login).membership(demo.association_id(DemoCity.A1)).han_id


def test_safety_board_han_row_counts_the_same_missing_people_as_the_list_below_it(demo):
    """A member of 1班 answers 無事 and then leaves the association (moves away). The han table must still
    say how many of 1班's current members have not answered: the list under it names them."""
    sid = make_survey(demo, kind="safety", questions=[])
    han1 = _han_of(demo, "member@example.jp")
    qs = qmap(demo, sid)
    surveys.submit_answer(demo.actor("member@example.jp"), sid, {f"q{qs[0][0]}": str(qs[0][1][0])})
    membership.leave(demo.actor("member@example.jp"), demo.association_id(DemoCity.A1))
    kaicho = demo.actor("kaicho@example.jp")
    board = surveys.safety_board(kaicho, sid, limit=100)
    han_row = next(h for h in board.hans if h.han_id == han1)
    han_name = han_row.han
    listed = [r for r in board.not_answered.rows if r.han == han_name]
    assert han_row.not_answered == len(listed), (han_row, len(listed))


async def test_results_summary_and_the_non_responders_list_add_up(demo, app_state):
    """「回答 n / 対象 total」 on the results page: after a member who answered leaves, n still counts them but
    total does not, so total - n is one fewer than the 未回答 list the officer opens below it."""
    import re

    from chiiki.pages.surveys import SurveyResultsState
    from tests.conftest import login_state
    from tests.test_survey_states import _results_page

    sid = make_survey(demo)
    answer_general(demo, sid)
    answer_general(demo, sid, login="member2@example.jp")
    membership.leave(demo.actor("member2@example.jp"), demo.association_id(DemoCity.A1))
    await login_state(app_state, "kaicho@example.jp")
    st = await _results_page(app_state, sid)
    n, total = map(int, re.findall(r"\d+", st.summary))
    await SurveyResultsState.show_people.fn(st, "missing")
    assert (st.summary, total - n) == (st.summary, st.people_total)


def test_the_housemate_who_changed_the_household_answer_is_told_it_is_theirs(demo):
    """Per-household: A answers, housemate B changes it. B then sees 'ご家族が…回答済み' (someone else answered)
    and A sees '回答済みです' (you answered) although the answer shown is now B's."""
    add_housemate(demo)
    sid = make_survey(demo, per_household=True)
    answer_general(demo, sid, season=0)
    answer_general(demo, sid, login="housemate@example.jp", season=1)
    mate = surveys.get_for_answer(demo.actor("housemate@example.jp"), sid)
    first = surveys.get_for_answer(demo.actor("member@example.jp"), sid)
    assert (mate.answered_by_other, first.answered_by_other) == (False, True)


async def test_a_hancho_whose_list_offers_results_can_open_them_and_follow_up_their_han(demo, app_state):
    """The list shows a 班長 (run_surveys for 2班) the 「結果」 button on the 会長's survey to every han
    (can_manage), and the service lets them see who in 2班 has not answered (non_responders). The results page
    they reach shows only an error, and no way to the non-responders of their han."""
    from tests.test_survey_services import grant
    from tests.test_survey_states import _results_page
    from tests.conftest import login_state
    from chiiki.pages.surveys import SurveyListState, SurveyResultsState

    grant(demo, "member2@example.jp", "run_surveys", han_index=1)
    sid = make_survey(demo)  # general, every han
    assert surveys.non_responders(demo.actor("member2@example.jp"), sid, limit=100).total > 0
    await login_state(app_state, "member2@example.jp")
    lst = await app_state.get_state(SurveyListState)
    await SurveyListState.load.fn(lst)
    assert next(i for i in lst.items if i["id"] == sid)["can_manage"]
    st = await _results_page(app_state, sid)
    assert st.error == "", st.error
    await SurveyResultsState.show_people.fn(st, "missing")
    assert st.error == "" and st.people_total > 0


def test_a_call_for_help_reaches_the_hancho_of_the_han_the_household_is_in_now(demo):
    """Safety check: a household in 1班 answers 支援が必要; then the roster moves it to 2班 (a correction, or the
    route re-drawn). The 2班 班長 who now goes to that house must find it on their board's 支援が必要 list, and
    the han table must count it in 2班."""
    from chiiki.models import Household
    from tests.test_survey_services import grant

    grant(demo, "member2@example.jp", "run_surveys", han_index=1)
    han2 = demo.han_ids(DemoCity.A1)[1]
    sid = make_survey(demo, kind="safety", questions=[], per_household=True)
    qs = qmap(demo, sid)
    surveys.submit_answer(demo.actor("member@example.jp"), sid, {f"q{qs[0][0]}": str(qs[0][1][1]),
                                                                 f"q{qs[1][0]}": "足をけがしました"})
    hid = demo.actor("member@example.jp").membership(demo.association_id(DemoCity.A1)).household_id
    with session() as s:
        hh = s.get(Household, hid)
        hh.han_id = han2
        s.add(hh)
    board = surveys.safety_board(demo.actor("member2@example.jp"), sid, limit=100)
    assert [r.household_id for r in board.needs_help] == [hid]
    assert board.hans[0].needs_help == 1


async def test_a_safety_check_with_more_calls_for_help_than_the_page_lists_says_how_many_more(demo, app_state,
                                                                                              monkeypatch):
    """The page lists the first NEEDS_HELP_SHOWN calls for help; it must not look like the whole list."""
    from chiiki.pages.surveys import SurveyResultsState
    from tests.conftest import login_state

    monkeypatch.setattr(surveys, "NEEDS_HELP_SHOWN", 1)
    sid = make_survey(demo, kind="safety", questions=[])
    for login in ("member@example.jp", "member2@example.jp"):
        qs = qmap(demo, sid, login)
        surveys.submit_answer(demo.actor(login), sid, {f"q{qs[0][0]}": str(qs[0][1][1])})  # 支援が必要
    board = surveys.safety_board(demo.actor("kaicho@example.jp"), sid)
    assert (len(board.needs_help), board.needs_help_total) == (1, 2)
    await login_state(app_state, "kaicho@example.jp")
    st = await app_state.get_state(SurveyResultsState)
    st._survey_id = sid
    await st._board(demo.actor("kaicho@example.jp"), "ja")
    assert len(st.needs_help) == 1 and st.needs_help_more.startswith("ほかに 1 件")
    monkeypatch.setattr(surveys, "NEEDS_HELP_SHOWN", 500)
    await st._board(demo.actor("kaicho@example.jp"), "ja")
    assert len(st.needs_help) == 2 and st.needs_help_more == ""


async def test_a_survey_closed_before_its_deadline_can_be_reopened_until_then(demo, app_state):
    """Closed by mistake (or too early): the officer who could close it opens it again, members answer again; once
    the deadline has passed it stays closed; a 班長 covering only some han can do neither."""
    from sqlalchemy import update as sa_update

    from chiiki.models import Survey, utcnow
    from chiiki.pages.surveys import SurveyResultsState
    from chiiki.services.errors import Denied, ServiceError
    from tests.conftest import login_state
    from tests.test_survey_states import _results_page
    from tests.test_survey_services import grant

    sid = make_survey(demo)
    await login_state(app_state, "kaicho@example.jp")
    st = await _results_page(app_state, sid)
    assert st.can_reopen is False
    await SurveyResultsState.close.fn(st)
    assert st.survey["is_open"] is False and st.can_reopen is True
    with pytest.raises(ServiceError, match="survey.error_closed"):
        answer_general(demo, sid)
    grant(demo, "member2@example.jp", "run_surveys", han_index=1)
    with pytest.raises(Denied):  # a 班長 covering one han
        surveys.reopen_survey(demo.actor("member2@example.jp"), sid)
    await SurveyResultsState.reopen.fn(st)
    assert st.error == "" and st.survey["is_open"] is True and st.can_reopen is False
    assert st.notice.startswith("受付を再開しました")
    answer_general(demo, sid)  # members answer again
    surveys.close_survey(demo.actor("kaicho@example.jp"), sid)
    with session() as s:  # the deadline passes
        s.execute(sa_update(Survey).where(Survey.id == sid).values(deadline=utcnow()))
    st = await _results_page(app_state, sid)
    assert st.can_reopen is False
    with pytest.raises(ServiceError, match="survey.error_reopen_deadline"):
        surveys.reopen_survey(demo.actor("kaicho@example.jp"), sid)


def test_safety_han_row_answered_covers_its_safe_and_help_counts(demo):
    """0a5e21d: 「回答」 in the han table counts only current members who answered, but 「無事」/「支援」 still count
    every response filed under the han (one of a member who has left too): 無事 1 of 0 answered."""
    from chiiki.services import membership, surveys
    from tests.conftest import DemoCity
    from tests.test_survey_services import make_survey, qmap

    sid = make_survey(demo, kind="safety", questions=[])
    han1 = demo.actor("member@example.jp").membership(demo.association_id(DemoCity.A1)).han_id
    qs = qmap(demo, sid)
    surveys.submit_answer(demo.actor("member@example.jp"), sid, {f"q{qs[0][0]}": str(qs[0][1][0])})
    membership.leave(demo.actor("member@example.jp"), demo.association_id(DemoCity.A1))
    board = surveys.safety_board(demo.actor("kaicho@example.jp"), sid, limit=100)
    row = next(h for h in board.hans if h.han_id == han1)
    assert row.safe + row.needs_help <= row.answered, row
