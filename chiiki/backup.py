"""Backup and restore of the embedded SQLite database (PostgreSQL: pg_dump / pg_restore, see README)."""

from __future__ import annotations

import contextlib
import os
import sqlite3
from datetime import datetime
from pathlib import Path

from sqlalchemy.engine import make_url

from chiiki import settings as settings_module


def _sqlite_path(url: str | None = None) -> Path:
    parsed = make_url(url or settings_module.settings.db_url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        raise SystemExit("backup/restore here is for SQLite; for PostgreSQL use pg_dump and pg_restore (README)")
    return Path(parsed.database)


def _open_chiiki_db(path: Path, check: bool = True) -> sqlite3.Connection:
    """A read-only connection to an existing Chiiki database, sound unless `check` is off (sqlite3.connect
    would create a missing file: a mistyped path would otherwise restore, or back up, an empty database)."""
    if not path.is_file():
        raise SystemExit(f"{path} does not exist")
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        sound = not check or conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        ours = conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table' "
                            "AND name IN ('account', 'household', 'circular')").fetchone()[0] == 3
    except sqlite3.DatabaseError:
        sound = ours = False
    if sound and ours:
        return conn
    conn.close()
    raise SystemExit(f"{path} is not a sound SQLite database" if not sound else f"{path} is not a Chiiki database")


def _private_file(path: Path) -> None:
    """Create an empty file only the app's own user may read (it will hold everyone's personal data)."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def backup(target: str | Path, url: str | None = None) -> Path:
    """A consistent copy taken while the app keeps running (SQLite's online backup API)."""
    source = _sqlite_path(url)
    target = Path(target)
    if target.exists():
        raise SystemExit(f"{target} exists; choose a new file name")
    # The copy is checked whole below: checking the live database first as well read it all once more (21 s
    # of a 1.2 GB city database, holding back the app's checkpoints meanwhile).
    src = _open_chiiki_db(source, check=False)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        _private_file(target)
        with sqlite3.connect(target) as dst:
            src.backup(dst)
    finally:
        src.close()
    try:
        with contextlib.closing(sqlite3.connect(target)) as copy:
            sound = copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    except sqlite3.DatabaseError:
        sound = False
    if not sound:
        target.unlink()  # no broken file left to be taken for a backup
        raise SystemExit(f"the database at {source} is damaged: its copy failed the integrity check")
    return target


def restore(source: str | Path, url: str | None = None) -> Path:
    """Replace the database with a backup (stop the app first); the old file is kept beside it, under a name
    with the time of the restore (an earlier restore's copy is never overwritten)."""
    source = Path(source)
    target = _sqlite_path(url)
    src = _open_chiiki_db(source)
    try:
        if target.exists():
            keep = target.with_name(f"{target.name}.before-restore-{datetime.now():%Y%m%dT%H%M%S%f}")
            _private_file(keep)
            with sqlite3.connect(target) as cur, sqlite3.connect(keep) as k:
                cur.backup(k)
        else:
            _private_file(target)  # a restore onto a new machine: as private as the backup it came from
        with sqlite3.connect(target) as dst:
            src.backup(dst)
    finally:
        src.close()
    return target
