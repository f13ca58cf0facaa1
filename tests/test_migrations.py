"""The committed migrations apply on SQLite and PostgreSQL and produce exactly the models' schema."""

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

import chiiki.models  # noqa: F401
from chiiki.services import db


def _diff(url: str) -> list:
    eng = db.engine(url)
    with eng.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        return compare_metadata(ctx, SQLModel.metadata)


def _check(url: str) -> None:
    db.migrate(url)
    diff = _diff(url)
    assert diff == [], f"models and migrations differ (write a migration): {diff}"
    # Upgrading again is a no-op, as a deploy step must be.
    db.migrate(url)


def test_migrations_match_models_on_sqlite(tmp_path):
    _check(f"sqlite:///{tmp_path / 'm.db'}")


@pytest.mark.postgres
def test_migrations_match_models_on_postgresql(pg_url):
    _check(pg_url)
    from chiiki.seed import seed_demo

    import os
    from chiiki import settings as settings_module

    old = os.environ.get("REFLEX_DB_URL")
    os.environ["REFLEX_DB_URL"] = pg_url
    settings_module.reload()
    try:
        ids = seed_demo()
        assert ids is not None and len(ids.associations) == 3
    finally:
        if old is not None:
            os.environ["REFLEX_DB_URL"] = old
        settings_module.reload()
        db.dispose_all()
