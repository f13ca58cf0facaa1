"""The demo city's board content: present in every association, readable, and far from the rate limit."""

from datetime import timedelta

from sqlalchemy import func
from sqlmodel import select

from chiiki.models import BoardPost, BoardThread, utcnow
from chiiki.services import board
from chiiki.services.db import session
from tests.conftest import DemoCity


def _seed_board(empty_db):
    from chiiki.demo_board import seed_demo_content
    from chiiki.seed import seed_demo

    ids = seed_demo()
    with session() as s:
        # Until chiiki/seed.py calls the board seeder itself.
        if s.exec(select(func.count()).select_from(BoardThread)).one() == 0:
            seed_demo_content(s, ids)
    return ids


def test_demo_board_has_threads_in_every_association_and_one_report(empty_db):
    ids = _seed_board(empty_db)
    demo = DemoCity()
    for aid in ids.associations:
        with session() as s:
            assert s.exec(select(func.count()).select_from(BoardThread).where(BoardThread.association_id == aid)).one()
    listing = board.list_threads(demo.actor("member@example.jp"), demo.association_id(DemoCity.A1))
    assert listing.total >= 4 and all(t.title and t.author for t in listing.items)
    queue = board.report_queue(demo.actor("fukukaicho@example.jp"), demo.association_id(DemoCity.A1))
    assert queue.total == 1 and queue.items[0].reports[0].reason
    cleanup = next(t for t in listing.items if t.title == "春の一斉清掃のお知らせ")
    thread = board.get_thread(demo.actor("member@example.jp"), cleanup.id)
    links = [s.href for p in thread.posts for para in p.paragraphs for s in para if s.kind == "link"]
    assert links == ["https://www.city.asahikawa.hokkaido.jp/"]


def test_demo_posts_are_old_enough_not_to_hit_the_rate_limit(empty_db):
    _seed_board(empty_db)
    with session() as s:
        newest = s.exec(select(func.max(BoardPost.created_at))).one()
    if newest.tzinfo is None:
        newest = newest.replace(tzinfo=utcnow().tzinfo)
    assert utcnow() - newest > timedelta(hours=12)


def test_demo_board_is_deterministic(empty_db):
    _seed_board(empty_db)
    with session() as s:
        first = [(p.author_account_id, p.body) for p in s.exec(select(BoardPost).order_by(BoardPost.id)).all()]
    from chiiki.services import db

    db.dispose_all()
    from tests.conftest import _use_copy

    _use_copy("empty")
    _seed_board(None)
    with session() as s:
        second = [(p.author_account_id, p.body) for p in s.exec(select(BoardPost).order_by(BoardPost.id)).all()]
    assert first == second
