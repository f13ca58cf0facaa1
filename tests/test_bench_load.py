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
    event = await auth.hand_off("", "/login")
    tab._run_script(str(event.args[0][1]._var_value))
    assert tab.location and tab.location.startswith("http://127.0.0.1:9/auth/handoff?t=")
