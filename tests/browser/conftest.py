"""Browser tests: the real app (``reflex run --env prod``) driven by headless Chromium.

Fixtures
--------
``start_app(db_url=None, redis_url=None, workers=None, env=None, fresh=False)``
    Session-scoped factory. Starts the app as a subprocess on a free loopback port and returns a
    :class:`LiveApp` (``.url``, ``.db_url``, ``.data_dir``, ``.log()``, ``.stop()``). Every instance
    gets its own temporary data dir, Reflex web dir and states dir, so it never touches ``.web``
    of a running ``scripts/dev.sh run``.

    * ``db_url=None``: a temporary SQLite database. ``db_url="postgresql"``: a fresh PostgreSQL
      database on 127.0.0.1:5432, dropped at the end. Any other string is used as it is.
    * ``redis_url=None``: disk state manager. ``redis_url="redis"``: a Redis database on
      127.0.0.1:6379 (numbers from 15 downwards), flushed before and after. Any other string is
      used as it is.
    * ``workers``: sets ``GRANIAN_WORKERS``.
    * ``env``: extra environment variables for the app and its CLI steps.

    Identical calls return the running instance unless ``fresh=True``. Everything started is
    stopped when the session ends.
``live_app``
    ``start_app()``: the SQLite instance shared by the whole session.
``browser`` / ``page``
    Playwright (sync API) Chromium, one per session; ``page`` is a fresh context per test
    (390x844 viewport) with ``page.ws_frames`` (every websocket frame received, as str),
    ``page.console_errors`` and ``page.page_errors``.
``screenshot``
    ``screenshot(page, "name")`` saves ``test-artifacts/screenshots/name.png``.

Browser tests are plain sync functions (the Playwright sync API cannot run inside an asyncio
loop) and must not request async fixtures. They are marked ``browser`` and run after every
other test of the session.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
SCREENSHOT_DIR = ROOT / "test-artifacts" / "screenshots"
CHROMIUM = Path(os.environ.get("CHIIKI_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PG_ADMIN_URL = os.environ.get("CHIIKI_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_HOST = "127.0.0.1:6379"
REDIS_FIRST_DB = 15
START_TIMEOUT = float(os.environ.get("CHIIKI_APP_START_TIMEOUT", "180"))
DEFAULT_VIEWPORT = {"width": 390, "height": 844}

# Variables that must not leak from the pytest process into the app.
_DROP_ENV = (
    "PYTEST_CURRENT_TEST",
    "PYTEST_VERSION",
    "PYTEST_ADDOPTS",
    "REFLEX_ENV_MODE",
    "REFLEX_FRONTEND_PORT",
    "REFLEX_BACKEND_PORT",
    "REFLEX_FRONTEND_ONLY",
    "REFLEX_BACKEND_ONLY",
    "REFLEX_WEB_WORKDIR",
    "REFLEX_STATES_WORKDIR",
    "REFLEX_API_URL",
    "REFLEX_DEPLOY_URL",
    "REFLEX_DB_URL",
    "REFLEX_REDIS_URL",
    "GRANIAN_WORKERS",
    "CHIIKI_DATA_DIR",
    "CHIIKI_PUBLIC_URL",
    "APP_HARNESS_FLAG",
)


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


IN_CI = _truthy(os.environ.get("CI"))


# --------------------------------------------------------------------------- collection


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: drives the real app in headless Chromium")
    if not config.pluginmanager.has_plugin("chiiki-browser-loop-guard"):
        config.pluginmanager.register(_LoopGuard(), "chiiki-browser-loop-guard")


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark everything under tests/browser and move it to the end of the run."""
    browser, other = [], []
    missing = chromium_missing_reason()
    for item in items:
        if HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.browser)
            # Skip before starting the app; on CI the `browser` fixture fails instead.
            if missing and not IN_CI and {"browser", "page"} & set(getattr(item, "fixturenames", ())):
                item.add_marker(pytest.mark.skip(reason=missing))
            browser.append(item)
        else:
            other.append(item)
    items[:] = other + browser


_PLAYWRIGHT_LOOP: asyncio.AbstractEventLoop | None = None


