"""Reflex configuration; every setting comes from the environment (see chiiki/settings.py)."""

import os

import reflex as rx
from reflex.plugins import SitemapPlugin
from reflex_components_radix.plugin import RadixThemesPlugin

from chiiki.settings import settings, state_lock_env


def _respawn_failed_workers() -> None:
    """Production: a crashed granian worker is replaced instead of stopping every worker.

    Reflex 0.10 builds granian's Server without `respawn_failed_workers` (granian's own CLI flag
    --respawn-failed-workers), so one killed worker would take the whole site down. The server is
    built in this process after this file is read, so the default is set here.
    """
    try:
        from granian.server.common import AbstractServer
    except ImportError:  # granian absent: development server or uvicorn
        return
    init = AbstractServer.__init__
    if getattr(init, "_chiiki_respawn", False):
        return

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("respawn_failed_workers", True)
        init(self, *args, **kwargs)

    __init__._chiiki_respawn = True
    AbstractServer.__init__ = __init__


_respawn_failed_workers()


def _opportunistic_state_locks() -> None:
    """With Redis, a worker keeps a tab's state (and its lock) in memory between the tab's events.

    A tab's websocket stays on one worker, so its events need no Redis read and write each; another
    worker that needs the state asks for the lock and the holder writes the state back first (tested
    by tests/browser/test_workers.py). The state is held for 20 s from taking it
    (chiiki.settings.STATE_HOLD_MS), long enough for a person reading a page. What is lost when a worker dies is at most those seconds
    of a tab's screen state, never a database write (tests/browser/test_reliability.py). Variables
    given in the environment win.
    """
    if settings.redis_url:
        os.environ.update(state_lock_env(os.environ))


_opportunistic_state_locks()

config = rx.Config(
    app_name="chiiki",
    db_url=settings.db_url,
    redis_url=settings.redis_url or None,
    telemetry_enabled=False,
    show_built_with_reflex=False,
    plugins=[RadixThemesPlugin(theme=rx.theme(appearance="light", accent_color="indigo", radius="medium"))],
    disable_plugins=[SitemapPlugin],
)
