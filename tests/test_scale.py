"""The synthetic city generator: counts, referential integrity and determinism at a small scale."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
import sqlalchemy as sa

from chiiki import scale

SCALE = 0.01
NOW = datetime(2026, 11, 1, tzinfo=timezone.utc)


def _generate(url: str, schema: str = "models", seed: int = 7) -> dict:
    lines: list[str] = []
    result = scale.generate_city(url, seed=seed, scale=SCALE, progress=lines.append, now=NOW, schema=schema)
    assert any("password for every account" in line for line in lines)
    return result


def _count(conn, sql: str) -> int:
    return conn.exec_driver_sql(sql).scalar()


def _check_city(url: str, result: dict) -> None:
    eng = sa.create_engine(url)
    with eng.connect() as c:
        n_assoc = round(scale.ASSOCIATIONS * SCALE)
        assert _count(c, "SELECT count(*) FROM association") == n_assoc
        assert _count(c, "SELECT count(*) FROM household") == round(scale.MEMBER_HOUSEHOLDS * SCALE)
        assert _count(c, "SELECT count(*) FROM account") == round(scale.RESIDENTS * SCALE) + scale.CITY_STAFF
        assert result["households"]["all"] == round(scale.HOUSEHOLDS * SCALE)
        assert _count(c, "SELECT count(*) FROM delivery") == result["counts"]["delivery"] > 10_000
        sizes = [r[0] for r in c.exec_driver_sql(
            "SELECT count(*) FROM household GROUP BY association_id ORDER BY 1")]
        assert min(sizes) >= scale.SMALLEST_ASSOCIATION
        # Every association has exactly one 会長 holding every permission, on the whole association.
        assert _count(c, "SELECT count(*) FROM officerrole WHERE title = '会長' AND han_id IS NULL "
                         f"AND permissions = '{scale.ALL_PERMISSIONS}'") == n_assoc
        assert _count(c, "SELECT count(DISTINCT association_id) FROM officerrole WHERE title = '会長'") == n_assoc
        assert _count(c, "SELECT count(*) FROM officerrole WHERE title = '班長' AND han_id IS NOT NULL") > 0
        # Referential integrity across tables (what a foreign key cannot say).
        assert _count(c, "SELECT count(*) FROM delivery d JOIN circular ci ON ci.id = d.circular_id "
                         "JOIN household h ON h.id = d.household_id "
                         "WHERE h.association_id <> ci.association_id OR d.han_id <> h.han_id") == 0
        assert _count(c, "SELECT count(*) FROM household h JOIN han ON han.id = h.han_id "
                         "WHERE han.association_id <> h.association_id") == 0
        assert _count(c, "SELECT count(*) FROM delivery d JOIN circular ci ON ci.id = d.circular_id "
                         "WHERE d.account_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM membership m "
                         "WHERE m.account_id = d.account_id AND m.association_id = ci.association_id "
                         "AND m.household_id = d.household_id AND m.status = 'active')") == 0
        assert _count(c, "SELECT count(*) FROM officerrole o JOIN membership m ON m.id = o.membership_id "
                         "WHERE m.association_id <> o.association_id OR m.status <> 'active'") == 0
        assert _count(c, "SELECT count(*) FROM circulartarget t JOIN circular ci ON ci.id = t.circular_id "
                         "JOIN han ON han.id = t.han_id WHERE han.association_id <> ci.association_id") == 0
        # Plain ids without a foreign key (migrations 0010, 0011) name existing rows.
        assert _count(c, "SELECT count(*) FROM delivery d WHERE NOT EXISTS (SELECT 1 FROM household h WHERE "
                         "h.id = d.household_id) OR (d.han_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM han WHERE "
                         "han.id = d.han_id)) OR (d.account_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM account a "
                         "WHERE a.id = d.account_id))") == 0
        # A year of the 会長's roster accesses: one access row each, one event per person or paper household
        # shown, all of the association (its members, its households).
        accesses = _count(c, "SELECT count(*) FROM auditaccess")
        assert accesses == 16 * n_assoc
        assert _count(c, "SELECT count(*) FROM auditevent") > accesses
        assert _count(c, "SELECT count(*) FROM auditevent e WHERE NOT EXISTS (SELECT 1 FROM auditaccess x WHERE "
                         "x.at = e.at AND x.action = e.action AND x.association_id = e.association_id)") == 0
        assert _count(c, "SELECT count(*) FROM auditevent e WHERE (e.subject_account_id IS NULL) = "
                         "(e.subject_household_id IS NULL)") == 0
        # Each event's month (the person's access log looks events up by it) is the month of its time in UTC.
        from chiiki.models import AuditEvent
        from chiiki.services.audit import month_of

        events = c.execute(sa.select(AuditEvent.at, AuditEvent.period)).all()
        assert [month_of(at) for at, _p in events] == [p for _at, p in events]
        assert len({p for _at, p in events}) >= 12  # a year of them
        assert _count(c, "SELECT count(*) FROM auditevent e WHERE (e.subject_account_id IS NOT NULL AND NOT EXISTS "
                         "(SELECT 1 FROM membership m WHERE m.account_id = e.subject_account_id AND m.association_id = "
                         "e.association_id AND m.status = 'active')) OR (e.subject_household_id IS NOT NULL AND NOT "
                         "EXISTS (SELECT 1 FROM household h WHERE h.id = e.subject_household_id AND h.association_id = "
                         "e.association_id AND h.paper_only))") == 0
        # Each access by a 会長 of that association, while the role was held, counting the households shown.
        assert _count(c, "SELECT count(*) FROM auditaccess x WHERE NOT EXISTS (SELECT 1 FROM officerrole o JOIN "
                         "membership m ON m.id = o.membership_id WHERE m.account_id = x.actor_account_id AND "
                         "o.association_id = x.association_id AND o.title = x.actor_title AND o.title = '会長' AND "
                         "o.valid_from <= x.at)") == 0
        assert _count(c, "SELECT count(*) FROM auditaccess x WHERE x.action = 'roster.export' AND x.record_count <> "
                         "(SELECT count(*) FROM household h WHERE h.association_id = x.association_id)") == 0
        assert _count(c, "SELECT count(*) FROM auditaccess x WHERE x.record_count <> (SELECT count(DISTINCT "
                         "coalesce(m.household_id, e.subject_household_id)) FROM auditevent e LEFT JOIN membership m ON "
                         "m.account_id = e.subject_account_id AND m.association_id = e.association_id WHERE e.at = x.at "
                         "AND e.association_id = x.association_id AND e.action = x.action)") == 0
        # Paper households get exactly one paper row; digital ones one row per member account.
        assert _count(c, "SELECT count(*) FROM delivery d JOIN household h ON h.id = d.household_id "
                         "WHERE (h.paper_only AND (d.channel <> 'paper' OR d.account_id IS NOT NULL)) "
                         "OR (NOT h.paper_only AND d.channel <> 'digital')") == 0
        assert _count(c, "SELECT count(*) FROM circular WHERE status = 'sent' AND household_count <> "
                         "(SELECT count(DISTINCT household_id) FROM delivery d WHERE d.circular_id = circular.id)") == 0
        # The dashboard's counters are filled exactly as the services would keep them.
        assert _count(c, "SELECT count(*) FROM circular WHERE status = 'sent' AND (read_households <> "
                         "(SELECT count(DISTINCT household_id) FROM delivery d WHERE d.circular_id = circular.id "
                         "AND d.state <> 'unread') OR confirmed_households <> (SELECT count(DISTINCT household_id) "
                         "FROM delivery d WHERE d.circular_id = circular.id AND d.state = 'confirmed'))") == 0
        assert _count(c, "SELECT count(*) FROM survey WHERE answered_accounts <> (SELECT count(*) FROM "
                         "surveyparticipation p WHERE p.survey_id = survey.id) OR answered_households <> (SELECT "
                         "count(DISTINCT household_id) FROM surveyparticipation p WHERE p.survey_id = survey.id)") == 0
        assert _count(c, "SELECT sum(confirmed_households) FROM circular") > 0
        assert _count(c, "SELECT sum(answered_households) FROM survey") > 0
        states = dict(c.exec_driver_sql("SELECT state, count(*) FROM delivery GROUP BY state").all())
        assert states.get("unread", 0) and states.get("read", 0) and states.get("confirmed", 0)
        assert _count(c, "SELECT count(*) FROM delivery WHERE state = 'confirmed' AND confirmed_at IS NULL") == 0
        assert _count(c, "SELECT count(*) FROM delivery WHERE read_at IS NOT NULL AND read_at < "
                         "(SELECT sent_at FROM circular WHERE circular.id = delivery.circular_id)") == 0
        assert _count(c, "SELECT count(*) FROM surveyresponse r JOIN survey s ON s.id = r.survey_id "
                         "WHERE s.anonymous AND r.respondent_account_id IS NOT NULL") == 0
        assert _count(c, "SELECT count(DISTINCT password_hash) FROM account") == 1
        if c.dialect.name == "sqlite":
            assert c.exec_driver_sql("PRAGMA foreign_key_check").all() == []
        else:
            # Sequences continue after the generated ids: the app can insert at once.
            c.exec_driver_sql("INSERT INTO area (name, level, sort_order) VALUES ('x', 'block', 0)")
            c.rollback()
    eng.dispose()


def _first_rows(url: str) -> dict[str, list]:
    eng = sa.create_engine(url)
    with eng.connect() as c:
        out = {t: [tuple(r) for r in c.exec_driver_sql(f"SELECT * FROM {t} ORDER BY id LIMIT 5")]
               for t in ("account", "household", "circular", "delivery", "surveyanswer", "boardpost")}
    eng.dispose()
    return out


def test_generated_city_has_the_scaled_counts_and_consistent_references(tmp_path):
    url = f"sqlite:///{tmp_path / 'city.db'}"
    result = _generate(url, schema="migrate")
    _check_city(url, result)


def test_the_same_seed_gives_the_same_city(tmp_path):
    a, b, c = (f"sqlite:///{tmp_path / name}" for name in ("a.db", "b.db", "c.db"))
    first, second = _generate(a), _generate(b)
    assert first["counts"] == second["counts"]
    assert _first_rows(a) == _first_rows(b)
    other = _generate(c, seed=8)
    assert _first_rows(c) != _first_rows(a)
    assert other["counts"]["association"] == first["counts"]["association"]


def test_generator_refuses_a_database_that_has_data(tmp_path):
    url = f"sqlite:///{tmp_path / 'city.db'}"
    _generate(url)
    with pytest.raises(SystemExit):
        _generate(url, schema="none")


def test_generated_city_on_postgresql(pg_url):
    result = _generate(pg_url)
    _check_city(pg_url, result)


def test_service_benchmark_runs_every_hot_path_on_a_generated_city(tmp_path, monkeypatch):
    """bench-city's service part on a small city: every hot path runs without error, the dashboard counters
    still equal a recount afterwards, and the notification mail its sends queued is not left for the app."""
    from chiiki import settings as settings_module
    from chiiki.bench.city import ServiceBench
    from chiiki.services import db

    url = f"sqlite:///{tmp_path / 'city.db'}"
    _generate(url)
    monkeypatch.setenv("REFLEX_DB_URL", url)  # restored afterwards; ServiceBench points the services at it
    lines: list[str] = []
    try:
        rows = ServiceBench(url, 1, lines.append).run()
        eng = sa.create_engine(url)
        with eng.connect() as c:
            unsent = _count(c, "SELECT count(*) FROM outboxmail WHERE sent_at IS NULL")
        eng.dispose()
    finally:
        monkeypatch.undo()
        settings_module.reload()
        db.dispose_all()
    assert rows and not [r.name for r in rows if not r.times], [r.line() for r in rows if not r.times]
    assert any("equal a recount of its deliveries and answers: yes" in line for line in lines), lines
    discarded = [line for line in lines if "notification mails queued by the sends above were discarded" in line]
    assert discarded and not discarded[0].startswith("[bench] 0 "), lines
    assert unsent == 0


def test_the_citys_shared_password_hash_is_made_at_the_default_cost():
    """The login benchmark pays the cost new passwords get (a hash of another cost would also be hashed again
    at each login), and the password the generator prints opens it."""
    import bcrypt

    from chiiki import scale
    from chiiki.services.accounts import _cost
    from chiiki.settings import DEFAULT_BCRYPT_ROUNDS

    assert _cost(scale.PASSWORD_HASH) == DEFAULT_BCRYPT_ROUNDS == 10
    assert bcrypt.checkpw(scale.PASSWORD.encode(), scale.PASSWORD_HASH.encode())