class _LoopGuard:
    """Hide Playwright's event loop from non-browser tests.

    The sync API marks its private loop as the thread's running loop between calls, and
    pytest-asyncio then refuses to run ("cannot be called from a running event loop"). Browser
    tests run last anyway; this covers a different order (e.g. ``-p random``/explicit ids).
    """

    @contextlib.contextmanager
    def _hidden(self, item: pytest.Item) -> Iterator[None]:
        loop = asyncio._get_running_loop()
        hide = loop is not None and loop is _PLAYWRIGHT_LOOP and item.get_closest_marker("browser") is None
        if hide:
            asyncio._set_running_loop(None)
        try:
            yield
        finally:
            if hide:
                asyncio._set_running_loop(loop)

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item):
        with self._hidden(item):
            return (yield)

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_call(self, item: pytest.Item):
        with self._hidden(item):
            return (yield)

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_teardown(self, item: pytest.Item, nextitem: pytest.Item | None):
        with self._hidden(item):
            return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    item.stash.setdefault(_REPORTS, {})[report.when] = report
    return report


_REPORTS = pytest.StashKey[dict]()


# --------------------------------------------------------------------------- the app


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tool_env() -> dict[str, str]:
    """The environment scripts/dev.sh exports, so `pytest` also works when called directly."""
    env = {k: v for k, v in os.environ.items() if k not in _DROP_ENV}
    bun = ROOT / ".tools" / "node_modules" / ".bin" / "bun"
    env.setdefault("REFLEX_BUN_PATH", str(bun))
    env.setdefault("BUN_INSTALL_CACHE_DIR", str(ROOT / ".cache" / "bun"))
    env.setdefault("REFLEX_DIR", str(ROOT / ".cache" / "reflex"))
    env["REFLEX_TELEMETRY_ENABLED"] = "false"
    if "NPM_CONFIG_REGISTRY" not in env:
        registry = "https://registry.npmjs.org/"
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(["npm", "config", "get", "registry"], capture_output=True, text=True, timeout=30)
            if out.returncode == 0 and out.stdout.strip().startswith("http"):
                registry = out.stdout.strip()
        env["NPM_CONFIG_REGISTRY"] = registry
    path = [str(Path(sys.executable).parent), str(bun.parent), env.get("PATH", "")]
    env["PATH"] = os.pathsep.join(p for p in path if p)
    env["PYTHONUNBUFFERED"] = "1"
    if not Path(env["REFLEX_BUN_PATH"]).exists():
        pytest.fail(f"bun not found at {env['REFLEX_BUN_PATH']}: run `bash scripts/dev.sh setup` first")
    return env


@dataclass
class LiveApp:
    url: str
    port: int
    db_url: str
    data_dir: Path
    tmp_dir: Path
    log_path: Path
    redis_url: str | None = None
    workers: int | None = None
    startup_seconds: float = 0.0
    proc: subprocess.Popen | None = field(default=None, repr=False)
    _cleanups: list[Callable[[], None]] = field(default_factory=list, repr=False)

    def log(self, tail: int | None = None) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-tail:]) if tail else text

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            _kill_group(proc)
        while self._cleanups:
            with contextlib.suppress(Exception):
                self._cleanups.pop()()


