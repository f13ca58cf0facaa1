"""The committed migrations apply on SQLite and PostgreSQL and produce exactly the models' schema."""

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

import chiiki.models  # noqa: F401
from chiiki.services import db


def _diff(url: str) -> list:
    eng = db.engine(url)
    with eng.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        return compare_metadata(ctx, SQLModel.metadata)


def _check(url: str) -> None:
    db.migrate(url)
    diff = _diff(url)
    assert diff == [], f"models and migrations differ (write a migration): {diff}"
    # Upgrading again is a no-op, as a deploy step must be.
    db.migrate(url)


def test_migrations_match_models_on_sqlite(tmp_path):
    _check(f"sqlite:///{tmp_path / 'm.db'}")


@pytest.mark.postgres
def test_migrations_match_models_on_postgresql(pg_url):
    _check(pg_url)
    from chiiki.seed import seed_demo

    import os
    from chiiki import settings as settings_module

    old = os.environ.get("REFLEX_DB_URL")
    os.environ["REFLEX_DB_URL"] = pg_url
    settings_module.reload()
    try:
        ids = seed_demo()
        assert ids is not None and len(ids.associations) == 3
    finally:
        if old is not None:
            os.environ["REFLEX_DB_URL"] = old
        settings_module.reload()
        db.dispose_all()


def _backfill(url: str) -> None:
    """Migrations 0004 and 0006 fill the dashboard counters and the month of sending of a populated database."""
    import sqlalchemy as sa
    from alembic import command

    command.upgrade(db.alembic_config(url), "0003")
    eng = db.engine(url)
    with eng.begin() as c:
        run = lambda sql: c.execute(sa.text(sql))  # noqa: E731
        run("INSERT INTO area (id, name, level, sort_order) VALUES (1, '市', 'city', 0)")
        run("INSERT INTO association (id, area_id, name, name_kana, description, created_at, active) "
            "VALUES (1, 1, '町内会', '', '', '2026-01-01', true)")
        for h in (1, 2, 3):
            run(f"INSERT INTO household (id, association_id, route_position, address, head_name, head_kana, phone, "
                f"note, paper_only, created_at) VALUES ({h}, 1, {h}, '', '', '', '', '', false, '2026-01-01')")
        for a in (1, 2, 3, 4):
            run(f"INSERT INTO account (id, login_id, password_hash, name, kana, display_name, address, email, phone, "
                f"has_small_children, locale, large_text, email_circulars, email_notices, is_city_staff, "
                f"failed_logins, created_at) VALUES ({a}, 'a{a}@example.jp', '', '', '', '', '', '', '', false, 'ja', "
                f"false, false, false, false, 0, '2026-01-01')")
        run("INSERT INTO circular (id, association_id, title, body, target_all, status, created_at, sent_at, "
            "household_count) VALUES (1, 1, '回覧', '', true, 'sent', '2026-01-01', '2026-01-01', 3)")
        run("INSERT INTO circular (id, association_id, title, body, target_all, status, created_at, "
            "household_count) VALUES (2, 1, '下書き', '', true, 'draft', '2026-01-01', 0)")
        # 15:30 UTC on 31 January is 00:30 on 1 February in the city (migration 0006's month).
        run("INSERT INTO circular (id, association_id, title, body, target_all, status, created_at, sent_at, "
            "household_count) VALUES (3, 1, '月末', '', true, 'sent', '2026-01-31', '2026-01-31 15:30:00', 0)")
        # Household 1: two members, one read, one confirmed; household 2: one read; household 3: paper, confirmed.
        for i, (h, acc, state, channel) in enumerate([(1, 1, "read", "digital"), (1, 2, "confirmed", "digital"),
                                                     (2, 3, "read", "digital"), (3, None, "confirmed", "paper")]):
            run(f"INSERT INTO delivery (id, circular_id, household_id, account_id, channel, state, on_behalf) VALUES "
                f"({i + 1}, 1, {h}, {'NULL' if acc is None else acc}, '{channel}', '{state}', false)")
        run("INSERT INTO survey (id, association_id, title, description, kind, deadline, target_all, anonymous, "
            "per_household, created_at) VALUES (1, 1, 'アンケート', '', 'general', '2026-02-01', true, false, false, "
            "'2026-01-01')")
        for i, (acc, h) in enumerate([(1, 1), (2, 1), (3, 2)]):
            run(f"INSERT INTO surveyparticipation (id, survey_id, account_id, household_id, answered_on, unit_key) "
                f"VALUES ({i + 1}, 1, {acc}, {h}, '2026-01-02', 'a{acc}')")
    db.migrate(url)
    with eng.connect() as c:
        circulars = c.execute(sa.text("SELECT id, household_count, read_households, confirmed_households, "
                                      "sent_month FROM circular ORDER BY id")).all()
        survey = c.execute(sa.text("SELECT answered_accounts, answered_households FROM survey")).one()
    assert [tuple(r) for r in circulars] == [(1, 3, 3, 2, "2026-01"), (2, 0, 0, 0, ""), (3, 0, 0, 0, "2026-02")]
    assert tuple(survey) == (3, 2)
    assert _diff(url) == []


