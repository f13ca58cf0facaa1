"""Survey pages through an rx.State tree: what each handler does and what reaches the browser."""

from __future__ import annotations

from reflex.istate.data import RouterData
from sqlalchemy import func
from sqlmodel import select

from chiiki.models import Account, Survey
from chiiki.pages.surveys import (
    SURVEY_ANSWER,
    SURVEY_RESULTS,
    SurveyAnswerState,
    SurveyBuilderState,
    SurveyListState,
    SurveyResultsState,
)
from chiiki.services import surveys
from chiiki.services.db import session
from tests.conftest import login_state, state_text
from tests.test_survey_services import answer_general, deadline_in, make_survey, qmap


def _at(state, path: str, survey_id: int) -> None:
    state.router = RouterData.from_router_data({"pathname": path, "asPath": f"{path}?id={survey_id}",
                                                "headers": {"origin": "http://localhost:3000"}})


async def _answer_page(root, survey_id: int) -> SurveyAnswerState:
    st = await root.get_state(SurveyAnswerState)
    _at(st, SURVEY_ANSWER, survey_id)
    await SurveyAnswerState.load.fn(st)
    return st


async def _results_page(root, survey_id: int) -> SurveyResultsState:
    st = await root.get_state(SurveyResultsState)
    _at(st, SURVEY_RESULTS, survey_id)
    await SurveyResultsState.load.fn(st)
    return st


async def test_member_answers_attendance_on_the_answer_page_and_the_banner_counts(demo, app_state):
    sid = make_survey(demo, kind="attendance", questions=[])
    await login_state(app_state, "member@example.jp")
    lst = await app_state.get_state(SurveyListState)
    await SurveyListState.load.fn(lst)
    item = next(i for i in lst.items if i["id"] == sid)
    assert item["can_answer"] and item["status"] == "unanswered" and item["respondents"] == ""
    st = await _answer_page(app_state, sid)
    assert [q["kind"] for q in st.questions] == ["single", "number"] and st.can_answer
    q0, q1 = st.questions
    await SurveyAnswerState.submit.fn(st, {"q" + q0["id"]: q0["options"][0]["id"], "q" + q1["id"]: "3"})
    assert st.errors == {} and st.notice == "回答を送りました。ありがとうございました"
    assert st.answered and st.can_change
    assert st.questions[0]["options"][0]["checked"] and st.questions[1]["value"] == "3"


async def test_answer_page_shows_errors_next_to_questions_and_writes_nothing(demo, app_state):
    sid = make_survey(demo)
    await login_state(app_state, "member@example.jp")
    st = await _answer_page(app_state, sid)
    q = st.questions
    await SurveyAnswerState.submit.fn(st, {"q" + q[3]["id"]: "99", "q" + q[2]["id"]: "x" * 1001})
    assert st.errors["q" + q[0]["id"]] == "入力してください"
    assert st.errors["q" + q[3]["id"]] == "1から10までの数字を入力してください"
    assert st.errors["q" + q[2]["id"]] == "1000文字以内で入力してください"
    assert st.error and not st.answered


async def test_multiple_choice_checkboxes_are_read_from_their_own_names(demo, app_state):
    sid = make_survey(demo)
    await login_state(app_state, "member@example.jp")
    st = await _answer_page(app_state, sid)
    q = st.questions
    o = q[1]["options"]
    await SurveyAnswerState.submit.fn(st, {"q" + q[0]["id"]: q[0]["options"][1]["id"],
                                           f"q{q[1]['id']}_o{o[0]['id']}": "on", f"q{q[1]['id']}_o{o[1]['id']}": "on",
                                           "q" + q[3]["id"]: "2"})
    assert st.errors == {}
    assert [x["checked"] for x in st.questions[1]["options"]] == [True, True]


async def test_safety_check_raises_the_banner_until_answered(demo, app_state):
    sid = make_survey(demo, kind="safety", questions=[])
    auth = await login_state(app_state, "member@example.jp")
    assert auth.urgent_surveys == 1
    st = await _answer_page(app_state, sid)
    q = st.questions
    result = await SurveyAnswerState.submit.fn(st, {"q" + q[0]["id"]: q[0]["options"][0]["id"]})
    # The banner's count is refreshed within the same event: no further event is chained for it.
    assert result is None
    assert auth.urgent_surveys == 0


async def test_other_association_cannot_open_the_answer_page(demo, app_state):
    sid = make_survey(demo)
    await login_state(app_state, "other@example.jp")
    st = await _answer_page(app_state, sid)
    assert st.error == "この操作はできません" and st.questions == [] and st.survey == {}
    assert "好きな季節" not in state_text(app_state)


