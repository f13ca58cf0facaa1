"""City-scale benchmark: server time of every hot path, and websocket round trips against a blank Reflex app.

    python -m chiiki.scale --db sqlite:////tmp/city.db --scale 1.0 --schema models   # once
    python -m chiiki.bench.city --db sqlite:////tmp/city.db --clients 200 --seconds 30

Part 1 calls the services in this process on the generated city (the biggest association has 3,000
households) and prints p50/p95 of repeated runs. Part 2 starts a blank one-counter Reflex app and then
Chiiki (both `reflex run --env prod --single-port` on loopback), drives each with the same number of
browser-like socket.io clients (chiiki.bench.load), and prints round-trip percentiles, errors, the
ratio of the p95s, and memory per connected client. The benchmark writes to the database (sent
circulars, confirmations, answers, sessions): use a generated database, not a real one.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib
import importlib.util
import inspect
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Callable

from chiiki.bench import load

TARGET_MS = 100.0


def _ms(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1000


@dataclass
class Row:
    name: str
    times: list[float] = field(default_factory=list)
    note: str = ""

    def line(self) -> str:
        if not self.times:
            return f"  {self.name:44} {'':>8} {'':>8}   {self.note}"
        p50, p95 = load.percentile(self.times, 50), load.percentile(self.times, 95)
        flag = "" if p95 <= TARGET_MS else "  (over 100 ms)"
        return f"  {self.name:44} {p50:>8.1f} {p95:>8.1f}   n={len(self.times)} {self.note}{flag}"


class ServiceBench:
    """Calls the feature services directly with actors of the biggest association."""

    def __init__(self, url: str, repeat: int, progress: Callable[[str], None]):
        os.environ["REFLEX_DB_URL"] = url
        from chiiki import settings as settings_module

        settings_module.reload()
        self.url = url
        self.repeat = repeat
        self.progress = progress
        self.rows: list[Row] = []
        self.city = CityFacts.load()

    def service(self, module: str):
        try:
            return importlib.import_module(f"chiiki.services.{module}")
        except ImportError:
            return None

    def time(self, name: str, fn: Callable[[int], Any] | None, repeat: int | None = None, note: str = "") -> Any:
        """Run fn(i) once to warm up, then `repeat` timed times; a missing feature is skipped with a note."""
        row = Row(name, note=note)
        self.rows.append(row)
        if fn is None:
            row.note = "skipped: feature module or function not present"
            self.progress(f"[bench] skip {name}: not present")
            return None
        try:
            result = fn(0)
            for i in range(1, (repeat or self.repeat) + 1):
                row.times.append(_ms(lambda: fn(i)))
        except Exception as e:  # noqa: BLE001 (a failing hot path is reported, the others still run)
            row.note = f"ERROR {type(e).__name__}: {str(e)[:120]}"
            self.progress(f"[bench] {name}: {row.note}")
            return None
        self.progress(row.line())
        return result

    def fn(self, module: str, name: str) -> Callable | None:
        mod = self.service(module)
        return getattr(mod, name, None) if mod else None

    def run(self) -> list[Row]:
        from chiiki.models import utcnow
        from chiiki.services import accounts

        c = self.city
        started = utcnow()
        try:
            self.time("auth: actor_for_token (every event)", lambda i: accounts.actor_for_token(c.tokens[0]))
            self.time("login (bcrypt cost from the stored hash)",
                      lambda i: accounts.login(c.member_login, c.password, client="203.0.113.5"),
                      repeat=max(3, self.repeat // 4))
            self._circulars()
            self._roster()
            self._surveys()
            self._board_notices()
            self._dashboard()
            self._people_and_city()
            self._check_counters()
        finally:
            self._discard_queued_mail(started)
        return self.rows

    def _discard_queued_mail(self, since) -> None:
        """The sends above queued notification mails to the generated members. Left queued, the app's workers
        would spend the websocket load run delivering them (thousands per run): drop the ones not yet sent."""
        import sqlalchemy as sa

        from chiiki.models import OutboxMail
        from chiiki.services.db import engine

        with engine().begin() as conn:
            n = conn.execute(sa.delete(OutboxMail).where(OutboxMail.sent_at.is_(None),
                                                         OutboxMail.created_at >= since)).rowcount
        self.progress(f"[bench] {n:,} notification mails queued by the sends above were discarded unsent")

    def _check_counters(self) -> None:
        """The dashboard reads per-circular and per-survey counters: after the sends and confirmations above,
        they must still equal a recount of the biggest association's deliveries and answers."""
        import sqlalchemy as sa

        from chiiki.services.db import engine

        t0 = time.perf_counter()
        with engine().connect() as conn:
            wrong = conn.execute(sa.text(
                "SELECT count(*) FROM circular c WHERE c.association_id = :a AND c.status = 'sent' AND "
                "(c.household_count, c.read_households, c.confirmed_households) <> "
                "(SELECT count(DISTINCT d.household_id), count(DISTINCT CASE WHEN d.state <> 'unread' "
                "THEN d.household_id END), count(DISTINCT CASE WHEN d.state = 'confirmed' THEN d.household_id END) "
                "FROM delivery d WHERE d.circular_id = c.id)"), {"a": self.city.association_id}).scalar()
            wrong += conn.execute(sa.text(
                "SELECT count(*) FROM survey s WHERE s.association_id = :a AND "
                "(s.answered_accounts, s.answered_households) <> (SELECT count(*), count(DISTINCT p.household_id) "
                "FROM surveyparticipation p WHERE p.survey_id = s.id AND p.account_id IS NOT NULL)"), {"a": self.city.association_id}).scalar()
        self.progress(f"[bench] dashboard counters of association {self.city.association_id} equal a recount of its "
                      f"deliveries and answers: {'yes' if not wrong else f'NO ({wrong} rows differ)'} "
                      f"(checked in {time.perf_counter() - t0:.1f} s)")

    def _circulars(self) -> None:
        c = self.city
        send, status = self.fn("circulars", "send"), self.fn("circulars", "status")
        data = {"title": "ベンチマーク回覧", "body": "計測用の回覧です。", "target_all": True}
        sent = self.time(f"circular send to {c.households:,} households", send and (
            lambda i: send(c.president, c.association_id, data)), repeat=3, note="(fan-out, bulk INSERT)")
        cid = sent.circular_id if sent else c.big_circular
        self.time("circular status page (sent today)", status and (lambda i: status(c.president, cid)))
        self.time("circular status page (a year-old one)", status and (lambda i: status(c.president, c.old_circular)))
        households = self.fn("circulars", "households")
        self.time("circular households list, page 1", households and (lambda i: households(c.president, cid)))
        sent_list = self.fn("circulars", "sent_list")
        self.time("circular sent list (officer)", sent_list and (lambda i: sent_list(c.president, c.association_id)))
        inbox, unread = self.fn("circulars", "inbox"), self.fn("circulars", "unread_count")
        self.time("member inbox, page 1", inbox and (lambda i: inbox(c.member, c.association_id)))
        self.time("member inbox, unread filter", inbox and (
            lambda i: inbox(c.member, c.association_id, state="unread")))
        self.time("unread badge (every page)", unread and (lambda i: unread(c.member, c.association_id)))
        opened = self.fn("circulars", "open_circular")
        self.time("open a circular", opened and (lambda i: opened(c.member, c.member_circular)))
        confirm = self.fn("circulars", "confirm")
        pending = c.unconfirmed_deliveries(self.repeat + 1)
        self.time("confirm a circular", confirm and pending and (
            lambda i: confirm(c.actor(pending[i][1]), pending[i][0])) if len(pending) > self.repeat else None,
                  note="(+ actor load)")
        readlist, matrix = self.fn("circulars", "export_readlist"), self.fn("circulars", "export_matrix")
        self.time("export read list csv (one circular)", readlist and (
            lambda i: readlist(c.president, cid, "csv")), repeat=5)
        self.time("export read list xlsx", readlist and (lambda i: readlist(c.president, cid, "xlsx")), repeat=3)
        self.time("export read matrix csv (12 circulars)", matrix and (
            lambda i: matrix(c.president, c.association_id, "csv")), repeat=5)
        self.time("export read matrix xlsx", matrix and (
            lambda i: matrix(c.president, c.association_id, "xlsx")), repeat=3)
        sheet = self.fn("circulars", "print_sheet")
        self.time("paper print sheet (whole association)", sheet and (lambda i: sheet(c.president, cid)), repeat=5)

    def _roster(self) -> None:
        c = self.city
        page, export = self.fn("roster", "roster_page"), self.fn("roster", "export_roster")
        self.time("roster page 1 (50 households, audited)", page and (lambda i: page(c.president, c.association_id)))
        self.time("roster page 40", page and (lambda i: page(c.president, c.association_id, offset=2000)))
        self.time("roster search '佐藤'", page and (lambda i: page(c.president, c.association_id, query="佐藤")))
        self.time("roster page of a 班長 (one han)", page and c.han_leader and (
            lambda i: page(c.han_leader, c.association_id)))
        self.time(f"roster export csv ({c.households:,} households)", export and (
            lambda i: export(c.president, c.association_id, "csv")), repeat=5)
        self.time("roster export xlsx", export and (lambda i: export(c.president, c.association_id, "xlsx")),
                  repeat=3)

    def _surveys(self) -> None:
        c = self.city
        mod = self.service("surveys")
        if mod is None:
            self.time("surveys", None)
            return
        sid = c.open_survey()
        self.time("survey list (member)", lambda i: mod.list_surveys(c.member, c.association_id))
        # What the answer page runs: the form with the members' totals, and an answer with the page after it.
        self.time("survey answer page (form + totals)", lambda i: mod.answer_page(c.member, sid))
        voters = c.member_actors(self.repeat + 1)
        form = mod.get_for_answer(c.member, sid)
        answers = {f"q{q.id}": q.options[0].id for q in form.questions if q.options}
        self.time("survey answer + the page after it", lambda i: mod.answer_and_reopen(voters[i], sid, answers))
        self.time("survey results (officer)", lambda i: mod.results(c.president, sid))
        self.time("survey non-responders page", lambda i: mod.non_responders(c.president, sid))
        self.time("survey export csv", lambda i: mod.export_results(c.president, sid, "csv"), repeat=5)
        self.time("urgent-survey banner (every page)", lambda i: mod.urgent_open_count(c.member, c.association_id))
        self.time("safety check to every household (mailed)", lambda i: mod.create_survey(
            c.president, c.association_id, self._safety_check(i)), repeat=3, note="(mails at once)")

    @staticmethod
    def _safety_check(i: int) -> dict:
        """A 安否確認 for the whole association: created and mailed to every member who takes mail at once."""
        from datetime import timedelta

        from chiiki.i18n import TZ
        from chiiki.models import utcnow

        deadline = (utcnow() + timedelta(days=2)).astimezone(TZ).strftime("%Y-%m-%dT%H:%M")
        return {"kind": "safety", "title": f"安否確認(計測 {i + 1})", "description": "", "deadline": deadline,
                "target_all": True, "per_household": True,
                "questions": [{"kind": "single", "text": "ご無事ですか", "required": True,
                               "options": ["無事です", "助けが必要です"]}]}

    def _board_notices(self) -> None:
        c = self.city
        threads, thread = self.fn("board", "list_threads"), self.fn("board", "get_thread")
        self.time("board thread list", threads and (lambda i: threads(c.member, c.association_id)))
        self.time("board thread", thread and c.thread_id and (lambda i: thread(c.member, c.thread_id)))
        feed = self.fn("notices", "feed")
        self.time("city notices feed (member)", feed and (lambda i: feed(c.member)))
        admin = self.fn("notices", "admin_list")
        self.time("city notices list with read counts (staff)", admin and (lambda i: admin(c.staff)))
        reach = self.fn("notices", "reach_count")
        self.time("city notice preview: residents 65+ reached", reach and (
            lambda i: reach(c.staff, {"title": "計測", "body": "本文", "bands": ["age_65_plus"]})))

    def _dashboard(self) -> None:
        c = self.city
        dash = self.fn("dashboard", "dashboard")
        self.time("city dashboard (all associations)", dash and (lambda i: dash(c.staff)), repeat=5)
        months = self.fn("dashboard", "association_months")
        self.time("city dashboard: one association's months", months and (
            lambda i: months(c.staff, c.association_id)), repeat=5)

    def _people_and_city(self) -> None:
        """The access log a member reads, the officers' pages, and city staff's association list and audit
        trail (the trail pages through every access of the city, which grows with each one)."""
        c = self.city
        audit, assoc, officers = self.service("audit"), self.service("associations"), self.service("officers")
        membership = self.service("membership")

        def accesses(i: int):
            from chiiki.services.db import session

            with session() as s:
                return audit.accesses_to(s, c.member.account_id, limit=31)

        self.time("member access log (who read my data)", audit and accesses)
        self.time("my association (member)", membership and (lambda i: membership.my_membership(c.member)))
        self.time("officer list (会長)", officers and (lambda i: officers.list_roles(c.president, c.association_id)))
        self.time("officer candidates search '佐藤'", officers and (
            lambda i: officers.member_options(c.president, c.association_id, "佐藤")))
        self.time("city association list (1,239)", assoc and (lambda i: assoc.city_associations(c.staff)))
        self.time("city association detail", assoc and (lambda i: assoc.city_association(c.staff, c.association_id)))
        self.time("city audit trail, page 1", audit and (lambda i: audit.city_trail(c.staff)))
        self.time("city audit trail, page 100", audit and (lambda i: audit.city_trail(c.staff, offset=4950)))


