"""The websocket benchmark's bookkeeping: rounds merge into one set of figures, and the report names each round."""

from chiiki.bench import city, load


def _stats(times: dict[str, list[float]], errors: dict[str, int] | None = None) -> load.Stats:
    stats = load.Stats()
    for name, ts in times.items():
        for t in ts:
            stats.add(name, t)
    for kind, n in (errors or {}).items():
        for _ in range(n):
            stats.error(kind, f"{kind} happened")
    return stats


def test_rounds_merge_their_round_trips_and_errors():
    first = _stats({"open": [1.0, 2.0], "connect+hydrate": [50.0]}, {"open:TimeoutError": 1})
    second = _stats({"open": [3.0], "confirm": [4.0]}, {"open:TimeoutError": 2, "connect:OSError": 1})
    merged = load.Stats().merge(first).merge(second)
    assert merged.times == {"open": [1.0, 2.0, 3.0], "connect+hydrate": [50.0], "confirm": [4.0]}
    assert merged.errors == {"open:TimeoutError": 3, "connect:OSError": 1}
    assert len(merged.samples) == 4
    # The steady-state p95 leaves the connection burst out.
    assert city.steady_p95(merged) == 4.0


def test_the_cpu_a_load_cost_adds_up_over_rounds_and_is_reported_per_round_trip(monkeypatch):
    monkeypatch.setattr(load.os, "cpu_count", lambda: 2)
    first = _stats({"open": [1.0] * 100})
    first.cpu = load.CpuUse(server=0.6, client=0.1, busy=2.0, wall=10.0, round_trips=100)
    second = _stats({"open": [2.0] * 300})
    second.cpu = load.CpuUse(server=1.4, client=0.3, busy=4.0, wall=20.0, round_trips=300)
    merged = load.Stats().merge(first).merge(_stats({"open": [3.0]})).merge(second)
    assert merged.cpu == load.CpuUse(server=2.0, client=0.4, busy=6.0, wall=30.0, round_trips=400)
    line = merged.cpu.line("chiiki")
    # 2.0 s over 400 round trips; 6 s busy of 30 s on 2 cores; the server 2 of 60, the generator 0.4 of 60.
    assert "server CPU 5.00 ms per round trip" in line and "cores busy 10 %" in line
    assert "(server 3 %, load generator 1 %)" in line
    assert line in merged.lines("chiiki")
    assert not any("server CPU" in text for text in _stats({"open": [1.0]}).lines("blank"))


def test_the_cpu_is_measured_over_the_recorded_part_of_a_real_load(monkeypatch):
    """run_load takes the CPU of the processes it is given between the end of the warm-up and the end."""
    import asyncio
    import os

    readings = iter([({os.getpid(): 1.0}, 0.5, 10.0, 100.0), ({os.getpid(): 1.9}, 0.7, 13.0, 103.0)])
    taken: list[list[int]] = []

    def now(pids):
        taken.append(pids)
        return next(readings)

    monkeypatch.setattr(load, "_cpu_now", now)

    class Quiet(load.ReflexClient):
        async def connect(self, path: str = "/") -> float:
            return 1.0

        async def close(self) -> None:
            return None

    monkeypatch.setattr(load, "ReflexClient", Quiet)

    async def act(tab) -> float:
        return 2.0

    stats = asyncio.run(load.run_load("http://127.0.0.1:1", 3, 0.3, load.Mix([("act", 1, act)]), think=0.05,
                                      warmup=0.1, progress=lambda _t: None, server_pids=lambda: [os.getpid()]))
    assert taken == [[os.getpid()], [os.getpid()]]
    assert stats.cpu is not None and stats.cpu.round_trips == len(stats.times["act"]) > 0
    assert (round(stats.cpu.server, 6), round(stats.cpu.client, 6), stats.cpu.busy, stats.cpu.wall) == (0.9, 0.2, 3.0, 3.0)
    # No tab at all: nothing to wait for, and nothing measured.
    assert asyncio.run(load.run_load("http://127.0.0.1:1", 0, 0.1, load.Mix([("act", 1, act)]), warmup=0.1,
                                     progress=lambda _t: None, server_pids=lambda: [os.getpid()])).cpu is None


def test_a_server_process_that_starts_or_ends_during_the_window():
    start = ({1: 5.0, 2: 7.0}, 0.0, 0.0, 0.0)
    end = ({1: 6.5, 3: 0.25}, 0.1, 1.0, 2.0)  # 2 ended (left out), 3 started (counted from zero)
    assert load._cpu_between(start, end, 10) == load.CpuUse(1.75, 0.1, 1.0, 2.0, 10)


