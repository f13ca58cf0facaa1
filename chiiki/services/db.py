"""Database engine, sessions and migrations, shared by the app, the CLI and the tests."""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections import namedtuple
from contextvars import ContextVar
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from sqlalchemy import Numeric, Select, event, exc, false, func
from sqlalchemy import select as sa_select
from sqlalchemy import update as sa_update
from sqlalchemy.engine import Connection, Engine, make_url
from sqlmodel import Session, create_engine

from chiiki import settings as settings_module

_engines: dict[str, Engine] = {}


# How long a SQLite connection waits for another writer's lock before giving up (but see without_waiting).
BUSY_TIMEOUT_MS = 10000
# Pages a SQLite commit may leave in the write-ahead log before it copies them into the database file itself
# (a checkpoint, inside that request). Normally a thread does it first (_Checkpointer); this is the safety net,
# for commits that outrun the thread. A roster export of 3,000 households writes about 1,000-3,000 pages (an audit
# event per person, each on its person's index page): at 4,000 two exports a moment apart made the second one
# copy the log itself (a 40 ms commit instead of 8). 16,000 pages is a log of 64 MB at most.
WAL_SAFETY_PAGES = 16000
# Rows written since the last checkpoint after which the thread runs one (about as often as SQLite's own
# default of 1,000 pages, as a row written touches its table's page and a page of each index, often shared).
CHECKPOINT_ROWS = 1000
# How long the checkpointer lets commits gather after being woken before it runs.
CHECKPOINT_AFTER_S = 0.2


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    # WAL lets readers go on while a writer commits; foreign keys are off by default in SQLite.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute(f"PRAGMA wal_autocheckpoint={WAL_SAFETY_PAGES}")
    # Deleted and overwritten content is zeroed, not left in the file's free space (and so in its backups):
    # an inquiry's personal data is deleted once mailed. Some builds do this by default; this one may not.
    cur.execute("PRAGMA secure_delete=ON")
    cur.close()


class _Checkpointer:
    """Copies the pages commits wrote to SQLite's write-ahead log into the database file, in a thread.

    SQLite's default does it inside whichever commit takes the log past 1,000 pages (4 MB), and that request
    waits for it. An export writes about 2,000 pages (one audit event per person listed, each on the index
    page of its person), so every export paid about 20 ms for a checkpoint, and under load an unlucky
    confirmation now and then. Here commits count the rows they wrote; once CHECKPOINT_ROWS have been
    committed since the last checkpoint, this thread runs a PASSIVE one, which waits for no reader or writer.
    Should it fall behind, a commit past WAL_SAFETY_PAGES still does it itself. One per database file and
    process (a forked worker starts its own).
    """

    def __init__(self, path: str):
        self.path = path
        self.pid = os.getpid()
        self.rows = 0  # written by commits since the last checkpoint began
        self.pending = threading.Event()
        self.stopping = threading.Event()
        self.runs = 0  # checkpoints that moved every page of the log
        self.thread = threading.Thread(target=self._run, name="chiiki-wal-checkpoint", daemon=True)
        self.thread.start()

    def committed(self, rows: int) -> None:
        self.rows += rows
        if self.rows >= CHECKPOINT_ROWS:
            self.pending.set()

    def stop(self) -> None:
        self.stopping.set()
        self.pending.set()
        self.thread.join(timeout=30)
        if self.thread.is_alive():
            raise RuntimeError(f"the checkpointer of {self.path} did not stop within 30 s")

    def _run(self) -> None:
        conn = sqlite3.connect(self.path, timeout=0, isolation_level=None, check_same_thread=False)
        try:
            while True:
                self.pending.wait()
                if self.stopping.wait(CHECKPOINT_AFTER_S):  # the commits of a moment, in one checkpoint
                    return
                self.pending.clear()
                self.rows = 0
                try:
                    busy, log, moved = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                except sqlite3.Error:  # e.g. another process checkpointing: the next commits wake it again
                    continue
                if not busy and log == moved:
                    self.runs += 1
        finally:
            conn.close()


_checkpointers: dict[str, _Checkpointer] = {}
_registry = threading.Lock()  # guards _checkpointers, _closing and _engines
_closing = False  # dispose_all is closing everything: no new checkpointer meanwhile


