"""The Reflex app: creates rx.App() and imports every page so that all of them compile."""

import gc
import importlib
import logging
import re

import reflex as rx

from chiiki.jobs import periodic_jobs
from chiiki.state import HANDOFF_COOKIE, SESSION_COOKIE, ForgetStaleGrants, LoadPageInOneEvent

# Every page module registers its pages (and menu entries) when imported; order = menu order.
PAGE_MODULES = [
    "top", "auth", "circulars", "circular_admin", "surveys", "board", "association", "join", "roster", "officers",
    "members_admin", "notices", "inquiry", "city", "dashboard", "audit_trail", "mypage",
]
for _name in PAGE_MODULES:
    try:
        importlib.import_module(f"chiiki.pages.{_name}")
    except ModuleNotFoundError as _e:  # a feature not built yet; any other import error is real
        if _e.name != f"chiiki.pages.{_name}":
            raise


_SECRET_COOKIES = re.compile(rf"\b({SESSION_COOKIE}|{HANDOFF_COOKIE})=[^;\s'\",}}]+")


def _redact_session_cookies() -> None:
    """Log records never carry a session token: Reflex logs a failed event whole, with the request headers
    of its websocket (the Cookie header included)."""
    make = logging.getLogRecordFactory()
    if getattr(make, "_chiiki_redacts", False):
        return

    def factory(*args, **kwargs) -> logging.LogRecord:
        record = make(*args, **kwargs)
        if isinstance(record.msg, str):
            record.msg = _SECRET_COOKIES.sub(r"\1=[redacted]", record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_SECRET_COOKIES.sub(r"\1=[redacted]", a) if isinstance(a, str) else a
                                for a in record.args)
        return record

    factory._chiiki_redacts = True
    logging.setLogRecordFactory(factory)


_redact_session_cookies()


def _api():
    """Private HTTP routes (authorised attachment and export downloads), when the module exists."""
    try:
        from chiiki.api import api
    except ModuleNotFoundError as e:
        if e.name != "chiiki.api":
            raise
        return None
    return api


app = rx.App(
    stylesheets=["/chiiki.css"],
    # Japanese first; assets/a11y.js switches it to English from the language cookie before the first paint.
    html_lang="ja",
    # A Referer carries the page's origin only, never its path and query: a password link's token (in the
    # address) does not leave the page (the session handoff needs the origin alone).
    head_components=[rx.el.meta(name="theme-color", content="#3e63dd"),
                     rx.el.meta(name="referrer", content="strict-origin"), rx.el.script(src="/a11y.js")],
    api_transformer=_api(),
)


def freeze_startup_heap() -> None:
    """Lifespan task (each worker, at startup): what is alive now (the compiled app, its pages, components and
    state classes, the libraries) stays alive, so the garbage collector is told to leave it out (gc.freeze).
    Otherwise every full collection walks that whole heap again and stalls the events waiting behind it by
    tens of milliseconds. The login's stand-in password hash is made here too (at the highest cost stored), so
    that the first login with an unknown id takes no longer than any other, and so is the module Reflex imports
    at the first event that carries a form (reflex.model, which pulls in alembic): imported there, it held the
    worker's event loop for about 180 ms, every tab on that worker waiting behind it."""
    import reflex.model  # noqa: F401

    from chiiki.services import client_keys
    from chiiki.services.accounts import dummy_hash, slowest_cost
    from chiiki.services.db import session
    from chiiki.settings import settings

    try:
        with session() as s:  # the stand-in's cost: the highest any stored hash has
            dummy_hash(slowest_cost(s))
    except Exception:  # noqa: BLE001 - no database yet (migrations not run): its first login reads it
        dummy_hash(settings.bcrypt_rounds)
    try:  # the key of the counts by address (failed logins, inquiries): a data folder it cannot be in shows now
        client_keys.secret(str(settings.data_dir))
    except (OSError, RuntimeError):
        logging.getLogger("chiiki").exception("no key for the counts by address in %s", settings.data_dir)
    gc.collect()
    gc.freeze()


app.add_middleware(ForgetStaleGrants())
app.add_middleware(LoadPageInOneEvent())
app.register_lifespan_task(periodic_jobs)
app.register_lifespan_task(freeze_startup_heap)
