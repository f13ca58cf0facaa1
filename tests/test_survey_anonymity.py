"""Anonymous surveys, proved on the database itself: no column, date, id order or log links an answer to a person."""

from __future__ import annotations

import random
from datetime import date, datetime

import pytest
from sqlalchemy import inspect, text
from sqlmodel import select

from chiiki.models import AuditAccess, AuditEvent, OutboxMail, SurveyParticipation, SurveyResponse
from chiiki.services import surveys
from chiiki.services.db import engine, session
from chiiki.services.errors import Denied, ServiceError
from tests.conftest import DemoCity
from tests.test_survey_services import make_survey, qmap

# Tables holding personal identities: a column pointing at any of them identifies someone.
PERSON_TABLES = {"account", "household", "membership", "han", "officerrole", "authsession"}


def _members(demo, n: int) -> list[str]:
    from chiiki.models import Account, Membership

    with session() as s:
        return list(s.exec(select(Account.login_id).join(Membership, Membership.account_id == Account.id)
                           .where(Membership.association_id == demo.association_id(DemoCity.A1),
                                  Membership.status == "active").order_by(Account.id).limit(n)).all())


@pytest.fixture
def answered(demo, monkeypatch):
    """An anonymous survey answered by 12 members, one after another over several days, each differently."""
    from datetime import timedelta

    sid = make_survey(demo, anonymous=True)
    days = iter([surveys.today_local() + timedelta(days=i // 4) for i in range(12)])
    monkeypatch.setattr(surveys, "today_local", lambda: next(days))
    logins = _members(demo, 12)
    with session() as s:
        audit_before = s.exec(select(AuditEvent.id)).all() + s.exec(select(AuditAccess.id)).all()
        mail_before = s.exec(select(OutboxMail.id)).all()
    for i, login in enumerate(logins):
        qs = qmap(demo, sid, login)
        surveys.submit_answer(demo.actor(login), sid, {
            f"q{qs[0][0]}": str(qs[0][1][i % 3]), f"q{qs[1][0]}": [str(qs[1][1][i % 2])],
            f"q{qs[2][0]}": f"意見{i}", f"q{qs[3][0]}": str(1 + i % 10)})
    return sid, logins, len(audit_before), len(mail_before)


def test_no_column_of_any_table_links_an_anonymous_answer_to_a_person(demo, answered):
    sid, logins, _a, _m = answered
    insp = inspect(engine())
    with session() as s:
        resp_ids = [r for r in s.exec(select(SurveyResponse.id).where(SurveyResponse.survey_id == sid)).all()]
        assert len(resp_ids) == len(logins)
        # Every table that refers to a response or an answer (directly) is checked column by column.
        for table in insp.get_table_names():
            fks = insp.get_foreign_keys(table)
            refers = [fk for fk in fks if fk["referred_table"] in ("surveyresponse", "surveyanswer")]
            if table == "surveyresponse":
                rows_where = ("id", resp_ids)
            elif refers:
                rows_where = (refers[0]["constrained_columns"][0], resp_ids)
                # Only answers point at responses; nothing points at answers.
                assert table == "surveyanswer" and refers[0]["referred_table"] == "surveyresponse"
            else:
                continue
            person_cols = [fk["constrained_columns"][0] for fk in fks if fk["referred_table"] in PERSON_TABLES]
            col, ids = rows_where
            marks = ",".join(str(int(i)) for i in ids)
            for pc in person_cols:
                n = s.connection().execute(text(
                    f"SELECT COUNT(*) FROM {table} WHERE {col} IN ({marks}) AND {pc} IS NOT NULL")).scalar()
                assert n == 0, f"{table}.{pc} identifies someone"
            # No time of day anywhere, and the only date is the same for every response.
            for c in insp.get_columns(table):
                values = {v for (v,) in s.connection().execute(text(
                    f"SELECT {c['name']} FROM {table} WHERE {col} IN ({marks})")).all()}
                if isinstance(next(iter(values - {None}), None), (date, datetime)) or "date" in str(c["type"]).lower() \
                        or "time" in str(c["type"]).lower():
                    assert len(values) == 1, f"{table}.{c['name']} varies between responses: {values}"
        # Participation records who answered and on which day; nothing there points at a response.
        assert not [fk for fk in insp.get_foreign_keys("surveyparticipation")
                    if fk["referred_table"] in ("surveyresponse", "surveyanswer", "surveyoption")]
        parts = s.exec(select(SurveyParticipation).where(SurveyParticipation.survey_id == sid)).all()
        assert len(parts) == 12 and len({p.answered_on for p in parts}) == 3  # the days people answered differ


def test_anonymous_rows_have_random_ids_unrelated_to_the_answering_order(demo, answered):
    sid, logins, _a, _m = answered
    with session() as s:
        parts = s.exec(select(SurveyParticipation).where(SurveyParticipation.survey_id == sid)
                       .order_by(SurveyParticipation.id)).all()
        responses = s.exec(select(SurveyResponse.id).where(SurveyResponse.survey_id == sid)).all()
        # The number answered to question 4 was 1 + i % 10 for the i-th person: recover the order the ids give.
        ids_in_order = sorted(responses)
        numbers = {rid: n for rid, n in s.connection().execute(text(
            "SELECT response_id, number_value FROM surveyanswer WHERE number_value IS NOT NULL AND response_id IN "
            f"({','.join(str(r) for r in responses)})")).all()}
        answer_ids = [i for (i,) in s.connection().execute(text(
            f"SELECT id FROM surveyanswer WHERE response_id IN ({','.join(str(r) for r in responses)})")).all()]
    assert [p.account_id for p in parts] == sorted(p.account_id for p in parts)  # participation is in order
    assert all(surveys._RANDOM_ID_LO <= r < surveys._RANDOM_ID_HI for r in responses)
    assert all(surveys._RANDOM_ID_LO <= a < surveys._RANDOM_ID_HI for a in answer_ids)
    by_id = [numbers[r] for r in ids_in_order]
    answering_order = [1 + i % 10 for i in range(len(logins))]
    # Twelve random ids line up with the answering order by chance once in 12! (~4.8e8) runs.
    assert by_id != answering_order


def test_answering_anonymously_writes_no_audit_event_or_mail(demo, answered):
    _sid, _logins, audit_before, mail_before = answered
    with session() as s:
        assert len(s.exec(select(AuditEvent.id)).all()) + len(s.exec(select(AuditAccess.id)).all()) == audit_before
        assert len(s.exec(select(OutboxMail.id)).all()) == mail_before


def test_no_one_gets_person_level_views_of_an_anonymous_survey(demo, answered):
    sid, _logins, _a, _m = answered
    for login in ("kaicho@example.jp", "fukukaicho@example.jp", "city@example.jp", "member@example.jp"):
        actor = demo.actor(login)
        for fn in (surveys.responses, surveys.non_responders, surveys.safety_board):
            with pytest.raises((Denied, ServiceError)):
                fn(actor, sid)
    res = surveys.results(demo.actor("kaicho@example.jp"), sid)
    assert res.respondents == 12 and sum(o.count for o in res.questions[0].options) == 12
    texts = set(res.questions[2].texts)
    assert texts == {f"意見{i}" for i in range(12)}


def test_anonymous_export_has_answers_only_in_random_order(demo, answered):
    sid, logins, _a, _m = answered
    name, data, _ = surveys.export_results(demo.actor("kaicho@example.jp"), sid, "csv")
    lines = data.decode("utf-8-sig").splitlines()
    assert lines[0].split(",") == ["好きな季節", "参加できる日", "ご意見", "家族の人数"]
    assert len(lines) == 13
    body = "\n".join(lines)
    with session() as s:
        from chiiki.models import Account

        names = s.exec(select(Account.name).where(Account.login_id.in_(logins))).all()
    assert not any(n and n in body for n in names)


def test_an_anonymous_answer_is_final(demo):
    sid = make_survey(demo, anonymous=True)
    qs = qmap(demo, sid)
    payload = {f"q{qs[0][0]}": str(qs[0][1][0]), f"q{qs[3][0]}": "2"}
    surveys.submit_answer(demo.actor("member@example.jp"), sid, payload)
    form = surveys.get_for_answer(demo.actor("member@example.jp"), sid)
    assert form.answered and not form.can_answer and not form.can_change and form.mine == {}
    with pytest.raises(ServiceError) as e:
        surveys.submit_answer(demo.actor("member@example.jp"), sid, payload)
    assert e.value.key == "survey.error_anonymous_final"


def test_random_ids_skip_ids_already_taken(demo, monkeypatch):
    sid = make_survey(demo, anonymous=True)
    qs = qmap(demo, sid)
    surveys.submit_answer(demo.actor("member@example.jp"), sid, {f"q{qs[0][0]}": str(qs[0][1][0]),
                                                                 f"q{qs[3][0]}": "2"})
    with session() as s:
        taken = s.exec(select(SurveyResponse.id).where(SurveyResponse.survey_id == sid)).one()
        values = iter([taken - surveys._RANDOM_ID_LO, 5])
        monkeypatch.setattr(surveys.secrets, "randbelow", lambda _n: next(values))
        assert surveys._random_ids(s, SurveyResponse, 1) == [surveys._RANDOM_ID_LO + 5]
    random.seed()