def _count_rows(conn, cursor, _statement, _parameters, context, _executemany) -> None:
    """Rows written by this connection's transaction: the cursor's count, or where SQLite does not know it
    yet (an INSERT … RETURNING, as the ORM writes), the statement's rows, counted once however many batches
    it is sent in. Statements written as plain text are not counted (none writes much)."""
    if context is None or not (context.isinsert or context.isupdate or context.isdelete):
        return
    if cursor.rowcount > 0:
        rows = cursor.rowcount
    elif getattr(context, "_chiiki_rows_counted", False):
        return
    else:
        context._chiiki_rows_counted = True
        rows = len(context.compiled_parameters or ()) or 1
    conn.info["rows_written"] = conn.info.get("rows_written", 0) + rows


def _forget_rows(conn) -> None:
    conn.info.pop("rows_written", None)


def _on_commit(url: str, path: str):
    """SQLAlchemy calls this just before the database commits: the rows are handed to the checkpointer
    then (a commit that fails after it only wakes the thread early). It never fails the commit."""
    def commit(conn) -> None:
        rows = conn.info.pop("rows_written", 0)
        if not rows:
            return
        try:
            with _registry:
                cp = _checkpointers.get(url)
                if _closing:
                    return
                if cp is None or cp.pid != os.getpid():  # none yet, or the parent's (this is a forked worker)
                    cp = _checkpointers[url] = _Checkpointer(path)
            cp.committed(rows)
        except Exception:  # noqa: BLE001 (a missing background checkpoint only leaves it to SQLite)
            logging.getLogger(__name__).warning("SQLite checkpointer not started", exc_info=True)

    return commit


def engine(url: str | None = None) -> Engine:
    url = url or settings_module.settings.db_url
    eng = _engines.get(url)
    if eng is None:
        with _registry:  # one engine per URL, also when several threads (gather) ask at once
            eng = _engines.get(url)
            if eng is None:
                eng = _engines[url] = _new_engine(url)
    return eng


def _postgresql_options(url: str) -> dict:
    """PostgreSQL's JIT compilation off for the app's connections, unless the URL's own `options` set it.

    A send to 3,000 households is one INSERT … SELECT whose estimated cost passes jit_above_cost: compiling
    it took 40–80 ms in each new process's first sends (158, 122, then 77 ms; with jit off 90, 75, 74 ms),
    more than running it. Short statements like this app's never gain from JIT. Options the URL gives
    (`?options=-c ...`) are kept, and come first.
    """
    if not url.startswith("postgresql"):
        return {}
    given = make_url(url).query.get("options", "")
    given = " ".join(given) if isinstance(given, tuple) else given
    if "jit" in given:
        return {}
    return {"options": f"{given} -c jit=off".strip()}


# A pooled server connection unused for this long is tested before it is handed out (_ping_when_idle).
PING_AFTER_IDLE_S = 5.0


def _mark_checkin(_dbapi_conn, record) -> None:
    record.info["checked_in_at"] = time.monotonic()


def _ping_when_idle(eng: Engine) -> Callable:
    """A checkout listener testing a connection that sat in the pool for PING_AFTER_IDLE_S or more.

    pool_pre_ping tests every checkout: one more round trip for every read, which on a busy worker is also
    one more wait for the interpreter lock. The pool hands out the connection given back last
    (pool_use_lifo), so under load the same few connections go round and were alive moments ago; only
    one that waited longer (long enough for the server to restart or drop it) is tested, by the
    dialect's own ping. When the test fails, the pool replaces that connection and every older one, as
    pre-ping does. A connection used within those seconds is not tested: after a database restart the
    first request on such a connection fails, and the pool then replaces them all."""
    dialect = eng.dialect

    def ping(dbapi_conn, record, _proxy) -> None:
        since = record.info.get("checked_in_at")
        if since is None or time.monotonic() - since < PING_AFTER_IDLE_S:
            return
        try:
            dialect.do_ping(dbapi_conn)
        except Exception as e:  # noqa: BLE001 - any failure means the connection cannot be used
            raise exc.InvalidatePoolError(str(e)) from e

    return ping