def test_the_report_gives_the_ratio_of_all_rounds_and_of_each():
    blank = _stats({"blank:increment": [2.0] * 9 + [4.0]})
    chiiki = _stats({"chiiki:open inbox": [5.0] * 9 + [12.0], "chiiki:toggle language": [2.0]})
    results = {"rounds": [(10.0, 5.0), (30.0, 5.0), (12.0, 4.0)], "blank": (blank, None),
               "blank+onload": (_stats({"blank:page with on_load": [3.0]}), None), "chiiki": (chiiki, None),
               "alone": {"blank": [3.0] * 9 + [9.0], "chiiki": [4.0] * 9 + [8.0]}}
    lines: list[str] = []
    city.print_load(results, 200, lines.append)
    alone = next(line for line in lines if "one tab alone" in line)
    assert "Chiiki p50 4.0 / p95 8.0 ms" in alone and "p50 3.0 / p95 9.0 ms = 1.33x at p50" in alone
    ratio = next(line for line in lines if "RATIO" in line)
    assert "Chiiki p95 12.0 ms / blank p95 4.0 ms = 3.00x" in ratio and "misses" in ratio
    assert any("per round: 2.00x, 6.00x, 3.00x (median 3.00x over 3 rounds)" in line for line in lines)


async def test_the_client_does_what_a_browser_does_with_the_apps_scripts(demo, app_state):
    """The load client keeps the cookies the app's scripts write and the page they send the browser to,
    read from the very scripts the app sends."""
    from reflex.istate.data import RouterData

    from chiiki.bench.load import ReflexClient
    from chiiki.state import AuthState, UIState

    tab = ReflexClient("http://127.0.0.1:1/")
    ui = await app_state.get_state(UIState)
    for events in (UIState.toggle_lang.fn(ui), UIState.toggle_large_text.fn(ui)):
        for event in events if isinstance(events, list) else [events]:
            if getattr(event, "args", None):  # the scripts; not the chained handler that saves the choice
                tab._run_script(str(event.args[0][1]._var_value))
    assert tab.cookies == {"chiiki_lang": "en", "chiiki_large_text": "1"}
    app_state.router = RouterData.from_router_data({"sid": "s", "headers": {"host": "127.0.0.1:9", "origin": "x"}})
    auth = await app_state.get_state(AuthState)
    event = await auth._hand_off("", "/login")
    tab._run_script(str(event.args[0][1]._var_value))
    assert tab.location and tab.location.startswith("http://127.0.0.1:9/auth/handoff?t=")


def test_each_action_alone_is_charged_its_own_cpu_and_round_trips(monkeypatch):
    """per_action: one tab runs each action after a warm-up; the CPU between the readings around an action's
    runs is divided by the runs that did something (an action with nothing left to do is not a round trip)."""
    import asyncio

    readings = iter([({7: 1.0}, 0.0, 0.0, 0.0), ({7: 1.3}, 0.0, 0.0, 1.0),    # "page": 0.3 s over 30
                     ({7: 2.0}, 0.0, 0.0, 2.0), ({7: 2.4}, 0.0, 0.0, 3.0)])   # "two": 0.4 s over 20
    monkeypatch.setattr(load, "_cpu_now", lambda pids: next(readings))
    connected: list[str] = []

    class Quiet(load.ReflexClient):
        async def connect(self, path: str = "/") -> float:
            connected.append(path)
            return 1.0

        async def close(self) -> None:
            return None

    monkeypatch.setattr(load, "ReflexClient", Quiet)
    calls = {"page": 0, "two": 0}

    async def page(tab) -> float:
        calls["page"] += 1
        return float(calls["page"])

    async def two(tab) -> dict[str, float] | None:
        calls["two"] += 1
        if calls["two"] % 3 == 0:  # every third run finds nothing to do
            return None
        return {"open": 5.0, "confirm": 7.0}

    seen: list[object] = []

    async def after(tab) -> None:
        seen.append(tab)

    costs = asyncio.run(load.per_action("http://127.0.0.1:1", load.Mix([("page", 1, page), ("two", 1, two)]),
                                        lambda: [7], 30, start_path="/mypage", after=after, warmup=2))
    assert connected == ["/mypage"] and len(seen) == 1
    assert calls == {"page": 32, "two": 32}
    assert costs["page"].count == 30 and costs["page"].times == {"page": [float(i) for i in range(3, 33)]}
    assert abs(costs["page"].server_ms - 10.0) < 1e-9  # 300 ms over 30 runs
    # Runs 3..32 of "two": 20 of them did something.
    assert costs["two"].count == 20 and costs["two"].times == {"open": [5.0] * 20, "confirm": [7.0] * 20}
    assert abs(costs["two"].server_ms - 20.0) < 1e-9
    lines: list[str] = []
    city.print_load({"per_action": {"chiiki": costs}}, 1, lines.append)
    assert any("alone, chiiki, two ×20: server CPU 20.0 ms per action; round trip open p50 5.0 ms · confirm p50 "
               "7.0 ms" in line for line in lines)
