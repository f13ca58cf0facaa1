"""db.fetch: the page loads' prepared reads run on the driver's cursor, with the same rows as SQLAlchemy's path."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy import exc
from sqlmodel import select

from chiiki.models import Account, Membership
from chiiki.services import accounts, board, circulars, db, notices, surveys
from chiiki.services.db import session
from chiiki.state import _badges, _nav_facts
from tests.conftest import DemoCity


def _people() -> list[tuple[object, str]]:
    """Every account of the database with a fresh session: (actor, token)."""
    with session() as s:
        ids = list(s.exec(select(Account.id).order_by(Account.id)).all())
        return [(accounts.load_actor_in(s, i), accounts.new_session(i, s)) for i in ids]


def _opened(actor) -> list[int]:
    """The circulars of the first inbox page, each opened once (so opening them again writes nothing)."""
    out = []
    for m in actor.memberships:
        for item in circulars.inbox(actor, m.association_id).items:
            circulars.open_circular(actor, item.circular_id)
            out.append(item.circular_id)
    return out


def _pages_of(actor, token: str, opened: list[int]) -> list:
    """What each page load reads for this person, through the services (every inbox filter, each circular
    of the first inbox page, each survey's answer form)."""
    out: list = [accounts.actor_for_token(token), _nav_facts(token)]
    if not actor.authenticated:
        return out
    out.append(accounts.get_profile(actor))
    out.append(notices.feed(actor))
    for m in actor.memberships:
        aid = m.association_id
        out.append(_badges(actor, aid))
        for state in circulars.INBOX_FILTERS:
            out.append(circulars.inbox(actor, aid, state=state))
        out.append(circulars.inbox(actor, aid, query="の"))
        out.append(circulars.inbox(actor, aid, year=circulars._today().year))
        listed = surveys.list_surveys(actor, aid)
        out.append(listed)
        out.extend(surveys.get_for_answer(actor, item.survey.id) for item in listed.items if item.targeted)
        out.append(board.list_threads(actor, aid))
    out.extend(circulars.open_circular(actor, cid) for cid in opened)
    return out


def _same_through_both_paths(monkeypatch) -> int:
    """Each person's page reads via fetch and via SQLAlchemy's own execution are equal, value and type."""
    people = _people()
    assert sum(1 for a, _ in people if a.memberships) >= 3
    opened = [_opened(a) if a.authenticated else [] for a, _ in people]
    assert sum(map(len, opened)) >= 5
    fast = [_pages_of(a, t, o) for (a, t), o in zip(people, opened)]
    with monkeypatch.context() as m:
        m.setattr(db, "_plan", lambda _statement, _dialect: None)  # every read through conn.execute()
        slow = [_pages_of(a, t, o) for (a, t), o in zip(people, opened)]
    assert repr(fast) == repr(slow)  # repr: a datetime given back as text, or 1 for True, would show
    assert fast == slow
    return len(people)


def test_page_reads_are_the_same_as_through_sqlalchemy(demo_full, monkeypatch):
    assert _same_through_both_paths(monkeypatch) > 5


def test_the_page_loads_statements_take_the_drivers_path(demo):
    """The statements of every page load are planned (not sent to SQLAlchemy's path by an expanding IN or a
    Numeric column added later without anyone noticing)."""
    from chiiki.state import _badges_query

    statements = [accounts._SESSION_ACTOR, accounts._PROFILE, _badges_query(), board._THREAD_COUNT,
                  board._THREAD_PAGE, notices._RESIDENT, circulars._OPENING, circulars._CONFIRMING,
                  circulars._HOUSEHOLD_FLAGS, circulars._TARGETS, circulars._HAN_NAMES, surveys._TARGETS,
                  surveys._PARTICIPATION]
    statements += [st for state in circulars.INBOX_FILTERS for q in (False, True) for y in (False, True)
                   for st in circulars._inbox_statements(state, q, y)]
    statements += [st for shape in ("all", "") for st in surveys._list_statements(shape)[:2]]
    statements += [st for areas in (0, 1, 3) for bands in ((), ("senior",), ("children", "senior"))
                   for st in notices._feed_statements(areas, bands)]
    with db.reading() as conn:
        assert all(db._plan(st, conn.dialect) is not None for st in statements)


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_parameters_go_in_the_drivers_order_through_their_types(kind, request):
    """A parameter used twice, others between, a default value and a datetime through its column type."""
    from datetime import datetime, timezone

    from chiiki.models import AuthSession

    request.getfixturevalue("demo" if kind == "sqlite" else "pg_app_db")
    a, b = sa.bindparam("a", type_=sa.Integer), sa.bindparam("b", type_=sa.String)
    at = sa.bindparam("at", type_=AuthSession.expires_at.type)
    statement = select(a.label("x"), b.label("y"), a.label("z"), sa.bindparam("c", 7, type_=sa.Integer).label("w"),
                       at.label("when"))
    when = datetime(2026, 11, 28, 12, 30, tzinfo=timezone.utc)
    with db.reading() as conn:
        row = db.fetch_one(conn, statement, {"a": 1, "b": "二", "at": when})
        assert db._plan(statement, conn.dialect) is not None
        assert tuple(row) == tuple(conn.execute(statement, {"a": 1, "b": "二", "at": when}).one())
        assert (row.x, row.y, row.z, row.w) == (1, "二", 1, 7) and row.when == when
        assert db.fetch_one(conn, statement, {"a": 3, "b": "x", "c": 9, "at": when})[:4] == (3, "x", 3, 9)


@pytest.mark.postgres
def test_page_reads_are_the_same_as_through_sqlalchemy_on_postgresql(pg_app_db, monkeypatch):
    from chiiki.seed import seed_demo

    seed_demo(content=True)
    assert _same_through_both_paths(monkeypatch) > 5
    # Read outside a transaction (reading()'s autocommit), and nothing left open on the connection.
    actor = DemoCity().actor("member@example.jp")
    with db.reading() as conn:
        db.fetch(conn, accounts._PROFILE, {"p_account": actor.account_id})
        assert conn.execute(sa.text("SELECT now() = statement_timestamp()")).scalar() is True
        assert conn.connection.driver_connection.info.transaction_status == 0  # IDLE


def test_the_session_check_and_badges_skip_sqlalchemys_execution(demo_full):
    """The reads of every page change (session, badges, inbox) go straight to the driver: no statement
    passes SQLAlchemy's execution events, and the rows still carry names and Python types."""
    actor = DemoCity().actor("member@example.jp")
    aid = actor.memberships[0].association_id
    with session() as s:
        token = accounts.new_session(actor.account_id, s)
    _nav_facts(token)  # the association's name, kept for a minute per process (state._association_name)
    executed: list[str] = []
    eng = db.engine()
    listener = lambda _conn, clause, *_a: executed.append(str(clause)[:40])  # noqa: E731
    sa.event.listen(eng, "before_execute", listener)
    try:
        facts = _nav_facts(token)
        page = circulars.inbox(actor, aid)
    finally:
        sa.event.remove(eng, "before_execute", listener)
    assert executed == []
    assert facts.actor == actor and facts.unread == page.unread
    with db.reading() as conn:
        row = db.fetch_one(conn, accounts._PROFILE, {"p_account": actor.account_id})
        assert row.id == actor.account_id and isinstance(row.email_circulars, bool)
        rows = db.fetch(conn, accounts._SESSION_ACTOR, {"token_hash": accounts._sha(token)})
        assert rows[0].s_expires.tzinfo is not None  # SQLite keeps text: the column type's processor ran


def test_a_missing_value_or_a_wrong_count_of_rows_is_refused_clearly(demo):
    with db.reading() as conn:
        with pytest.raises(exc.InvalidRequestError, match="p_account"):
            db.fetch(conn, accounts._PROFILE, {})
        with pytest.raises(exc.NoResultFound):
            db.fetch_one(conn, accounts._PROFILE, {"p_account": 10**9})
        with pytest.raises(exc.MultipleResultsFound):
            db.fetch_one(conn, select(Membership.id))


def test_expanding_parameters_take_sqlalchemys_path(demo):
    ids = [m for m in range(1, 6)]
    statement = select(Account.id).where(Account.id.in_(sa.bindparam("ids", expanding=True))).order_by(Account.id)
    with db.reading() as conn:
        assert [r.id for r in db.fetch(conn, statement, {"ids": ids})] == \
            [r.id for r in conn.execute(statement, {"ids": ids}).all()] == ids
        assert [r.id for r in db.fetch(conn, statement, {"ids": ids[:2]})] == ids[:2]
        assert db._plan(statement, conn.dialect) is None