# Set while without_waiting() runs a unit of work: SQLite connections checked out meanwhile do not wait for
# another writer's lock, and the commits made meanwhile are counted.
_no_wait: ContextVar[list[int] | None] = ContextVar("chiiki_no_wait", default=None)


def _no_wait_checkout(dbapi_conn, record, _proxy) -> None:
    """Before the attempt has committed anything: no waiting for another writer's lock (it is then run again in
    a thread), and no checkpoint inside a commit (_Checkpointer's thread, or a commit made in a thread, copies the
    log back; on the event loop it could take tens of milliseconds). Once it has committed, a read after the
    commit waits as usual: failing there would report an error for a write that was kept."""
    commits = _no_wait.get()
    if commits is not None and not commits[0]:
        dbapi_conn.execute("PRAGMA busy_timeout=0")
        dbapi_conn.execute("PRAGMA wal_autocheckpoint=0")
        record.info["no_wait"] = True


def _no_wait_checkin(dbapi_conn, record) -> None:
    if record.info.pop("no_wait", False) and dbapi_conn is not None:
        dbapi_conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        dbapi_conn.execute(f"PRAGMA wal_autocheckpoint={WAL_SAFETY_PAGES}")


def _no_wait_commit(_conn) -> None:
    commits = _no_wait.get()
    if commits is not None:
        commits[0] += 1


def _is_busy(e: exc.OperationalError) -> bool:
    code = getattr(e.orig, "sqlite_errorcode", None)
    return code is not None and code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


class Busy(Exception):
    """without_waiting(): another connection held SQLite's write lock, and nothing had been committed."""


def without_waiting(fn: Callable, *args, **kwargs):
    """`fn(*args, **kwargs)` on this thread, its SQLite connections not waiting for a lock another connection
    holds: Busy when one was held, before `fn` committed anything (its transaction rolled back, so it may be
    run again); any other error as raised. On a database server (never waiting on a lock here) it just runs.

    For a short bounded write made on the event loop (chiiki.state.run_write): in WAL mode a writer waits
    only for another writer, and the write itself takes well under a millisecond, less than the hand-off to
    a thread and back."""
    commits = [0]
    token = _no_wait.set(commits)
    try:
        return fn(*args, **kwargs)
    except exc.OperationalError as e:
        if _is_busy(e) and not commits[0]:
            raise Busy() from e
        raise
    finally:
        _no_wait.reset(token)


def private_sqlite_file(path: Path) -> None:
    """A SQLite database holds everyone's personal data: only the app's own user may read it. Created empty with
    that mode when missing (SQLite gives its -wal and -shm files the database file's mode); an existing one
    readable by others (made before, or copied in) is made private, with its -wal and -shm."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        return
    except FileExistsError:
        pass
    except OSError:
        return  # its folder is missing or not writable: SQLite's own error says so
    for f in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:
            st = f.stat()
            if st.st_mode & 0o077 and st.st_uid == os.geteuid():
                f.chmod(st.st_mode & 0o700)
        except OSError:  # gone meanwhile, or not ours to change
            continue


def _new_engine(url: str) -> Engine:
    # hide_parameters: a database error's message, which the server logs, never holds a statement's values
    # (names, addresses, an inquiry's text).
    if not url.startswith("sqlite"):
        eng = create_engine(url, pool_size=10, max_overflow=20, pool_use_lifo=True, hide_parameters=True,
                            connect_args=_postgresql_options(url))
        event.listen(eng, "checkin", _mark_checkin)
        event.listen(eng, "checkout", _ping_when_idle(eng))
        return eng
    # More connections than the default thread pool has threads (at most 32), so that a read run on the
    # event loop (chiiki.state.run_read) never waits for one.
    eng = create_engine(url, connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_MS / 1000},
                        pool_size=5, max_overflow=40, hide_parameters=True)
    event.listen(eng, "connect", _sqlite_pragmas)
    event.listen(eng, "checkout", _no_wait_checkout)
    event.listen(eng, "checkin", _no_wait_checkin)
    event.listen(eng, "commit", _no_wait_commit)
    parsed = make_url(url)
    if parsed.database and parsed.database != ":memory:" and "uri" not in parsed.query:
        private_sqlite_file(Path(parsed.database))
        event.listen(eng, "after_cursor_execute", _count_rows)
        event.listen(eng, "commit", _on_commit(url, parsed.database))
        event.listen(eng, "rollback", _forget_rows)
    return eng


def checkpointer(url: str | None = None) -> _Checkpointer | None:
    """This process's checkpointer of a SQLite database (once something was committed to it)."""
    cp = _checkpointers.get(url or settings_module.settings.db_url)
    return cp if cp is not None and cp.pid == os.getpid() else None


