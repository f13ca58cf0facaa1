"""The Redis state manager's settings: tab states stay in their worker for a person's reading time."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from chiiki.settings import ROOT, STATE_HOLD_MS, STATE_LOCK_MS, state_lock_env


def test_defaults_hold_a_tab_state_longer_than_reflexs_five_seconds():
    assert state_lock_env({}) == {"REFLEX_OPLOCK_ENABLED": "true",
                                  "REFLEX_REDIS_LOCK_EXPIRATION": str(STATE_LOCK_MS),
                                  "REFLEX_OPLOCK_HOLD_TIME": f"{STATE_HOLD_MS}ms"}
    assert 5_000 < STATE_HOLD_MS < STATE_LOCK_MS  # Reflex refuses a hold that does not end before the lock


@pytest.mark.parametrize("given", [{"REFLEX_OPLOCK_HOLD_TIME": "3s"}, {"REFLEX_OPLOCK_HOLD_TIME_MS": "3000"}])
def test_a_hold_time_given_wins(given):
    assert state_lock_env(given) == {"REFLEX_OPLOCK_ENABLED": "true", "REFLEX_REDIS_LOCK_EXPIRATION": str(STATE_LOCK_MS)}


def test_empty_values_count_as_not_given_as_reflex_reads_them():
    assert state_lock_env({"REFLEX_OPLOCK_ENABLED": "", "REFLEX_OPLOCK_HOLD_TIME": " "}) == state_lock_env({})


def test_locks_turned_off_get_nothing_added():
    assert state_lock_env({"REFLEX_OPLOCK_ENABLED": "false"}) == {}
    assert state_lock_env({"REFLEX_OPLOCK_ENABLED": "1"}) == {
        "REFLEX_REDIS_LOCK_EXPIRATION": str(STATE_LOCK_MS), "REFLEX_OPLOCK_HOLD_TIME": f"{STATE_HOLD_MS}ms"}


def test_a_short_lock_given_keeps_reflexs_own_hold():
    # A hold of 20 s under a 15 s lock would stop the server at startup.
    assert state_lock_env({"REFLEX_REDIS_LOCK_EXPIRATION": "15000"}) == {"REFLEX_OPLOCK_ENABLED": "true"}
    assert state_lock_env({"REFLEX_REDIS_LOCK_EXPIRATION": "60000"}) == {
        "REFLEX_OPLOCK_ENABLED": "true", "REFLEX_OPLOCK_HOLD_TIME": f"{STATE_HOLD_MS}ms"}
    assert state_lock_env({"REFLEX_REDIS_LOCK_EXPIRATION": "soon"}) == {"REFLEX_OPLOCK_ENABLED": "true"}


def _reflex_sees(env: dict[str, str]) -> str:
    """The hold time and lock expiry the Redis state manager reads after rxconfig.py is loaded."""
    code = ("import rxconfig; from reflex.istate.manager.redis import _default_oplock_hold_time_ms as h, "
            "_default_lock_expiration as e; from reflex_base.environment import environment as v; "
            "print(v.REFLEX_OPLOCK_ENABLED.get(), h(), e())")
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("REFLEX_OPLOCK", "REFLEX_REDIS"))}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**clean, **env}, capture_output=True,
                         text=True, timeout=120, check=True)
    return out.stdout.strip().splitlines()[-1]


def test_rxconfig_applies_them_with_redis_only():
    assert _reflex_sees({"REFLEX_REDIS_URL": "redis://127.0.0.1:6379/3"}) == f"True {STATE_HOLD_MS} {STATE_LOCK_MS}"
    assert _reflex_sees({"REFLEX_REDIS_URL": ""}) == "False 5000 10000"
