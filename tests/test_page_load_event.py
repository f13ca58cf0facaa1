"""A page change of the shared frame is one event on the server (LoadPageInOneEvent): Reflex's
on_load_internal runs the page's load itself instead of queueing it and set_is_hydrated as two more events,
and the browser is told the same things in the same order."""

from __future__ import annotations

import asyncio

import pytest
import reflex as rx
from reflex_base.event import Event

from chiiki.state import AuthState, ForgetStaleGrants, LoadPageInOneEvent
from tests.conftest import login_state
from tests.test_circular_states import compose_and_send

HYDRATED_VAR = "is_hydrated_rx_state_"
ON_LOAD = f"{rx.State.get_full_name()}.reflex___state____on_load_internal_state.on_load_internal"


@pytest.fixture(scope="module")
def app():
    """The app with its pages added, as it runs (the pages register their on_load when added)."""
    from chiiki.chiiki import app

    if not app._load_events:
        app._apply_decorated_pages()
    return app


async def _change_page(app, root, path: str, event_name: str = ON_LOAD, sent: list | None = None,
                       connected: bool = True):
    """The middleware as the app runs it for the browser's event; what it sent, queued and returned.
    `connected`: the tab's websocket connected (hydrate) since this server state was made."""
    from reflex.istate.data import ReflexURL, URLData
    from reflex_base.event.context import EventContext

    if connected:
        await ForgetStaleGrants().preprocess(None, root, Event(name=f"{rx.State.get_full_name()}.hydrate_and_load"))

    root.rx_router_url = URLData.from_url(ReflexURL(f"http://127.0.0.1:3000{path}"))
    root._clean()
    sent = [] if sent is None else sent

    async def emit_delta(_token, delta):
        sent.append(("delta", delta))

    async def emit_event(_token, *events):
        sent.extend(("event", e) for e in events)

    async def enqueue(_token, *events):
        sent.extend(("queued", e) for e in events)

    token = EventContext.set(EventContext(token="tab", state_manager=None, enqueue_impl=enqueue,
                                          emit_delta_impl=emit_delta, emit_event_impl=emit_event))
    try:
        update = await LoadPageInOneEvent().preprocess(app, root, Event(name=event_name))
    finally:
        EventContext.reset(token)
    return update, sent


def _hydrated(item) -> bool | None:
    kind, delta = item
    return delta.get(rx.State.get_full_name(), {}).get(HYDRATED_VAR) if kind == "delta" else None


async def test_a_page_change_loads_the_page_in_the_one_event(demo, app, app_state):
    from chiiki.pages.circulars import InboxState

    _cs, cid, _ = await compose_and_send(app_state, demo)  # the 会長 sends; the member then opens the inbox
    member = type(app_state)()
    await login_state(member, "member@example.jp")
    update, sent = await _change_page(app, member, "/circulars")
    assert update is not None  # handled: Reflex queues neither the load nor set_is_hydrated
    assert not [x for x in sent if x[0] == "queued"]
    assert [_hydrated(x) for x in sent] == [False, True]  # loading (buttons wait), then loaded
    inbox = await member.get_state(InboxState)
    assert [i["id"] for i in inbox.items] == [str(cid)]
    assert f"'id': '{cid}'" in repr(sent[1][1])  # the rows come with "loaded"
    assert (await member.get_state(AuthState)).unread_circulars == 1


async def test_a_redirect_from_the_load_follows_the_page_data(demo, app, app_state):
    update, sent = await _change_page(app, app_state, "/mypage")  # nobody is logged in
    assert update is not None
    kinds = [x[0] for x in sent]
    assert kinds == ["delta", "delta", "event"] and _hydrated(sent[1]) is True
    assert sent[2][1].name == "_redirect" and "/login" in repr(sent[2][1].payload)


async def test_a_failed_load_still_ends_the_wait(demo, app, app_state, monkeypatch):
    def broken(*_a):
        raise RuntimeError("database gone")

    monkeypatch.setattr("chiiki.state._nav_facts", broken)
    sent = []
    with pytest.raises(RuntimeError):
        await _change_page(app, app_state, "/circulars", sent=sent)
    assert app_state.is_hydrated is True and [_hydrated(x) for x in sent] == [False, True]


async def test_a_load_cancelled_by_a_newer_page_change_sends_nothing_more(demo, app, app_state, monkeypatch):
    """Reflex cancels the unfinished page change (supersedes); the newer one says loading and loaded itself."""
    def cancelled(*_a):
        raise asyncio.CancelledError

    monkeypatch.setattr("chiiki.state._nav_facts", cancelled)
    sent = []
    with pytest.raises(asyncio.CancelledError):
        await _change_page(app, app_state, "/circulars", sent=sent)
    assert [_hydrated(x) for x in sent] == [False]


