"""Server settings from flags and `DOORCHECK_*` environment variables (pydantic-settings)."""

from __future__ import annotations

import secrets
from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings", "get_settings", "load_secret"]

MIB = 1024 * 1024


class Settings(BaseSettings):
    """Everything the server and its tools read from the environment."""

    model_config = SettingsConfigDict(env_prefix="DOORCHECK_", extra="ignore")

    db_url: str = "sqlite:///./doorcheck.db"
    secret_key: str | None = None
    data_dir: Path = Path(".")
    public_url: str | None = None
    max_body_bytes: int = 10 * MIB
    max_import_bytes: int = 200 * MIB
    rate_limit_per_minute: int = Field(default=6000, ge=1)
    webhook_allow_private: bool = False
    webhook_retry_schedule: str = "5,300,1800,7200,18000,36000,36000"
    webhook_embedded: bool = True  # deliver webhooks from inside the server process
    # how long a dispatcher holds a claimed delivery; a worker that dies mid-attempt leaves it to
    # be sent again after this long (attempts time out at 10 s or half of it, if shorter)
    webhook_claim_seconds: float = Field(default=60.0, gt=0, le=3600)
    webhook_concurrency: int = Field(default=64, ge=1, le=256)  # attempts in flight per process
    db_pool_size: int = 10
    # operators (SPEC section 13)
    metrics_public: bool = False  # /metrics without an admin key from any address
    access_log: bool = False  # one line per request (`--access-log`)
    log_format: str = Field(default="plain", pattern="^(plain|json)$")
    redis_url: str | None = None  # rate limits counted on Redis instead of the database

    def secret(self) -> bytes:
        """The server secret: given, or generated once into the data folder and kept there."""
        return load_secret(self.secret_key, self.data_dir)


def load_secret(given: str | None, data_dir: Path) -> bytes:
    if given:
        return given.encode()
    path = data_dir / "secret.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip().encode()


@lru_cache
def get_settings() -> Settings:
    return Settings()
