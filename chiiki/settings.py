"""Runtime settings read once from the environment; the single place that knows variable names."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

ROOT = Path(__file__).resolve().parent.parent


def _int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        return default


# bcrypt's cost for new passwords: 2^10 rounds, about 60 ms per check on a server core (OWASP's minimum work
# factor for bcrypt is 10), so that a login stays within the 100 ms of server time every frequent action gets.
# Guessing online is held back by the login lock after repeated failures, not by the cost; a higher cost only
# slows guessing offline from a stolen database, and each step doubles every login's time (12: about 240 ms).
# CHIIKI_BCRYPT_ROUNDS sets another; passwords are hashed again at their owners' next login.
DEFAULT_BCRYPT_ROUNDS = 10


@dataclass(frozen=True)
class Settings:
    db_url: str = field(default_factory=lambda: os.environ.get("REFLEX_DB_URL") or f"sqlite:///{ROOT / 'chiiki.db'}")
    redis_url: str = field(default_factory=lambda: os.environ.get("REFLEX_REDIS_URL", ""))
    # Private files (attachments, exports) never live under assets/ or the public upload folder.
    data_dir: Path = field(default_factory=lambda: Path(os.environ.get("CHIIKI_DATA_DIR", ROOT / "var")))
    smtp_host: str = field(default_factory=lambda: os.environ.get("CHIIKI_SMTP_HOST", ""))
    smtp_port: int = field(default_factory=lambda: _int("CHIIKI_SMTP_PORT", 25))
    smtp_user: str = field(default_factory=lambda: os.environ.get("CHIIKI_SMTP_USER", ""))
    smtp_password: str = field(default_factory=lambda: os.environ.get("CHIIKI_SMTP_PASSWORD", ""))
    smtp_starttls: bool = field(default_factory=lambda: os.environ.get("CHIIKI_SMTP_STARTTLS", "") == "1")
    mail_from: str = field(default_factory=lambda: os.environ.get("CHIIKI_MAIL_FROM", "chiiki@localhost"))
    public_url: str = field(default_factory=lambda: os.environ.get("CHIIKI_PUBLIC_URL", "http://localhost:3000"))
    session_hours: int = field(default_factory=lambda: _int("CHIIKI_SESSION_HOURS", 24 * 14))
    bcrypt_rounds: int = field(default_factory=lambda: _int("CHIIKI_BCRYPT_ROUNDS", DEFAULT_BCRYPT_ROUNDS))
    inquiry_retention_days: int = field(default_factory=lambda: _int("CHIIKI_INQUIRY_RETENTION_DAYS", 30))

    @property
    def outbox_dir(self) -> Path:
        return self.data_dir / "outbox"

    @property
    def attachment_dir(self) -> Path:
        return self.data_dir / "attachments"


settings = Settings()

# With Redis, a worker keeps a tab's state (and its Redis lock) between the tab's events for STATE_HOLD_MS
# from taking it, then writes it back. Reflex's default is half the lock's 10 s expiry: a person who reads
# a circular for more than five seconds then pays a lock, a state read and a write-back on the next tap
# (about 5 ms, measured: benchmarks in README.md). The lock must outlive the hold.
STATE_HOLD_MS = 20_000
STATE_LOCK_MS = 30_000


def state_lock_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The Redis state manager variables to add to `environ` (a value it gives wins; an empty one counts as not
    given, as Reflex reads it): keep tab states in the worker (opportunistic locks) for STATE_HOLD_MS under a
    lock of STATE_LOCK_MS. With the locks turned off nothing is added; a hold is only added while it ends
    before the lock does (Reflex refuses to start otherwise)."""
    given = {k: v.strip() for k, v in environ.items() if k.startswith("REFLEX_") and v.strip()}
    add: dict[str, str] = {}
    if "REFLEX_OPLOCK_ENABLED" not in given:
        add["REFLEX_OPLOCK_ENABLED"] = "true"
    elif given["REFLEX_OPLOCK_ENABLED"].lower() not in ("true", "1", "yes", "y"):
        return add
    if "REFLEX_REDIS_LOCK_EXPIRATION" not in given:
        add["REFLEX_REDIS_LOCK_EXPIRATION"] = str(STATE_LOCK_MS)
    if "REFLEX_OPLOCK_HOLD_TIME" in given or "REFLEX_OPLOCK_HOLD_TIME_MS" in given:
        return add
    try:
        lock_ms = int(given.get("REFLEX_REDIS_LOCK_EXPIRATION", STATE_LOCK_MS))
    except ValueError:
        return add  # Reflex reports the bad value itself
    if lock_ms > STATE_HOLD_MS:
        add["REFLEX_OPLOCK_HOLD_TIME"] = f"{STATE_HOLD_MS}ms"
    return add


def reload() -> Settings:
    """Re-read the environment (tests point the app at temporary databases and folders)."""
    global settings
    settings = Settings()
    return settings