async def test_officer_results_page_shows_head_count_and_names_only_on_request(demo, app_state):
    sid = make_survey(demo, kind="attendance", questions=[])
    qs = qmap(demo, sid)
    surveys.submit_answer(demo.actor("member@example.jp"), sid, {f"q{qs[0][0]}": str(qs[0][1][0]),
                                                                 f"q{qs[1][0]}": "4"})
    with session() as s:
        name = s.exec(select(Account.name).where(Account.login_id == "member@example.jp")).one()
    await login_state(app_state, "fukukaicho@example.jp")
    st = await _results_page(app_state, sid)
    assert st.head_line == "出席 1件・合計 4人"
    assert st.questions[0]["chart"] == [{"name": "出席", "count": 1}, {"name": "欠席", "count": 0}]
    assert name not in state_text(app_state)
    await SurveyResultsState.show_people.fn(st, "responses")
    assert [p["name"] for p in st.people] == [name] and st.people[0]["answers"] == ["出席", "4"]
    await SurveyResultsState.show_people.fn(st, "missing")
    assert st.people_total > 0 and name not in [p["name"] for p in st.people]


async def test_anonymous_results_page_holds_totals_only(demo, app_state):
    from tests.test_survey_anonymity import _members

    sid = make_survey(demo, anonymous=True)
    logins = [m for m in _members(demo, 8) if m != "member@example.jp"]
    answer_general(demo, sid, text="匿名の意見")
    await login_state(app_state, "kaicho@example.jp")
    st = await _results_page(app_state, sid)
    # One answer: only the counts, nothing anyone who knows who answered could read the answer from.
    assert st.survey["anonymous"] and st.summary.startswith("回答 1")
    assert st.questions == [] and st.withheld == "匿名のアンケートのため、回答が5件以上になると集計を表示します"
    assert "匿名の意見" not in state_text(app_state)
    assert await SurveyResultsState.export.fn(st, "csv") is None
    assert st.error == "匿名のアンケートは、回答が5件以上になるまで書き出せません"
    for login in logins[:4]:
        answer_general(demo, sid, login=login)
    st = await _results_page(app_state, sid)
    assert st.summary.startswith("回答 5") and st.withheld == ""
    assert "匿名の意見" in st.questions[2]["texts"]
    await SurveyResultsState.show_people.fn(st, "responses")
    assert st.people == [] and st.error == "この操作はできません"
    with session() as s:
        name = s.exec(select(Account.name).where(Account.login_id == "member@example.jp")).one()
    assert name not in state_text(app_state)


async def test_member_cannot_load_results(demo, app_state):
    sid = make_survey(demo)
    answer_general(demo, sid, text="ひみつ")
    await login_state(app_state, "member@example.jp")
    st = await _results_page(app_state, sid)
    assert st.error == "この操作はできません" and st.questions == []
    await SurveyResultsState.show_people.fn(st, "responses")
    await SurveyResultsState.export.fn(st, "csv")
    assert st.people == [] and "ひみつ" not in state_text(app_state)


async def test_export_handler_downloads_for_export_officers(demo, app_state):
    sid = make_survey(demo)
    answer_general(demo, sid)
    await login_state(app_state, "kaicho@example.jp")
    st = await _results_page(app_state, sid)
    event = await SurveyResultsState.export.fn(st, "csv")
    assert event is not None and st.error == ""
    await SurveyResultsState.export.fn(st, "exe")
    assert st.error


async def test_safety_results_show_the_board_by_han(demo, app_state):
    sid = make_survey(demo, kind="safety", questions=[])
    qs = qmap(demo, sid)
    surveys.submit_answer(demo.actor("member@example.jp"), sid, {f"q{qs[0][0]}": str(qs[0][1][1]),
                                                                 f"q{qs[1][0]}": "薬がない"})
    await login_state(app_state, "kaicho@example.jp")
    st = await _results_page(app_state, sid)
    assert st.safety_line == "無事 0・支援が必要 1"
    assert st.hans[0]["help"] == "1" and st.needs_help[0]["answers"][1] == "薬がない"
    assert st.people_mode == "missing" and st.people_total > 0


async def test_builder_creates_an_attendance_survey_and_goes_to_results(demo, app_state):
    await login_state(app_state, "fukukaicho@example.jp")
    b = await app_state.get_state(SurveyBuilderState)
    await SurveyBuilderState.load.fn(b)
    assert b.can_target_all and len(b.han_options) == 4
    await SurveyBuilderState.choose_kind.fn(b, "attendance")
    assert [q["text"] for q in b.fixed] == ["出欠", "出席する人数"]
    await SurveyBuilderState.add_question.fn(b, "multiple")
    uid = b.extra[0]["uid"]
    redirect = await SurveyBuilderState.submit.fn(b, {
        "title": "新年会", "deadline": deadline_in(5), "target": "all",
        f"q{uid}_text": "料理の希望", f"q{uid}_options": "和食\n洋食", f"q{uid}_required": "on"})
    assert b.errors == {} and b.error == "", b.errors
    assert redirect is not None
    with session() as s:
        sv = s.exec(select(Survey).where(Survey.title == "新年会")).one()
    form = surveys.get_for_answer(demo.actor("member@example.jp"), sv.id)
    assert [q.text for q in form.questions] == ["出欠", "出席する人数", "料理の希望"]


