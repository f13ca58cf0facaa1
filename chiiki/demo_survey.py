"""Demo content for surveys in 旭町一丁目町内会: an open attendance survey, an open anonymous survey, a past drill."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlmodel import Session, select

from chiiki.i18n import TZ
from chiiki.models import (
    Account,
    Household,
    Membership,
    Survey,
    SurveyAnswer,
    SurveyOption,
    SurveyParticipation,
    SurveyQuestion,
    SurveyResponse,
    utcnow,
)
from chiiki.services.surveys import _RANDOM_ID_HI, _RANDOM_ID_LO, template_questions

if TYPE_CHECKING:
    from chiiki.seed import DemoIds

# The demo people keep their surveys unanswered, so that anyone trying the demo can answer them.
_KEEP_UNANSWERED = {"member@example.jp", "member2@example.jp", "kaicho@example.jp", "fukukaicho@example.jp",
                    "hancho@example.jp", "kaikei@example.jp", "other@example.jp"}


def _questions(s: Session, survey_id: int, specs: list[dict]) -> list[tuple[SurveyQuestion, list[SurveyOption]]]:
    out = []
    for pos, q in enumerate(specs):
        row = SurveyQuestion(survey_id=survey_id, position=pos, kind=q["kind"], text=q["text"], required=q["required"],
                             min_value=q.get("min", 0), max_value=q.get("max", 999))
        s.add(row)
        s.flush()
        opts = [SurveyOption(question_id=row.id, position=i, label=label) for i, label in enumerate(q["options"])]
        s.add_all(opts)
        s.flush()
        out.append((row, opts))
    return out


def seed_demo_content(s: Session, ids: "DemoIds") -> None:
    rng = random.Random(77)
    now = utcnow()
    a1 = ids.associations[0]
    officer = ids.officers.get("kaicho@example.jp")
    members = [(acc_id, hh_id, han_id) for acc_id, hh_id, han_id, login in s.exec(
        select(Membership.account_id, Membership.household_id, Household.han_id, Account.login_id)
        .join(Household, Household.id == Membership.household_id)
        .join(Account, Account.id == Membership.account_id)
        .where(Membership.association_id == a1, Membership.status == "active").order_by(Membership.id)
    ).all() if login not in _KEEP_UNANSWERED]

    # 1. An open attendance survey (named, one answer per member) with answers from about half.
    created = now - timedelta(days=3)
    sv = Survey(association_id=a1, title="秋の清掃活動の出欠", kind="attendance", created_by=officer, created_at=created,
                description="日曜日の朝9時から公園と歩道の清掃をします。軍手とごみ袋は町内会で用意します。",
                deadline=now + timedelta(days=5))
    s.add(sv)
    s.flush()
    qs = _questions(s, sv.id, template_questions("attendance") + [
        {"kind": "text", "text": "連絡事項(任意)", "required": False, "options": []}])
    for acc_id, hh_id, han_id in rng.sample(members, len(members) // 2):
        day = (created + timedelta(days=rng.randint(0, 2))).astimezone(TZ).date()
        resp = SurveyResponse(survey_id=sv.id, respondent_account_id=acc_id, household_id=hh_id, han_id=han_id,
                              submitted_on=day)
        s.add(resp)
        s.flush()
        attend = rng.random() < 0.7
        s.add(SurveyAnswer(response_id=resp.id, question_id=qs[0][0].id, option_id=qs[0][1][0 if attend else 1].id))
        if attend:
            s.add(SurveyAnswer(response_id=resp.id, question_id=qs[1][0].id, number_value=rng.randint(1, 3)))
        s.add(SurveyParticipation(survey_id=sv.id, account_id=acc_id, household_id=hh_id, answered_on=day,
                                  unit_key=f"a{acc_id}"))

    # 2. An open anonymous survey: responses carry no person, random ids, and the survey's own day.
    created = now - timedelta(days=2)
    sv = Survey(association_id=a1, title="ごみステーションの使い方についてのアンケート", kind="general", anonymous=True,
                description="無記名です。率直なご意見をお聞かせください。", created_by=officer, created_at=created,
                deadline=now + timedelta(days=10))
    s.add(sv)
    s.flush()
    qs = _questions(s, sv.id, [
        {"kind": "single", "text": "今のごみステーションの状態に満足していますか", "required": True,
         "options": ["満足", "どちらともいえない", "不満"]},
        {"kind": "multiple", "text": "困っていること(いくつでも)", "required": False,
         "options": ["カラス被害", "分別されていない", "収集日以外に出される", "場所が遠い"]},
        {"kind": "text", "text": "ご意見(任意)", "required": False, "options": []},
    ])
    comments = ["ネットをもう一枚増やしてほしいです。", "冬は雪で出しにくいです。", "", "", "当番表を回覧でお知らせしてほしい。"]
    used: set[int] = set()

    def random_id() -> int:
        while True:
            value = rng.randrange(_RANDOM_ID_LO, _RANDOM_ID_HI)
            if value not in used:
                used.add(value)
                return value

    for acc_id, hh_id, _han in rng.sample(members, 12):
        s.add(SurveyParticipation(survey_id=sv.id, account_id=acc_id, household_id=hh_id, unit_key=f"a{acc_id}",
                                  answered_on=(created + timedelta(days=rng.randint(0, 2))).astimezone(TZ).date()))
        rid = random_id()
        s.add(SurveyResponse(id=rid, survey_id=sv.id, submitted_on=created.astimezone(TZ).date()))
        s.flush()
        s.add(SurveyAnswer(id=random_id(), response_id=rid, question_id=qs[0][0].id,
                           option_id=rng.choice(qs[0][1]).id))
        for opt in rng.sample(qs[1][1], rng.randint(0, 2)):
            s.add(SurveyAnswer(id=random_id(), response_id=rid, question_id=qs[1][0].id, option_id=opt.id))
        comment = rng.choice(comments)
        if comment:
            s.add(SurveyAnswer(id=random_id(), response_id=rid, question_id=qs[2][0].id, text_value=comment))

    # 3. Last month's safety-check drill (closed, one answer per household): no banner today.
    created = now - timedelta(days=30)
    sv = Survey(association_id=a1, title="防災訓練:安否確認(訓練)", kind="safety", per_household=True,
                description="訓練です。ご家族の安否を回答してください。", created_by=officer, created_at=created,
                deadline=created + timedelta(days=2), closed_at=created + timedelta(days=2))
    s.add(sv)
    s.flush()
    qs = _questions(s, sv.id, template_questions("safety"))
    seen: set[int] = set()
    for acc_id, hh_id, han_id in members:
        if hh_id in seen or rng.random() < 0.25:
            continue
        seen.add(hh_id)
        need = rng.random() < 0.08
        resp = SurveyResponse(survey_id=sv.id, respondent_account_id=acc_id, household_id=hh_id, han_id=han_id,
                              submitted_on=created.astimezone(TZ).date())
        s.add(resp)
        s.flush()
        s.add(SurveyAnswer(response_id=resp.id, question_id=qs[0][0].id, option_id=qs[0][1][1 if need else 0].id))
        if need:
            s.add(SurveyAnswer(response_id=resp.id, question_id=qs[1][0].id, text_value="(訓練)足が不自由で避難に手助けが必要"))
        s.add(SurveyParticipation(survey_id=sv.id, account_id=acc_id, household_id=hh_id, unit_key=f"h{hh_id}",
                                  answered_on=created.astimezone(TZ).date()))
