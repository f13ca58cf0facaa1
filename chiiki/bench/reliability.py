"""Reliability under load: every circular confirmation the server acknowledged is stored exactly once,
also when a worker process is killed in the middle of the run.

    python -m chiiki.bench.reliability --seconds 60 --clients 60 --kill-worker-at 30

Without --db it creates a PostgreSQL database on 127.0.0.1:5432, fills it with a small synthetic city
(chiiki.scale, --scale 0.02), and drops it at the end; the app runs as in production (``reflex run
--env prod``, granian with --workers processes, the Redis state manager on --redis, flushed before and
after). Before the run, the 会長 of the biggest association sends --fresh-circulars circulars and opens a
named survey, so that every resident has enough to confirm.

Each client is a browser tab (chiiki.bench.load.ReflexClient): it logs in through the login form as a
distinct resident, then, between think pauses, opens the inbox (unconfirmed filter) and confirms
circulars (open the circular, press 確認しました), answers the survey, or reads other pages. A
confirmation counts as acknowledged when a state delta shows that delivery confirmed without an error.

--kill-worker-at T sends SIGKILL to one granian worker (a child of the app's process, the one holding
most connections) T seconds into the run. Clients whose socket drops reconnect (same token: the tab's
state is in Redis) and carry on; a confirmation whose answer was lost with the connection is checked by
opening the circular again, as a person would, and pressed again only if it is not confirmed. Should the
whole server stop instead, it is started again on the same database and Redis (unless --no-restart) and
the report says so.

At the end the database is checked: every acknowledged confirmation is there once (confirmed, by that
account, not on behalf), no delivery is duplicated, every confirmation written in the run was either
acknowledged or in flight on a lost connection, each circular's delivery states changed only by those,
circulars.status() agrees with a recount, and the household counters on Circular (where the model has
them) equal the recount. Survey answers are checked the same way (one response and one participation per
account). Exit code 0 when all of that holds and no unexpected error happened, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import signal
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Callable

from chiiki.bench import load

PG_ADMIN_URL = os.environ.get("CHIIKI_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/test")
PG_HOST = "postgres@127.0.0.1:5432"
DEFAULT_REDIS = "redis://127.0.0.1:6379/8"
RAMP = 0.05  # seconds between two clients' first connection (logins pay bcrypt)
LOGIN_TIMEOUT = 90.0


# --------------------------------------------------------------------------- the app's event names


@dataclass(frozen=True)
class Names:
    """Full state names, event names and paths the clients use, taken from the app's own classes."""

    auth: str
    login: str
    login_submit: str
    session_cookie: str
    lang_cookie: str
    inbox: str
    inbox_search: str
    circular: str
    circular_confirm: str
    circulars_path: str
    view_path: str
    survey: str
    survey_submit: str
    survey_path: str
    reads: tuple[str, ...]


def names() -> Names:
    from chiiki import routes
    from chiiki.pages.auth import LoginState
    from chiiki.pages.circulars import CIRCULAR_VIEW, CircularState, InboxState
    from chiiki.pages.surveys import SURVEY_ANSWER, SurveyAnswerState
    from chiiki.state import LANG_COOKIE, SESSION_COOKIE, AuthState

    for state, handler in ((LoginState, "submit"), (InboxState, "search"), (CircularState, "confirm"),
                           (SurveyAnswerState, "submit")):
        if handler not in state.event_handlers:
            raise RuntimeError(f"{state.__name__}.{handler} is gone: chiiki/bench/reliability.py needs updating")
    auth = AuthState.get_full_name()
    return Names(
        auth=auth, login=LoginState.get_full_name(), login_submit=f"{LoginState.get_full_name()}.submit",
        session_cookie=SESSION_COOKIE, lang_cookie=LANG_COOKIE,
        inbox=InboxState.get_full_name(), inbox_search=f"{InboxState.get_full_name()}.search",
        circular=CircularState.get_full_name(), circular_confirm=f"{CircularState.get_full_name()}.confirm",
        circulars_path=routes.CIRCULARS, view_path=CIRCULAR_VIEW,
        survey=SurveyAnswerState.get_full_name(), survey_submit=f"{SurveyAnswerState.get_full_name()}.submit",
        survey_path=SURVEY_ANSWER, reads=(routes.MYPAGE, routes.NOTICES, routes.BOARD),
    )


# --------------------------------------------------------------------------- the city and the plan


@contextlib.contextmanager
def using_db(url: str):
    """Point chiiki.services at `url` for the block (the settings are read from REFLEX_DB_URL)."""
    from chiiki import settings as settings_module
    from chiiki.services import db

    old = os.environ.get("REFLEX_DB_URL")
    os.environ["REFLEX_DB_URL"] = url
    settings_module.reload()
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            db.engine(url).dispose()
        db._engines.pop(url, None)
        if old is None:
            os.environ.pop("REFLEX_DB_URL", None)
        else:
            os.environ["REFLEX_DB_URL"] = old
        settings_module.reload()


def create_pg_database(admin_url: str = PG_ADMIN_URL, prefix: str = "chiiki_reliability"
                       ) -> tuple[str, Callable[[], None]]:
    """A new empty PostgreSQL database on loopback; returns its SQLAlchemy URL and a function dropping it."""
    import psycopg

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return f"postgresql+psycopg://{PG_HOST}/{name}", drop