def test_the_counters_migration_backfills_a_populated_database_on_sqlite(tmp_path):
    _backfill(f"sqlite:///{tmp_path / 'b.db'}")


@pytest.mark.postgres
def test_the_counters_migration_backfills_a_populated_database_on_postgresql(pg_url):
    _backfill(pg_url)


def _accesses(url: str) -> None:
    """Migration 0012 groups the audit events written before it into one access each (what the trail lists)."""
    import sqlalchemy as sa
    from alembic import command

    command.upgrade(db.alembic_config(url), "0011")
    eng = db.engine(url)
    event = ("INSERT INTO auditevent (at, actor_account_id, actor_title, action, association_id, subject_account_id, "
             "subject_household_id, record_count, detail) VALUES ('{at}', {actor}, '{title}', '{action}', 1, {subject}, "
             "NULL, {n}, '{detail}')")
    with eng.begin() as c:
        # An export of three people at 10:00, a view of one at 10:05 by another officer, a summary event.
        for subject in (11, 12, 13):
            c.execute(sa.text(event.format(at="2026-03-01 10:00:00", actor=1, title="会長", action="roster.export",
                                           subject=subject, n=3, detail="csv")))
        c.execute(sa.text(event.format(at="2026-03-01 10:05:00", actor=2, title="班長", action="roster.view",
                                       subject=11, n=1, detail="")))
        c.execute(sa.text(event.format(at="2026-03-01 10:07:00", actor=1, title="会長", action="survey.remind",
                                       subject="NULL", n=40, detail="survey 5")))
    db.migrate(url)
    with eng.connect() as c:
        rows = c.execute(sa.text("SELECT actor_account_id, actor_title, action, association_id, record_count, detail "
                                 "FROM auditaccess ORDER BY at")).all()
        events = c.execute(sa.text("SELECT count(*) FROM auditevent")).scalar()
    assert [tuple(r) for r in rows] == [(1, "会長", "roster.export", 1, 3, "csv"), (2, "班長", "roster.view", 1, 1, ""),
                                        (1, "会長", "survey.remind", 1, 40, "survey 5")]
    assert events == 5  # the per-person events stay: each person's access log reads them
    assert _diff(url) == []


def test_the_access_migration_groups_earlier_events_on_sqlite(tmp_path):
    _accesses(f"sqlite:///{tmp_path / 'a.db'}")


@pytest.mark.postgres
def test_the_access_migration_groups_earlier_events_on_postgresql(pg_url):
    _accesses(pg_url)


def test_downgrading_the_access_table_keeps_accesses_that_named_no_one(tmp_path):
    """0012's downgrade puts accesses without per-person events (an import, a reminder) back into auditevent."""
    import sqlalchemy as sa
    from alembic import command

    url = f"sqlite:///{tmp_path / 'd.db'}"
    db.migrate(url)
    eng = db.engine(url)
    with eng.begin() as c:
        access = ("INSERT INTO auditaccess (at, actor_account_id, actor_title, action, association_id, record_count, "
                  "detail) VALUES ('{at}', {actor}, '会長', '{action}', 1, {n}, '')")
        c.execute(sa.text(access.format(at="2026-03-01 10:00:00", actor=1, action="roster.view", n=1)))
        c.execute(sa.text("INSERT INTO auditevent (at, actor_account_id, actor_title, action, association_id, "
                          "subject_account_id, record_count, detail, period) VALUES ('2026-03-01 10:00:00', 1, '会長', "
                          f"'roster.view', 1, 7, 1, '', {2026 * 12 + 2})"))
        c.execute(sa.text(access.format(at="2026-03-01 11:00:00", actor=1, action="roster.import", n=12)))
        c.execute(sa.text(access.format(at="2026-03-01 12:00:00", actor="NULL", action="survey.remind", n=30)))
    command.downgrade(db.alembic_config(url), "0011")
    with eng.connect() as c:
        rows = c.execute(sa.text("SELECT action, actor_account_id, subject_account_id, record_count FROM auditevent "
                                 "ORDER BY at")).all()
    assert [tuple(r) for r in rows] == [("roster.view", 1, 7, 1), ("roster.import", 1, None, 12),
                                        ("survey.remind", None, None, 30)]
    db.migrate(url)  # and up again


