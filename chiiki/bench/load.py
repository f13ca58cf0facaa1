"""Browser-like Reflex load: a socket.io client speaking the Reflex 0.10 event protocol, app launchers, stats.

How the compiled frontend (.web/utils/state.js, context.jsx) talks to the backend, reproduced here:
  * socket.io over websocket, engine.io path "/_event", namespace "/_event", query ``token=<tab uuid>``;
  * the first event rides in the CONNECT packet's auth: ``{"event": hydrate_and_load, "state_schema": ...}``
    where hydrate_and_load carries the cookie/localStorage values as ``payload.vars`` keyed by the
    state var's full name (e.g. the session cookie);
  * every other event is a socket.io "event" message ``{"name": "<state full name>.<handler>",
    "payload": {arg: value}, "router_data": {"pathname": ..., "asPath": ...}}``;
  * the websocket's HTTP request carries the browser's cookies (an app reads HttpOnly ones there);
  * a client-side navigation sends ``update_vars_internal`` (browser storage, when the app has any such
    var) and ``on_load_internal``;
    the page is loaded when a delta sets the root state's ``is_hydrated`` back to true;
  * the server answers with "event" messages ``{"delta": {state: {var: value}}, "events": [...]}``.

Reflex sends no per-event acknowledgement: a scenario knows an event was handled when a delta shows its
effect (``call(..., done=...)`` waits for that). A dropped socket ends every wait at once with
ConnectionError; ``reconnect()`` opens a new socket for the same tab (same token, storage and page), as
the browser's socket.io client does, and the server hydrates it from the stored state.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.cookies
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Awaitable, Callable, Iterable

ROOT = Path(__file__).resolve().parents[2]
ROOT_STATE = "reflex___state____state"
HYDRATED = "is_hydrated_rx_state_"
HYDRATE_EVENT = f"{ROOT_STATE}.hydrate_and_load"
ON_LOAD_EVENT = f"{ROOT_STATE}.reflex___state____on_load_internal_state.on_load_internal"
UPDATE_VARS_EVENT = f"{ROOT_STATE}.reflex___state____update_vars_internal_state.update_vars_internal"
TIMEOUT = 15.0


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, int(round(p / 100 * (len(ordered) - 1)))))
    return ordered[k]


@dataclass
class Stats:
    """Round-trip times (ms) per action name, and errors by kind."""

    times: dict[str, list[float]] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    samples: list[str] = field(default_factory=list)  # a few error texts, to find the cause
    cpu: "CpuUse | None" = None  # the CPU the steady part of the load cost, when it was measured

    def add(self, name: str, ms: float) -> None:
        self.times.setdefault(name, []).append(ms)

    def merge(self, other: "Stats") -> "Stats":
        """Add another run's round trips and errors to these (rounds of the same mix)."""
        for name, ts in other.times.items():
            self.times.setdefault(name, []).extend(ts)
        for kind, n in other.errors.items():
            self.errors[kind] = self.errors.get(kind, 0) + n
        self.samples += other.samples[:max(0, 5 - len(self.samples))]
        if other.cpu is not None:
            self.cpu = other.cpu if self.cpu is None else self.cpu.merge(other.cpu)
        return self

    def error(self, kind: str, text: str = "") -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1
        if text and len(self.samples) < 5:
            self.samples.append(f"{kind}: {text[:300]}")

    @property
    def all_times(self) -> list[float]:
        return [t for ts in self.times.values() for t in ts]

    def summary(self, name: str | None = None) -> dict:
        ts = self.all_times if name is None else self.times.get(name, [])
        return {"n": len(ts), "p50": percentile(ts, 50), "p95": percentile(ts, 95), "p99": percentile(ts, 99)}

    def lines(self, title: str) -> list[str]:
        out = [f"{title}: {'action':24} {'n':>6} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}"]
        for name in sorted(self.times):
            s = self.summary(name)
            out.append(f"{title}: {name:24} {s['n']:>6} {s['p50']:>8.1f} {s['p95']:>8.1f} {s['p99']:>8.1f}")
        s = self.summary()
        out.append(f"{title}: {'ALL':24} {s['n']:>6} {s['p50']:>8.1f} {s['p95']:>8.1f} {s['p99']:>8.1f}")
        out.append(f"{title}: errors {sum(self.errors.values())} {self.errors or ''}")
        if self.cpu is not None:
            out.append(self.cpu.line(title))
        out += [f"{title}:   e.g. {sample}" for sample in self.samples]
        return out


