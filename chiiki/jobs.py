"""Periodic background jobs run inside each app worker (mail queue, inquiry delivery, purges).

Each job claims its rows in the database, so several workers may run them side by side.
"""

from __future__ import annotations

import asyncio
import importlib
import logging

log = logging.getLogger("chiiki.jobs")

# "module:function" of synchronous jobs; a module that does not exist (yet) is skipped.
JOBS = [
    "chiiki.services.mail:deliver_queued",
    "chiiki.services.inquiries:deliver_pending",
    "chiiki.services.inquiries:purge_expired",
    "chiiki.services.notices:mail_due",
    "chiiki.services.circulars:mail_held_corrections",
    "chiiki.services.attachments:purge_orphans",
    "chiiki.services.attachments:purge_stray_files",
    "chiiki.services.accounts:refresh_slowest_cost",
]
INTERVAL_SECONDS = 15


def _resolve() -> list:
    found = []
    for spec in JOBS:
        module, _, name = spec.partition(":")
        try:
            found.append(getattr(importlib.import_module(module), name))
        except (ModuleNotFoundError, AttributeError):
            continue
    return found


def run_all_once() -> None:
    for job in _resolve():
        try:
            job()
        except Exception:  # one failing job must not stop the others
            log.exception("job %s failed", getattr(job, "__name__", job))


async def periodic_jobs() -> None:
    """Lifespan task: run every job at a steady interval, off the event loop."""
    while True:
        await asyncio.sleep(INTERVAL_SECONDS)
        await asyncio.to_thread(run_all_once)