def dispose_all() -> None:
    """Close the pooled connections and the checkpointers' (their last pages copied back first, by SQLite
    on close), so that the database file may then be copied or replaced. Connections checked out elsewhere
    stay open until given back."""
    global _closing
    with _registry:
        _closing = True
        stopping = [cp for cp in _checkpointers.values() if cp.pid == os.getpid()]
        _checkpointers.clear()
    try:
        for cp in stopping:
            cp.stop()
        with _registry:
            engines = list(_engines.values())
            _engines.clear()
            _readers.clear()
        for eng in engines:
            eng.dispose()
    finally:
        with _registry:
            _closing = False


# Threads for reads that run side by side (gather). A few: on two cores more would only queue.
_side_by_side = ThreadPoolExecutor(max_workers=3, thread_name_prefix="chiiki-gather")


def _after_fork_in_child() -> None:
    """A forked process (a server worker) has none of its parent's threads: it starts a pool of its own
    instead of queueing work for threads that do not exist there, and a lock no thread of it holds."""
    global _side_by_side, _registry
    _side_by_side = ThreadPoolExecutor(max_workers=3, thread_name_prefix="chiiki-gather")
    _registry = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)
_in_gather = threading.local()


def gather(*calls: Callable | tuple) -> list:
    """Run independent reads side by side, each in a session of its own, and return their results in order.

    Each call is `fn` or `(fn, *args)`, run as `fn(session, *args)`. On PostgreSQL each connection is a server
    process of its own, so the reads use both cores; SQLite reads on separate connections without holding
    Python's lock. The calling thread runs the first call itself. Each read is consistent on its own, not
    with the others (separate transactions): for aggregates that may differ by what committed meanwhile.
    The first error (in the order given) is raised once every call has ended. Called from within a call it
    runs, it runs its calls one after the other: waiting there for the pool's threads could wait forever.
    """
    def run(call):
        fn, *args = call if isinstance(call, tuple) else (call,)
        with session() as s:
            return fn(s, *args)

    def beside(call):
        _in_gather.active = True
        try:
            return run(call)
        finally:
            _in_gather.active = False

    if getattr(_in_gather, "active", False):
        return [run(call) for call in calls]
    futures = [_side_by_side.submit(beside, call) for call in calls[1:]]
    try:
        first = run(calls[0])
    finally:
        wait(futures)
    return [first, *(f.result() for f in futures)]


@contextmanager
def session() -> Iterator[Session]:
    """One unit of work: commits on success, rolls everything back on any error."""
    with Session(engine(), expire_on_commit=False) as s:
        try:
            yield s
            s.commit()
        except BaseException:
            s.rollback()
            raise


def lock_row(s: Session, model, row_id: int) -> None:
    """Serialize writers of one thing (a person's memberships, an association's officers) until the
    transaction ends, so that a check and the write it allows see what a concurrent request did. PostgreSQL:
    the row FOR NO KEY UPDATE (rows that refer to it can still be written); SQLite: the database's write lock,
    taken now rather than at the transaction's first write (an UPDATE that matches no row: it writes nothing,
    and no foreign key of the row is checked)."""
    if s.get_bind().dialect.name == "postgresql":
        s.execute(sa_select(model.id).where(model.id == row_id).with_for_update(key_share=True))
    else:
        s.execute(sa_update(model).where(false()).values(id=model.id))


def lock_name(s: Session, model, name: str) -> None:
    """lock_row for a thing with no row of its own (e.g. one sender's count of inquiries), named by `name`:
    PostgreSQL: a transaction-level advisory lock on the name's hash; SQLite: the database's write lock (as
    lock_row does, with an UPDATE of `model` that matches no row)."""
    if s.get_bind().dialect.name == "postgresql":
        s.execute(sa_select(func.pg_advisory_xact_lock(func.hashtextextended(name, 0))))
    else:
        s.execute(sa_update(model).where(false()).values(id=model.id))


