"""The production path: PostgreSQL + the Redis state manager + 2 granian workers, in a real browser."""

from __future__ import annotations

import pytest

from tests.browser import test_account_flow as flow
from tests.conftest import require_service


@pytest.fixture(scope="module")
def prod_app(start_app):
    require_service("PostgreSQL", "127.0.0.1", 5432)
    require_service("Redis", "127.0.0.1", 6379)
    return start_app(db_url="postgresql", redis_url="redis", workers=2)


def test_main_flow_on_postgresql_redis_and_two_workers(prod_app, page, screenshot):
    assert prod_app.db_url.startswith("postgresql")
    flow.test_register_login_mypage_logout(prod_app, page, screenshot)


def test_demo_login_on_the_production_path(prod_app, page):
    flow.test_demo_login_lands_in_the_circular_inbox(prod_app, page)
