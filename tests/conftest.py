"""Test set-up: a private data folder and SQLite database per test, the demo city, actors and states."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import uuid
from pathlib import Path

_TMP = Path(tempfile.mkdtemp(prefix="chiiki-tests-"))
# Before anything reads the configuration: a throwaway database, private folder and fast bcrypt.
os.environ["REFLEX_DB_URL"] = f"sqlite:///{_TMP / 'boot.db'}"
os.environ["CHIIKI_DATA_DIR"] = str(_TMP / "data")
os.environ["CHIIKI_BCRYPT_ROUNDS"] = "4"
os.environ.pop("REFLEX_REDIS_URL", None)
os.environ.pop("CHIIKI_SMTP_HOST", None)

import pytest  # noqa: E402

from chiiki import settings as settings_module  # noqa: E402

settings_module.reload()

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
PG_BASE = os.environ.get("CHIIKI_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_BASE = os.environ.get("CHIIKI_TEST_REDIS", "redis://127.0.0.1:6379")


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def require_service(name: str, host: str, port: int) -> None:
    """Skip (saying why) when a production service is absent; in CI its absence is a failure."""
    if _reachable(host, port):
        return
    if IN_CI:
        pytest.fail(f"{name} at {host}:{port} is not reachable, and CI=true requires it")
    pytest.skip(f"{name} at {host}:{port} is not reachable on this machine (these tests run in CI)")


# Browser tests that share one app go to one process together: the production path's (PostgreSQL, Redis,
# two workers) and the SQLite app of all the others.
_PRODUCTION_PATH_TESTS = ("tests/browser/test_production_path.py", "tests/browser/test_workers.py",
                          "tests/browser/test_reliability.py")


@pytest.hookimpl(optionalhook=True)  # a hook of pytest-xdist's: no error where it is not installed
def pytest_xdist_make_scheduler(config, log):
    """`-n 2 --dist loadgroup` (scripts/dev.sh test with no arguments): the browser tests in two groups, each
    on one process that starts its apps and the browser once (the larger group first, the production path's on
    the other process), and every other test on whichever process is free. (pytest-xdist's own xdist_group
    marks do not reach its scheduler on pytest 9, whose node ids are no longer the attribute it rewrites.)"""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadGroupScheduling

    class BrowserGroups(LoadGroupScheduling):
        def _split_scope(self, nodeid: str) -> str:
            if nodeid.startswith(_PRODUCTION_PATH_TESTS):
                return "tests/browser (production path)"
            if nodeid.startswith("tests/browser/"):
                return "tests/browser"
            return super()._split_scope(nodeid)

    return BrowserGroups(config, log)


_TEMPLATES: dict[str, Path] = {}


def _template(kind: str) -> Path:
    """A migrated database (empty or with the demo city), built once and copied for each test."""
    if kind in _TEMPLATES:
        return _TEMPLATES[kind]
    path = _TMP / f"template-{kind}.db"
    url = f"sqlite:///{path}"
    from chiiki.services import db

    os.environ["REFLEX_DB_URL"] = url
    settings_module.reload()
    # The models build the schema here (fast, and new columns work before their migration exists);
    # tests/test_migrations.py proves the committed migrations produce exactly this schema.
    import chiiki.models  # noqa: F401
    from sqlmodel import SQLModel

    SQLModel.metadata.create_all(db.engine(url))
    if kind in ("demo", "demo_full"):
        from chiiki.seed import seed_demo

        seed_demo(content=kind == "demo_full")
    db.dispose_all()
    _TEMPLATES[kind] = path
    return path


def _use_copy(kind: str) -> str:
    from chiiki.services import db

    db.dispose_all()
    target = _TMP / f"t-{uuid.uuid4().hex}.db"
    shutil.copyfile(_template(kind), target)
    url = f"sqlite:///{target}"
    os.environ["REFLEX_DB_URL"] = url
    settings_module.reload()
    return url


@pytest.fixture
def empty_db() -> str:
    """A migrated, empty database for this test only."""
    url = _use_copy("empty")
    yield url
    from chiiki.services import db

    db.dispose_all()


@pytest.fixture
def demo():
    """The demo city's places and people (see chiiki/seed.py), without feature content, for this test only."""
    _use_copy("demo")
    from chiiki.services import db

    yield DemoCity()
    db.dispose_all()


@pytest.fixture
def demo_full():
    """The whole demo city as `bash scripts/dev.sh run` shows it: circulars, surveys, board, notices …"""
    _use_copy("demo_full")
    from chiiki.services import db

    yield DemoCity()
    db.dispose_all()