class CityFacts:
    """Who and what the benchmark uses in the generated city (the biggest association)."""

    def __init__(self) -> None:
        self.tokens: list[str] = []

    @classmethod
    def load(cls) -> "CityFacts":
        import sqlalchemy as sa

        from chiiki.scale import PASSWORD
        from chiiki.services import accounts
        from chiiki.services.db import engine, session

        self = cls()
        self.password = PASSWORD
        eng = engine()
        with eng.connect() as conn:
            q = lambda sql, **kw: conn.execute(sa.text(sql), kw)  # noqa: E731
            self.association_id, self.households = q(
                "SELECT association_id, count(*) FROM household GROUP BY association_id "
                "ORDER BY count(*) DESC, association_id LIMIT 1").one()
            aid = self.association_id
            roles = q("SELECT o.title, m.account_id, o.han_id FROM officerrole o JOIN membership m "
                      "ON m.id = o.membership_id WHERE o.association_id = :a AND o.revoked_at IS NULL "
                      "ORDER BY o.id", a=aid).all()
            president = next(r[1] for r in roles if r[0] == "会長")
            leader = next((r[1] for r in roles if r[2] is not None), None)
            officers = {r[1] for r in roles}
            self.member_ids = [r[0] for r in q(
                "SELECT account_id FROM membership WHERE association_id = :a AND status = 'active' ORDER BY id",
                a=aid).all() if r[0] not in officers]
            member = self.member_ids[len(self.member_ids) // 2]
            self.member_login = q("SELECT login_id FROM account WHERE id = :i", i=member).scalar()
            staff = q("SELECT id FROM account WHERE is_city_staff ORDER BY id LIMIT 1").scalar()
            circulars = q("SELECT id FROM circular WHERE association_id = :a AND status = 'sent' "
                          "ORDER BY sent_at", a=aid).all()
            self.old_circular, self.big_circular = circulars[0][0], circulars[-1][0]
            self.member_circular = q("SELECT circular_id FROM delivery WHERE account_id = :m ORDER BY id DESC "
                                     "LIMIT 1", m=member).scalar()
            self.thread_id = q("SELECT id FROM boardthread WHERE association_id = :a ORDER BY last_post_at DESC "
                               "LIMIT 1", a=aid).scalar()
        with session() as s:
            self.president = accounts.load_actor_in(s, president)
            self.member = accounts.load_actor_in(s, member)
            self.han_leader = accounts.load_actor_in(s, leader) if leader else None
            self.staff = accounts.load_actor_in(s, staff)
            self.tokens = [accounts.new_session(member, s)]
        self._survey_id: int | None = None
        return self

    def actor(self, account_id: int):
        from chiiki.services import accounts
        from chiiki.services.db import session

        with session() as s:
            return accounts.load_actor_in(s, account_id)

    def member_actors(self, n: int) -> list:
        rng = random.Random(11)
        return [self.actor(a) for a in rng.sample(self.member_ids, min(n, len(self.member_ids)))]

    def unconfirmed_deliveries(self, n: int) -> list[tuple[int, int]]:
        """(delivery id, account id) of member deliveries not yet confirmed, one per account."""
        import sqlalchemy as sa

        from chiiki.services.db import engine

        with engine().connect() as conn:
            rows = conn.execute(sa.text(
                "SELECT d.id, d.account_id FROM delivery d JOIN circular c ON c.id = d.circular_id "
                "WHERE c.association_id = :a AND d.account_id IS NOT NULL AND d.state <> 'confirmed' "
                "ORDER BY d.id DESC LIMIT :n"), {"a": self.association_id, "n": n * 20}).all()
        out, seen = [], set()
        for did, acc in rows:
            if acc not in seen:
                seen.add(acc)
                out.append((did, acc))
        return out[:n]

    def open_survey(self) -> int:
        """A named one-question survey open for a week, created by the 会長 (answered by the benchmark)."""
        if self._survey_id is None:
            from chiiki.i18n import TZ
            from chiiki.models import utcnow
            from chiiki.services import surveys

            deadline = (utcnow() + timedelta(days=7)).astimezone(TZ).strftime("%Y-%m-%dT%H:%M")
            self._survey_id = surveys.create_survey(self.president, self.association_id, {
                "kind": "general", "title": "ベンチマークアンケート", "description": "計測用", "deadline": deadline,
                "target_all": True, "questions": [{"kind": "single", "text": "参加しますか", "required": True,
                                                   "options": ["はい", "いいえ"]}]})
        return self._survey_id


# --------------------------------------------------------------------------- websocket load


@dataclass
class LoadPlan:
    """Per simulated member: session token, deliveries to confirm; the survey they answer."""

    tokens: list[str]
    circulars: list[list[int]]  # per member: circulars they have not confirmed yet, newest first
    survey_id: int | None
    session_cookie: str
    lang_cookie: str


def prepare_load(city: CityFacts, clients: int, with_survey: bool) -> LoadPlan:
    """Sessions for `clients` members of the biggest association, as if each had logged in before."""
    import sqlalchemy as sa

    from chiiki.services import accounts
    from chiiki.services.db import engine, session
    from chiiki.state import LANG_COOKIE, SESSION_COOKIE

    rng = random.Random(5)
    members = rng.sample(city.member_ids, min(clients, len(city.member_ids)))
    with session() as s:
        tokens = [accounts.new_session(m, s) for m in members]
    circulars: list[list[int]] = []
    with engine().connect() as conn:
        for m in members:
            circulars.append([r[0] for r in conn.execute(sa.text(
                "SELECT circular_id FROM delivery WHERE account_id = :m AND state <> 'confirmed' "
                "ORDER BY circular_id DESC LIMIT 50"), {"m": m}).all()])
    survey = city.open_survey() if with_survey else None
    return LoadPlan(tokens, circulars, survey, SESSION_COOKIE, LANG_COOKIE)


def _page_exists(module: str) -> bool:
    return importlib.util.find_spec(f"chiiki.pages.{module}") is not None


def _handler(module: str, names: tuple[str, ...]) -> tuple[str, list[str]] | None:
    """(full event name, argument names) of the first state handler in a page module matching names."""
    if not _page_exists(module):
        return None
    import reflex as rx

    mod = importlib.import_module(f"chiiki.pages.{module}")
    for name in names:
        for obj in vars(mod).values():
            if inspect.isclass(obj) and issubclass(obj, rx.State) and obj.__module__ == mod.__name__:
                handler = obj.event_handlers.get(name)
                if handler is not None:
                    params = [p for p in inspect.signature(handler.fn).parameters if p != "self"]
                    return f"{obj.get_full_name()}.{name}", params
    return None


def _nav(path: str) -> load.Action:
    async def go(tab: load.ReflexClient) -> float:
        return await tab.navigate(path)

    return go


def _confirm_action(view_path: str, event: str) -> load.Action:
    """Open the next unconfirmed circular (its page marks it read), then press 確認しました."""

    async def confirm(tab: load.ReflexClient) -> dict[str, float] | None:
        queue = tab.data["circulars"]
        if not queue:
            return None
        opened = await tab.navigate(f"{view_path}?id={queue.pop(0)}")
        if not tab.last_state("circular_state", "delivery_id"):
            return {"chiiki:open circular": opened}
        ms, _ = await tab.call(event)
        return {"chiiki:open circular": opened, "chiiki:confirm circular": ms}

    return confirm


def _answer_action(answer_path: str, event: str, arg: str) -> load.Action:
    """Open the survey's answer page, choose the first option of each question, submit."""

    async def answer(tab: load.ReflexClient) -> dict[str, float]:
        opened = await tab.navigate(answer_path)
        questions = tab.last_state("survey_answer_state", "questions") or []
        form = {f"q{q['id']}": q["options"][0]["id"] for q in questions if q.get("options")}
        ms, _ = await tab.call(event, {arg: form})
        return {"chiiki:open survey form": opened, "chiiki:answer survey": ms}

    return answer


def chiiki_mix(plan: LoadPlan, progress: Callable[[str], None]) -> load.Mix:
    """Inbox, open + confirm a circular, answer a survey, and the other member pages, as far as they exist."""
    from chiiki import routes
    from chiiki.state import UIState

    actions: list[tuple[str, float, load.Action]] = []
    if _page_exists("circulars"):
        actions.append(("chiiki:open inbox", 3, _nav(routes.CIRCULARS)))
        confirm = _handler("circulars", ("confirm",))
        view = getattr(importlib.import_module("chiiki.pages.circulars"), "CIRCULAR_VIEW", None)
        if confirm and view and not confirm[1]:
            actions.append(("chiiki:confirm circular", 3, _confirm_action(view, confirm[0])))
        else:
            progress("[load] note: no argument-less confirm handler / CIRCULAR_VIEW in chiiki/pages/circulars.py")
    else:
        progress("[load] note: chiiki/pages/circulars.py is missing: no inbox/confirm in the mix")
    if _page_exists("surveys"):
        actions.append(("chiiki:open surveys", 1, _nav(routes.SURVEYS)))
        submit = _handler("surveys", ("submit",))
        if submit and plan.survey_id and len(submit[1]) == 1:
            from chiiki.services import surveys as survey_service

            path = f"{survey_service.ANSWER_PATH}?id={plan.survey_id}"
            actions.append(("chiiki:answer survey", 1, _answer_action(path, submit[0], submit[1][0])))
    actions += [("chiiki:open mypage", 1, _nav(routes.MYPAGE)), ("chiiki:open board", 1, _nav(routes.BOARD)),
                ("chiiki:open notices", 1, _nav(routes.NOTICES))]
    toggle = f"{UIState.get_full_name()}.toggle_lang"

    async def lang(tab: load.ReflexClient) -> float:
        ms, _ = await tab.call(toggle)
        return ms

    actions.append(("chiiki:toggle language", 1, lang))
    return load.Mix(actions)


def _report_memory(name: str, mem: dict, progress: Callable[[str], None]) -> None:
    progress(f"[memory] {name}: {mem['before_mb']:.0f} MB -> {mem['after_mb']:.0f} MB with {mem['clients']} idle "
             f"clients = {mem['kb_per_client']:.0f} KB per client ({mem['failures']} failed to connect)")


def steady_p95(stats: load.Stats) -> float:
    """p95 of the round trips of the mix (the connection burst, reported apart, left out)."""
    return load.percentile([t for k, ts in stats.times.items() if k != "connect+hydrate" for t in ts], 95)


def run_websocket(args, city: CityFacts, progress: Callable[[str], None]) -> dict:
    """Both apps up side by side; `args.rounds` rounds of blank, blank with a page load, and Chiiki, one after
    the other, so that a slower spell of a shared machine falls on all three alike (a ratio per round, and
    the figures of all rounds together)."""
    results: dict = {"rounds": []}
    # A session for each client, one for each idle client (memory), and one for the actions run alone.
    plan = prepare_load(city, args.clients * 2 + 1, with_survey=True)
    alone = args.clients * 2
    mix = chiiki_mix(plan, progress)
    blank_dir = load.make_blank_app()
    data_dir = Path(tempfile.mkdtemp(prefix="chiiki-citybench-data-"))
    blank = app = None
    try:
        progress("[load] building and starting the blank app (prod, single port)…")
        blank = load.start_app("blank", blank_dir, env=args.app_env)
        progress(f"[load] blank app up in {blank.startup_seconds:.0f} s at {blank.url}")
        progress("[load] building and starting Chiiki (prod, single port)…")
        app = load.start_app("chiiki", load.ROOT, env={**args.app_env, "REFLEX_DB_URL": args.db,
                                                       "CHIIKI_DATA_DIR": str(data_dir)})
        progress(f"[load] Chiiki up in {app.startup_seconds:.0f} s at {app.url}")
        from chiiki import routes

        def cookies(i: int) -> dict:  # as the browser holds them after logging in
            return {plan.session_cookie: plan.tokens[i], plan.lang_cookie: "ja"}

        async def after(tab: load.ReflexClient, i: int) -> None:
            # The same list in every round: a circular confirmed in one round is not opened again in the next.
            tab.data["circulars"] = plan.circulars[i]

        def idle_cookies(i: int) -> dict:
            return {plan.session_cookie: plan.tokens[args.clients + i], plan.lang_cookie: "ja"}

        def drive(running: load.RunningApp, mix_: load.Mix, setup_=None, after_=None, start_path: str = "/",
                  cookies_=None) -> load.Stats:
            return asyncio.run(load.run_load(running.url, args.clients, args.seconds, mix_, setup_,
                                             start_path=start_path, client_cookies=cookies_, think=args.think,
                                             after=after_, warmup=args.warmup, progress=progress,
                                             server_pids=running.pids))

        results["alone"] = asyncio.run(_alone(blank.url, app.url, cookies(0)))
        if args.per_action:
            progress(f"[load] each action {args.per_action} times in a row by one tab, alone…")
            results["per_action"] = {
                "blank": asyncio.run(load.per_action(blank.url, load.blank_mix(), blank.pids, args.per_action)),
                "blank+onload": asyncio.run(load.per_action(
                    blank.url, load.blank_loaded_mix(), blank.pids, args.per_action,
                    storage=load.blank_loaded_storage(0), start_path="/loaded")),
                # A member of its own, whose circulars, survey answer and language the rounds do not touch.
                "chiiki": asyncio.run(load.per_action(app.url, mix, app.pids, args.per_action,
                                                      cookies=cookies(alone), start_path=routes.MYPAGE,
                                                      after=lambda tab: after(tab, alone))),
            }
        totals = {"blank": load.Stats(), "blank+onload": load.Stats(), "chiiki": load.Stats()}
        for r in range(1, args.rounds + 1):
            progress(f"[load] round {r} of {args.rounds}")
            this = {
                "blank": drive(blank, load.blank_mix()),
                # The same blank app, paying a page load's framework events (cookie sync, on_load): how much of
                # Chiiki's page change is the framework's protocol rather than Chiiki's own work.
                "blank+onload": drive(blank, load.blank_loaded_mix(), load.blank_loaded_storage,
                                      start_path="/loaded"),
                "chiiki": drive(app, mix, None, after, routes.MYPAGE, cookies),
            }
            for name, stats in this.items():
                totals[name].merge(stats)
            b95, c95 = steady_p95(this["blank"]), steady_p95(this["chiiki"])
            results["rounds"].append((c95, b95))
            progress(f"[load] round {r}: Chiiki p95 {c95:.1f} ms / blank p95 {b95:.1f} ms = {c95 / b95:.2f}x")
            for name, stats in this.items():
                if stats.cpu is not None:
                    progress(f"[load] round {r}: {stats.cpu.line(name)}")
        results["blank"] = (totals["blank"], asyncio.run(load.idle_memory(blank.url, blank.pids, args.clients)))
        results["blank+onload"] = (totals["blank+onload"], None)
        results["chiiki"] = (totals["chiiki"], asyncio.run(load.idle_memory(
            app.url, app.pids, args.clients, path=routes.MYPAGE, cookies=idle_cookies)))
    finally:
        for running in (app, blank):
            if running is not None:
                running.stop()
                load.remove_tree(running.tmp)
        load.remove_tree(blank_dir)
        load.remove_tree(data_dir)
    return results


async def _alone(blank_url: str, chiiki_url: str, cookies: dict, n: int = 200) -> dict[str, list[float]]:
    """One tab of each app changing pages one after another, nothing else running: what a page change costs
    the server by itself, apart from what concurrency adds. The two tabs take turns, so that a slower spell
    of the machine falls on both."""
    from chiiki import routes

    paths = [routes.CIRCULARS, routes.MYPAGE, routes.BOARD, routes.SURVEYS, routes.NOTICES]
    blank = load.ReflexClient(blank_url, storage=load.blank_loaded_storage(0))
    chiiki = load.ReflexClient(chiiki_url, cookies=cookies)
    times: dict[str, list[float]] = {"blank": [], "chiiki": []}
    try:
        await blank.connect("/loaded")
        await chiiki.connect(routes.MYPAGE)
        for i in range(n + 20):  # the first 20 of each warm up
            b, c = await blank.navigate("/loaded"), await chiiki.navigate(paths[i % len(paths)])
            if i >= 20:
                times["blank"].append(b)
                times["chiiki"].append(c)
    finally:
        await blank.close()
        await chiiki.close()
    return times


def print_load(results: dict, clients: int, progress: Callable[[str], None]) -> None:
    steady = {}
    rounds = results.get("rounds", [])
    alone = results.get("alone")
    if alone:
        (b50, b95), (c50, c95) = [(load.percentile(alone[k], 50), load.percentile(alone[k], 95))
                                  for k in ("blank", "chiiki")]
        progress(f"[load] one tab alone, {len(alone['chiiki'])} page changes taking turns: Chiiki p50 {c50:.1f} / "
                 f"p95 {c95:.1f} ms, blank page with a cookie and an on_load handler p50 {b50:.1f} / p95 "
                 f"{b95:.1f} ms = {c50 / b50:.2f}x at p50 (what {clients} clients add is concurrency)")
    for app_name, costs in results.get("per_action", {}).items():
        for action, cost in costs.items():
            trips = " · ".join(f"{k} p50 {load.percentile(ts, 50):.1f} ms" for k, ts in cost.times.items())
            progress(f"[load] alone, {app_name}, {action} ×{cost.count}: server CPU {cost.server_ms:.1f} ms per "
                     f"action; round trip {trips or '(none)'}")
    for name, value in results.items():
        if name in ("rounds", "alone", "per_action"):
            continue
        stats, mem = value
        for line in stats.lines(name):
            progress(f"[load] {line}")
        if mem is not None:
            _report_memory(name, mem, progress)
        steady[name] = (steady_p95(stats), sum(stats.errors.values()))
    if "blank" in steady and "chiiki" in steady:
        (b95, berr), (c95, cerr) = steady["blank"], steady["chiiki"]
        ratio = c95 / b95 if b95 else float("nan")
        verdict = "meets" if ratio <= 2 and cerr == 0 else "misses"
        progress(f"[load] RATIO at {clients} clients: Chiiki p95 {c95:.1f} ms / blank p95 {b95:.1f} ms = "
                 f"{ratio:.2f}x (target <= 2x, zero errors: {verdict}); errors chiiki {cerr}, blank {berr}")
        if len(rounds) > 1:
            ratios = [c / b for c, b in rounds if b]
            progress(f"[load] per round: {', '.join(f'{x:.2f}x' for x in ratios)} (median "
                     f"{statistics.median(ratios):.2f}x over {len(rounds)} rounds)")
        same = [load.percentile(results[n][0].times.get(k, []), 95)
                for n, k in (("chiiki", "chiiki:toggle language"), ("blank", "blank:increment"))]
        if all(v == v for v in same) and same[1]:
            progress(f"[load] like for like (one small event, no database): Chiiki toggle language p95 "
                     f"{same[0]:.1f} ms / blank increment p95 {same[1]:.1f} ms = {same[0] / same[1]:.2f}x")
        if "blank+onload" in steady:
            pages = [t for k, ts in results["chiiki"][0].times.items() if k.startswith("chiiki:open ") for t in ts]
            floor = steady["blank+onload"][0]
            if pages and floor == floor and floor:
                c_pages = load.percentile(pages, 95)
                progress(f"[load] page changes: Chiiki p95 {c_pages:.1f} ms / blank page with a cookie and an "
                         f"on_load handler p95 {floor:.1f} ms (four framework events and no work; Chiiki's page "
                         f"change is one: no browser-storage var, and its load runs inside on_load_internal) = "
                         f"{c_pages / floor:.2f}x")


def machine_facts() -> str:
    import psutil

    mem = psutil.virtual_memory().total / 2**30
    load1, load5, _ = os.getloadavg()
    return (f"{platform.node()} · {os.cpu_count()} cores · {mem:.0f} GB RAM · {platform.platform()} · "
            f"Python {platform.python_version()} · {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} · "
            f"load average {load1:.1f}/{load5:.1f} (other work on the machine skews the figures)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chiiki.bench.city", description=__doc__.split("\n")[0])
    parser.add_argument("--db", required=True, help="a database filled by `python -m chiiki.scale`")
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--think", type=float, default=5.0,
                        help="mean pause between a client's actions (s); a person reading circulars on a phone "
                             "acts every few seconds, 1 s is a stress test")
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds of blank, blank with a page load, and Chiiki, one after the other (both "
                             "apps stay up): a slower spell of the machine falls on all of them alike")
    parser.add_argument("--warmup", type=float, default=5.0,
                        help="seconds after every client connected before round trips are recorded")
    parser.add_argument("--repeat", type=int, default=20, help="timed runs per service hot path")
    parser.add_argument("--per-action", type=int, default=40, metavar="N",
                        help="before the rounds, each action N times by one tab alone: its server CPU and round "
                             "trip by itself (0: skip)")
    parser.add_argument("--skip-services", action="store_true")
    parser.add_argument("--skip-load", action="store_true")
    parser.add_argument("--app-env", action="append", default=[], metavar="KEY=VALUE",
                        help="environment for both apps, e.g. REFLEX_STATE_MANAGER_MODE=memory, or "
                             "REFLEX_REDIS_URL=redis://127.0.0.1:6379/3 with GRANIAN_WORKERS=2")
    args = parser.parse_args(argv)
    args.app_env = dict(item.split("=", 1) for item in args.app_env if "=" in item)
    if args.app_env.get("REFLEX_REDIS_URL"):
        # Chiiki keeps tab states in the worker between events when it runs on Redis (rxconfig.py);
        # the blank app is given the same settings, so that both are measured alike.
        from chiiki.settings import state_lock_env

        args.app_env.update(state_lock_env({**os.environ, **args.app_env}))
    progress = print
    progress(f"[bench] {machine_facts()}")
    progress(f"[bench] database {args.db.split('@')[-1]}")
    if not args.skip_load:
        progress(f"[bench] both apps run with: {' '.join(f'{k}={v}' for k, v in sorted(args.app_env.items())) or '(defaults)'}")
    bench = ServiceBench(args.db, args.repeat, progress)
    c = bench.city
    # What the benchmark has set up stays alive: keep it out of garbage collection, as each server worker
    # does with its startup heap (chiiki.chiiki.freeze_startup_heap), so that timings do not include full
    # collections over the benchmark's own data.
    gc.collect()
    gc.freeze()
    progress(f"[bench] association {c.association_id}: {c.households:,} households, "
             f"{len(c.member_ids):,} member accounts")
    if not args.skip_services:
        progress(f"[bench] server time (ms) {'':30} {'p50':>8} {'p95':>8}")
        rows = bench.run()
        slow = [r.name for r in rows if r.times and load.percentile(r.times, 95) > TARGET_MS]
        progress(f"[bench] {len([r for r in rows if r.times])} hot paths timed; over {TARGET_MS:.0f} ms at p95: "
                 f"{', '.join(slow) or 'none'}")
        progress("[bench] summary:")
        for r in rows:
            progress(r.line())
    if not args.skip_load:
        results = run_websocket(args, c, progress)
        print_load(results, args.clients, progress)
    return 0


if __name__ == "__main__":
    sys.exit(main())
