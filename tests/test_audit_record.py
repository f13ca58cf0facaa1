"""audit.record writes exactly one row per person (account or paper-only household), with the same event fields.

Large subject lists go through one INSERT ... SELECT over an array of ids (json_each on SQLite, unnest on
PostgreSQL); small ones through executemany. Both must give the same rows.
"""

import pytest
from sqlmodel import select

from chiiki.models import Account, AuditAccess, AuditEvent, Household
from chiiki.services import audit
from chiiki.services.db import session
from chiiki.services.policy import Actor


def _write_and_read(subjects: list[int], households: list[int]) -> list[AuditEvent]:
    actor = Actor(account_id=subjects[0], display_name="x")
    with session() as s:
        audit.record(s, actor, "roster.export", association_id=None, subjects=subjects + subjects[:3],
                     household_ids=households, count=len(subjects) + len(households), detail="csv")
    with session() as s:
        return list(s.exec(select(AuditEvent).where(AuditEvent.action == "roster.export")).all())


def _check(rows: list[AuditEvent], subjects: list[int], households: list[int]) -> None:
    assert sorted(r.subject_account_id for r in rows if r.subject_account_id) == sorted(subjects)  # once each
    assert sorted(r.subject_household_id for r in rows if r.subject_household_id) == sorted(households)
    assert all((r.subject_account_id is None) != (r.subject_household_id is None) for r in rows)
    first = rows[0]
    assert {(r.at, r.actor_account_id, r.action, r.record_count, r.detail) for r in rows} == {
        (first.at, subjects[0], "roster.export", len(subjects) + len(households), "csv")}
    assert first.at.year >= 2026
    # The access itself: one row, with the same fields, however many people it listed.
    with session() as s:
        accesses = s.exec(select(AuditAccess).where(AuditAccess.action == "roster.export")).all()
    assert [(a.at, a.actor_account_id, a.record_count, a.detail) for a in accesses] == [
        (first.at, subjects[0], len(subjects) + len(households), "csv")]


@pytest.mark.parametrize("n_accounts,n_households", [(3, 2), (40, 25)])
def test_one_row_per_person_with_the_same_event_fields(demo, n_accounts, n_households):
    with session() as s:
        subjects = list(s.exec(select(Account.id).order_by(Account.id).limit(n_accounts)).all())
        households = list(s.exec(select(Household.id).order_by(Household.id).limit(n_households)).all())
    _check(_write_and_read(subjects, households), subjects, households)


@pytest.mark.postgres
def test_one_row_per_person_on_postgresql(pg_app_db):
    from chiiki.models import Association, Han  # noqa: F401 (tables exist through the fixture)

    subjects = _new_accounts(40)
    _check(_write_and_read(subjects, []), subjects, [])


def _new_accounts(n: int) -> list[int]:
    with session() as s:
        accounts = [Account(login_id=f"a{i}@example.jp", name=f"n{i}", kana="", display_name=f"d{i}",
                            password_hash="x") for i in range(n)]
        s.add_all(accounts)
        s.flush()
        return [a.id for a in accounts]


def test_every_subject_an_audited_read_writes_is_an_existing_account_or_household(demo):
    """The subject columns are plain ids (no foreign key, migration 0010): the services that write them must
    name only people and households read in the same transaction. Checked over the biggest audited reads."""
    from chiiki.services import circulars, roster
    from tests.conftest import DemoCity

    kaicho = demo.actor("kaicho@example.jp")
    a1 = demo.association_id(DemoCity.A1)
    roster.export_roster(kaicho, a1, "csv")
    roster.roster_page(kaicho, a1)
    circulars.export_matrix(kaicho, a1, "csv")
    with session() as s:
        rows = s.exec(select(AuditEvent.subject_account_id, AuditEvent.subject_household_id)).all()
        accounts = set(s.exec(select(Account.id)).all())
        households = set(s.exec(select(Household.id)).all())
    people = [a for a, _h in rows if a is not None]
    homes = [h for _a, h in rows if h is not None]
    assert len(people) > 50 and homes  # the reads above listed members and paper-only households
    assert set(people) <= accounts and set(homes) <= households


def _log_across_months(monkeypatch, subjects: list[int], officer: int) -> None:
    """Accesses in three months (one just before a month ends in UTC, a Japanese morning of the next month's
    first day), read back by the person's access log newest first, page by page."""
    from datetime import datetime, timedelta, timezone

    base = datetime(2026, 1, 31, 23, 30, tzinfo=timezone.utc)  # 2026-02-01 08:30 in Japan
    moments = [base - timedelta(days=40), base, base + timedelta(hours=1), base + timedelta(days=45)]
    officer_actor = Actor(account_id=officer, display_name="x")
    for i, at in enumerate(moments):
        monkeypatch.setattr(audit, "utcnow", lambda at=at: at)
        with session() as s:
            audit.record(s, officer_actor, "roster.view", association_id=None, subjects=subjects,
                         count=len(subjects), detail=f"month test {i}")
    # The person's own reading of their data is not shown to them.
    with session() as s:
        audit.record(s, Actor(account_id=subjects[0], display_name="me"), "self.export", subjects=[subjects[0]])
    with session() as s:
        periods = s.exec(select(AuditEvent.at, AuditEvent.period).where(AuditEvent.action == "roster.view")).all()
        assert {audit.month_of(at) for at, _p in periods} == {p for _at, p in periods}
        assert {p for _at, p in periods} == {2025 * 12 + 11, 2026 * 12 + 0, 2026 * 12 + 1, 2026 * 12 + 2}
        whole = audit.accesses_to(s, subjects[0])
        assert [e.at for e in whole] == sorted(moments, reverse=True)
        pages = [audit.accesses_to(s, subjects[0], limit=3, offset=0), audit.accesses_to(s, subjects[0], limit=3,
                                                                                         offset=3)]
        assert [e.at for e in pages[0] + pages[1]] == [e.at for e in whole]
        assert len(pages[1]) == 1
        # Only this person's accesses: someone listed in none of them has an empty log.
        assert audit.accesses_to(s, officer) == []


def test_the_access_log_reads_every_month_newest_first(demo, monkeypatch):
    with session() as s:
        ids = list(s.exec(select(Account.id).order_by(Account.id).limit(12)).all())
    _log_across_months(monkeypatch, ids[1:], ids[0])


@pytest.mark.postgres
def test_the_access_log_reads_every_month_newest_first_on_postgresql(pg_app_db, monkeypatch):
    ids = _new_accounts(12)
    _log_across_months(monkeypatch, ids[1:], ids[0])