async def test_pages_outside_the_frame_and_other_events_keep_reflexs_way(demo, app, app_state):
    from chiiki.pages.circular_admin import CIRCULAR_PRINT

    assert (await _change_page(app, app_state, CIRCULAR_PRINT))[0] is None  # its own on_load (load_nav)
    assert (await _change_page(app, app_state, "/no-such-page"))[0] is None  # nothing to load
    update, sent = await _change_page(app, app_state, "/circulars",
                                      f"{AuthState.get_full_name()}.load_nav")
    assert update is None and sent == []


async def test_a_state_the_server_made_anew_is_sent_whole_first(demo, app, app_state):
    """The tab stayed open while its server-side state expired: its next page change is Reflex's own, which
    sends the whole state before the load (so a browser still showing a former user's menu is corrected);
    from then on a page change is one event again."""
    await login_state(app_state, "member@example.jp")
    update, sent = await _change_page(app, app_state, "/circulars", connected=False)
    assert update is None and sent == []  # Reflex's handler runs (and, for a new state, its rehydrate)
    update, _ = await _change_page(app, app_state, "/mypage", connected=False)
    assert update is not None


def test_a_worker_imports_at_startup_what_reflex_would_import_at_the_first_form(tmp_path):
    """Reflex imports reflex.model (and with it alembic) the first time an event carries a dict (a form's
    submit). Imported there, it held the worker's event loop for ~180 ms, every tab on that worker waiting;
    the startup task imports it before the worker takes events. In a fresh interpreter, as a worker starts."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    code = ("import sys, chiiki.chiiki as c\n"
            "before = 'reflex.model' in sys.modules\n"
            "c.freeze_startup_heap()\n"
            "print(before, 'reflex.model' in sys.modules)\n")
    env = {**os.environ, "REFLEX_DB_URL": f"sqlite:///{tmp_path / 'w.db'}", "CHIIKI_BCRYPT_ROUNDS": "4"}
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[-2:] == ["False", "True"], out.stdout


async def test_a_late_loaded_of_the_previous_page_does_not_leave_the_next_one_looking_loaded(demo, app, app_state,
                                                                                          monkeypatch):
    """A link followed while the previous page's "loaded" delta is still on its way: the browser's router sets
    is_hydrated false for the new page, then the late delta sets it true again. The server's own "loading"
    delta, sent after it, must put the browser back to false while the new page loads (its buttons wait:
    chiiki.components.ui disables them until loaded), not leave the page live on the data of its last visit."""
    import chiiki.state as cs

    await login_state(app_state, "member@example.jp")
    _u, previous = await _change_page(app, app_state, "/mypage")  # page A; its delta still in flight
    browser = [False]  # the router set false for page B as the link was followed ...
    browser += [h for h in map(_hydrated, previous) if h is not None]  # ... then A's late "loaded" arrived
    seen_during_load, sent, real = [], [], cs._nav_facts

    def spy(token, *rest):
        held = browser + [h for h in map(_hydrated, sent) if h is not None]
        seen_during_load.append(held[-1])
        return real(token, *rest)

    monkeypatch.setattr(cs, "_nav_facts", spy)
    await _change_page(app, app_state, "/circulars", sent=sent)
    assert seen_during_load == [False]


async def test_a_reconnect_forgets_what_the_pages_left_showed_and_keeps_the_current_page(demo, app, app_state):
    """A tab's state is sent whole at every reconnect (a phone waking): the roster the 会長 looked at before
    going to the inbox is not in it any more (it may have changed since: a household moved, a member left);
    the inbox, the page the tab is on, keeps its own and loads again."""
    from chiiki.pages.circulars import InboxState
    from chiiki.pages.roster import RosterState

    kaicho = type(app_state)()
    await login_state(kaicho, "kaicho@example.jp")
    await _change_page(app, kaicho, "/association/roster")
    roster = await kaicho.get_state(RosterState)
    assert roster.rows and any(r.get("address") for r in roster.rows)
    await _change_page(app, kaicho, "/circulars", connected=False)
    inbox = await kaicho.get_state(InboxState)
    inbox.query = "防災"  # typed into the inbox's search
    assert roster.rows and inbox.loaded
    await ForgetStaleGrants().preprocess(None, kaicho, Event(name=f"{rx.State.get_full_name()}.hydrate_and_load"))
    assert roster.rows == [] and roster.total == 0
    assert inbox.loaded and inbox.query == "防災"
