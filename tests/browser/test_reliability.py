"""Exactly once under load on the production path (PostgreSQL + Redis + 2 granian workers), across a killed worker.

A shorter run of `python -m chiiki.bench.reliability`: residents of a small synthetic city log in through
the login form and confirm circulars (and answer a survey) for SECONDS; KILL_AT seconds in, one granian
worker gets SIGKILL. Every confirmation a client saw acknowledged must be in the database exactly once,
and nothing else may have changed.
"""

from __future__ import annotations

import threading

import pytest

import chiiki.chiiki  # noqa: F401  (page states register on the main thread; the driver runs on another)
from chiiki.bench import reliability as rel
from tests.conftest import require_service

CLIENTS = 30
SECONDS = 20
KILL_AT = 10
# Its own Redis database (the app fixtures count down from 15, tests/conftest.py uses 5), flushed here.
REDIS_URL = "redis://127.0.0.1:6379/3"
APP_ENV = {"COLUMNS": "200"}  # the server's tracebacks on unwrapped lines, for the failure message


def _in_thread(fn):
    """Playwright's sync API may own this thread's event loop: run the clients on a thread of their own."""
    box: dict = {}

    def target():
        try:
            box["result"] = fn()
        except BaseException as e:  # noqa: BLE001 (re-raised below)
            box["error"] = e

    t = threading.Thread(target=target)
    t.start()
    t.join(600)
    if t.is_alive():
        pytest.fail("the reliability run did not finish within 600 s")
    if "error" in box:
        raise box["error"]
    return box["result"]


def _target(app, start_app, db_url: str, apps: list, logs: list[str]) -> rel.Target:
    """The app for the driver; a restart (should the whole server stop) reuses the database and Redis."""
    apps.append(app)

    def restart() -> rel.Target:
        logs.append(app.log())  # stop() removes the instance's folder, log included
        app.stop()
        again = start_app(db_url=db_url, redis_url=REDIS_URL, workers=2, env=APP_ENV, fresh=True)
        return _target(again, start_app, db_url, apps, logs)

    return rel.Target(app.url, lambda: app.proc.pid if app.running else None, lambda: app.running, restart,
                      lambda: "".join(logs) + app.log())


@pytest.fixture(scope="module")
def reliability_run(start_app):
    require_service("PostgreSQL", "127.0.0.1", 5432)
    require_service("Redis", "127.0.0.1", 6379)
    db_url, drop = rel.create_pg_database()
    apps: list = []
    logs: list[str] = []
    try:
        rel.seed_city(db_url, scale=0.02, seed=1)
        rel.flush_redis(REDIS_URL)
        setup = rel.prepare(db_url, CLIENTS, fresh_circulars=6, seed=7)
        app = start_app(db_url=db_url, redis_url=REDIS_URL, workers=2, env=APP_ENV)
        target = _target(app, start_app, db_url, apps, logs)
        run, last = _in_thread(lambda: rel.drive(target, setup, seconds=SECONDS, think=0.7,
                                                 kill_worker_at=KILL_AT, seed=7))
        report = rel.verify(setup, run)
        print("\n" + "\n".join(report.lines()))
        server_errors = "\n".join(rel.server_errors(last.log())) if not report.ok else ""
        if server_errors:
            print("server errors:\n" + server_errors)
        yield setup, run, report, server_errors
    finally:
        for app in apps:  # they use this database: stop them before it is dropped
            app.stop()
        rel.flush_redis(REDIS_URL)
        drop()


def test_every_acknowledged_confirmation_is_stored_exactly_once(reliability_run):
    setup, run, report, server_errors = reliability_run
    assert run.logged_in == CLIENTS
    assert report.acked > CLIENTS, "too few confirmations to prove anything"
    assert report.lost == [], "acknowledged confirmations missing from the database"
    assert report.duplicate_rows == 0
    assert report.double_acks == 0 and run.refused == [], "a delivery was confirmed twice"
    assert report.unexplained == [], "confirmations written that no client acknowledged nor had in flight"
    assert report.reverted == []
    assert report.status_mismatch == []
    assert report.counter_mismatch == []
    assert report.audit_doubles == []
    assert report.survey_lost == [] and report.survey_doubles == []
    assert dict(run.unexpected) == {}, f"{run.samples}\nserver errors:\n{server_errors}"
    assert report.ok, report.problems


def test_a_killed_worker_loses_no_acknowledged_write(reliability_run):
    _setup, run, report, _errors = reliability_run
    kill = run.kill
    assert kill is not None and kill.pid, f"no worker was killed: {kill}"
    assert kill.connections > 0 and run.reconnected_clients, "the kill dropped no client's connection"
    assert run.gave_up == 0
    # The clients carried on after the recovery, and what they had acknowledged before is all there.
    assert report.acked_after_recovery > 0
    assert report.lost == [] and report.unexplained == []
    assert run.in_doubt == {}, "a confirmation in flight on the dropped connection was never resolved"


def test_the_server_stays_up_when_one_worker_dies(reliability_run):
    _setup, run, _report, _errors = reliability_run
    assert run.kill is not None and run.kill.survived is True
