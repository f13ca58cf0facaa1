"""The database layer: reads side by side (gather) and SQLite's log copied back in the background."""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import select

from chiiki.models import Household
from chiiki.services import db
from chiiki.services.db import session
from chiiki.services.errors import NotFound
from tests.conftest import PG_BASE, DemoCity


def _wait_for(check, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False


def test_gather_runs_the_reads_beside_the_caller_and_keeps_their_order(demo):
    seen = []

    def read(s, n):
        seen.append(threading.current_thread().name)
        return s.exec(select(Household.id).order_by(Household.id).limit(n)).all()

    got = db.gather((read, 1), (read, 2), (read, 3), (read, 4))
    assert [len(r) for r in got] == [1, 2, 3, 4]
    assert sum(name.startswith("chiiki-gather") for name in seen) == 3  # the caller ran the first itself

    def fails(s):
        raise NotFound()

    finished = []

    def slow(s):
        time.sleep(0.2)
        finished.append(1)
        return 1

    with pytest.raises(NotFound):
        db.gather(fails, slow)
    assert finished == [1]  # the error is raised once every read has ended


def test_gather_works_in_a_process_forked_after_it_ran(demo):
    """Server workers are forked: a child must not queue work for the parent's threads, which it lacks."""
    def count(s):
        time.sleep(0.1)  # busy long enough for the pool to start all its threads
        return len(s.exec(select(Household.id)).all())

    expected = db.gather(count, count, count, count)  # every thread of the parent's pool now exists, idle
    pid = os.fork()
    if pid == 0:  # the child: exit 0 only when gather answered
        code = 1
        try:
            signal.alarm(20)
            for eng in db._engines.values():
                eng.dispose(close=False)  # connections are not carried over a fork
            code = 0 if db.gather(count, count, count, count) == expected else 3
        finally:
            os._exit(code)
    _pid, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def _homes(demo, n: int, label: str) -> None:
    with session() as s:
        aid = demo.association_id(DemoCity.A1)
        s.add_all([Household(association_id=aid, address=f"{label}{i}") for i in range(n)])


def test_sqlite_commits_leave_copying_the_log_back_to_a_thread(demo):
    """No commit below the safety net checkpoints inside its request; once an export's worth of rows was
    committed, the thread does it; small commits alone do not wake it before that."""
    with session() as s:
        assert s.connection().exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == db.WAL_SAFETY_PAGES
    _homes(demo, 3, "小")
    cp = db.checkpointer()
    assert cp is not None and cp.thread.is_alive() and cp.pid == os.getpid()
    assert cp.rows == 3 and not cp.pending.is_set()  # the ORM writes them one INSERT … RETURNING each
    _homes(demo, 40, "中")
    assert cp.rows == 43 and not cp.pending.is_set()
    before = cp.runs
    table, aid = Household.__table__, demo.association_id(DemoCity.A1)
    with db.engine().connect() as conn:  # rolled back, then a small commit on the same connection
        with conn.begin() as tx:
            conn.execute(table.insert(), [{"association_id": aid, "address": "取消"}] * db.CHECKPOINT_ROWS)
            tx.rollback()
        with conn.begin():
            conn.execute(table.insert(), [{"association_id": aid, "address": "小"}])
    assert not cp.pending.is_set() and cp.rows < db.CHECKPOINT_ROWS  # the rolled-back rows did not count
    _homes(demo, db.CHECKPOINT_ROWS, "大")
    assert _wait_for(lambda: cp.runs > before)
    assert cp.rows < db.CHECKPOINT_ROWS


def test_closing_the_databases_stops_the_checkpointer_and_leaves_no_log(demo):
    """Tests and restores copy the database file once everything is closed: no thread may still hold it."""
    with session() as s:
        s.add(Household(association_id=demo.association_id(DemoCity.A1), address="ログの確認"))
    _homes(demo, db.CHECKPOINT_ROWS, "大")  # its connection has now checkpointed (and so opened the log)
    cp = db.checkpointer()
    assert cp is not None and cp.thread.is_alive() and _wait_for(lambda: cp.runs > 0)
    path = Path(cp.path)
    db.dispose_all()
    assert not cp.thread.is_alive()
    assert db.checkpointer() is None
    assert not Path(str(path) + "-wal").exists()  # the last connection closed: SQLite folded the log back
    with sqlite3.connect(path) as check:
        assert check.execute("SELECT count(*) FROM household WHERE address = 'ログの確認'").fetchone()[0] == 1


def test_a_forked_worker_starts_its_own_checkpointer(demo):
    with session() as s:
        s.add(Household(association_id=demo.association_id(DemoCity.A1), address="親"))
    parent = db.checkpointer()
    assert parent is not None
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            signal.alarm(20)
            for eng in db._engines.values():
                eng.dispose(close=False)
            _homes(demo, db.CHECKPOINT_ROWS, "子")
            cp = db.checkpointer()
            ok = cp is not None and cp is not parent and cp.pid == os.getpid() and cp.thread.is_alive()
            code = 0 if ok and _wait_for(lambda: cp.runs > 0) else 3
        finally:
            os._exit(code)
    _pid, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert parent.thread.is_alive() and parent.pid == os.getpid()


def test_gather_called_from_a_read_it_runs_does_not_wait_for_itself(demo):
    def inner(s):
        return len(s.exec(select(Household.id)).all())

    def outer(s):
        return sum(db.gather(inner, inner, inner, inner))

    done: list = []
    worker = threading.Thread(target=lambda: done.append(db.gather(outer, outer, outer, outer)), daemon=True)
    worker.start()
    worker.join(20)
    assert done and len(set(done[0])) == 1 and done[0][0] > 0


def test_threads_asking_for_a_new_database_at_once_share_one_engine(tmp_path):
    url = f"sqlite:///{tmp_path / 'new.db'}"
    barrier, got = threading.Barrier(6), []

    def ask():
        barrier.wait()
        got.append(db.engine(url))

    threads = [threading.Thread(target=ask) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    try:
        assert len(got) == 6 and len({id(e) for e in got}) == 1
    finally:
        with db._registry:
            eng = db._engines.pop(url, None)
        if eng is not None:
            eng.dispose()


def test_an_exports_audit_record_wakes_the_checkpointer(demo):
    """The audit events of an export are one INSERT … SELECT: its rows count as what they are."""
    from chiiki.services import audit

    _homes(demo, 1, "初")
    cp = db.checkpointer()
    before = cp.runs
    with session() as s:
        audit.record(s, demo.actor("kaicho@example.jp"), "roster.export",
                     household_ids=list(range(1, db.CHECKPOINT_ROWS + 1)), count=db.CHECKPOINT_ROWS)
    assert _wait_for(lambda: cp.runs > before)


def test_postgresql_connections_have_jit_off_and_keep_the_urls_own_options():
    base = "postgresql+psycopg://u@127.0.0.1:5432/d"
    assert db._postgresql_options(base) == {"options": "-c jit=off"}
    assert db._postgresql_options(base + "?options=-c%20statement_timeout%3D5000") == {
        "options": "-c statement_timeout=5000 -c jit=off"}
    assert db._postgresql_options(base + "?options=-c%20jit%3Don") == {}  # the operator's choice wins
    assert db._postgresql_options("sqlite:///x.db") == {}


@pytest.mark.postgres
def test_the_apps_postgresql_connections_run_without_jit(pg_url):
    import sqlalchemy as sa

    with db.engine(pg_url).connect() as conn:
        assert conn.execute(sa.text("SHOW jit")).scalar() == "off"
    url = pg_url + "?options=-c%20statement_timeout%3D4321"
    with db.engine(url).connect() as conn:
        assert conn.execute(sa.text("SHOW jit")).scalar() == "off"
        assert conn.execute(sa.text("SHOW statement_timeout")).scalar() == "4321ms"


@pytest.mark.postgres
def test_reads_on_postgresql_run_outside_a_transaction_and_units_of_work_inside_one(pg_app_db):
    """reading() gives each statement its own transaction (no BEGIN and ROLLBACK around a page's read), while
    session() still groups its statements in one; the pooled connections go back and forth between them."""
    import sqlalchemy as sa

    # In a transaction now() is when it began; a statement of its own starts its own transaction.
    later = "SELECT now() = statement_timestamp()"
    for _ in range(3):  # the same pooled connections, handed to both in turn
        with db.reading() as conn:
            conn.execute(sa.text("SELECT pg_sleep(0.02)"))
            assert conn.execute(sa.text(later)).scalar() is True
        with session() as s:
            s.exec(sa.text("SELECT pg_sleep(0.02)"))
            assert s.exec(sa.text(later)).scalar() is False
    # A unit of work that fails still leaves nothing behind.
    with pytest.raises(RuntimeError):
        with session() as s:
            s.exec(sa.text("CREATE TABLE half_written (x int)"))
            raise RuntimeError("refused")
    with db.reading() as conn:
        assert conn.execute(sa.text("SELECT to_regclass('half_written')")).scalar() is None


def test_a_reading_session_refuses_to_write(demo):
    """reading_session() is for reads: a write there would be committed at once on PostgreSQL (no transaction)
    and lost on SQLite, so it is refused on both, and nothing is written."""
    from chiiki.models import Area

    with db.reading_session() as s:
        before = len(s.exec(select(Area)).all())
        s.add(Area(name="書けない地区", level="district"))
        with pytest.raises(db.ReadOnlySession):
            s.flush()
    with session() as s:
        assert len(s.exec(select(Area)).all()) == before


@pytest.mark.postgres
def test_a_pooled_connection_the_server_dropped_is_replaced_and_a_busy_one_is_not_tested(pg_url, monkeypatch):
    """A connection that sat in the pool a while is tested before use, and one the server ended is swapped for
    a new one without the caller seeing an error; one given back moments ago is used as it is, without the
    extra round trip of a test on every checkout."""
    import psycopg
    import sqlalchemy as sa

    eng = db.engine(pg_url)
    sent: list[str] = []
    real_execute = psycopg.Cursor.execute

    def counting(cur, query, *args, **kwargs):
        sent.append(str(query))
        return real_execute(cur, query, *args, **kwargs)

    monkeypatch.setattr(psycopg.Cursor, "execute", counting)
    with eng.connect() as conn:
        first = conn.execute(sa.text("SELECT pg_backend_pid()")).scalar()
    sent.clear()
    with eng.connect() as conn:  # given back just now: no test
        assert conn.execute(sa.text("SELECT pg_backend_pid()")).scalar() == first
    assert sent == ["SELECT pg_backend_pid()"]

    monkeypatch.setattr(db, "PING_AFTER_IDLE_S", 0.0)
    for read in (eng.connect, db._reader(eng).connect):  # a unit of work's connection, and a read's
        with read() as conn:
            pid = conn.execute(sa.text("SELECT pg_backend_pid()")).scalar()
        # The server ends that connection while it waits in the pool (a restart, an idle timeout).
        _terminate(pid)
        with read() as conn:
            assert conn.execute(sa.text("SELECT pg_backend_pid()")).scalar() != pid
        with read() as conn:  # the test leaves no transaction open for the caller
            idle = conn.connection.dbapi_connection.info.transaction_status
            assert idle == psycopg.pq.TransactionStatus.IDLE


def _terminate(pid: int) -> None:
    """End a PostgreSQL backend and wait until it is gone."""
    import sqlalchemy as sa

    admin = sa.create_engine(PG_BASE, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as c:
            assert c.execute(sa.text("SELECT pg_terminate_backend(:p)"), {"p": pid}).scalar() is True
            gone = sa.text("SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = :p")
            assert _wait_for(lambda: c.execute(gone, {"p": pid}).scalar())
    finally:
        admin.dispose()


_ONE = select(sa.literal(1, sa.Integer).label("one"))  # a prepared read, as the page loads make (db.fetch)


@pytest.mark.postgres
@pytest.mark.parametrize("how", ["execute", "fetch"])
def test_after_a_server_restart_a_recently_used_connection_fails_once_then_all_are_new(pg_url, how):
    """What the production notes promise for a connection used within PING_AFTER_IDLE_S of a restart: its
    request fails once (it is not tested first), and the pool then replaces every connection it held; also
    when that request is a page's read on the driver's cursor (db.fetch)."""
    eng = db.engine(pg_url)
    with eng.connect() as a, eng.connect() as b:  # two pooled connections, both given back just now
        pids = {a.execute(sa.text("SELECT pg_backend_pid()")).scalar(),
                b.execute(sa.text("SELECT pg_backend_pid()")).scalar()}
    for pid in pids:
        _terminate(pid)
    with pytest.raises(sa.exc.OperationalError) as failed:
        with db._reader(eng).connect() as conn:
            if how == "fetch":
                assert db._plan(_ONE, conn.dialect) is not None
                db.fetch(conn, _ONE)
            else:
                conn.execute(sa.text("SELECT 1"))
    assert failed.value.connection_invalidated
    with db._reader(eng).connect() as conn:
        assert db.fetch(conn, _ONE).scalar_one() == 1
    with eng.connect() as a, eng.connect() as b:
        now = {a.execute(sa.text("SELECT pg_backend_pid()")).scalar(),
               b.execute(sa.text("SELECT pg_backend_pid()")).scalar()}
    assert not now & pids


def test_a_database_error_never_carries_a_statements_values(demo):
    """The server logs an unexpected error's message: it must not hold the names, addresses or inquiry text a
    statement was given."""
    with pytest.raises(sa.exc.IntegrityError) as e:
        with session() as s:
            s.execute(sa.text("INSERT INTO household (id, association_id, address) VALUES (:i, :a, :x)"),
                      {"i": 1, "a": 1, "x": "旭町1条2丁目 秘密の住所"})
    assert "秘密の住所" not in str(e.value)


def test_sqlite_zeroes_what_is_deleted(demo):
    """Blanked personal data (a mailed inquiry's) does not stay readable in the database file's free space."""
    with session() as s:
        assert s.exec(sa.text("PRAGMA secure_delete")).one()[0] == 1


def _hold_write_lock(path: str, seconds: float) -> tuple[threading.Thread, threading.Event]:
    """Another connection (as another worker's would) holding SQLite's write lock for `seconds`."""
    taken = threading.Event()

    def hold():
        other = sqlite3.connect(path, timeout=0, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            taken.set()
            time.sleep(seconds)
            other.execute("ROLLBACK")
        finally:
            other.close()

    t = threading.Thread(target=hold)
    t.start()
    assert taken.wait(5)
    return t, taken


def _db_path() -> str:
    return sa.engine.make_url(db.settings_module.settings.db_url).database


def _renamed(hid: int, label: str) -> None:
    with session() as s:
        s.get(Household, hid).address = label


def _address(hid: int) -> str:
    with session() as s:
        return s.get(Household, hid).address


async def test_a_short_write_runs_on_the_event_loop_unless_another_writer_holds_the_lock(demo):
    """run_write on SQLite: on the loop when nobody else writes; when another connection holds the write lock
    it does not wait on the loop (the worker's other tabs would wait with it): it goes to a thread, waits for
    the lock there and writes once."""
    import asyncio

    from chiiki.state import run_write

    loop_thread = threading.get_ident()
    hid = _any_household(demo)
    ran_in, ran_at, ended_at = [], [], []

    def write(label):
        ran_in.append(threading.get_ident())
        ran_at.append(time.monotonic())
        try:
            _renamed(hid, label)
        finally:
            ended_at.append(time.monotonic())
        return label

    assert await run_write(write, "一") == "一"
    assert ran_in == [loop_thread] and _address(hid) == "一"

    ran_in.clear(), ran_at.clear(), ended_at.clear()
    holder, _ = _hold_write_lock(_db_path(), 0.5)
    ticks = []

    async def tick():  # another tab's work on the same loop
        for _ in range(20):
            ticks.append(time.monotonic())
            await asyncio.sleep(0.01)

    t0 = time.monotonic()
    ticker = asyncio.create_task(tick())
    assert await run_write(write, "二") == "二"
    await ticker
    holder.join()
    assert len(ran_in) == 2 and ran_in[0] == loop_thread and ran_in[1] != loop_thread  # tried, then a thread
    assert ended_at[0] - ran_at[0] < 0.1  # the attempt on the loop gave up at once ...
    assert time.monotonic() - t0 >= 0.3  # ... the thread waited for the lock ...
    assert max(b - a for a, b in zip(ticks, ticks[1:])) < 0.2  # ... and the loop went on meanwhile
    assert _address(hid) == "二"
    _assert_pool_waits_as_before()


def _assert_pool_waits_as_before() -> None:
    """Every pooled connection waits for a lock, and checkpoints at the safety net, as it did before an attempt
    without waiting used it (each is checked out at once, so that none is handed out twice)."""
    eng = db.engine()
    conns = [eng.connect() for _ in range(eng.pool.checkedin() + 1)]
    try:
        for conn in conns:
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == db.BUSY_TIMEOUT_MS
            assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == db.WAL_SAFETY_PAGES
    finally:
        for conn in conns:
            conn.close()


async def test_a_confirmation_that_found_the_lock_taken_counts_once(demo):
    """A member's 確認しました on the loop while another writer holds the lock: confirmed once in a thread, the
    circular's household counter moved by one."""
    from chiiki.models import Circular
    from chiiki.services import circulars
    from chiiki.state import run_write
    from tests.test_circular_services import send_to

    member = demo.actor("member@example.jp")
    cid = send_to(demo).circular_id
    did = circulars.open_circular(member, cid).delivery_id
    with session() as s:
        before = s.get(Circular, cid).confirmed_households
    holder, _ = _hold_write_lock(_db_path(), 0.3)
    try:
        done = await run_write(circulars.confirm, member, did)
    finally:
        holder.join()
    assert done.delivery_id == did
    with session() as s:
        assert s.get(Circular, cid).confirmed_households == before + 1
    assert circulars.open_circular(member, cid).state == "confirmed"
    _assert_pool_waits_as_before()


def test_reads_after_the_attempt_committed_wait_as_usual(demo):
    """Once the attempt committed, a failure would report an error for a write that was kept: what it reads
    after the commit waits for a lock as usual (SQLite readers rarely wait, but may)."""
    hid = _any_household(demo)
    seen = []

    def write_then_read():
        with db.reading() as conn:
            seen.append(conn.exec_driver_sql("PRAGMA busy_timeout").scalar())
        _renamed(hid, "書いてから読む")
        with db.reading() as conn:
            seen.append(conn.exec_driver_sql("PRAGMA busy_timeout").scalar())

    db.without_waiting(write_then_read)
    assert seen == [0, db.BUSY_TIMEOUT_MS]


def _any_household(demo) -> int:
    with session() as s:
        return s.exec(select(Household.id).where(Household.association_id == demo.association_id(DemoCity.A1))
                      .order_by(Household.id)).first()


def test_a_write_that_committed_before_finding_the_lock_taken_is_not_run_again(demo):
    """without_waiting raises Busy (run it again) only while nothing was committed: once a unit of work has
    committed, what follows waits for the lock as usual and the whole runs once."""
    hid = _any_household(demo)
    path = _db_path()
    runs = []

    def two_commits():
        runs.append(1)
        _renamed(hid, f"{len(runs)}回目")
        holder, _ = _hold_write_lock(path, 0.3)
        try:
            _renamed(hid, _address(hid) + "と二つ目")
        finally:
            holder.join()

    db.without_waiting(two_commits)
    assert runs == [1] and _address(hid) == "1回目と二つ目"

    def one_commit():
        runs.append(1)
        _renamed(hid, "待たずに")

    holder, _ = _hold_write_lock(path, 0.3)
    try:
        with pytest.raises(db.Busy):
            db.without_waiting(one_commit)
    finally:
        holder.join()
    assert _address(hid) == "1回目と二つ目"  # rolled back: nothing of it was kept
    db.without_waiting(one_commit)
    assert _address(hid) == "待たずに"


async def test_short_writes_go_to_a_thread_with_a_database_server(monkeypatch):
    import dataclasses

    from chiiki import settings as settings_module
    from chiiki.state import run_write

    loop_thread = threading.get_ident()
    monkeypatch.setattr(settings_module, "settings", dataclasses.replace(
        settings_module.settings, db_url="postgresql+psycopg://postgres@127.0.0.1:5432/test"))
    assert await run_write(threading.get_ident) != loop_thread
