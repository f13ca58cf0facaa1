"""With Redis and two workers, a tab's state follows it to whichever worker takes its next connection."""

from __future__ import annotations

import asyncio
import threading

import psutil
import pytest

from chiiki.bench.load import ReflexClient
from chiiki.components.shell import NavState
from tests.conftest import require_service

TOGGLE = f"{NavState.get_full_name()}.toggle"


@pytest.fixture(scope="module")
def prod_app(start_app):
    require_service("PostgreSQL", "127.0.0.1", 5432)
    require_service("Redis", "127.0.0.1", 6379)
    return start_app(db_url="postgresql", redis_url="redis", workers=2)


def _serving_pids(app) -> set[int]:
    """Server processes holding an established connection on the app's port right now."""
    leader = psutil.Process(app.proc.pid)
    found = set()
    for proc in [leader, *leader.children(recursive=True)]:
        try:
            conns = proc.net_connections(kind="tcp")
        except psutil.Error:
            continue
        if any(c.status == psutil.CONN_ESTABLISHED and c.laddr and c.laddr.port == app.port for c in conns):
            found.add(proc.pid)
    return found


def _in_thread(coro_fn):
    """Playwright's sync API owns this thread's event loop: run the client on a thread of its own."""
    box: dict = {}

    def run():
        try:
            box["result"] = asyncio.run(coro_fn())
        except BaseException as e:  # noqa: BLE001 (re-raised below)
            box["error"] = e

    t = threading.Thread(target=run)
    t.start()
    t.join(300)
    if "error" in box:
        raise box["error"]
    return box.get("result")


def test_state_survives_moving_between_workers(prod_app):
    token = None
    expected_open = False
    workers_seen: set[int] = set()
    checks = 0

    async def one_connection() -> tuple[bool | None, bool | None, set[int]]:
        tab = ReflexClient(prod_app.url)
        if token:
            tab.token = token
        await tab.connect("/")
        before = tab.last_state("nav_state", "open")
        pids = _serving_pids(prod_app)
        await tab.call(TOGGLE)
        after = tab.last_state("nav_state", "open")
        await tab.close()
        return tab.token, before, after, pids

    # Reconnect the same tab until two different workers have served it (and at least 8 times).
    for _ in range(40):
        token, before, after, pids = _in_thread(one_connection)
        # The hydrate of a new connection shows the value the previous connection left behind.
        assert bool(before) is expected_open, f"state lost after {checks} reconnects (worker {pids})"
        assert bool(after) is (not expected_open)
        expected_open = not expected_open
        workers_seen |= pids
        checks += 1
        if len(workers_seen) >= 2 and checks >= 8:
            break
    assert len(workers_seen) >= 2, f"all {checks} connections went to one worker: {workers_seen}"
