"""Demo circulars: a few sent circulars per association, with a realistic mix of digital and paper reach."""

from __future__ import annotations

import random
from datetime import date, timedelta

from sqlalchemy import func
from sqlmodel import Session, select

from chiiki.i18n import TZ
from chiiki.models import Circular, CircularAmendment, CircularTarget, Delivery, utcnow
from chiiki.services.circulars import fan_out

# (title, body, days ago, due in days from sending or None, han index or None for everyone,
#  share of households that confirmed, share that only read)
_CIRCULARS = [
    ("町内一斉清掃のお知らせ",
     "毎年恒例の町内一斉清掃を行います。\n\n- 日時:**5月18日(日)午前8時から**\n- 集合:旭町第一公園\n- 持ち物:軍手・ごみ袋\n\n"
     "雨天の場合は翌週に延期します。", 21, 7, None, 0.85, 0.08),
    ("夏祭り実行委員の募集",
     "今年も夏祭りを開催します。準備を手伝ってくださる方を募集しています。\n\n"
     "ご協力いただける方は班長までお知らせください。詳しくは市の案内もご覧ください:https://www.city.asahikawa.hokkaido.jp/",
     9, 10, None, 0.6, 0.2),
    ("1班 ごみステーション当番表(6月)",
     "6月の当番表です。\n\n1. 第1週:1番〜3番の世帯\n2. 第2週:4番〜6番の世帯\n3. 第3週以降:7番以降の世帯\n\n"
     "カラスよけネットは必ずかけてください。", 4, 14, 0, 0.4, 0.2),
    ("防災訓練(9月)のご案内",
     "9月1日の防災の日に合わせて、町内会の防災訓練を行います。\n\n**避難場所の確認**をお願いします。", 1, 20, None,
     0.1, 0.15),
]


def _vary(rng: random.Random, s: Session, cid: int, sent, confirm: float, read: float) -> None:
    """Give each household of a circular a plausible state, the way it happens over the days."""
    rows = s.exec(select(Delivery).where(Delivery.circular_id == cid).order_by(Delivery.id)).all()
    by_home: dict[int, list[Delivery]] = {}
    for d in rows:
        by_home.setdefault(d.household_id, []).append(d)
    for home in by_home.values():
        roll = rng.random()
        when = sent + timedelta(hours=rng.randint(1, 72))
        if home[0].channel == "paper":
            if roll < confirm:
                home[0].state, home[0].confirmed_at = "confirmed", when
                home[0].paper_delivered_at = sent + timedelta(hours=2)
            elif roll < confirm + read:
                home[0].paper_delivered_at = sent + timedelta(hours=2)
            continue
        first = home[0]
        if roll < confirm * 0.93:
            first.state, first.read_at, first.confirmed_at, first.confirmed_by = "confirmed", when, when, first.account_id
        elif roll < confirm:
            first.state, first.confirmed_at, first.on_behalf = "confirmed", when, True
        elif roll < confirm + read:
            first.state, first.read_at = "read", when
    s.add_all(rows)


def seed_demo_content(s: Session, ids: "chiiki.seed.DemoIds") -> None:  # noqa: F821
    rng = random.Random(4)
    now = utcnow()
    for index, aid in enumerate(ids.associations):
        author = ids.officers.get("kaicho@example.jp") if index == 0 else None
        han = ids.han.get(aid, [])
        chosen = _CIRCULARS if index == 0 else [c for c in _CIRCULARS if c[4] is None][:2]
        for title, body, days_ago, due_days, han_index, confirm, read in chosen:
            sent = now - timedelta(days=days_ago, hours=rng.randint(0, 6))
            sent_day = sent.astimezone(TZ).date()
            due: date | None = sent_day + timedelta(days=due_days) if due_days else None
            c = Circular(association_id=aid, title=title, body=body, due_date=due, target_all=han_index is None,
                         status="sent", created_by=author, created_at=sent, sent_at=sent)
            s.add(c)
            s.flush()
            targets = [] if han_index is None else [han[han_index]]
            for h in targets:
                s.add(CircularTarget(circular_id=c.id, han_id=h))
            fan_out(s, c.id, aid, han_index is None, targets, sent)
            c.household_count = s.exec(select(func.count(func.distinct(Delivery.household_id)))
                                       .where(Delivery.circular_id == c.id)).one()
            s.add(c)
            # The newest circular stays unread for the demo members, so the badge shows.
            if days_ago > 1:
                _vary(rng, s, c.id, sent, confirm, read)
            if index == 0 and days_ago == 21:
                s.add(CircularAmendment(circular_id=c.id, created_by=author, created_at=sent + timedelta(days=1),
                                        body="集合場所を**旭町第一公園の北側入口**に訂正します。"))
    s.flush()
