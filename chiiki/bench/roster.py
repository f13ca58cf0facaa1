"""Roster benchmark: a 3,000-household association; server time and bytes of the first page and of a search.

    .venv/bin/python -m chiiki.bench.roster [--households 3000] [--runs 20] [--pg postgresql+psycopg://...]

Builds its own data with bulk inserts in a temporary SQLite database (and, with --pg, in a temporary
PostgreSQL database created on that server and dropped afterwards), then prints milliseconds of server
time for the service call and for the page's state handler, and the bytes that handler would send.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

TARGET_MS = 100.0
TARGET_BYTES = 100_000


def _configure(db_url: str, data_dir: Path) -> None:
    os.environ["REFLEX_DB_URL"] = db_url
    os.environ["CHIIKI_DATA_DIR"] = str(data_dir)
    from chiiki import settings as settings_module

    settings_module.reload()


def build(households: int, seed: int = 7) -> tuple[int, int]:
    """One association with 10 han, ~60 % digital households; returns (association id, president account id)."""
    from sqlalchemy import insert, update
    from sqlmodel import SQLModel

    import chiiki.models  # noqa: F401
    from chiiki.models import Account, Area, Association, Han, Household, Membership, OfficerRole, utcnow
    from chiiki.seed import FAMILY, FAMILY_KANA, GIVEN, GIVEN_KANA
    from chiiki.services import db
    from chiiki.services.policy import OFFICER_PERMISSIONS

    rng = random.Random(seed)
    SQLModel.metadata.create_all(db.engine())
    now = utcnow()
    with db.session() as s:
        area = Area(name="大町", level="block")
        s.add(area)
        s.flush()
        assoc = Association(name="大町大規模町内会", area_id=area.id)
        s.add(assoc)
        s.flush()
        hans = [Han(association_id=assoc.id, name=f"{i + 1}班", route_order=i) for i in range(10)]
        s.add_all(hans)
        s.flush()
        rows, people = [], []
        for i in range(households):
            f, g = rng.randrange(len(FAMILY)), rng.randrange(len(GIVEN))
            rows.append({"association_id": assoc.id, "han_id": hans[i % 10].id, "route_position": i // 10,
                         "address": f"旭川市大町{i // 300 + 1}条{i // 30 % 10 + 1}丁目{i % 30 + 1}-{i}",
                         "head_name": f"{FAMILY[f]} {GIVEN[g]}", "head_kana": f"{FAMILY_KANA[f]} {GIVEN_KANA[g]}",
                         "phone": f"0166{rng.randrange(10**6):06d}", "note": "", "paper_only": True,
                         "created_at": now})
            people.append((f, g))
        ids = list(s.scalars(insert(Household).returning(Household.id, sort_by_parameter_order=True), rows))
        accounts, digital = [], []
        for i, hid in enumerate(ids):
            if rng.random() >= 0.6:
                continue
            f, g = people[i]
            for k in range(2 if rng.random() < 0.2 else 1):
                gi = (g + k) % len(GIVEN)
                accounts.append({"login_id": f"bench{len(accounts):05d}@example.jp", "password_hash": "",
                                 "name": f"{FAMILY[f]} {GIVEN[gi]}", "kana": f"{FAMILY_KANA[f]} {GIVEN_KANA[gi]}",
                                 "display_name": FAMILY[f], "address": rows[i]["address"], "area_id": area.id,
                                 "birth_year": rng.randint(1935, 2005), "email": f"bench{len(accounts):05d}@example.jp",
                                 "phone": f"090{rng.randrange(10**8):08d}", "locale": "ja", "created_at": now})
                digital.append(hid)
        account_ids = list(s.scalars(insert(Account).returning(Account.id, sort_by_parameter_order=True), accounts))
        memberships = [{"account_id": aid, "association_id": assoc.id, "household_id": hid, "status": "active",
                        "consent_version": "bench", "message": "", "decision_note": "", "requested_at": now,
                        "decided_at": now} for aid, hid in zip(account_ids, digital)]
        membership_ids = list(s.scalars(insert(Membership).returning(Membership.id, sort_by_parameter_order=True),
                                        memberships))
        s.execute(update(Household).where(Household.id.in_(set(digital))).values(paper_only=False),
                  execution_options={"synchronize_session": False})
        s.add(OfficerRole(association_id=assoc.id, membership_id=membership_ids[0], title="会長",
                          permissions=" ".join(OFFICER_PERMISSIONS), valid_from=now))
        return assoc.id, account_ids[0]


class Times(list):
    """Wall-clock ms per run, plus the process CPU ms (what the server spent, even on a busy machine)."""

    cpu: list[float]


def _timed(fn, runs: int) -> tuple[Times, object]:
    times, result = Times(), None
    times.cpu = []
    fn()  # warm caches (SQLAlchemy compiled statements, SQLite pages)
    for _ in range(runs):
        t0, c0 = time.perf_counter(), time.process_time()
        result = fn()
        times.append((time.perf_counter() - t0) * 1000)
        times.cpu.append((time.process_time() - c0) * 1000)
    return times, result


def _p95(values: list[float]) -> float:
    return sorted(values)[max(0, int(round(0.95 * (len(values) - 1))))]


def _fmt(name: str, times: Times, target: float) -> str:
    med = statistics.median(times)
    verdict = "OK" if med < target else "SLOW"
    cpu = f"cpu {statistics.median(times.cpu):6.1f} ms" if getattr(times, "cpu", None) else " " * 13
    return (f"  {name:40} median {med:6.1f} ms  p95 {_p95(times):6.1f} ms  {cpu}  "
            f"target < {target:.0f} ms  {verdict}")


async def _handler_runs(account_id: int, runs: int) -> tuple[list[float], list[float], int, int]:
    """The page's state handlers through a fresh rx.State tree per run, as one browser tab would have."""
    import reflex as rx

    from chiiki.pages.roster import RosterState
    from chiiki.services import accounts
    from chiiki.services.db import session
    from chiiki.state import AuthState

    with session() as s:
        token = accounts.new_session(account_id, s)

    async def one(query: str | None) -> tuple[float, float, int]:
        root = rx.State(_reflex_internal_init=True)  # what the state manager does for a new tab
        auth = await root.get_state(AuthState)
        auth._use_session(token)
        st = await root.get_state(RosterState)
        root.get_delta()
        root._clean()
        t0, c0 = time.perf_counter(), time.process_time()
        if query is None:
            await RosterState.load.fn(st)
        else:
            await RosterState.search.fn(st, {"query": query})
        ms, cpu = (time.perf_counter() - t0) * 1000, (time.process_time() - c0) * 1000
        assert st.allowed and st.rows, st.error
        return ms, cpu, len(json.dumps(root.get_delta(), ensure_ascii=False, default=str).encode())

    await one(None)
    load_ms, search_ms, load_bytes, search_bytes = Times(), Times(), 0, 0
    load_ms.cpu, search_ms.cpu = [], []
    for _ in range(runs):
        ms, cpu, load_bytes = await one(None)
        load_ms.append(ms)
        load_ms.cpu.append(cpu)
        ms, cpu, search_bytes = await one("さとう")
        search_ms.append(ms)
        search_ms.cpu.append(cpu)
    return load_ms, search_ms, load_bytes, search_bytes


