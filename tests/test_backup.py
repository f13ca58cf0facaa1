"""Backup and restore round trip on SQLite, taken while a connection is open."""

import pytest
from sqlalchemy import func
from sqlmodel import select

from chiiki import backup
from chiiki.cli import main
from chiiki.models import Account
from chiiki.services import accounts
from chiiki.services.db import dispose_all, session


def n_accounts() -> int:
    with session() as s:
        return s.exec(select(func.count()).select_from(Account)).one()


def test_backup_and_restore_round_trip(demo, tmp_path):
    before = n_accounts()
    target = tmp_path / "b" / "chiiki-backup.db"
    assert main(["backup", str(target)]) == 0
    # Changes after the backup...
    accounts.register({"name": "後 太郎", "kana": "アト タロウ", "address": "旭川市", "area_id": accounts.areas()[0][0],
                       "birth_year": "1970", "login_id": "after@example.jp", "password": "after-backup-1"})
    assert n_accounts() == before + 1
    dispose_all()
    # ...are gone after restoring it.
    assert main(["restore", str(target)]) == 0
    dispose_all()
    assert n_accounts() == before
    assert accounts.login("member@example.jp", "chiiki-demo-2026").token


def test_backup_refuses_to_overwrite(demo, tmp_path):
    target = tmp_path / "x.db"
    backup.backup(target)
    with pytest.raises(SystemExit):
        backup.backup(target)


def test_restore_refuses_a_broken_file(demo, tmp_path):
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"not a database at all" * 100)
    with pytest.raises(SystemExit, match="not a sound SQLite database"):
        backup.restore(bad)
    assert n_accounts() > 0


def test_a_damaged_database_is_refused_and_leaves_no_backup(demo, tmp_path):
    """The live database is not checked before the copy (that read it all twice); its copy is, whole."""
    import sqlite3

    from chiiki.services.db import engine

    live = tmp_path / "live.db"
    with sqlite3.connect(engine().url.database) as demo_db, sqlite3.connect(live) as c:
        demo_db.backup(c)
        page_size = c.execute("PRAGMA page_size").fetchone()[0]
        root = c.execute("SELECT rootpage FROM sqlite_master WHERE name = 'account'").fetchone()[0]
    with live.open("r+b") as f:  # the account table's first page: its header overwritten
        f.seek((root - 1) * page_size)
        f.write(b"\xff" * 12)
    target = tmp_path / "copy.db"
    with pytest.raises(SystemExit, match="its copy failed the integrity check"):
        backup.backup(target, url=f"sqlite:///{live}")
    assert not target.exists()


def test_a_mistyped_path_changes_nothing(demo, tmp_path):
    """sqlite3 creates a file it is asked to open: restoring from a path that does not exist must not put an
    empty database in the live one's place, nor create that file."""
    before = n_accounts()
    dispose_all()
    missing = tmp_path / "chiiki-2026-11-2.db"
    with pytest.raises(SystemExit, match="does not exist"):
        backup.restore(missing)
    assert not missing.exists() and n_accounts() == before
    with pytest.raises(SystemExit, match="does not exist"):  # a backup of a database that is not there
        backup.backup(tmp_path / "copy.db", url=f"sqlite:///{tmp_path / 'no-such.db'}")
    assert not (tmp_path / "no-such.db").exists() and not (tmp_path / "copy.db").exists()


def test_restore_refuses_a_database_that_is_not_chiikis(demo, tmp_path):
    import sqlite3

    other = tmp_path / "other.db"
    with sqlite3.connect(other) as c:
        c.execute("CREATE TABLE t (x)")
    with pytest.raises(SystemExit, match="not a Chiiki database"):
        backup.restore(other)
    assert n_accounts() > 0


def test_backups_and_kept_copies_are_private_and_never_overwritten(demo, tmp_path):
    first, second = tmp_path / "1.db", tmp_path / "2.db"
    backup.backup(first)
    backup.backup(second)
    assert first.stat().st_mode & 0o077 == 0
    dispose_all()
    backup.restore(first)
    backup.restore(second)
    dispose_all()
    live = backup._sqlite_path()
    kept = sorted(live.parent.glob(live.name + ".before-restore-*"))
    assert len(kept) == 2 and all(k.stat().st_mode & 0o077 == 0 for k in kept)
    assert n_accounts() > 0


def test_the_live_database_a_restore_makes_and_its_log_are_private(demo, tmp_path, monkeypatch):
    """Only the app's own user may read a SQLite database (everyone's personal data): a database the app opens is
    made private with its -wal and -shm if it was not (one made before, or copied in), a new one is created so
    (by the migrations of a deploy), and a restore onto a machine without a database creates it private too."""
    from chiiki import settings as settings_module
    from chiiki.services import db

    backup.backup(tmp_path / "b.db")
    live = backup._sqlite_path()
    dispose_all()
    for f in (live, live.with_name(live.name + "-wal")):
        f.touch()
        f.chmod(0o644)
    assert n_accounts() > 0  # the app opens it
    assert all(f.stat().st_mode & 0o777 == 0o600 for f in (live, live.with_name(live.name + "-wal")))
    dispose_all()
    new = tmp_path / "new" / "chiiki.db"
    new.parent.mkdir()
    monkeypatch.setenv("REFLEX_DB_URL", f"sqlite:///{new}")
    settings_module.reload()
    try:
        backup.restore(tmp_path / "b.db")
        assert new.stat().st_mode & 0o777 == 0o600
        fresh = tmp_path / "fresh.db"
        db.migrate(f"sqlite:///{fresh}")
        assert fresh.stat().st_mode & 0o777 == 0o600
    finally:
        dispose_all()
        monkeypatch.undo()
        settings_module.reload()
