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


def _pages_of(actor, token: str) -> list:
    """What each page load reads for this person, through the services (every inbox filter)."""
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
        out.append(surveys.list_surveys(actor, aid))
        out.append(board.list_threads(actor, aid))
    return out


def _same_through_both_paths(monkeypatch) -> int:
    """Each person's page reads via fetch and via SQLAlchemy's own execution are equal, value and type."""
    people = _people()
    assert sum(1 for a, _ in people if a.memberships) >= 3
    fast = [_pages_of(a, t) for a, t in people]
    assert any(db._plans.values()), "no statement took the driver's path"
    with monkeypatch.context() as m:
        m.setattr(db, "_plan", lambda _statement, _dialect: None)  # every read through conn.execute()
        slow = [_pages_of(a, t) for a, t in people]
    assert repr(fast) == repr(slow)  # repr: a datetime given back as text, or 1 for True, would show
    assert fast == slow
    return len(people)


def test_page_reads_are_the_same_as_through_sqlalchemy(demo_full, monkeypatch):
    assert _same_through_both_paths(monkeypatch) > 5


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


def test_a_missing_value_is_refused_before_anything_runs(demo):
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
    assert db._plans[(id(statement), "sqlite")][1] is None
