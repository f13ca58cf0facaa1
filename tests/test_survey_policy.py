"""Who may call each survey service: visitors, outsiders, members, officers without run_surveys, a han-scoped
officer of another han, another association's officer, and city staff."""

from __future__ import annotations

import pytest
from sqlmodel import select

from chiiki.models import Account, Membership, OfficerRole
from chiiki.services import surveys
from chiiki.services.db import session
from chiiki.services.errors import Denied, ServiceError
from chiiki.services.policy import ANONYMOUS
from tests.conftest import DemoCity
from tests.test_survey_services import answer_general, grant, make_survey

HAN1_ONLY_OFFICER = "member2@example.jp"  # given run_surveys for 2班 only; the survey asks 1班


def _other_president(demo) -> str:
    with session() as s:
        return s.exec(select(Account.login_id).join(Membership, Membership.account_id == Account.id)
                      .join(OfficerRole, OfficerRole.membership_id == Membership.id)
                      .where(OfficerRole.association_id == demo.association_id(DemoCity.A3))).first()


def _actor(demo, who: str):
    if who == "anonymous":
        return ANONYMOUS
    return demo.actor({"other_officer": _other_president(demo)}.get(who, who))


@pytest.fixture
def setup(demo):
    grant(demo, HAN1_ONLY_OFFICER, "run_surveys export view_members", han_index=1)
    han1 = demo.han_ids(DemoCity.A1)[0]
    sid = make_survey(demo, target_all=False, han_ids=[han1])
    safety = make_survey(demo, kind="safety", questions=[], target_all=False, han_ids=[han1])
    answer_general(demo, sid)
    return sid, safety


MANAGE = {
    "results": lambda a, sid, saf: surveys.results(a, sid),
    "responses": lambda a, sid, saf: surveys.responses(a, sid),
    "non_responders": lambda a, sid, saf: surveys.non_responders(a, sid),
    "safety_board": lambda a, sid, saf: surveys.safety_board(a, saf),
    "send_reminder": lambda a, sid, saf: surveys.send_reminder(a, sid),
    "export": lambda a, sid, saf: surveys.export_results(a, sid, "csv"),
    "close": lambda a, sid, saf: surveys.close_survey(a, sid),
}
MEMBER_OPS = {
    "get_for_answer": lambda a, sid, saf: surveys.get_for_answer(a, sid),
    "member_totals": lambda a, sid, saf: surveys.member_totals(a, sid),
    "submit_answer": lambda a, sid, saf: surveys.submit_answer(a, sid, {}),
    # What the answer page runs.
    "answer_page": lambda a, sid, saf: surveys.answer_page(a, sid),
    "answer_and_reopen": lambda a, sid, saf: surveys.answer_and_reopen(a, sid, {}),
}
OUTSIDERS = ["anonymous", "newcomer@example.jp", "other@example.jp", "other_officer", "city@example.jp"]
INSIDERS_WITHOUT_RUN = ["member@example.jp", "kaikei@example.jp", "hancho@example.jp", HAN1_ONLY_OFFICER]


@pytest.mark.parametrize("who", OUTSIDERS)
@pytest.mark.parametrize("op", [*MANAGE, *MEMBER_OPS])
def test_outsiders_are_refused_everything(demo, setup, who, op):
    sid, saf = setup
    with pytest.raises(Denied):
        {**MANAGE, **MEMBER_OPS}[op](_actor(demo, who), sid, saf)


@pytest.mark.parametrize("who", INSIDERS_WITHOUT_RUN)
@pytest.mark.parametrize("op", list(MANAGE))
def test_members_and_officers_without_run_surveys_here_cannot_manage(demo, setup, who, op):
    sid, saf = setup
    with pytest.raises(Denied):
        MANAGE[op](_actor(demo, who), sid, saf)


@pytest.mark.parametrize("who", OUTSIDERS + ["member@example.jp", "kaikei@example.jp", "hancho@example.jp"])
def test_only_run_surveys_officers_build_surveys(demo, who):
    aid = demo.association_id(DemoCity.A1)
    with pytest.raises(Denied):
        surveys.create_survey(_actor(demo, who), aid, {"title": "x"})
    with pytest.raises(Denied):
        surveys.target_choices(_actor(demo, who), aid)