def fetch_in(s: Session, statement, params: dict | None = None) -> "Rows":
    """fetch() within a unit of work, on the session's connection, after flushing what the session holds (a
    query through the session would flush first too; a Core statement does not)."""
    s.flush()
    return fetch(s.connection(), statement, params)


_readers: dict[Engine, Engine] = {}


def _reader(eng: Engine) -> Engine:
    """The engine reading() takes its connections from: on PostgreSQL the same pool in autocommit mode.

    At PostgreSQL's READ COMMITTED level every statement sees the data committed before it began, in a
    transaction or not, so a read of a few statements shows the same either way; without the transaction it
    saves the BEGIN and the ROLLBACK a pooled connection otherwise costs (accounts.actor_for_token, the
    session check with its checkout, on a city-sized database: 1.94 -> 0.81 ms). SQLite's driver opens no
    transaction for a SELECT anyway."""
    reader = _readers.get(eng)
    if reader is None:
        reader = eng.execution_options(isolation_level="AUTOCOMMIT") if eng.dialect.name == "postgresql" else eng
        with _registry:
            if any(e is eng for e in _engines.values()):  # not one dispose_all() let go of meanwhile
                _readers[eng] = reader
    return reader


@contextmanager
def reading() -> Iterator[Connection]:
    """A read of prepared Core statements that needs no ORM session (the session check and the badges, on
    every event, a page of a list): a pooled connection, about half the bookkeeping of session() for one
    statement. Reads only: on PostgreSQL it runs outside a transaction (_reader)."""
    with _reader(engine()).connect() as conn:
        yield conn


class Rows(list):
    """The rows fetch() gives, with the ways of reading them the callers use on SQLAlchemy's results."""

    def all(self) -> list:
        return list(self)

    def first(self):
        return self[0] if self else None

    def one(self):
        if len(self) != 1:
            raise exc.NoResultFound("No row was found when one was required") if not self else \
                exc.MultipleResultsFound("Multiple rows were found when exactly one was required")
        return self[0]

    def scalar_one(self):
        return self.one()[0]

    def scalars(self) -> list:
        return [r[0] for r in self]