class SocketIO:
    """The socket.io client side Reflex needs, over wsproto (python-socketio's client needs aiohttp).

    Engine.IO 4 over a websocket: "0{...}" open, "2"/"3" ping/pong, "4" + a socket.io packet:
    "0/ns,{auth}" connect, "2/ns,[name, data]" event, "1/ns," disconnect, "4/ns,{...}" connect error.
    """

    def __init__(self, on_event: Callable[[dict], Awaitable[None]], namespace: str = "/_event",
                 on_close: Callable[[], None] | None = None):
        self.ns = namespace
        self.on_event = on_event
        self.on_close = on_close  # called once when the connection ends (server gone, closed, killed)
        self.connected = False
        self._closed_told = False
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._ws = None
        self._task: asyncio.Task | None = None
        self._joined: asyncio.Future | None = None

    async def connect(self, url: str, path: str, auth: dict, timeout: float = TIMEOUT,
                      cookies: dict[str, str] | None = None) -> None:
        from wsproto import ConnectionType, WSConnection
        from wsproto.events import AcceptConnection, RejectConnection, Request

        parsed = urllib.parse.urlsplit(url)
        query = parsed.query + ("&" if parsed.query else "") + "EIO=4&transport=websocket"
        self._reader, self._writer = await asyncio.wait_for(
            asyncio.open_connection(parsed.hostname, parsed.port), timeout)
        self._ws = WSConnection(ConnectionType.CLIENT)
        headers = [("Cookie", "; ".join(f"{k}={v}" for k, v in cookies.items()))] if cookies else []
        self._writer.write(self._ws.send(Request(host=parsed.netloc, target=f"{path.rstrip('/')}/?{query}",
                                                 extra_headers=headers)))
        while True:
            data = await asyncio.wait_for(self._reader.read(65536), timeout)
            if not data:
                raise ConnectionError("closed during the websocket handshake")
            self._ws.receive_data(data)
            events = list(self._ws.events())
            if any(isinstance(e, RejectConnection) for e in events):
                raise ConnectionError("websocket refused")
            if any(isinstance(e, AcceptConnection) for e in events):
                break
        self._joined = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(self._read_loop())
        self._send_text("40" + self.ns + "," + json.dumps(auth, separators=(",", ":")))
        await asyncio.wait_for(self._joined, timeout)
        self.connected = True

    def _send_text(self, text: str) -> None:
        from wsproto.events import Message

        if self._writer is None or self._writer.is_closing():
            raise ConnectionError("socket closed")
        self._writer.write(self._ws.send(Message(data=text)))

    async def emit(self, name: str, data: dict) -> None:
        self._send_text("42" + self.ns + "," + json.dumps([name, data], separators=(",", ":"), ensure_ascii=False))
        await self._writer.drain()

    async def _read_loop(self) -> None:
        from wsproto.events import CloseConnection, Ping, TextMessage

        parts: list[str] = []
        try:
            while True:
                data = await self._reader.read(65536)
                if not data:
                    break
                self._ws.receive_data(data)
                for ev in self._ws.events():
                    if isinstance(ev, Ping):
                        self._writer.write(self._ws.send(ev.response()))
                    elif isinstance(ev, CloseConnection):
                        return
                    elif isinstance(ev, TextMessage):
                        parts.append(ev.data)
                        if ev.message_finished:
                            text, parts = "".join(parts), []
                            await self._packet(text)
        except (ConnectionError, OSError):
            pass
        finally:
            self.connected = False
            if self._joined and not self._joined.done():
                self._joined.set_exception(ConnectionError("closed before the namespace connected"))
            self._tell_closed()

    def _tell_closed(self) -> None:
        if not self._closed_told:
            self._closed_told = True
            if self.on_close:
                self.on_close()

    async def _packet(self, text: str) -> None:
        if text == "2":
            self._send_text("3")
            return
        if not text.startswith("4"):
            return  # "0{...}" open packet, "6" noop
        body = text[1:]
        kind, rest = body[0], body[1:]
        if rest.startswith(self.ns + ","):
            rest = rest[len(self.ns) + 1:]
        elif rest.startswith(self.ns):
            rest = rest[len(self.ns):]
        if kind == "0" and self._joined and not self._joined.done():
            self._joined.set_result(True)
        elif kind == "4" and self._joined and not self._joined.done():
            self._joined.set_exception(ConnectionError(f"connect refused: {rest[:200]}"))
        elif kind == "1":
            self.connected = False
            self._tell_closed()
        elif kind == "2":
            while rest and rest[0].isdigit():  # an ack id
                rest = rest[1:]
            name, *args = json.loads(rest)
            if name == "event" and args:
                await self.on_event(args[0])

    async def disconnect(self) -> None:
        if self._writer is None:
            return
        with contextlib.suppress(Exception):
            from wsproto.events import CloseConnection

            self._send_text("41" + self.ns + ",")
            self._writer.write(self._ws.send(CloseConnection(code=1000)))
            await self._writer.drain()
        self._writer.close()
        if self._task:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
        self.connected = False


