"""The answer page read at once (surveys.answer_page, surveys.answer_and_reopen): for every shape of survey
(per member or per household, everyone or some han, named or anonymous) it shows exactly what the form and the
members' totals show on their own, and it counts the asked units as the rule says, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections import Counter

import pytest
from sqlmodel import select

from chiiki.models import Account, Household, Membership, utcnow
from chiiki.services import surveys
from chiiki.services.db import session
from chiiki.services.errors import Denied
from tests.conftest import DemoCity
from tests.test_survey_services import PW, add_housemate, make_survey

SHAPES = [  # (per household, every han, anonymous)
    (False, True, False),
    (True, True, False),
    (False, False, False),
    (True, False, False),
    (False, True, True),
    (True, True, True),
    (False, False, True),
    (True, False, True),
]
LOOSE = "loose@example.jp"


def _add_member_without_household(demo: DemoCity) -> None:
    """An active member of A1 the roster has no household for (they answer for themselves)."""
    from chiiki.services.accounts import hash_password

    with session() as s:
        acc = Account(login_id=LOOSE, password_hash=hash_password(PW, 4), name="世帯 未登録", kana="セタイ ミトウロク",
                      display_name="未登録", email=LOOSE)
        s.add(acc)
        s.flush()
        s.add(Membership(account_id=acc.id, association_id=demo.association_id(DemoCity.A1), household_id=None,
                         status="active", consent_version="2026-1", consented_at=utcnow(), decided_at=utcnow()))


def _asked_units(association_id: int, per_household: bool, han_ids: list[int] | None) -> int:
    """The rule, counted in Python: active members (per member), or the households on the roster plus the
    members without a household (per household); with han targets, only those living in them."""
    with session() as s:
        members = s.exec(select(Membership.household_id, Household.han_id)
                         .join(Household, Household.id == Membership.household_id, isouter=True)
                         .where(Membership.association_id == association_id, Membership.status == "active")).all()
        households = s.exec(select(Household.han_id).where(Household.association_id == association_id,
                                                           Household.removed_at.is_(None))).all()

    def asked(han_id):
        return han_ids is None or han_id in han_ids

    if not per_household:
        return sum(1 for _, han in members if asked(han))
    return sum(1 for han in households if asked(han)) + sum(1 for hh, han in members if hh is None and asked(han))


def _logins_in(association_id: int, han_ids: list[int] | None) -> list[str]:
    """Active members with a household, in the targeted han when there are targets, oldest account first."""
    with session() as s:
        rows = s.exec(select(Account.login_id, Membership.household_id, Household.han_id)
                      .join(Membership, Membership.account_id == Account.id)
                      .join(Household, Household.id == Membership.household_id)
                      .where(Membership.association_id == association_id, Membership.status == "active")
                      .order_by(Account.id)).all()
    return [login for login, _, han in rows if han_ids is None or han in han_ids]


def _separately(actor, survey_id: int) -> surveys.AnswerPage:
    return surveys.AnswerPage(surveys.get_for_answer(actor, survey_id), surveys.member_totals(actor, survey_id))


def _choose(page: surveys.AnswerPage, pick: int) -> dict:
    out = {}
    for q in page.form.questions:
        if q.kind == "single":
            out[f"q{q.id}"] = str(q.options[pick % len(q.options)].id)
        elif q.kind == "multiple":
            out[f"q{q.id}"] = [str(q.options[0].id)]
        elif q.kind == "number":
            out[f"q{q.id}"] = str(1 + pick % 5)
        else:
            out[f"q{q.id}"] = f"意見{pick}"
    return out


def _check_shape(demo: DemoCity, per_household: bool, target_all: bool, anonymous: bool) -> None:
    aid = demo.association_id(DemoCity.A1)
    _add_member_without_household(demo)
    han_ids = None if target_all else demo.han_ids(DemoCity.A1)[:1]
    over = {"per_household": per_household, "anonymous": anonymous, "target_all": target_all}
    if han_ids:
        over["han_ids"] = han_ids
    sid = make_survey(demo, **over)
    logins = _logins_in(aid, han_ids)
    # A housemate of the first answerer answers again for the same household (named, per household).
    housemate = None
    if per_household and not anonymous:
        housemate = "housemate@example.jp"
        add_housemate(demo, logins[0], housemate)
    # The member without a household is asked by surveys to everyone, and by none to some han.
    answerers = [*logins[:5], *([LOOSE] if target_all else logins[5:6]), *([housemate] if housemate else [])]
    assert len(set(answerers)) >= 6, "the demo city has enough members in the targeted han"
    if not target_all:
        with pytest.raises(Denied):
            surveys.answer_page(demo.actor(LOOSE), sid)
    chosen: dict[str, int] = {}  # the first question's option, per answering unit, as last given

    for i, login in enumerate(answerers):
        actor = demo.actor(login)
        household = actor.memberships[0].household_id
        unit = f"h{household}" if per_household and household else f"a{actor.account_id}"
        before = surveys.answer_page(actor, sid)
        assert before == _separately(actor, sid)
        answers = _choose(before, i)
        after = surveys.answer_and_reopen(actor, sid, answers)
        chosen[unit] = int(answers[f"q{before.form.questions[0].id}"])
        # What the page shows after answering is what a fresh open shows, and what the two services show.
        assert after == surveys.answer_page(actor, sid) == _separately(actor, sid)
        assert after.form.answered
        assert after.form.can_answer is not anonymous
        assert after.form.mine == ({} if anonymous else surveys.get_for_answer(actor, sid).mine)
        if not anonymous:
            assert after.form.mine  # the answer just given, as the form shows it
        if login == housemate:
            # The household had answered: the housemate changed its answer, still the household's one, now as
            # the housemate wrote it; the first answerer is told a family member's answer is what they see.
            assert after.form.answered_by_other is False
            first = surveys.answer_page(demo.actor(logins[0]), sid)
            assert first.form.answered and first.form.answered_by_other
            assert first.form.mine == after.form.mine
        if len(chosen) < surveys.MEMBER_TOTALS_MIN:
            assert after.totals is None
        else:
            assert after.totals is not None and after.totals.respondents == len(chosen)
            assert after.totals.target_units == _asked_units(aid, per_household, han_ids)
            # Each option's count, against the choices this test made (the last one per unit).
            want = Counter(chosen.values())
            assert {o.id: o.count for o in after.totals.questions[0].options} == {
                o.id: want.get(o.id, 0) for o in before.form.questions[0].options}
            assert all(q.texts == () for q in after.totals.questions)
    assert len(chosen) == (len(answerers) - (1 if housemate else 0))
    officer = demo.actor("kaicho@example.jp")
    assert surveys.results(officer, sid).target_units == _asked_units(aid, per_household, han_ids)


@pytest.mark.parametrize("per_household,target_all,anonymous", SHAPES)
def test_answer_page_is_the_form_and_the_totals_in_every_shape(demo, per_household, target_all, anonymous):
    _check_shape(demo, per_household, target_all, anonymous)


@pytest.mark.postgres
@pytest.mark.parametrize("per_household,target_all,anonymous", SHAPES)
def test_answer_page_is_the_form_and_the_totals_on_postgresql(pg_app_db, per_household, target_all, anonymous):
    from chiiki.seed import seed_demo

    seed_demo()
    _check_shape(DemoCity(), per_household, target_all, anonymous)


def test_a_refused_answer_writes_nothing_and_the_page_is_unchanged(demo):
    sid = make_survey(demo)
    member = demo.actor("member@example.jp")
    before = surveys.answer_page(member, sid)
    with pytest.raises(surveys.ValidationErrors):
        surveys.answer_and_reopen(member, sid, {})  # the required questions are missing
    assert surveys.answer_page(member, sid) == before and not before.form.answered