def _months(url: str) -> None:
    """Migration 0015 gives each existing per-person event the month of its time in UTC, and the access log
    finds them by it."""
    import sqlalchemy as sa
    from alembic import command
    from sqlmodel import Session

    from chiiki.services import audit

    command.upgrade(db.alembic_config(url), "0014")
    eng = db.engine(url)
    event = ("INSERT INTO auditevent (at, actor_account_id, actor_title, action, association_id, subject_account_id, "
             "record_count, detail) VALUES ('{at}', 1, '会長', 'roster.view', 1, {subject}, 1, '')")
    # The last minutes of 2025 and of February in UTC (already the next month in Japan), and a day in March.
    moments = ["2025-12-31 23:59:00", "2026-02-28 23:30:00", "2026-03-10 09:00:00"]
    if eng.dialect.name == "postgresql":  # timestamptz: the same moments written with Japan's offset
        moments = ["2026-01-01 08:59:00+09:00", "2026-03-01 08:30:00+09:00", "2026-03-10 18:00:00+09:00"]
    with eng.begin() as c:
        for at in moments:
            c.execute(sa.text(event.format(at=at, subject=7)))
        c.execute(sa.text(event.format(at=moments[1], subject=8)))
    db.migrate(url)
    with eng.connect() as c:
        periods = [r[0] for r in c.execute(sa.text("SELECT period FROM auditevent WHERE subject_account_id = 7 "
                                                   "ORDER BY at"))]
    assert periods == [2025 * 12 + 11, 2026 * 12 + 1, 2026 * 12 + 2]
    with Session(eng) as s:
        log = audit.accesses_to(s, 7)
        assert [audit.month_of(e.at) for e in log] == periods[::-1]
        assert len(audit.accesses_to(s, 8)) == 1
    assert _diff(url) == []


def test_the_month_migration_fills_existing_events_on_sqlite(tmp_path):
    _months(f"sqlite:///{tmp_path / 'p.db'}")


@pytest.mark.postgres
def test_the_month_migration_fills_existing_events_on_postgresql(pg_url):
    _months(pg_url)


def _correction_mails(url: str) -> None:
    """Migration 0019 gives the deliveries whose last notice was a correction's mail (notified_at at that
    correction's time, as such mails marked them) that time as their last correction mail; not those reminded
    since, nor those never told."""
    import sqlalchemy as sa
    from alembic import command

    command.upgrade(db.alembic_config(url), "0018")
    eng = db.engine(url)
    at = "2026-03-01 10:00:00+00:00" if eng.dialect.name == "postgresql" else "2026-03-01 10:00:00.000000"
    later = "2026-03-01 11:30:00+00:00" if eng.dialect.name == "postgresql" else "2026-03-01 11:30:00.000000"
    with eng.begin() as c:
        run = lambda sql: c.execute(sa.text(sql))  # noqa: E731
        run("INSERT INTO area (id, name, level, sort_order) VALUES (1, '市', 'city', 0)")
        run("INSERT INTO association (id, area_id, name, name_kana, description, created_at, active) "
            "VALUES (1, 1, '町内会', '', '', '2026-01-01', true)")
        for cid in (1, 2):
            run(f"INSERT INTO circular (id, association_id, title, body, target_all, status, created_at, sent_at, "
                f"household_count) VALUES ({cid}, 1, '回覧', '', true, 'sent', '2026-03-01', '2026-03-01', 3)")
        run(f"INSERT INTO circularamendment (id, circular_id, body, created_at) VALUES (1, 1, '訂正', '{at}')")
        # Circular 1: mailed the correction, reminded after it, never told; circular 2 (no correction): notified.
        for i, (cid, notified) in enumerate([(1, f"'{at}'"), (1, f"'{later}'"), (1, "NULL"), (2, f"'{at}'")]):
            run(f"INSERT INTO delivery (id, circular_id, household_id, account_id, channel, state, on_behalf, "
                f"notified_at) VALUES ({i + 1}, {cid}, {i + 1}, NULL, 'digital', 'unread', false, {notified})")
    db.migrate(url)
    with eng.connect() as c:
        rows = c.execute(sa.text("SELECT id, correction_mailed_at IS NOT NULL, "
                                 "correction_mailed_at = notified_at FROM delivery ORDER BY id")).all()
    assert [tuple(r) for r in rows] == [(1, True, True), (2, False, None), (3, False, None), (4, False, None)]
    assert _diff(url) == []


def test_the_correction_mail_migration_fills_earlier_correction_mails_on_sqlite(tmp_path):
    _correction_mails(f"sqlite:///{tmp_path / 'c.db'}")


@pytest.mark.postgres
def test_the_correction_mail_migration_fills_earlier_correction_mails_on_postgresql(pg_url):
    _correction_mails(pg_url)