class DemoCity:
    """Looks up demo people and places by their demo login or name."""

    def account_id(self, login: str) -> int:
        from sqlmodel import select

        from chiiki.models import Account
        from chiiki.services.db import session

        with session() as s:
            return s.exec(select(Account.id).where(Account.login_id == login)).one()

    def set_address(self, login: str, address: str) -> None:
        """The address on the person's account, as if they had typed it (registration or my page)."""
        from chiiki.models import Account
        from chiiki.services.db import session

        with session() as s:
            acc = s.get(Account, self.account_id(login))
            acc.address = address
            s.add(acc)

    def actor(self, login: str):
        from chiiki.services.accounts import load_actor_in
        from chiiki.services.db import session

        with session() as s:
            return load_actor_in(s, self.account_id(login))

    def association_id(self, name: str) -> int:
        from sqlmodel import select

        from chiiki.models import Association
        from chiiki.services.db import session

        with session() as s:
            return s.exec(select(Association.id).where(Association.name == name)).one()

    def han_ids(self, association_name: str) -> list[int]:
        from sqlmodel import select

        from chiiki.models import Han
        from chiiki.services.db import session

        aid = self.association_id(association_name)
        with session() as s:
            return list(s.exec(select(Han.id).where(Han.association_id == aid).order_by(Han.route_order)).all())

    A1 = "旭町一丁目町内会"
    A2 = "本町親和会"
    A3 = "末広東町内会"


@pytest.fixture
def pg_url():
    """A fresh PostgreSQL database for this test, dropped afterwards."""
    require_service("PostgreSQL", "127.0.0.1", 5432)
    import sqlalchemy as sa

    name = f"chiiki_t_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_BASE, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = PG_BASE.rsplit("/", 1)[0] + "/" + name
    yield url
    from chiiki.services import db

    db.dispose_all()
    with admin.connect() as c:
        c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def pg_app_db(pg_url):
    """The app's own database switched to a fresh PostgreSQL one (tables from the models) for one test."""
    import os

    from sqlmodel import SQLModel

    from chiiki import settings as settings_module
    from chiiki.services import db

    previous = os.environ.get("REFLEX_DB_URL")
    os.environ["REFLEX_DB_URL"] = pg_url
    settings_module.reload()
    SQLModel.metadata.create_all(db.engine(pg_url))
    try:
        yield pg_url
    finally:
        if previous is None:
            os.environ.pop("REFLEX_DB_URL", None)
        else:
            os.environ["REFLEX_DB_URL"] = previous
        settings_module.reload()
        db.dispose_all()


@pytest.fixture
def redis_url():
    require_service("Redis", "127.0.0.1", 6379)
    return REDIS_BASE + "/5"


@pytest.fixture
def app_state():
    """A fresh rx.State tree, as one browser tab would have on the server."""
    import reflex as rx

    import chiiki.chiiki  # noqa: F401  (registers every page state)

    return rx.State()


async def login_state(root, login: str, password: str = "chiiki-demo-2026"):
    """Log a state tree in through the real login handler; returns the AuthState."""
    from chiiki.pages.auth import LoginState
    from chiiki.state import AuthState

    login_s = await root.get_state(LoginState)
    await LoginState.submit.fn(login_s, {"login_id": login, "password": password})
    auth = await root.get_state(AuthState)
    assert auth._session_token(), login_s.error
    await AuthState.load_nav.fn(auth)
    return auth


def handoff_of(events) -> tuple[str, str, str]:
    """(URL, ticket, nonce) of the session handoff a handler sent the browser to: the URL it goes to and
    the nonce cookie the app's script sets just before."""
    import re

    events = events if isinstance(events, (list, tuple)) else [events]
    scripts = [str(value) for e in events if e is not None for name, value in getattr(e, "args", ())
               if str(name) == "javascript_code"]
    urls = [m for js in scripts for m in re.findall(r"(?:https?://[^\"'\\/]+)?/auth/handoff\?t=[A-Za-z0-9_-]+", js)]
    nonces = [m for js in scripts for m in re.findall(r"chiiki_handoff=([A-Za-z0-9_-]+); path=/auth/handoff;", js)]
    assert len(urls) == 1 and len(nonces) == 1, events
    return urls[0], urls[0].rsplit("?t=", 1)[1], nonces[0]


def delta_text(root) -> str:
    """Everything the server would send to the browser now, as one string (for leak checks)."""
    import json

    return json.dumps(root.get_delta(), ensure_ascii=False, default=str)


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(_TMP, ignore_errors=True)


def state_text(root) -> str:
    """The whole state tree a browser could hold, as one string (for leak checks)."""
    import json

    return json.dumps(root.dict(), ensure_ascii=False, default=str)
