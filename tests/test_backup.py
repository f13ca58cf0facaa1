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
    with pytest.raises(Exception):
        backup.restore(bad)
    assert n_accounts() > 0