def run(label: str, households: int, runs: int) -> bool:
    from chiiki.services import roster
    from chiiki.services.accounts import load_actor_in
    from chiiki.services.db import session

    t0 = time.perf_counter()
    aid, president = build(households)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\n[{label}] built {households} households in {time.perf_counter() - t0:.1f} s "
          f"(load average {load:.1f} on {os.cpu_count()} CPUs: wall times grow with it, CPU times less)")
    with session() as s:
        actor = load_actor_in(s, president)

    first, page = _timed(lambda: roster.roster_page(actor, aid), runs)
    name, _ = _timed(lambda: roster.roster_page(actor, aid, query="佐藤"), runs)
    kana, _ = _timed(lambda: roster.roster_page(actor, aid, query="さとう"), runs)
    addr, found = _timed(lambda: roster.roster_page(actor, aid, query="大町５条３丁目"), runs)
    last, _ = _timed(lambda: roster.roster_page(actor, aid, offset=households - 50), runs)
    load_ms, search_ms, load_bytes, search_bytes = asyncio.run(_handler_runs(president, runs))
    export, out = _timed(lambda: roster.export_roster(actor, aid, "csv"), 3)
    xlsx, xlsx_out = _timed(lambda: roster.export_roster(actor, aid, "xlsx"), 3)

    print(f"  total households {page.total}, first page rows {len(page.rows)}, address search hits {found.total}")
    lines = [
        (_fmt("service: roster_page (first page)", first, TARGET_MS), first),
        (_fmt("service: roster_page (last page)", last, TARGET_MS), last),
        (_fmt("service: search by name 佐藤", name, TARGET_MS), name),
        (_fmt("service: search by kana さとう", kana, TARGET_MS), kana),
        (_fmt("service: search by address (full-width)", addr, TARGET_MS), addr),
        (_fmt("state: RosterState.load (first page)", load_ms, TARGET_MS), load_ms),
        (_fmt("state: RosterState.search", search_ms, TARGET_MS), search_ms),
    ]
    ok = True
    for text, times in lines:
        print(text)
        ok &= statistics.median(times) < TARGET_MS
    for what, size in (("first page", load_bytes), ("search", search_bytes)):
        verdict = "OK" if size < TARGET_BYTES else "TOO BIG"
        print(f"  bytes sent by the handler ({what}):{'':10} {size:9,d} B   target < {TARGET_BYTES:,d} B  {verdict}")
        ok &= size < TARGET_BYTES
    print(f"  (info) export of {out.count} rows as CSV: median {statistics.median(export):.0f} ms, "
          f"{len(out.data):,d} B; as .xlsx: median {statistics.median(xlsx):.0f} ms, {len(xlsx_out.data):,d} B "
          f"(target < 2000 ms)")
    ok &= statistics.median(xlsx) < 2000
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--households", type=int, default=3000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--pg", help="PostgreSQL URL of a server/database where a temporary database may be created")
    args = parser.parse_args(argv)
    # Import the page (registering its states) here, not inside asyncio.run: Reflex keeps the state
    # registry in a context variable, which a task's copied context would drop after the first run.
    import chiiki.pages.roster  # noqa: F401

    tmp = Path(tempfile.mkdtemp(prefix="chiiki-bench-roster-"))
    ok = True
    try:
        _configure(f"sqlite:///{tmp / 'bench.db'}", tmp / "data")
        ok &= run("sqlite", args.households, args.runs)
        if args.pg:
            ok &= _run_pg(args.pg, args.households, args.runs, tmp)
    finally:
        from chiiki.services import db

        db.dispose_all()
        shutil.rmtree(tmp, ignore_errors=True)
    print("\nall targets met" if ok else "\nSOME TARGETS MISSED")
    return 0 if ok else 1


def _run_pg(url: str, households: int, runs: int, tmp: Path) -> bool:
    import sqlalchemy as sa

    from chiiki.services import db

    name = f"chiiki_bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        db.dispose_all()
        _configure(url.rsplit("/", 1)[0] + "/" + name, tmp / "data")
        return run("postgresql", households, runs)
    finally:
        db.dispose_all()
        with admin.connect() as c:
            c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    sys.exit(main())