def _kill_group(proc: subprocess.Popen) -> None:
    for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
        # The group leader is gone; give workers a moment, then make sure none is left.
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                os.killpg(proc.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 (loopback only)
            return resp.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _redis_database(number: int) -> tuple[str, Callable[[], None]]:
    from chiiki.bench.reliability import flush_redis

    url = f"redis://{REDIS_HOST}/{number}"
    flush_redis(url)  # start empty
    return url, lambda: flush_redis(url)


def _run_step(args: list[str], env: dict[str, str], log_path: Path) -> None:
    with log_path.open("a") as log:
        log.write(f"\n$ {' '.join(args)}\n")
        log.flush()
        result = subprocess.run(args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, timeout=300)
    if result.returncode != 0:
        text = log_path.read_text(errors="replace")
        pytest.fail(f"`{' '.join(args)}` exited {result.returncode}\n----- log -----\n{text[-20000:]}", pytrace=False)


def launch_app(
    *,
    db_url: str | None = None,
    redis_url: str | None = None,
    workers: int | None = None,
    env: dict[str, str] | None = None,
    redis_db: int = REDIS_FIRST_DB,
) -> LiveApp:
    """Migrate, seed and start one instance; the caller owns it (call .stop())."""
    tmp = Path(tempfile.mkdtemp(prefix="chiiki-browser-"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    data_dir = tmp / "data"
    data_dir.mkdir()
    app = LiveApp(url=url, port=port, db_url="", data_dir=data_dir, tmp_dir=tmp, log_path=tmp / "app.log")
    app.workers = workers
    if not _truthy(os.environ.get("CHIIKI_KEEP_BROWSER_TMP")):
        app._cleanups.append(lambda: shutil.rmtree(tmp, ignore_errors=True))
    try:
        if db_url is None:
            db_url = f"sqlite:///{tmp / 'chiiki.db'}"
        elif db_url in {"postgres", "postgresql"}:
            from chiiki.bench.reliability import create_pg_database

            db_url, drop = create_pg_database(PG_ADMIN_URL, prefix="chiiki_browser")
            app._cleanups.append(drop)
        app.db_url = db_url
        if redis_url == "redis":
            redis_url, flush = _redis_database(redis_db)
            app._cleanups.append(flush)
        app.redis_url = redis_url

        child_env = _tool_env()
        child_env.update(
            {
                "REFLEX_DB_URL": db_url,
                "CHIIKI_DATA_DIR": str(data_dir),
                "CHIIKI_PUBLIC_URL": url,
                "REFLEX_API_URL": url,
                "REFLEX_DEPLOY_URL": url,
                # Own web/states dirs: the build embeds the port, and `reflex run` empties the
                # states dir; the repository's .web and .states stay with `scripts/dev.sh run`.
                "REFLEX_WEB_WORKDIR": str(tmp / "web"),
                "REFLEX_STATES_WORKDIR": str(tmp / "states"),
            }
        )
        if redis_url:
            child_env["REFLEX_REDIS_URL"] = redis_url
        if workers is not None:
            child_env["GRANIAN_WORKERS"] = str(workers)
        child_env.update(env or {})

        py = sys.executable
        _run_step([py, "-m", "chiiki.cli", "migrate"], child_env, app.log_path)
        _run_step([py, "-m", "chiiki.cli", "seed-demo"], child_env, app.log_path)

        cmd = [
            py, "-m", "reflex", "run", "--env", "prod", "--single-port",
            "--frontend-port", str(port), "--backend-port", str(port), "--backend-host", "127.0.0.1",
        ]  # fmt: skip
        started = time.monotonic()
        with app.log_path.open("a") as log:
            log.write(f"\n$ {' '.join(cmd)}\n")
            log.flush()
            app.proc = subprocess.Popen(
                cmd, cwd=ROOT, env=child_env, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
        deadline = started + START_TIMEOUT
        while True:
            if app.proc.poll() is not None:
                raise RuntimeError(f"the app exited with code {app.proc.returncode} before it answered")
            if _http_ok(url + "/ping") and _http_ok(url + "/"):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"the app did not answer 200 on / and /ping within {START_TIMEOUT:.0f} s")
            time.sleep(0.5)
        app.startup_seconds = time.monotonic() - started
        print(f"\n[live_app] {url} ({db_url.split('://')[0]}) ready in {app.startup_seconds:.1f} s", file=sys.stderr)
        return app
    except BaseException as exc:
        text = app.log()
        app.stop()
        if isinstance(exc, (pytest.fail.Exception, KeyboardInterrupt)):
            raise
        pytest.fail(f"could not start the app: {exc}\n----- app log ({app.log_path}) -----\n{text[-20000:]}", pytrace=False)


@pytest.fixture(scope="session")
def start_app() -> Iterator[Callable[..., LiveApp]]:
    started: dict[Any, LiveApp] = {}
    everything: list[LiveApp] = []
    next_redis_db = [REDIS_FIRST_DB]

    def factory(
        db_url: str | None = None,
        redis_url: str | None = None,
        workers: int | None = None,
        env: dict[str, str] | None = None,
        fresh: bool = False,
    ) -> LiveApp:
        key = (db_url, redis_url, workers, tuple(sorted((env or {}).items())))
        if not fresh and key in started and started[key].running:
            return started[key]
        redis_db = next_redis_db[0]
        if redis_url == "redis":
            next_redis_db[0] -= 1
        app = launch_app(db_url=db_url, redis_url=redis_url, workers=workers, env=env, redis_db=redis_db)
        everything.append(app)
        if not fresh:
            started[key] = app
        return app

    yield factory
    for app in reversed(everything):
        app.stop()


@pytest.fixture(scope="session")
def live_app(start_app: Callable[..., LiveApp]) -> LiveApp:
    """The app on a temporary SQLite database, started once per session."""
    return start_app()


# --------------------------------------------------------------------------- the browser


def chromium_missing_reason() -> str | None:
    if not CHROMIUM.exists():
        return f"{CHROMIUM} not found (bash scripts/dev.sh setup installs it as root)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -e '.[test]')"
    return None


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    global _PLAYWRIGHT_LOOP
    reason = chromium_missing_reason()
    if reason:
        if IN_CI:
            pytest.fail(f"browser tests cannot run on CI: {reason}", pytrace=False)
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    pw = sync_playwright().start()
    _PLAYWRIGHT_LOOP = asyncio._get_running_loop()
    try:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
    except BaseException:
        pw.stop()
        _PLAYWRIGHT_LOOP = None
        raise
    try:
        yield chromium
    finally:
        with contextlib.suppress(Exception):
            chromium.close()
        pw.stop()
        _PLAYWRIGHT_LOOP = None


def save_screenshot(page: Any, name: str, *, full_page: bool = True) -> Path:
    """Save a PNG under test-artifacts/screenshots/ and return its path."""
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    safe = re.sub(r"[^\w.-]+", "_", name).strip("_") or "screenshot"
    path = SCREENSHOT_DIR / (safe if safe.endswith(".png") else f"{safe}.png")
    page.screenshot(path=str(path), full_page=full_page)
    return path


@pytest.fixture
def screenshot() -> Callable[..., Path]:
    return save_screenshot


_HYDRATED_FRAME = re.compile(r'"is_hydrated_rx_state_"\s*:\s*true')


def wait_new_page_loaded(page: Any, frames_before: int, timeout: float = 30_000) -> None:
    """After an in-app page change (a link tapped): until the new page's load has run on the server.

    Right after the change #main's data-loaded still tells of the page before, and a form filled then is
    emptied when the new page's load starts; the load's last answer (is_hydrated true) arrives after it.
    `frames_before`: len(page.ws_frames) before the tap."""
    deadline = time.monotonic() + timeout / 1000
    while not any(_HYDRATED_FRAME.search(f) for f in page.ws_frames[frames_before:]):
        if time.monotonic() > deadline:
            raise AssertionError(f"the new page's load did not end within {timeout / 1000:.0f} s")
        page.wait_for_timeout(50)
    wait_loaded(page, timeout)


def wait_loaded(page: Any, timeout: float = 30_000) -> None:
    """Until this page's load has run on the server (the shell marks #main with data-loaded="true").

    A click sent earlier is handled before the page's own load, which then resets what the click did."""
    from playwright.sync_api import expect

    expect(page.locator('#main[data-loaded="true"]')).to_be_attached(timeout=timeout)


def new_page(browser: Any, *, viewport: dict[str, int] | None = None, **context_args: Any) -> tuple[Any, Any]:
    """A page in a fresh context that records websocket frames, console errors and page errors."""
    context = browser.new_context(viewport=viewport or DEFAULT_VIEWPORT, **context_args)
    page = context.new_page()
    page.ws_frames = []
    page.console_errors = []
    page.page_errors = []

    def on_websocket(ws: Any) -> None:
        def on_frame(payload: str | bytes) -> None:
            page.ws_frames.append(payload.decode("utf-8", "replace") if isinstance(payload, bytes) else payload)

        ws.on("framereceived", on_frame)

    page.on("websocket", on_websocket)
    def on_console(msg: Any) -> None:
        if msg.type == "error":
            where = (msg.location or {}).get("url") or ""
            page.console_errors.append(f"{msg.text} [{where}]" if where else msg.text)

    page.on("console", on_console)
    page.on("pageerror", lambda err: page.page_errors.append(str(err)))
    return context, page


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh context + page (390x844). Override the viewport with
    ``@pytest.mark.parametrize("viewport", [{"width": 1280, "height": 800}])`` or a ``viewport`` fixture."""
    viewport = request.getfixturevalue("viewport") if "viewport" in request.fixturenames else None
    context, pg = new_page(browser, viewport=viewport)
    try:
        yield pg
    finally:
        reports = request.node.stash.get(_REPORTS, {})
        if any(r.failed for r in reports.values()):
            with contextlib.suppress(Exception):
                path = save_screenshot(pg, f"FAILED-{request.node.name}")
                print(f"\n[page] screenshot of the failure: {path}", file=sys.stderr)
        with contextlib.suppress(Exception):
            context.close()