class _Plan:
    """A prepared SELECT compiled once for one dialect: its SQL, how its parameters are bound and how the
    values of its columns are read (SQLAlchemy's own bind and result processors of the column types)."""

    __slots__ = ("statement", "sql", "escaped", "order", "defaults", "names", "binds", "row", "results")

    def __init__(self, statement, dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        self.statement = statement
        self.sql = compiled.string
        self.escaped = bool(compiled.escaped_bind_names)
        self.order = tuple(compiled.positiontup) if compiled.positional else None
        self.defaults = {name: bp.effective_value for name, bp in compiled.binds.items() if not bp.required}
        self.names = tuple(compiled.binds)
        self.binds = tuple((name, proc) for name, bp in compiled.binds.items()
                           if (proc := bp.type.dialect_impl(dialect).bind_processor(dialect)) is not None)
        columns = statement.selected_columns
        self.row = namedtuple("Row", [k if k.isidentifier() else f"_{i}" for i, k in enumerate(columns.keys())],
                              rename=True)
        procs = (c.type.dialect_impl(dialect).result_processor(dialect, None) for c in columns)
        self.results = tuple((i, p) for i, p in enumerate(procs) if p is not None)

    def bound(self, params: dict | None):
        """The driver's parameters: the given values (the statement's own bound values by default), each
        through its type's bind processor, in the driver's order."""
        given = params or {}
        values = {}
        for name in self.names:
            if name in given:
                values[name] = given[name]
            elif name in self.defaults:
                values[name] = self.defaults[name]
            else:
                raise exc.InvalidRequestError(f"A value is required for bind parameter {name!r}")
        for name, proc in self.binds:
            values[name] = proc(values[name])
        return values if self.order is None else tuple(values[name] for name in self.order)

    def rows(self, raw: list) -> list:
        make, procs = self.row._make, self.results
        if not procs:
            return [make(r) for r in raw]
        out = []
        for r in raw:
            r = list(r)
            for i, p in procs:
                if r[i] is not None:
                    r[i] = p(r[i])
            out.append(make(r))
        return out


# (statement, dialect, the plan or None) by the identities of the statement and of the engine's dialect; the
# statements are module-level or cached by their builders, so this stays small (and is emptied should it ever
# grow past that).
_plans: dict[tuple[int, int], tuple[object, object, _Plan | None]] = {}
_PLANS_MAX = 1000


def _plan(statement, dialect) -> _Plan | None:
    key = (id(statement), id(dialect))
    hit = _plans.get(key)
    if hit is not None and hit[0] is statement and hit[1] is dialect:
        return hit[2]
    plan = None
    # Numeric columns: the driver's processors need the type the cursor reports (SQLAlchemy's path knows it).
    if isinstance(statement, Select) and not any(isinstance(c.type, Numeric) for c in statement.selected_columns):
        plan = _Plan(statement, dialect)
        if "POSTCOMPILE" in plan.sql or plan.escaped:
            # Expanding IN (…) parameters are rendered per execution, escaped parameter names are renamed per
            # execution: SQLAlchemy's own path for those.
            plan = None
    if len(_plans) >= _PLANS_MAX:
        _plans.clear()
    _plans[key] = (statement, dialect, plan)
    return plan


def fetch(conn: Connection, statement, params: dict | None = None) -> Rows:
    """The rows of a prepared SELECT (a module-level Core statement with bindparam()s), as named tuples.

    The same statement, values and types as `conn.execute(statement, params).all()`, compiled once per
    database and run on the connection's own driver cursor: for the reads made on every page load (the
    session check, the badges, a page of a list) SQLAlchemy's per-execution work (cache key, parameter
    and result set-up, events) cost several times the database's own (≈100 against ≈15 µs for the
    session check on SQLite). Anything else than a SELECT, and a SELECT with expanding IN parameters or
    Numeric columns, takes SQLAlchemy's path. A database error comes as from conn.execute()."""
    plan = _plan(statement, conn.dialect)
    if plan is None:
        return Rows(conn.execute(statement, params or {}).all())
    bound = plan.bound(params)
    cursor = conn.connection.cursor()
    try:
        cursor.execute(plan.sql, bound)
        raw = cursor.fetchall()
    except conn.dialect.loaded_dbapi.Error as e:
        # As conn.execute() would: SQLAlchemy's exception, and a lost connection invalidated with the pool's
        # older ones (after a database restart the request fails once, then the pool holds new connections).
        conn._handle_dbapi_exception(e, plan.sql, bound, cursor, None)
    cursor.close()
    return Rows(plan.rows(raw))


def fetch_one(conn: Connection, statement, params: dict | None = None):
    """The one row of a prepared SELECT (fetch); exc.NoResultFound / MultipleResultsFound otherwise, as .one()."""
    return fetch(conn, statement, params).one()


class ReadOnlySession(RuntimeError):
    """A write was attempted in a reading_session()."""


class _ReadingSession(Session):
    """The session reading_session() gives: its flushes are checked once, by the class (below)."""


@event.listens_for(_ReadingSession, "before_flush")
def _refuse_writes(s: Session, _context, _instances) -> None:
    if s.new or s.dirty or s.deleted:
        raise ReadOnlySession("reading_session() is for reads: write in session()")


@contextmanager
def reading_session() -> Iterator[Session]:
    """An ORM session for a read that needs the model objects (a page built from several tables), on the
    connections reading() uses. Reads only: on PostgreSQL there is no transaction that could take a write
    back, so a flush with anything to write is refused (ReadOnlySession) on every database alike."""
    with _ReadingSession(_reader(engine()), expire_on_commit=False, autoflush=False) as s:
        yield s


def alembic_config(url: str | None = None):
    from alembic.config import Config

    root = Path(__file__).resolve().parents[2]
    cfg = Config()
    cfg.set_main_option("script_location", str(root / "alembic"))
    cfg.set_main_option("sqlalchemy.url", (url or settings_module.settings.db_url).replace("%", "%%"))
    return cfg


def migrate(url: str | None = None) -> None:
    """Bring the schema to the newest migration (a deploy step; never run at import time)."""
    from alembic import command

    command.upgrade(alembic_config(url), "head")
