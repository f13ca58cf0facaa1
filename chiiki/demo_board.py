"""Demo board content: a few threads and replies in each demo association, one open report to review."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlmodel import Session, select

from chiiki.models import Account, BoardPost, BoardReport, BoardThread, Membership, OfficerRole, utcnow

if TYPE_CHECKING:
    from chiiki.seed import DemoIds

# (title, [(author key, body), ...]); the first entry is the opening post. Author keys are demo logins,
# "president" for the association's 会長, or
# "resident" for a member of the association picked by the seeded random generator.
A1_THREADS = [
    ("春の一斉清掃のお知らせ", [
        ("kaicho@example.jp", "4月第3日曜日の朝9時から、町内の一斉清掃を行います。\n軍手とゴミ袋は町内会で用意します。"
                              "\n\n雨天の場合は翌週に延期します。市のごみ分別の案内はこちらです:"
                              "\nhttps://www.city.asahikawa.hokkaido.jp/"),
        ("member@example.jp", "参加します。火ばさみは持参した方がよいですか?"),
        ("fukukaicho@example.jp", "火ばさみもこちらで20本ほど用意します。お持ちの方はご持参ください。"),
        ("member2@example.jp", "2班から3人参加します。"),
    ]),
    ("ゴミステーションのカラス対策", [
        ("member2@example.jp", "最近、2班のゴミステーションがカラスに荒らされています。\nネットを大きいものに替えられないでしょうか。"),
        ("hancho@example.jp", "次の役員会で相談します。それまでは、ネットの端に重しを置いていただけると助かります。"),
        ("resident", "うちの前も同じです。黄色いネットが効くと聞きました。"),
    ]),
    ("冬の除雪ボランティア", [
        ("resident", "高齢の方のお宅の玄関前の除雪を手伝えるボランティアを募っています。\n朝7時ごろ、30分ほどです。"),
        ("resident", "平日でよければ手伝えます。"),
    ]),
    ("迷い猫を見かけたら", [
        ("resident", "茶トラの猫(首輪なし)がいなくなりました。見かけた方は、この掲示板で教えてください。"),
        ("member@example.jp", "昨日の夕方、公園の近くで似た猫を見ました。"),
        ("resident", "猫の話はここでしないでください!!!迷惑です!!!"),
    ]),
]
REPORT_REASON = "ほかの人を責める書き方で、不快です"
OTHER_THREADS = [
    ("夏祭りの準備", [
        ("president", "7月の夏祭りの準備を始めます。お手伝いいただける方は返信してください。"),
        ("resident", "テント設営を手伝えます。"),
    ]),
]


def _residents(s: Session, association_id: int, exclude: set[int]) -> list[int]:
    rows = s.exec(
        select(Membership.account_id).where(Membership.association_id == association_id,
                                            Membership.status == "active").order_by(Membership.id)
    ).all()
    return [a for a in rows if a not in exclude]


def _president(s: Session, association_id: int) -> int | None:
    return s.exec(
        select(Membership.account_id).join(OfficerRole, OfficerRole.membership_id == Membership.id)
        .where(OfficerRole.association_id == association_id, OfficerRole.title == "会長").order_by(OfficerRole.id)
    ).first()


def _write(s: Session, association_id: int, title: str, posts: list[tuple[int, str]], start: datetime) -> list[int]:
    """One thread with its posts three hours apart; returns the post ids."""
    thread = BoardThread(association_id=association_id, author_account_id=posts[0][0], title=title,
                         created_at=start, last_post_at=start)
    s.add(thread)
    s.flush()
    ids = []
    for i, (author, body) in enumerate(posts):
        post = BoardPost(thread_id=thread.id, author_account_id=author, body=body,
                         created_at=start + timedelta(hours=3 * i))
        s.add(post)
        s.flush()
        ids.append(post.id)
        thread.last_post_at = post.created_at
    s.add(thread)
    return ids


def seed_demo_content(s: Session, ids: "DemoIds") -> None:
    """Threads in every demo association; all written days ago so no demo person is near the rate limit."""
    rng = random.Random(202605)
    now = utcnow()
    logins = dict(s.exec(select(Account.login_id, Account.id).where(Account.login_id.is_not(None))).all())
    named = {v for k, v in logins.items() if not k.startswith("resident")}
    for index, association_id in enumerate(ids.associations):
        members = _residents(s, association_id, set())
        if not members:
            continue
        residents = _residents(s, association_id, named) or members
        president = _president(s, association_id) or members[0]

        def author(key: str) -> int:
            if key == "resident":
                return rng.choice(residents)
            return president if key == "president" else logins[key]

        threads = A1_THREADS if index == 0 else OTHER_THREADS
        for t_index, (title, posts) in enumerate(threads):
            start = now - timedelta(days=2 + 3 * (len(threads) - t_index), hours=rng.randint(0, 8))
            post_ids = _write(s, association_id, title, [(author(k), body) for k, body in posts], start)
            if index == 0 and t_index == len(threads) - 1:
                # The last reply waits in the reports queue, so moderators have something to work through.
                s.add(BoardReport(post_id=post_ids[-1], reporter_account_id=logins["member2@example.jp"],
                                  reason=REPORT_REASON, created_at=now - timedelta(days=1)))
