"""Backup and restore of the embedded SQLite database (PostgreSQL: pg_dump / pg_restore, see README)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy.engine import make_url

from chiiki import settings as settings_module


def _sqlite_path(url: str | None = None) -> Path:
    parsed = make_url(url or settings_module.settings.db_url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        raise SystemExit("backup/restore here is for SQLite; for PostgreSQL use pg_dump and pg_restore (README)")
    return Path(parsed.database)


def backup(target: str | Path, url: str | None = None) -> Path:
    """A consistent copy taken while the app keeps running (SQLite's online backup API)."""
    source = _sqlite_path(url)
    target = Path(target)
    if target.exists():
        raise SystemExit(f"{target} exists; choose a new file name")
    target.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    with sqlite3.connect(target) as check:
        if check.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
            raise SystemExit("the backup failed its integrity check")
    return target


def restore(source: str | Path, url: str | None = None) -> Path:
    """Replace the database with a backup (stop the app first); the old file is kept beside it."""
    source = Path(source)
    target = _sqlite_path(url)
    with sqlite3.connect(source) as src:
        if src.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
            raise SystemExit(f"{source} is not a sound SQLite database")
        if target.exists():
            keep = target.with_suffix(target.suffix + ".before-restore")
            keep.unlink(missing_ok=True)
            with sqlite3.connect(target) as cur, sqlite3.connect(keep) as k:
                cur.backup(k)
        with sqlite3.connect(target) as dst:
            src.backup(dst)
    return target