async def test_choosing_a_kind_keeps_the_form_and_moves_only_the_deadline(demo, app_state):
    await login_state(app_state, "fukukaicho@example.jp")
    b = await app_state.get_state(SurveyBuilderState)
    await SurveyBuilderState.load.fn(b)
    key, deadline = b.form_key, b.default_deadline
    # Tapping the kind already chosen changes nothing: the form is not remounted, so nothing typed is lost.
    assert await SurveyBuilderState.choose_kind.fn(b, "general") is None
    assert b.form_key == key and b.kind == "general"
    # Another kind keeps the form (what was typed stays) and sets the deadline field to that kind's default.
    events = await SurveyBuilderState.choose_kind.fn(b, "safety")
    assert b.kind == "safety" and b.form_key == key and b.default_deadline != deadline
    deadline_event, per_household = events
    args = {k._js_expr: str(v) for k, v in deadline_event.args}
    assert args["ref"] == '"ref_f_deadline"' and b.default_deadline in args["value"]
    # A safety check asks per household from the start: the box is ticked (and unticked for another kind).
    assert "checked = true" in str(per_household)
    assert "checked = false" in str((await SurveyBuilderState.choose_kind.fn(b, "general"))[1])
    await SurveyBuilderState.choose_kind.fn(b, "safety")
    # An unknown kind is ignored.
    assert await SurveyBuilderState.choose_kind.fn(b, "lottery") is None and b.kind == "safety"


async def test_builder_refuses_bad_input_with_field_errors(demo, app_state):
    await login_state(app_state, "fukukaicho@example.jp")
    b = await app_state.get_state(SurveyBuilderState)
    await SurveyBuilderState.load.fn(b)
    with session() as s:
        before = s.exec(select(func.count()).select_from(Survey)).one()
    await SurveyBuilderState.submit.fn(b, {"title": "", "deadline": "2000-01-01T00:00", "target": "han"})
    assert {"title", "deadline", "targets", "questions"} <= set(b.errors)
    with session() as s:
        assert s.exec(select(func.count()).select_from(Survey)).one() == before


async def test_builder_is_refused_to_members(demo, app_state):
    await login_state(app_state, "member@example.jp")
    b = await app_state.get_state(SurveyBuilderState)
    await SurveyBuilderState.load.fn(b)
    assert b.error == "この操作はできません" and b.han_options == []
    await SurveyBuilderState.submit.fn(b, {"title": "x", "deadline": deadline_in(), "target": "all"})
    assert b.error == "この操作はできません"


async def test_logged_out_handlers_redirect_to_login(demo, app_state):
    for cls, handler in ((SurveyListState, SurveyListState.load), (SurveyAnswerState, SurveyAnswerState.load),
                         (SurveyResultsState, SurveyResultsState.load), (SurveyBuilderState, SurveyBuilderState.load)):
        st = await app_state.get_state(cls)
        assert await handler.fn(st) is not None


async def test_answering_shows_the_stored_answer_and_the_totals_members_see(demo, app_state):
    sid = make_survey(demo)
    for login in ("member2@example.jp", "hancho@example.jp", "kaikei@example.jp", "fukukaicho@example.jp"):
        answer_general(demo, sid, login=login)
    await login_state(app_state, "member@example.jp")
    st = await _answer_page(app_state, sid)
    assert not st.answered and st.totals == [] and st.notice == ""
    q = st.questions
    first = q[0]["options"][0]["id"]
    await SurveyAnswerState.submit.fn(st, {"q" + q[0]["id"]: first, "q" + q[3]["id"]: "3"})
    # One trip stored the answer and brought back the page: the answer is shown, and with five answers
    # the totals appear (no free text), the notice says it was sent.
    assert st.errors == {} and st.error == "" and st.notice == "回答を送りました。ありがとうございました"
    assert st.answered and [o["checked"] for o in st.questions[0]["options"]][0] is True
    assert st.questions[3]["value"] == "3"
    assert st.totals and sum(int(o["count"]) for o in st.totals[0]["options"]) == 5
    await SurveyAnswerState.submit.fn(st, {"q" + q[0]["id"]: first, "q" + q[3]["id"]: "4"})
    assert st.notice == "回答を変更しました" and st.questions[3]["value"] == "4"
    again = await _answer_page(app_state, sid)
    assert again.questions[3]["value"] == "4" and again.totals == st.totals