def flush_redis(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
    finally:
        client.close()


def seed_city(db_url: str, scale: float = 0.02, seed: int = 1, progress: Callable[[str], None] = print) -> None:
    """Migrate and fill an empty database with the synthetic city (as `chiiki.cli seed-city`)."""
    from chiiki.scale import generate_city

    generate_city(db_url, seed=seed, scale=scale, progress=lambda _line: None)
    progress(f"[reliability] synthetic city at scale {scale} (seed {seed}) in {db_url.rsplit('/', 1)[-1]}")


@dataclass(frozen=True)
class Person:
    account_id: int
    login: str
    household_id: int


@dataclass
class Setup:
    """Who logs in, what there is to confirm, and the delivery states before the run."""

    db_url: str
    association_id: int
    president_id: int
    people: list[Person]
    password: str
    survey_id: int | None
    fresh_circulars: list[int]
    circular_ids: list[int]
    confirmed_before: set[int]  # delivery ids of the association confirmed before the run
    counters_before: dict[int, dict[str, int]]  # circular id -> counter column -> value
    recount_before: dict[int, dict[str, int]]


def counter_columns() -> list[str]:
    """Household counter columns the Circular model has now (none before they were added)."""
    from chiiki.models import Circular

    cols = [c.name for c in Circular.__table__.columns]
    return [c for c in cols if c != "household_count" and ("confirm" in c or "read" in c or "reached" in c)] + (
        ["household_count"] if "household_count" in cols else [])


# Which recount a counter column is compared with.
def _recount_key(column: str) -> str:
    if "confirm" in column or "reached" in column:
        return "confirmed_households"
    if "read" in column:
        return "read_households"
    return "households"


def recount(conn, circular_ids: list[int]) -> dict[int, dict[str, int]]:
    """Households per circular (all, any delivery read or confirmed, any confirmed), straight from deliveries."""
    import sqlalchemy as sa

    if not circular_ids:
        return {}
    rows = conn.execute(sa.text(
        "SELECT circular_id, count(DISTINCT household_id), "
        "count(DISTINCT CASE WHEN state <> 'unread' THEN household_id END), "
        "count(DISTINCT CASE WHEN state = 'confirmed' THEN household_id END), "
        "count(*) FILTER (WHERE state = 'confirmed') "
        "FROM delivery WHERE circular_id = ANY(:ids) GROUP BY circular_id"
        if conn.dialect.name == "postgresql" else
        "SELECT circular_id, count(DISTINCT household_id), "
        "count(DISTINCT CASE WHEN state <> 'unread' THEN household_id END), "
        "count(DISTINCT CASE WHEN state = 'confirmed' THEN household_id END), "
        "sum(CASE WHEN state = 'confirmed' THEN 1 ELSE 0 END) "
        "FROM delivery WHERE circular_id IN (" + ",".join(str(int(i)) for i in circular_ids) + ") "
        "GROUP BY circular_id"), {"ids": list(circular_ids)}).all()
    out = {cid: {"households": 0, "read_households": 0, "confirmed_households": 0, "confirmed_deliveries": 0}
           for cid in circular_ids}
    for cid, n, read, confirmed, deliveries in rows:
        out[cid] = {"households": n, "read_households": read, "confirmed_households": confirmed,
                    "confirmed_deliveries": int(deliveries or 0)}
    return out


def read_counters(conn, circular_ids: list[int]) -> dict[int, dict[str, int]]:
    import sqlalchemy as sa

    cols = counter_columns()
    if not cols or not circular_ids:
        return {}
    rows = conn.execute(sa.text(f"SELECT id, {', '.join(cols)} FROM circular WHERE id IN "
                                f"({','.join(str(int(i)) for i in circular_ids)})")).all()
    return {r[0]: dict(zip(cols, r[1:])) for r in rows}


def prepare(db_url: str, clients: int, *, fresh_circulars: int = 10, seed: int = 1,
            progress: Callable[[str], None] = print) -> Setup:
    """Pick `clients` residents of the biggest association, send fresh circulars and open a survey."""
    import sqlalchemy as sa

    from chiiki.models import utcnow
    from chiiki.scale import PASSWORD
    from chiiki.services import accounts, circulars, surveys
    from chiiki.services.db import engine, session

    with using_db(db_url):
        eng = engine()
        with eng.connect() as conn:
            q = lambda sql, **kw: conn.execute(sa.text(sql), kw)  # noqa: E731
            aid = q("SELECT association_id FROM household GROUP BY association_id "
                    "ORDER BY count(*) DESC, association_id LIMIT 1").scalar()
            roles = q("SELECT o.title, m.account_id FROM officerrole o JOIN membership m ON m.id = o.membership_id "
                      "WHERE o.association_id = :a AND o.revoked_at IS NULL ORDER BY o.id", a=aid).all()
            president = next(acc for title, acc in roles if title == "会長")
            officers = {acc for _t, acc in roles}
            members = q("SELECT a.id, a.login_id, m.household_id FROM membership m JOIN account a "
                        "ON a.id = m.account_id WHERE m.association_id = :a AND m.status = 'active' "
                        "AND a.deleted_at IS NULL ORDER BY a.id", a=aid).all()
        pool = [Person(acc, login, hh) for acc, login, hh in members if acc not in officers]
        if len(pool) < clients:
            raise SystemExit(f"the biggest association has {len(pool)} members besides its officers; "
                             f"{clients} clients need a bigger --scale")
        people = sorted(random.Random(seed).sample(pool, clients), key=lambda p: p.account_id)
        with session() as s:
            boss = accounts.load_actor_in(s, president)
        fresh = []
        for i in range(fresh_circulars):
            res = circulars.send(boss, aid, {"title": f"信頼性確認の回覧 {i + 1}",
                                             "body": "負荷試験用の回覧です。確認しましたを押してください。",
                                             "target_all": True})
            fresh.append(res.circular_id)
        survey_id = None
        try:
            from chiiki.i18n import TZ

            deadline = (utcnow() + timedelta(days=7)).astimezone(TZ).strftime("%Y-%m-%dT%H:%M")
            survey_id = surveys.create_survey(boss, aid, {
                "kind": "general", "title": "信頼性確認アンケート", "description": "負荷試験用",
                "deadline": deadline, "target_all": True,
                "questions": [{"kind": "single", "text": "参加しますか", "required": True,
                               "options": ["はい", "いいえ", "未定"]}]})
        except Exception as e:  # noqa: BLE001 (the run goes on with circulars only, and says so)
            progress(f"[reliability] note: no survey ({type(e).__name__}: {e})")
        with eng.connect() as conn:
            ids = [r[0] for r in conn.execute(sa.text(
                "SELECT id FROM circular WHERE association_id = :a AND status = 'sent' ORDER BY id"), {"a": aid})]
            confirmed = {r[0] for r in conn.execute(sa.text(
                "SELECT d.id FROM delivery d JOIN circular c ON c.id = d.circular_id "
                "WHERE c.association_id = :a AND d.state = 'confirmed'"), {"a": aid})}
            counters = read_counters(conn, ids)
            counted = recount(conn, ids)
    progress(f"[reliability] association {aid}: {len(pool)} members, {clients} log in; {len(fresh)} fresh "
             f"circulars sent, survey {survey_id or 'not created'}; {len(ids)} circulars, "
             f"{len(confirmed)} deliveries confirmed before the run")
    return Setup(db_url, aid, president, people, PASSWORD, survey_id, fresh, ids, confirmed, counters, counted)


# --------------------------------------------------------------------------- the server under test


@dataclass
class Target:
    """The running app as the driver sees it; `restart` starts it again on the same database and Redis."""

    url: str
    leader_pid: Callable[[], int | None]
    alive: Callable[[], bool]
    restart: Callable[[], "Target"] | None = None
    log: Callable[[], str] | None = None  # the server's output so far (of every instance), for the report

    @property
    def port(self) -> int:
        return urllib.parse.urlsplit(self.url).port or 80


def workers_of(target: Target) -> list[tuple[int, int]]:
    """(pid, established connections on the app's port) of each worker process, most connections first."""
    import psutil

    pid = target.leader_pid()
    if not pid:
        return []
    try:
        children = psutil.Process(pid).children()
    except psutil.Error:
        return []
    out = []
    for child in children:
        try:
            conns = child.net_connections(kind="tcp")
        except psutil.Error:
            continue
        out.append((child.pid, sum(1 for c in conns if c.status == psutil.CONN_ESTABLISHED and c.laddr
                                   and c.laddr.port == target.port)))
    return sorted(out, key=lambda pc: -pc[1])


# --------------------------------------------------------------------------- one run


@dataclass
class Ack:
    account_id: int
    circular_id: int
    ms: float
    after_reconnect: bool = False
    at: float = 0.0  # seconds into the run


@dataclass
class KillReport:
    at: float = 0.0
    pid: int = 0
    connections: int = 0
    workers_before: int = 0
    survived: bool | None = None
    workers_after: int = 0
    restart_seconds: float | None = None
    stopped_after: float | None = None  # seconds from the kill until the whole server had stopped
    recovered_at: float | None = None  # seconds into the run when the server took connections again
    note: str = ""


@dataclass
class Run:
    """Everything the clients saw."""

    seconds: float
    clients: int
    stats: load.Stats = field(default_factory=load.Stats)
    acks: dict[int, Ack] = field(default_factory=dict)  # delivery id -> acknowledged confirmation
    double_acks: list[int] = field(default_factory=list)
    refused: list[tuple[int, str]] = field(default_factory=list)  # (delivery id, error shown) on a confirm
    in_doubt: dict[int, int] = field(default_factory=dict)  # delivery id -> account: answer lost, unresolved
    in_doubt_total: int = 0
    resolved_confirmed: int = 0  # in doubt, then found confirmed on reopening
    resolved_pressed_again: int = 0  # in doubt, found not confirmed, pressed again later
    survey_acks: Counter = field(default_factory=Counter)  # account -> acknowledged answers
    survey_in_doubt: set[int] = field(default_factory=set)
    logged_in: int = 0
    confirm_ms: list[float] = field(default_factory=list)
    expected: Counter = field(default_factory=Counter)
    unexpected: Counter = field(default_factory=Counter)
    samples: list[str] = field(default_factory=list)
    reconnected_clients: set[int] = field(default_factory=set)
    reconnects: int = 0
    gave_up: int = 0
    kill: KillReport | None = None
    wall_seconds: float = 0.0

    def error(self, kind: str, text: str = "", expected: bool = False) -> None:
        (self.expected if expected else self.unexpected)[kind] += 1
        if not expected and text and len(self.samples) < 8:
            self.samples.append(f"{kind}: {text[:240]}")


class Resident:
    """One logged-in resident's tab and what it does."""

    def __init__(self, driver: "Driver", index: int, person: Person):
        self.d = driver
        self.n = driver.n
        self.i = index
        self.who = person
        self.rng = random.Random(f"{driver.seed}:{index}")
        self.tab = load.ReflexClient(driver.target.url, cookies={self.n.lang_cookie: "ja"})
        self.queue: list[int] = []
        self.skip: set[int] = set()
        self.pending: tuple[str, int, int] | None = None  # ("confirm", circular id, delivery id) / ("survey", sid, 0)
        self.mix = load.Mix([("confirm circular", 5, self.confirm), ("open inbox", 2, self.inbox),
                             ("answer survey", 1 if driver.setup.survey_id else 0, self.answer),
                             ("read a page", 1, self.read)])

    @property
    def run(self) -> Run:
        return self.d.run

    # ----------------------------------------------------------------- actions
    async def login(self) -> None:
        n, tab = self.n, self.tab
        if tab.cookies.get(n.session_cookie):  # logged in before the connection dropped
            await self.refill()
            return
        ms, _ = await tab.call(n.login_submit, {"form": {"login_id": self.who.login, "password": self.d.setup.password}},
                               done=lambda _u: bool(tab.location or tab.var(n.login, "error")),
                               timeout=LOGIN_TIMEOUT)
        if not tab.location:
            raise RuntimeError(f"login refused: {tab.var(n.login, 'error')}")
        # The page load that stores the HttpOnly session cookie, then the home page it leads to.
        ms += await tab.follow_handoff()
        if not tab.cookies.get(n.session_cookie):
            raise RuntimeError("login gave the browser no session cookie")
        self.d.stats_add("login", ms)
        self.run.logged_in += 1
        await self.refill()

    async def refill(self) -> None:
        n, tab = self.n, self.tab
        self.d.stats_add("open inbox", await tab.navigate(n.circulars_path))
        ms, _ = await tab.call(n.inbox_search, {"form": {"q": "", "filter": "unconfirmed", "year": ""}},
                               done=lambda u: n.inbox in (u.get("delta") or {}))
        self.d.stats_add("inbox unconfirmed", ms)
        items = tab.var(n.inbox, "items") or []
        self.queue = [int(it["id"]) for it in items
                      if it.get("state") != "confirmed" and int(it["id"]) not in self.skip]

    async def inbox(self) -> None:
        await self.refill()

    async def read(self) -> None:
        path = self.rng.choice(self.n.reads)
        self.d.stats_add("read a page", await self.tab.navigate(path))

    async def confirm(self) -> None:
        n, tab = self.n, self.tab
        if not self.queue:
            await self.refill()
            if not self.queue:
                return
        cid = self.queue.pop(0)
        self.d.stats_add("open circular", await tab.navigate(f"{n.view_path}?id={cid}"))
        did, state = tab.var(n.circular, "delivery_id"), tab.var(n.circular, "state")
        if tab.var(n.circular, "cid") != cid or not did:
            self.skip.add(cid)
            self.run.error("open circular: no own delivery", f"circular {cid}: {tab.var(n.circular, 'error')}")
            return
        if state == "confirmed":
            self.skip.add(cid)
            return
        self.pending = ("confirm", cid, did)
        toasts = len(tab.problems)
        # The confirmation's own answer carries a notice or an error: a delta of the circular that says
        # neither is a page load's (one still on its way when the page counted as loaded, e.g. after a
        # reconnect), not the answer to this tap.
        ms, seen = await tab.call(n.circular_confirm, done=lambda u: len(tab.problems) > toasts or any(
            (u.get("delta") or {}).get(n.circular, {}).get(f"{v}_rx_state_") for v in ("notice", "error")))
        self.pending = None
        self.skip.add(cid)
        if not any(n.circular in (u.get("delta") or {}) for u in seen):
            return  # the handler failed: the server's error toast is counted at the end
        self._judge_confirm(cid, did, ms, after_reconnect=False, seen=seen)

    def _judge_confirm(self, cid: int, did: int, ms: float, after_reconnect: bool, seen: list | None = None) -> None:
        n, tab = self.n, self.tab
        state, error = tab.var(n.circular, "state"), tab.var(n.circular, "error")
        if state == "confirmed" and tab.var(n.circular, "delivery_id") == did and not error:
            if did in self.run.acks:
                self.run.double_acks.append(did)
            else:
                self.run.acks[did] = Ack(self.who.account_id, cid, ms, after_reconnect,
                                         time.perf_counter() - self.d.t0)
            if not after_reconnect:
                self.run.confirm_ms.append(ms)
                self.d.stats_add("confirm circular", ms)
        elif error:
            self.run.refused.append((did, str(error)))
            self.run.error("confirm refused", f"delivery {did}: {error}")
        else:
            # Which of the circular's vars each answer seen since the tap changed (to tell whose answer it was).
            answers = [sorted(k.removesuffix("_rx_state_") for k in (u.get("delta") or {}).get(n.circular, {}))
                       for u in seen or ()]
            self.run.error("confirm: no confirmed state", f"delivery {did}: state {state!r}; answers {answers}")

    async def answer(self) -> None:
        n, tab, sid = self.n, self.tab, self.d.setup.survey_id
        if not sid:
            return
        self.d.stats_add("open survey", await tab.navigate(f"{n.survey_path}?id={sid}"))
        questions = tab.var(n.survey, "questions") or []
        if not tab.var(n.survey, "can_answer") or not questions:
            return
        form = {f"q{q['id']}": self.rng.choice(q["options"])["id"] for q in questions if q.get("options")}
        self.pending = ("survey", sid, 0)
        toasts = len(tab.problems)
        ms, _ = await tab.call(n.survey_submit, {"form": form},
                               done=lambda u: len(tab.problems) > toasts or n.survey in (u.get("delta") or {}) and bool(
                                   tab.var(n.survey, "notice") or tab.var(n.survey, "error")))
        self.pending = None
        if len(tab.problems) > toasts:
            return  # the handler failed: the server's error toast is counted at the end
        if tab.var(n.survey, "notice") and not tab.var(n.survey, "error") and tab.var(n.survey, "answered"):
            self.run.survey_acks[self.who.account_id] += 1
            self.d.stats_add("answer survey", ms)
        else:
            self.run.error("survey answer refused", str(tab.var(n.survey, "error")))

    async def resolve(self) -> None:
        """After a reconnect: what became of the event whose answer was lost? Look, as a person would."""
        kind, ident, did = self.pending
        n, tab = self.n, self.tab
        if kind == "survey":
            await tab.navigate(f"{n.survey_path}?id={ident}")
            if tab.var(n.survey, "answered"):
                self.run.survey_acks[self.who.account_id] += 1
            self.run.survey_in_doubt.discard(self.who.account_id)
            self.pending = None
            return
        await tab.navigate(f"{n.view_path}?id={ident}")
        self.pending = None
        self.run.in_doubt.pop(did, None)
        if tab.var(n.circular, "delivery_id") == did and tab.var(n.circular, "state") == "confirmed":
            self.run.resolved_confirmed += 1
            self._judge_confirm(ident, did, 0.0, after_reconnect=True)
        else:
            self.run.resolved_pressed_again += 1
            self.skip.discard(ident)
            self.queue.insert(0, ident)

    # ----------------------------------------------------------------- the loop
    async def guarded(self, name: str, fn) -> None:
        try:
            await fn()
        except (ConnectionError, TimeoutError, OSError) as e:
            lost = not self.tab.sio.connected
            if self.pending:  # sent, answer never seen: in doubt until the tab looks again (resolve)
                kind, _ident, did = self.pending
                if kind == "confirm":
                    if did not in self.run.in_doubt:
                        self.run.in_doubt_total += 1
                    self.run.in_doubt[did] = self.who.account_id
                else:
                    self.run.survey_in_doubt.add(self.who.account_id)
            self.run.error(f"{name}: {type(e).__name__}" + (" (connection lost)" if lost else ""), str(e),
                           expected=lost)
        except Exception as e:  # noqa: BLE001 (every failure is counted)
            self.run.error(f"{name}: {type(e).__name__}", str(e))

    async def recover(self) -> bool:
        deadline = max(self.d.stop_at, time.perf_counter()) + self.d.grace
        try:
            ms = await self.tab.reconnect(deadline=deadline, keep_trying=lambda: not self.d.server_gone)
        except ConnectionError as e:
            self.run.gave_up += 1
            self.run.error("reconnect failed", str(e))
            return False
        self.run.reconnects += 1
        self.run.reconnected_clients.add(self.i)
        self.d.stats_add("reconnect", ms)
        return True

    async def main(self) -> None:
        await asyncio.sleep(self.i * RAMP)
        try:
            self.d.stats_add("connect+hydrate", await self.tab.connect("/login"))
        except Exception as e:  # noqa: BLE001
            self.run.error(f"connect: {type(e).__name__}", str(e))
            return
        for _attempt in range(3):
            try:
                await self.login()
                break
            except Exception as e:  # noqa: BLE001
                # The handoff's page load can also meet the killed worker (an HTTP error, not a socket one).
                lost = not self.tab.sio.connected or isinstance(e, urllib.error.URLError)
                self.run.error(f"login: {type(e).__name__}" + (" (connection lost)" if lost else ""), str(e),
                               expected=lost)
                if not lost or not await self.recover():
                    return
        else:
            return
        think = self.d.think
        while time.perf_counter() < self.d.stop_at:
            if not self.tab.sio.connected:
                if not await self.recover():
                    return
                continue
            if self.pending:
                await self.guarded("resolve after reconnect", self.resolve)
                continue
            await asyncio.sleep(self.rng.expovariate(1 / think) if think else 0)
            if time.perf_counter() >= self.d.stop_at:
                break
            name, fn = self.mix.pick(self.rng)
            await self.guarded(name, fn)
        # An answer lost at the very end: look once more, so that little stays in doubt.
        if self.pending and (self.tab.sio.connected or await self.recover()):
            await self.guarded("resolve after reconnect", self.resolve)
        for text in self.tab.problems:
            self.run.error("server error toast", text)


class Driver:
    def __init__(self, target: Target, setup: Setup, *, seconds: float, think: float = 1.0,
                 kill_worker_at: float | None = None, seed: int = 1, grace: float = 180.0,
                 after_recovery: float = 5.0, progress: Callable[[str], None] = print):
        self.target = target
        self.setup = setup
        self.n = names()
        self.seconds = seconds
        self.think = think
        self.kill_at = kill_worker_at
        self.seed = seed
        self.grace = grace
        self.after_recovery = after_recovery
        self.progress = progress
        self.run = Run(seconds, len(setup.people))
        self.residents: list[Resident] = []
        self.t0 = 0.0
        self.stop_at = 0.0
        self.server_gone = False  # stopped and not coming back: clients stop trying to reconnect
        self.finished = False  # every client is done

    def stats_add(self, name: str, ms: float) -> None:
        self.run.stats.add(name, ms)

    async def killer(self) -> None:
        assert self.kill_at is not None
        await asyncio.sleep(max(0.0, self.t0 + self.kill_at - time.perf_counter()))
        report = self.run.kill = KillReport(at=time.perf_counter() - self.t0)
        workers = workers_of(self.target)
        report.workers_before = len(workers)
        if not workers:
            report.note = "no worker process found"
            self.progress("[reliability] kill: no worker process found under the app's process")
            return
        report.pid, report.connections = workers[0]
        os.kill(report.pid, signal.SIGKILL)
        self.progress(f"[reliability] {report.at:.1f} s: SIGKILL to worker {report.pid} "
                      f"({report.connections} connections; {len(workers)} workers)")
        killed_at = time.perf_counter()
        # Watch the server until the clients are done: granian may take a while to stop its other workers.
        while not self.finished:
            if not self.target.alive():
                report.survived = False
                report.stopped_after = time.perf_counter() - killed_at
                break
            if report.survived is None and time.perf_counter() - killed_at >= 5:
                report.survived = True  # so far
                report.workers_after = len(workers_of(self.target))
                report.recovered_at = time.perf_counter() - self.t0
                self.stop_at = max(self.stop_at, time.perf_counter() + self.after_recovery)
                self.progress(f"[reliability] the server is still up 5 s after the kill, "
                              f"{report.workers_after} workers")
            await asyncio.sleep(0.25)
        if report.survived is not False:
            return
        self.progress(f"[reliability] the whole server stopped {report.stopped_after:.1f} s after one worker "
                      f"was killed")
        if self.target.restart is None:
            report.note = "not restarted"
            self.server_gone = True
            return
        t = time.perf_counter()
        try:
            self.target = await asyncio.to_thread(self.target.restart)
        except BaseException as e:
            report.note = f"restart failed: {type(e).__name__}: {str(e)[:300]}"
            self.server_gone = True
            raise
        report.restart_seconds = time.perf_counter() - t
        for r in self.residents:
            r.tab.base_url = self.target.url
        report.recovered_at = time.perf_counter() - self.t0
        self.progress(f"[reliability] restarted on {self.target.url} in {report.restart_seconds:.1f} s")
        # Keep the load on for a while after the recovery: the run must show writes after it too.
        self.stop_at = max(self.stop_at, time.perf_counter() + self.after_recovery)

    async def drive(self) -> Run:
        self.residents = [Resident(self, i, p) for i, p in enumerate(self.setup.people)]
        started = time.perf_counter()
        # The clock of the run starts when the last client began logging in.
        self.t0 = started + len(self.residents) * RAMP
        self.stop_at = self.t0 + self.seconds
        tasks = [asyncio.create_task(r.main()) for r in self.residents]
        kill = asyncio.create_task(self.killer()) if self.kill_at is not None else None
        try:
            await asyncio.gather(*tasks)
            self.finished = True
            if kill:
                await kill
        finally:
            if kill and not kill.done():
                kill.cancel()
            await asyncio.gather(*(r.tab.close() for r in self.residents), return_exceptions=True)
        self.run.wall_seconds = time.perf_counter() - started
        return self.run


def drive(target: Target, setup: Setup, **kwargs) -> tuple[Run, Target]:
    """Run the load (in a fresh event loop); returns what the clients saw and the target at the end."""
    driver = Driver(target, setup, **kwargs)
    run = asyncio.run(driver.drive())
    return run, driver.target


# --------------------------------------------------------------------------- the checks


@dataclass
class Report:
    run: Run
    acked: int = 0
    acked_in_db: int = 0
    lost: list[int] = field(default_factory=list)
    duplicate_rows: int = 0
    double_acks: int = 0
    written_in_run: int = 0
    written_unacked: list[int] = field(default_factory=list)  # confirmed in the run, no ack: in doubt
    unexplained: list[int] = field(default_factory=list)  # confirmed in the run, neither acked nor in doubt
    reverted: list[int] = field(default_factory=list)  # confirmed before the run, not any more
    status_mismatch: list[str] = field(default_factory=list)
    counter_columns: list[str] = field(default_factory=list)
    counter_mismatch: list[str] = field(default_factory=list)
    counter_mismatch_before: int = 0
    audit_doubles: list[str] = field(default_factory=list)
    audit_confirm_events: int | None = None
    survey_acked: int = 0
    survey_in_db: int = 0
    survey_lost: list[int] = field(default_factory=list)
    survey_doubles: list[str] = field(default_factory=list)
    circulars_checked: int = 0

    @property
    def acked_after_recovery(self) -> int:
        k = self.run.kill
        if k is None or k.recovered_at is None:
            return 0
        return sum(1 for a in self.run.acks.values() if a.at > k.recovered_at)

    @property
    def problems(self) -> list[str]:
        out = []
        if self.lost:
            out.append(f"{len(self.lost)} acknowledged confirmations lost: deliveries {self.lost[:10]}")
        if self.duplicate_rows:
            out.append(f"{self.duplicate_rows} duplicated delivery rows")
        if self.double_acks or self.run.refused:
            out.append(f"confirmed twice: {self.double_acks} double acknowledgements, "
                       f"{len(self.run.refused)} presses refused as already confirmed")
        if self.unexplained:
            out.append(f"{len(self.unexplained)} confirmations written in the run that no client "
                       f"acknowledged nor had in flight: {self.unexplained[:10]}")
        if self.reverted:
            out.append(f"{len(self.reverted)} confirmations from before the run are gone: {self.reverted[:10]}")
        out += [f"status(): {m}" for m in self.status_mismatch[:10]]
        out += [f"counter: {m}" for m in self.counter_mismatch[:10]]
        out += [f"audit: {m}" for m in self.audit_doubles[:10]]
        if self.survey_lost:
            out.append(f"{len(self.survey_lost)} acknowledged survey answers lost: accounts {self.survey_lost[:10]}")
        out += [f"survey: {m}" for m in self.survey_doubles[:10]]
        if sum(self.run.unexpected.values()):
            out.append(f"{sum(self.run.unexpected.values())} unexpected errors: {dict(self.run.unexpected)}")
        if self.run.logged_in < self.run.clients:
            out.append(f"only {self.run.logged_in} of {self.run.clients} clients logged in")
        if not self.acked:
            out.append("no confirmation was acknowledged: the run proves nothing")
        return out

    @property
    def ok(self) -> bool:
        return not self.problems

    def lines(self) -> list[str]:
        r = self.run
        p = "[reliability]"
        after = sum(1 for a in r.acks.values() if a.after_reconnect)
        out = [
            f"{p} clients {r.clients} (logged in {r.logged_in}), run {r.seconds:.0f} s "
            f"(wall {r.wall_seconds:.0f} s with logins and recovery)",
            f"{p} confirmations acknowledged {self.acked} (seen confirmed on reopening after a reconnect: {after})",
            f"{p} in database {self.acked_in_db} · doubles {self.duplicate_rows + self.double_acks + len(r.refused)} "
            f"· lost {len(self.lost)} · written without acknowledgement {len(self.written_unacked)} (answer lost, "
            f"never looked at again) · unexplained {len(self.unexplained)}",
            f"{p} confirmations whose answer was lost (connection dropped or no answer) {r.in_doubt_total}: found confirmed on reopening "
            f"{r.resolved_confirmed}, not confirmed and pressed again {r.resolved_pressed_again}, "
            f"unresolved at the end {len(r.in_doubt)}",
            f"{p} circulars checked {self.circulars_checked}: status() vs recount mismatches "
            f"{len(self.status_mismatch)}; counters on Circular: "
            + (f"{', '.join(self.counter_columns)} — mismatches after the run {len(self.counter_mismatch)}"
               f" (before the run {self.counter_mismatch_before})" if self.counter_columns else "none in the model"),
            f"{p} audit events for confirmations: "
            + ("none recorded" if not self.audit_confirm_events else
               f"{self.audit_confirm_events}, doubled {len(self.audit_doubles)}"),
            f"{p} survey answers acknowledged {sum(r.survey_acks.values())} by {self.survey_acked} accounts · "
            f"in database {self.survey_in_db} accounts · doubles {len(self.survey_doubles)} · lost "
            f"{len(self.survey_lost)}",
        ]
        if r.kill:
            k = r.kill
            fate = ("the server stayed up" + (f", {k.workers_after} workers 5 s later" if k.survived else "")
                    if k.survived else f"the WHOLE server stopped {k.stopped_after or 0:.1f} s later" + (
                        f"; restarted in {k.restart_seconds:.1f} s" if k.restart_seconds is not None else
                        f"; {k.note}"))
            out.append(f"{p} worker kill at {k.at:.1f} s: pid {k.pid} with {k.connections} connections "
                       f"(of {k.workers_before} workers) -> {fate}; confirmations acknowledged after the "
                       f"recovery: {self.acked_after_recovery}")
        out.append(f"{p} reconnects: {len(r.reconnected_clients)} clients, {r.reconnects} reconnects, "
                   f"{r.gave_up} gave up")
        out.append(f"{p} errors: expected (an event on a dropped connection) {sum(r.expected.values())} "
                   f"{dict(r.expected) or ''}; unexpected {sum(r.unexpected.values())} {dict(r.unexpected) or ''}")
        out += [f"{p}   e.g. {s}" for s in r.samples]
        c = r.confirm_ms
        out.append(f"{p} confirm round trip p50 {load.percentile(c, 50):.1f} ms, p95 {load.percentile(c, 95):.1f} ms "
                   f"(n={len(c)})")
        out += [f"{p} {line}" for line in r.stats.lines("round trips")[:-1]]
        out.append(f"{p} RESULT: " + ("exactly once: every acknowledged confirmation stored once, none lost"
                                      if self.ok else "FAILED: " + "; ".join(self.problems)))
        return out


def verify(setup: Setup, run: Run) -> Report:
    """Compare what the clients were told with what the database holds."""
    import sqlalchemy as sa

    from chiiki.services import circulars
    from chiiki.services.db import engine, session

    rep = Report(run)
    rep.acked = len(run.acks)
    rep.double_acks = len(run.double_acks)
    ids = setup.circular_ids
    with using_db(setup.db_url):
        eng = engine()
        with eng.connect() as conn:
            # Every acknowledged confirmation, as stored.
            rows = {}
            acked_ids = list(run.acks)
            for start in range(0, len(acked_ids), 1000):
                chunk = acked_ids[start:start + 1000]
                for row in conn.execute(sa.text(
                        "SELECT id, circular_id, account_id, state, confirmed_at, confirmed_by, on_behalf "
                        f"FROM delivery WHERE id IN ({','.join(str(int(i)) for i in chunk)})")):
                    rows[row[0]] = row
            for did, ack in run.acks.items():
                row = rows.get(did)
                if (row is None or row.state != "confirmed" or row.confirmed_at is None
                        or row.confirmed_by != ack.account_id or row.account_id != ack.account_id or row.on_behalf
                        or row.circular_id != ack.circular_id):
                    rep.lost.append(did)
            rep.acked_in_db = rep.acked - len(rep.lost)
            # No delivery twice for the same household and account (nor twice on paper for a household).
            rep.duplicate_rows = conn.execute(sa.text(
                "SELECT count(*) FROM (SELECT circular_id, household_id, account_id FROM delivery d "
                "JOIN circular c ON c.id = d.circular_id WHERE c.association_id = :a "
                "GROUP BY circular_id, household_id, account_id HAVING count(*) > 1) x"),
                {"a": setup.association_id}).scalar()
            confirmed_now = {r[0]: (r[1], r[2]) for r in conn.execute(sa.text(
                "SELECT d.id, d.circular_id, d.confirmed_by FROM delivery d JOIN circular c ON c.id = d.circular_id "
                "WHERE c.association_id = :a AND d.state = 'confirmed'"), {"a": setup.association_id})}
            written = set(confirmed_now) - setup.confirmed_before
            rep.written_in_run = len(written)
            rep.reverted = sorted(setup.confirmed_before - set(confirmed_now))
            rep.written_unacked = sorted(d for d in written - set(run.acks) if d in run.in_doubt)
            rep.unexplained = sorted(d for d in written - set(run.acks) if d not in run.in_doubt)
            # Per circular: the recount, status(), and the counters where the model has them.
            counted = recount(conn, ids)
            counters = read_counters(conn, ids)
            rep.counter_columns = counter_columns()
            for cid in ids:
                for col, value in counters.get(cid, {}).items():
                    key = _recount_key(col)
                    want = counted[cid][key]
                    was = setup.counters_before.get(cid, {}).get(col)
                    if was is not None and was != setup.recount_before.get(cid, {}).get(key):
                        rep.counter_mismatch_before += 1
                        # Wrong before the run (e.g. rows bulk-loaded without a recount): judge the change.
                        moved, should = value - was, want - setup.recount_before[cid][key]
                        if moved != should:
                            rep.counter_mismatch.append(f"circular {cid} {col} moved {moved:+d} in the run, "
                                                        f"its households {should:+d}")
                    elif value != want:
                        rep.counter_mismatch.append(f"circular {cid} {col} = {value}, recount {want}")
            # Audit events about confirmations (none are written today): none may be doubled.
            audit = conn.execute(sa.text(
                "SELECT actor_account_id, detail, count(*) FROM auditaccess WHERE action LIKE '%confirm%' "
                "AND association_id = :a GROUP BY actor_account_id, detail"), {"a": setup.association_id}).all()
            rep.audit_confirm_events = sum(r[2] for r in audit)
            rep.audit_doubles = [f"account {a} '{d}' x{n}" for a, d, n in audit
                                 if n > 1 and a in {p.account_id for p in setup.people}]
            # Survey answers: one response, one participation, one answer per question, per account.
            if setup.survey_id:
                acked_accounts = set(run.survey_acks)
                rep.survey_acked = len(acked_accounts)
                resp = dict(conn.execute(sa.text(
                    "SELECT respondent_account_id, count(*) FROM surveyresponse WHERE survey_id = :s "
                    "GROUP BY respondent_account_id"), {"s": setup.survey_id}).all())
                part = dict(conn.execute(sa.text(
                    "SELECT account_id, count(*) FROM surveyparticipation WHERE survey_id = :s GROUP BY account_id"),
                    {"s": setup.survey_id}).all())
                answers = dict(conn.execute(sa.text(
                    "SELECT r.respondent_account_id, count(a.id) FROM surveyresponse r JOIN surveyanswer a "
                    "ON a.response_id = r.id WHERE r.survey_id = :s GROUP BY r.respondent_account_id"),
                    {"s": setup.survey_id}).all())
                questions = conn.execute(sa.text("SELECT count(*) FROM surveyquestion WHERE survey_id = :s"),
                                         {"s": setup.survey_id}).scalar()
                rep.survey_in_db = sum(1 for a in resp if a is not None)
                rep.survey_lost = sorted(a for a in acked_accounts if resp.get(a, 0) < 1 or part.get(a, 0) < 1)
                for a in sorted(set(resp) | set(part)):
                    if resp.get(a, 0) > 1 or part.get(a, 0) > 1 or answers.get(a, 0) > questions:
                        rep.survey_doubles.append(f"account {a}: {resp.get(a, 0)} responses, {part.get(a, 0)} "
                                                  f"participations, {answers.get(a, 0)} answers")
                    elif a not in acked_accounts and a not in run.survey_in_doubt and a in {
                            p.account_id for p in setup.people}:
                        rep.survey_doubles.append(f"account {a}: an answer stored that was neither acknowledged "
                                                  f"nor in flight")
        # status() (what the officers see) against the recount, for the circulars the run touched.
        touched = sorted({cid for cid, _by in (confirmed_now[d] for d in written)} | set(setup.fresh_circulars))
        rep.circulars_checked = len(touched)
        with session() as s:
            from chiiki.services.accounts import load_actor_in

            boss = load_actor_in(s, setup.president_id)
        for cid in touched:
            st = circulars.status(boss, cid)
            want = counted[cid]
            if st.reached != want["confirmed_households"] or st.households != want["households"]:
                rep.status_mismatch.append(f"circular {cid}: status() reached {st.reached}/{st.households}, "
                                           f"recount {want['confirmed_households']}/{want['households']}")
            if sum(st.counts.values()) != st.households:
                rep.status_mismatch.append(f"circular {cid}: categories add up to {sum(st.counts.values())}, "
                                           f"households {st.households}")
    return rep


# --------------------------------------------------------------------------- the command


def server_errors(log: str, limit: int = 60) -> list[str]:
    """The tracebacks and error lines of a server log, at most `limit` lines (the last ones)."""
    out, in_tb = [], False
    for line in log.splitlines():
        if line.startswith("Traceback"):
            in_tb = True
        if in_tb or "Error" in line or "[ERROR]" in line:
            out.append(line)
        if in_tb and line and not line.startswith((" ", "Traceback")):
            in_tb = False
    return out[-limit:]


def _app_target(app: load.RunningApp, env: dict[str, str], progress: Callable[[str], None],
                earlier: str = "") -> Target:
    def log() -> str:
        return earlier + app.log(tail=100_000)

    def restart() -> Target:
        app.stop()
        text = log()
        load.remove_tree(app.tmp)
        progress("[reliability] starting the app again (same database, same Redis)…")
        again = load.start_app("reliability", load.ROOT, env=env)
        return _app_target(again, env, progress, text + "\n----- restarted -----\n")

    target = Target(app.url, lambda: app.proc.pid if app.proc.poll() is None else None,
                    lambda: app.proc.poll() is None, restart, log)
    target.app = app  # type: ignore[attr-defined]  (kept for stopping it at the end)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chiiki.bench.reliability", description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--clients", type=int, default=60)
    parser.add_argument("--think", type=float, default=1.0, help="mean pause between a client's actions (s)")
    parser.add_argument("--kill-worker-at", type=float, default=None, metavar="SECONDS",
                        help="SIGKILL one granian worker this many seconds into the run")
    parser.add_argument("--no-restart", action="store_true",
                        help="if the whole server stops after the kill, do not start it again")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--db", help="a PostgreSQL database already filled by seed-city (default: a new one, "
                                     "seeded here and dropped at the end)")
    parser.add_argument("--keep-db", action="store_true", help="keep the database created here")
    parser.add_argument("--scale", type=float, default=0.02)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--fresh-circulars", type=int, default=10)
    parser.add_argument("--redis", default=DEFAULT_REDIS, help=f"Redis database for the state (flushed; default "
                                                                f"{DEFAULT_REDIS})")
    parser.add_argument("--app-env", action="append", default=[], metavar="KEY=VALUE",
                        help="more environment for the app, e.g. REFLEX_OPLOCK_ENABLED=true")
    args = parser.parse_args(argv)
    progress = print
    from chiiki.bench.city import machine_facts

    progress(f"[reliability] {machine_facts()}")
    cleanups: list[Callable[[], None]] = []
    data_dir = Path(tempfile.mkdtemp(prefix="chiiki-reliability-data-"))
    cleanups.append(lambda: load.remove_tree(data_dir))
    target: Target | None = None
    try:
        db_url = args.db
        if not db_url:
            db_url, drop = create_pg_database()
            if args.keep_db:
                progress(f"[reliability] keeping {db_url}")
            else:
                cleanups.append(drop)
            seed_city(db_url, args.scale, args.seed, progress)
        flush_redis(args.redis)
        cleanups.append(lambda: flush_redis(args.redis))
        setup = prepare(db_url, args.clients, fresh_circulars=args.fresh_circulars, seed=args.seed,
                        progress=progress)
        env = {"REFLEX_DB_URL": db_url, "REFLEX_REDIS_URL": args.redis, "GRANIAN_WORKERS": str(args.workers),
               "CHIIKI_DATA_DIR": str(data_dir), "COLUMNS": "200",  # tracebacks on unwrapped lines
               **dict(item.split("=", 1) for item in args.app_env if "=" in item)}
        progress(f"[reliability] building and starting the app (prod, {args.workers} workers, Redis, PostgreSQL)…")
        app = load.start_app("reliability", load.ROOT, env=env)
        progress(f"[reliability] up in {app.startup_seconds:.0f} s at {app.url}")
        target = _app_target(app, env, progress)
        if args.no_restart:
            target.restart = None
        run, target = drive(target, setup, seconds=args.seconds, think=args.think,
                            kill_worker_at=args.kill_worker_at, seed=args.seed, progress=progress)
        report = verify(setup, run)
        for line in report.lines():
            progress(line)
        if not report.ok and target.log:
            kept = Path(tempfile.gettempdir()) / f"chiiki-reliability-server-{time.strftime('%Y%m%d-%H%M%S')}.log"
            kept.write_text(target.log())
            progress(f"[reliability] server log kept at {kept}; its errors:")
            for line in server_errors(target.log()):
                progress(f"[reliability] | {line}")
        return 0 if report.ok else 1
    finally:
        if target is not None:
            app = getattr(target, "app", None)
            if app is not None:
                app.stop()
                load.remove_tree(app.tmp)
        for fn in reversed(cleanups):
            with contextlib.suppress(Exception):
                fn()


if __name__ == "__main__":
    sys.exit(main())