def test_han_scoped_officer_builds_only_for_their_han(demo):
    grant(demo, HAN1_ONLY_OFFICER, "run_surveys", han_index=1)
    han1, han2 = demo.han_ids(DemoCity.A1)[:2]
    actor = demo.actor(HAN1_ONLY_OFFICER)
    assert [h for h, _ in surveys.target_choices(actor, demo.association_id(DemoCity.A1))] == [han2]
    with pytest.raises(Denied):
        make_survey(demo, HAN1_ONLY_OFFICER)  # the whole association
    with pytest.raises(Denied):
        make_survey(demo, HAN1_ONLY_OFFICER, target_all=False, han_ids=[han1])
    sid = make_survey(demo, HAN1_ONLY_OFFICER, target_all=False, han_ids=[han2])
    assert surveys.results(actor, sid).survey.han_names == ("2班",)


def test_list_of_another_association_is_refused(demo):
    for who in OUTSIDERS:
        with pytest.raises(Denied):
            surveys.list_surveys(_actor(demo, who), demo.association_id(DemoCity.A1))


def test_members_answer_and_officers_with_run_surveys_manage(demo, setup):
    sid, saf = setup
    member = demo.actor("member@example.jp")
    assert surveys.get_for_answer(member, sid).answered
    for login in ("kaicho@example.jp", "fukukaicho@example.jp"):
        officer = demo.actor(login)
        for op in ("results", "responses", "non_responders", "safety_board"):
            MANAGE[op](officer, sid, saf)
    assert surveys.send_reminder(demo.actor("fukukaicho@example.jp"), sid) >= 0
    with pytest.raises(Denied):
        surveys.export_results(demo.actor("fukukaicho@example.jp"), sid, "csv")  # no export permission
    surveys.export_results(demo.actor("kaicho@example.jp"), sid, "xlsx")


def test_member_of_another_han_cannot_answer_a_han_survey(demo, setup):
    sid, _saf = setup
    with pytest.raises(Denied):
        surveys.submit_answer(demo.actor("member2@example.jp"), sid, {})
    with pytest.raises(ServiceError):
        surveys.submit_answer(demo.actor("member@example.jp"), "1 OR 1=1", {})


def test_a_han_scoped_officer_lists_the_surveys_of_their_han_and_those_asking_them(demo):
    """The list's three shapes: all hans (会長), some hans (a 班 officer), none (a member)."""
    aid = demo.association_id(DemoCity.A1)
    hans = demo.han_ids(DemoCity.A1)
    assert len(hans) >= 3
    own_han = demo.actor(HAN1_ONLY_OFFICER).membership(aid).han_id
    index = next(i for i, h in enumerate(hans) if h != own_han)  # a han they manage but do not live in
    grant(demo, HAN1_ONLY_OFFICER, "run_surveys", han_index=index)
    officer = demo.actor(HAN1_ONLY_OFFICER)
    managed = hans[index]
    other = next(h for h in hans if h not in (own_han, managed))
    for_managed = make_survey(demo, target_all=False, han_ids=[managed])
    for_other = make_survey(demo, target_all=False, han_ids=[other])
    for_all = make_survey(demo)
    listed = {i.survey.id: i for i in surveys.list_surveys(officer, aid).items}
    assert for_other not in listed
    assert listed[for_managed].can_manage and not listed[for_managed].targeted
    assert listed[for_all].targeted and listed[for_all].can_manage
    everything = {i.survey.id: i for i in surveys.list_surveys(demo.actor("kaicho@example.jp"), aid).items}
    assert {for_managed, for_other, for_all} <= set(everything) and everything[for_other].can_manage
    member = {i.survey.id for i in surveys.list_surveys(demo.actor("member@example.jp"), aid).items}
    assert for_all in member and (for_other in member) == (demo.actor("member@example.jp").membership(aid).han_id == other)


def test_a_han_scoped_officer_neither_closes_nor_reminds_a_survey_of_the_whole_association(demo):
    """They run surveys in their own han; a survey asking every han is closed and reminded by an officer of the
    whole association (one reminder an hour for the whole survey: theirs would spend the 会長's)."""
    grant(demo, HAN1_ONLY_OFFICER, "run_surveys", han_index=1)
    sid = make_survey(demo)  # the 会長's, to every han
    actor = demo.actor(HAN1_ONLY_OFFICER)
    for op in (surveys.close_survey, surveys.send_reminder):
        with pytest.raises(Denied):
            op(actor, sid)
    kaicho = demo.actor("kaicho@example.jp")
    surveys.send_reminder(kaicho, sid)
    surveys.close_survey(kaicho, sid)
    # In a survey of their own han they do both.
    han2 = demo.han_ids(DemoCity.A1)[1]
    own = make_survey(demo, HAN1_ONLY_OFFICER, target_all=False, han_ids=[han2])
    surveys.send_reminder(actor, own)
    surveys.close_survey(actor, own)
