"""Runtime settings read once from the environment; the single place that knows variable names."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        return default


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
    bcrypt_rounds: int = field(default_factory=lambda: _int("CHIIKI_BCRYPT_ROUNDS", 12))
    inquiry_retention_days: int = field(default_factory=lambda: _int("CHIIKI_INQUIRY_RETENTION_DAYS", 30))

    @property
    def outbox_dir(self) -> Path:
        return self.data_dir / "outbox"

    @property
    def attachment_dir(self) -> Path:
        return self.data_dir / "attachments"


settings = Settings()


def reload() -> Settings:
    """Re-read the environment (tests point the app at temporary databases and folders)."""
    global settings
    settings = Settings()
    return settings