_CLOSED = {"__closed__": True}  # put on a tab's update queue when its socket ends


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def _get_without_redirect(url: str, cookies: dict[str, str]):
    """GET `url` (loopback only) with these cookies; (status, headers) without following a redirect."""
    request = urllib.request.Request(url, headers={
        "Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items()), "Sec-Fetch-Site": "same-origin"})
    opener = urllib.request.build_opener(_NoRedirect, urllib.request.ProxyHandler({}))  # never a proxy
    try:
        with opener.open(request, timeout=TIMEOUT) as response:
            return response.status, response.headers
    except urllib.error.HTTPError as e:  # a 3xx left unfollowed arrives as an HTTPError
        return e.code, e.headers


class ReflexClient:
    """One browser tab: a socket, its token, its browser storage, and the page it is on.

    `mirror`: full var names (``"<state full name>.<var>_rx_state_"``) of cookie / local-storage vars the
    browser writes back when a delta changes them (the storage keys given are mirrored too), so that a
    reconnect or a page change sends the current value.

    `cookies`: the browser's cookies, sent with every websocket request. As a browser does, the tab keeps
    what the app's scripts write to ``document.cookie``, and ``follow_handoff()`` loads the page an app
    sent the browser to with ``window.location`` (keeping the cookies its answer sets, e.g. an HttpOnly
    session cookie, and reconnecting on the page it redirects to).
    """

    def __init__(self, base_url: str, storage: dict[str, str] | None = None, schema: str | None = None,
                 mirror: Iterable[str] = (), cookies: dict[str, str] | None = None):
        self.base_url = base_url
        self.token = str(uuid.uuid4())
        self.storage = dict(storage or {})
        self.cookies = dict(cookies or {})
        self.location: str | None = None  # the last page the app sent the browser to (window.location)
        self.mirror = set(self.storage) | set(mirror)
        self.schema = schema
        self.path = "/"
        self.updates: asyncio.Queue = asyncio.Queue()
        self.sio = self._new_socket()
        self.problems: list[str] = []
        self.data: dict = {}  # whatever a scenario wants to keep per tab
        self.state: dict[str, dict] = {}  # the tab's copy of the state, merged from every delta
        self.reconnects = 0  # successful reconnects after a dropped connection
        self.events_sent = 0

    def _new_socket(self) -> SocketIO:
        sio: SocketIO | None = None

        def closed() -> None:
            if sio is self.sio:  # a replaced socket's end says nothing about the current one
                self.updates.put_nowait(_CLOSED)

        sio = SocketIO(self._on_update, on_close=closed)
        return sio

    def var(self, state_name: str, var: str, default=None):
        """A var of the substate with this full name, as the browser holds it now."""
        return self.state.get(state_name, {}).get(f"{var}_rx_state_", default)

    def last_state(self, substate_hint: str, var: str):
        """A var of the first substate whose name contains the hint, as the browser holds it now."""
        for name, values in self.state.items():
            if substate_hint in name and f"{var}_rx_state_" in values:
                return values[f"{var}_rx_state_"]
        return None

    async def _on_update(self, update) -> None:
        for name, values in ((update or {}).get("delta") or {}).items():
            self.state.setdefault(name, {}).update(values)
            if self.mirror:
                for var, value in values.items():
                    if f"{name}.{var}" in self.mirror:
                        self.storage[f"{name}.{var}"] = value if isinstance(value, str) else json.dumps(value)
        for ev in (update or {}).get("events") or []:
            name = str(ev.get("name", ""))
            # Backend exceptions reach the browser as an error toast / alert script.
            text = str(ev.get("payload", ""))
            if name == "_call_script":
                self._run_script(str((ev.get("payload") or {}).get("javascript_code", "")))
            if name.startswith("_call") and ("error" in text.lower() or "エラー" in text):
                self.problems.append(text[:200])
        await self.updates.put(update)

    def _run_script(self, code: str) -> None:
        """What a browser does with the two scripts apps send here: store a cookie, go to a page."""
        for name, value in re.findall(r'document\.cookie="([^=;"]+)=([^;"]*)', code):
            self.cookies[name] = value
        for url in re.findall(r'window\.location\.(?:replace|assign)\("([^"]+)"\)', code):
            self.location = url

    async def follow_handoff(self) -> float:
        """Load the page the app sent the browser to (``window.location``): keep the cookies its answer
        sets or clears, follow its redirect, and reconnect on the page it lands on. Returns ms."""
        url, self.location = self.location, None
        if url is None:
            raise RuntimeError("the app sent the browser to no page")
        t0 = time.perf_counter()
        if url.startswith("/"):
            url = self.base_url.rstrip("/") + url
        status, headers = await asyncio.to_thread(_get_without_redirect, url, self.cookies)
        jar = http.cookies.SimpleCookie()
        for header in headers.get_all("Set-Cookie") or []:
            jar.load(header)
        for name, morsel in jar.items():
            if morsel.value and morsel["max-age"] != "0":
                self.cookies[name] = morsel.value
            else:  # cleared
                self.cookies.pop(name, None)
        if status not in (301, 302, 303, 307, 308):
            raise ConnectionError(f"the page answered {status}, not a redirect")
        landing = urllib.parse.urlsplit(headers.get("Location", "/"))
        reconnects = self.reconnects  # a page load, not a dropped connection
        await self.reconnect(landing.path + (f"?{landing.query}" if landing.query else ""))
        self.reconnects = reconnects
        return (time.perf_counter() - t0) * 1000

    def _event(self, name: str, payload: dict | None = None) -> dict:
        parts = urllib.parse.urlsplit(self.path)
        router = {"pathname": parts.path, "asPath": self.path}
        if parts.query:
            router["query"] = dict(urllib.parse.parse_qsl(parts.query))
        event = {"name": name, "router_data": router}
        if payload:
            event["payload"] = payload
        return event

    async def connect(self, path: str = "/") -> float:
        """Open the socket with the hydrate event (as a page load does); ms until the page is hydrated."""
        self.path = path
        payload = {"vars": self.storage} if self.storage else {}
        auth = {"event": self._event(HYDRATE_EVENT, payload)}
        if self.schema:
            auth["state_schema"] = self.schema
        t0 = time.perf_counter()
        await self.sio.connect(f"{self.base_url}?token={self.token}", "/_event", auth, cookies=self.cookies)
        await self._wait(self._hydrated)
        return (time.perf_counter() - t0) * 1000

    async def reconnect(self, path: str | None = None, *, deadline: float | None = None, pause: float = 0.25,
                        keep_trying: Callable[[], bool] | None = None) -> float:
        """A new socket for the same tab after a dropped one (same token, storage and page), retried with
        backoff until `deadline` (a time.perf_counter() value; default TIMEOUT from now) or until
        `keep_trying()` says no. Reads `base_url` on every try, so a caller may point the tab at a
        restarted server meanwhile. Returns ms until the page is hydrated again."""
        deadline = deadline if deadline is not None else time.perf_counter() + TIMEOUT
        t0 = time.perf_counter()
        await self.close()
        last: BaseException | None = None
        while True:
            self.sio = self._new_socket()
            self._drain()
            try:
                await self.connect(path or self.path)
            except (OSError, ConnectionError, TimeoutError, asyncio.TimeoutError) as e:
                last = e
                await self.close()
                if time.perf_counter() + pause >= deadline or (keep_trying is not None and not keep_trying()):
                    raise ConnectionError(f"could not reconnect: {type(last).__name__}: {last}") from last
                await asyncio.sleep(pause)
                pause = min(pause * 2, 2.0)
                continue
            self.reconnects += 1
            return (time.perf_counter() - t0) * 1000

    @staticmethod
    def _hydrated(update: dict) -> bool:
        return bool((update.get("delta") or {}).get(ROOT_STATE, {}).get(HYDRATED) is True)

    async def _wait(self, done: Callable[[dict], bool], timeout: float = TIMEOUT) -> list[dict]:
        seen = []
        deadline = time.perf_counter() + timeout
        while True:
            left = deadline - time.perf_counter()
            if left <= 0:
                raise TimeoutError("no answer from the server")
            try:
                update = await asyncio.wait_for(self.updates.get(), left)
            except asyncio.TimeoutError:
                raise TimeoutError("no answer from the server") from None
            if update is _CLOSED:
                raise ConnectionError("the connection was lost while waiting for the answer")
            seen.append(update)
            if done(update):
                return seen

    async def _emit(self, event: dict) -> None:
        if not self.sio.connected:
            raise ConnectionError("not connected")
        self.events_sent += 1
        await self.sio.emit("event", event)

    def _drain(self) -> None:
        while not self.updates.empty():
            self.updates.get_nowait()

    async def navigate(self, path: str) -> float:
        """A client-side page change: browser storage, then the page's on_load; ms until loaded."""
        self._drain()
        self.path = path
        t0 = time.perf_counter()
        if self.storage:
            await self._emit(self._event(UPDATE_VARS_EVENT, {"vars": self.storage}))
        await self._emit(self._event(ON_LOAD_EVENT))
        await self._wait(self._hydrated)
        return (time.perf_counter() - t0) * 1000

    async def call(self, name: str, payload: dict | None = None,
                   done: Callable[[dict], bool] | None = None, timeout: float = TIMEOUT) -> tuple[float, list[dict]]:
        """Send one event; ms until the first answer (or until `done` says the answer is complete).

        `done` sees each update after it is merged into `state`. Raises ConnectionError when the socket
        is (or goes) down before that, TimeoutError after `timeout` seconds."""
        self._drain()
        t0 = time.perf_counter()
        await self._emit(self._event(name, payload))
        seen = await self._wait(done or (lambda _u: True), timeout)
        return (time.perf_counter() - t0) * 1000, seen

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.sio.disconnect()


# --------------------------------------------------------------------------- running a load


# An action returns its round trip in ms, several named ones ({name: ms}), or None when it did nothing.
Action = Callable[[ReflexClient], Awaitable[float | dict[str, float] | None]]


@dataclass
class Mix:
    """Weighted actions a simulated user picks from, between think pauses."""

    actions: list[tuple[str, float, Action]]

    def pick(self, rng: random.Random) -> tuple[str, Action]:
        total = sum(w for _, w, _ in self.actions)
        x = rng.random() * total
        for name, w, fn in self.actions:
            x -= w
            if x <= 0:
                return name, fn
        return self.actions[-1][0], self.actions[-1][2]


async def run_load(base_url: str, clients: int, seconds: float, mix: Mix,
                   client_setup: Callable[[int], dict] | None = None, *, start_path: str = "/",
                   client_cookies: Callable[[int], dict] | None = None,
                   think: float = 1.0, seed: int = 1,
                   after: Callable[[ReflexClient, int], Awaitable[None]] | None = None,
                   warmup: float = 0.0, progress: Callable[[str], None] = print,
                   server_pids: Callable[[], list[int]] | None = None) -> Stats:
    """`clients` tabs connect (ramping up), then each runs the mix until `seconds` have passed.

    With `warmup`, actions start once every tab has connected, and the first `warmup` seconds of them
    are not recorded: the figures describe the steady state, not the connection burst (whose cost is
    reported apart, as connect+hydrate). With `server_pids`, the CPU of those processes, of this process and
    of the machine over the recorded part is measured too (stats.cpu).
    """
    stats = Stats()
    tabs: list[ReflexClient] = []
    stop_at = [0.0]
    record_from = [0.0]
    connected = asyncio.Event()
    pending = [clients]

    def one_connected() -> None:
        pending[0] -= 1
        if pending[0] == 0:
            now = time.perf_counter()
            if warmup:
                record_from[0] = now + warmup
                stop_at[0] = record_from[0] + seconds
            connected.set()

    async def one(i: int) -> None:
        rng = random.Random(f"{seed}:{i}")
        storage = client_setup(i) if client_setup else {}
        tab = ReflexClient(base_url, storage, cookies=client_cookies(i) if client_cookies else None)
        tabs.append(tab)
        await asyncio.sleep(i * 0.01)  # a short ramp: 100 connects per second
        try:
            stats.add("connect+hydrate", await tab.connect(start_path))
            if after:
                await after(tab, i)
        except Exception as e:  # noqa: BLE001 (every failure is a counted error)
            stats.error(f"connect:{type(e).__name__}", str(e))
            return
        finally:
            one_connected()
        if warmup:
            await connected.wait()
        while time.perf_counter() < stop_at[0]:
            await asyncio.sleep(rng.expovariate(1 / think) if think else 0)
            if time.perf_counter() >= stop_at[0]:
                break
            name, fn = mix.pick(rng)
            started = time.perf_counter()
            try:
                ms = await fn(tab)
            except Exception as e:  # noqa: BLE001
                stats.error(f"{name}:{type(e).__name__}", str(e))
                if not tab.sio.connected:
                    return
                continue
            if started < record_from[0]:
                continue
            if isinstance(ms, dict):
                for key, value in ms.items():
                    stats.add(key, value)
            elif ms is not None:
                stats.add(name, ms)
        for text in tab.problems:
            stats.error("server-error-toast", text)

    async def account_cpu() -> None:
        # From the end of the warm-up (without one: from when every tab has connected) to the end.
        await connected.wait()
        procs = server_pids()
        await asyncio.sleep(max(0.0, record_from[0] - time.perf_counter()))
        start = _cpu_now(procs)
        await asyncio.sleep(max(0.0, stop_at[0] - time.perf_counter()))
        end = _cpu_now(server_pids())
        trips = sum(len(ts) for k, ts in stats.times.items() if k != "connect+hydrate")
        stats.cpu = _cpu_between(start, end, trips)

    stop_at[0] = time.perf_counter() + seconds + clients * 0.01 + (3600 if warmup else 0)
    accounting = asyncio.ensure_future(account_cpu()) if server_pids and clients > 0 else None
    try:
        await asyncio.gather(*(one(i) for i in range(clients)))
        if accounting is not None:
            await accounting
    finally:
        if accounting is not None and not accounting.done():
            accounting.cancel()
        await asyncio.gather(*(t.close() for t in tabs))
    progress(f"[load] {clients} clients, {seconds:.0f} s: {len(stats.all_times)} round trips")
    return stats


@dataclass
class ActionCost:
    """One action run alone by one tab, again and again: its round trips and the server CPU it cost."""

    times: dict[str, list[float]]
    server_ms: float  # server CPU per action
    count: int


async def per_action(base_url: str, mix: Mix, server_pids: Callable[[], list[int]], repeat: int = 40, *,
                     storage: dict | None = None, cookies: dict | None = None, start_path: str = "/",
                     after: Callable[[ReflexClient], Awaitable[None]] | None = None,
                     warmup: int = 3) -> dict[str, ActionCost]:
    """Each action of `mix`, `repeat` times in a row by one tab with nothing else running (after `warmup` runs
    not counted): what an action costs the server by itself, apart from what concurrency adds. The round trip
    minus the CPU is time spent waiting (the state store, threads, the database), not working."""
    tab = ReflexClient(base_url, storage or {}, cookies=cookies)
    out: dict[str, ActionCost] = {}
    try:
        await tab.connect(start_path)
        if after:
            await after(tab)
        for name, _weight, fn in mix.actions:
            for _ in range(warmup):
                await fn(tab)
            times: dict[str, list[float]] = {}
            done = 0
            start = _cpu_now(server_pids())
            for _ in range(repeat):
                ms = await fn(tab)
                if ms is None:  # nothing left to do (no circular left to confirm): no round trip either
                    continue
                done += 1
                for key, value in (ms.items() if isinstance(ms, dict) else ((name, ms),)):
                    times.setdefault(key, []).append(value)
            cpu = _cpu_between(start, _cpu_now(server_pids()), done)
            out[name] = ActionCost(times, 1000 * cpu.server / max(1, done), done)
    finally:
        await tab.close()
    return out


async def idle_memory(base_url: str, pids: Callable[[], list[int]], clients: int,
                      storage: Callable[[int], dict] | None = None, path: str = "/",
                      cookies: Callable[[int], dict] | None = None) -> dict:
    """RSS of the server processes before and after `clients` idle tabs connect and hydrate."""
    before = rss_mb(pids())
    tabs = [ReflexClient(base_url, storage(i) if storage else {}, cookies=cookies(i) if cookies else None)
            for i in range(clients)]
    failures = 0
    try:
        for batch in range(0, clients, 50):
            results = await asyncio.gather(*(t.connect(path) for t in tabs[batch:batch + 50]),
                                           return_exceptions=True)
            failures += sum(isinstance(r, Exception) for r in results)
        await asyncio.sleep(2)
        after = rss_mb(pids())
    finally:
        await asyncio.gather(*(t.close() for t in tabs))
    return {"before_mb": before, "after_mb": after, "clients": clients, "failures": failures,
            "kb_per_client": (after - before) * 1024 / max(1, clients - failures)}


@dataclass
class CpuUse:
    """CPU seconds spent while a load ran: by the server's processes, by this load generator, and by the whole
    machine (busy = not idle), with the wall time: what each round trip costs the server, and how busy the
    cores were (queueing, not the work itself, is what makes a p95 grow under load)."""

    server: float = 0.0
    client: float = 0.0
    busy: float = 0.0
    wall: float = 0.0
    round_trips: int = 0

    def merge(self, other: "CpuUse") -> "CpuUse":
        return CpuUse(self.server + other.server, self.client + other.client, self.busy + other.busy,
                      self.wall + other.wall, self.round_trips + other.round_trips)

    def line(self, title: str) -> str:
        capacity = max(1e-9, self.wall * (os.cpu_count() or 1))  # CPU seconds the cores had meanwhile
        per = 1000 * self.server / max(1, self.round_trips)
        return (f"{title}: server CPU {per:.2f} ms per round trip ({self.server:.1f} s over {self.round_trips} "
                f"round trips); cores busy {100 * self.busy / capacity:.0f} % (server "
                f"{100 * self.server / capacity:.0f} %, load generator {100 * self.client / capacity:.0f} %)")


def _cpu_now(pids: list[int]) -> tuple[dict[int, float], float, float, float]:
    """CPU seconds so far of each of `pids` (those still running), of this process and of the machine (busy:
    neither idle nor waiting for I/O; guest time is already within user time), and the clock."""
    import psutil

    server: dict[int, float] = {}
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            t = psutil.Process(pid).cpu_times()
            server[pid] = t.user + t.system
    me = psutil.Process().cpu_times()
    machine = psutil.cpu_times()
    busy = sum(machine) - machine.idle - sum(getattr(machine, k, 0.0) for k in ("iowait", "guest", "guest_nice"))
    return server, me.user + me.system, busy, time.perf_counter()


def _cpu_between(start: tuple, end: tuple, trips: int) -> CpuUse:
    """The CPU spent from `start` to `end` (readings of _cpu_now): a server process that started meanwhile counts
    from zero; one that ended meanwhile is left out (its last seconds cannot be read)."""
    (s0, c0, b0, w0), (s1, c1, b1, w1) = start, end
    server = sum(t - s0.get(pid, 0.0) for pid, t in s1.items())
    return CpuUse(max(0.0, server), c1 - c0, b1 - b0, w1 - w0, trips)


def rss_mb(pids: list[int]) -> float:
    import psutil

    total = 0
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            total += psutil.Process(pid).memory_info().rss
    return total / 2**20


# --------------------------------------------------------------------------- starting apps


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tool_env() -> dict[str, str]:
    """The variables scripts/dev.sh exports (bun from .tools, caches inside the project)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("REFLEX_ENV_MODE", "REFLEX_FRONTEND", "REFLEX_BACKEND", "PYTEST"))}
    env.setdefault("REFLEX_BUN_PATH", str(ROOT / ".tools" / "node_modules" / ".bin" / "bun"))
    env.setdefault("BUN_INSTALL_CACHE_DIR", str(ROOT / ".cache" / "bun"))
    env.setdefault("REFLEX_DIR", str(ROOT / ".cache" / "reflex"))
    env["REFLEX_TELEMETRY_ENABLED"] = "false"
    if "NPM_CONFIG_REGISTRY" not in env:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(["npm", "config", "get", "registry"], capture_output=True, text=True, timeout=30)
            if out.stdout.strip().startswith("http"):
                env["NPM_CONFIG_REGISTRY"] = out.stdout.strip()
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), str(Path(env["REFLEX_BUN_PATH"]).parent),
                                   env.get("PATH", "")])
    env["PYTHONUNBUFFERED"] = "1"
    return env


@dataclass
class RunningApp:
    name: str
    url: str
    proc: subprocess.Popen
    log_path: Path
    tmp: Path
    startup_seconds: float

    def pids(self) -> list[int]:
        """The server's processes: the `reflex run` leader and all its descendants."""
        import psutil

        try:
            leader = psutil.Process(self.proc.pid)
            return [leader.pid, *(c.pid for c in leader.children(recursive=True))]
        except psutil.Error:
            return []

    def stop(self) -> None:
        for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)
            try:
                self.proc.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)

    def log(self, tail: int = 40) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-tail:])
        return ""


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 (loopback only)
            return resp.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def start_app(name: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 300) -> RunningApp:
    """`reflex run --env prod --single-port` on a free loopback port, in its own process group."""
    tmp = Path(tempfile.mkdtemp(prefix=f"chiiki-citybench-{name}-"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    child_env = tool_env()
    child_env.update({"REFLEX_API_URL": url, "REFLEX_DEPLOY_URL": url, "CHIIKI_PUBLIC_URL": url,
                      "REFLEX_WEB_WORKDIR": str(tmp / "web"), "REFLEX_STATES_WORKDIR": str(tmp / "states")})
    child_env.update(env or {})
    cmd = [sys.executable, "-m", "reflex", "run", "--env", "prod", "--single-port", "--frontend-port", str(port),
           "--backend-port", str(port), "--backend-host", "127.0.0.1"]
    log_path = tmp / "app.log"
    started = time.monotonic()
    with log_path.open("w") as log:
        proc = subprocess.Popen(cmd, cwd=cwd, env=child_env, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    app = RunningApp(name, url, proc, log_path, tmp, 0.0)
    while not (_http_ok(url + "/ping") and _http_ok(url + "/")):
        if proc.poll() is not None or time.monotonic() - started > timeout:
            text = app.log()
            app.stop()
            raise RuntimeError(f"{name} did not start (exit {proc.returncode}):\n{text}")
        time.sleep(0.5)
    app.startup_seconds = time.monotonic() - started
    return app


BLANK_RXCONFIG = """
import reflex as rx
from reflex.plugins import SitemapPlugin
from reflex_components_radix.plugin import RadixThemesPlugin

config = rx.Config(app_name="blank", telemetry_enabled=False, show_built_with_reflex=False,
                   plugins=[RadixThemesPlugin(theme=rx.theme(appearance="light"))], disable_plugins=[SitemapPlugin])
"""
BLANK_APP = """
import reflex as rx


class Counter(rx.State):
    count: int = 0

    @rx.event
    def increment(self):
        self.count += 1


class Loaded(rx.State):
    # A browser-stored value and a page load handler: with them every page change costs four framework
    # events, as any page of an app with an rx.Cookie login and data to load (update_vars_internal,
    # on_load_internal, the handler, set_is_hydrated). Chiiki's is one (chiiki.state.LoadPageInOneEvent).
    pref: str = rx.Cookie("", name="blank_pref")
    loads: int = 0

    @rx.event
    def load(self):
        self.loads += 1


def index() -> rx.Component:
    return rx.vstack(rx.heading(Counter.count), rx.button("+1", on_click=Counter.increment))


def loaded() -> rx.Component:
    return rx.vstack(rx.heading(Loaded.loads), rx.text(Loaded.pref))


app = rx.App()
app.add_page(index, route="/")
app.add_page(loaded, route="/loaded", on_load=Loaded.load)
"""
BLANK_INCREMENT = f"{ROOT_STATE}.blank___blank____counter.increment"
BLANK_COOKIE = f"{ROOT_STATE}.blank___blank____loaded.pref_rx_state_"


def make_blank_app() -> Path:
    """A blank Reflex app with one counter, in a temporary directory (the framework's floor)."""
    d = Path(tempfile.mkdtemp(prefix="chiiki-citybench-blank-src-"))
    (d / "blank").mkdir()
    (d / "blank" / "__init__.py").write_text("")
    (d / "blank" / "blank.py").write_text(textwrap.dedent(BLANK_APP))
    (d / "rxconfig.py").write_text(textwrap.dedent(BLANK_RXCONFIG))
    (d / "assets").mkdir()
    return d


def blank_mix() -> Mix:
    async def increment(tab: ReflexClient) -> float:
        ms, _ = await tab.call(BLANK_INCREMENT)
        return ms

    async def home(tab: ReflexClient) -> float:
        return await tab.navigate("/")

    return Mix([("blank:increment", 3, increment), ("blank:navigate", 1, home)])


def blank_loaded_mix() -> Mix:
    """Page changes to a page with a load handler, by tabs holding a cookie: the framework's own cost of a
    page load in an app with a login (no database, no work in the handler)."""

    async def page(tab: ReflexClient) -> float:
        return await tab.navigate("/loaded")

    return Mix([("blank:page with on_load", 1, page)])


def blank_loaded_storage(_i: int) -> dict:
    return {BLANK_COOKIE: "x"}


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
