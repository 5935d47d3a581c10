"""Schema migrations with Alembic: `upgrade(engine)` brings a database to the newest revision."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Engine

from sync_server.security import SecretBox

__all__ = ["alembic_config", "seal_webhook_secrets", "upgrade"]

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str = "") -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(engine: Engine, revision: str = "head", *, secret: bytes | None = None) -> None:
    """Apply every pending migration (idempotent; safe to run on each server start). With the
    server `secret`, data that must be sealed under it is sealed too (webhook signing secrets
    written before they were: a migration cannot know the secret)."""
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
    if secret is not None:
        seal_webhook_secrets(engine, SecretBox(secret))


def seal_webhook_secrets(engine: Engine, box: SecretBox) -> int:
    """Seal every webhook signing secret still stored in the clear; answers how many."""
    from sqlalchemy import Table, select, update

    from sync_server.models import WebhookEndpoint

    endpoints: Table = WebhookEndpoint.__table__  # type: ignore[assignment]
    sealed = 0
    with engine.begin() as conn:
        rows = conn.execute(
            select(endpoints.c.id, endpoints.c.secret, endpoints.c.previous_secret)
        ).all()
        for row in rows:
            values = {
                name: box.seal(value)
                for name, value in (
                    ("secret", row.secret),
                    ("previous_secret", row.previous_secret),
                )
                if value and not box.is_sealed(value)
            }
            if values:
                conn.execute(update(endpoints).where(endpoints.c.id == row.id).values(values))
                sealed += 1
    return sealed
