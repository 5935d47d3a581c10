"""The migrations build exactly the schema the models declare, on SQLite and PostgreSQL: a
model changed without its migration (or the reverse) fails here, not on a user's database."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

import sync_server.models  # noqa: F401  (registers every table)
from sync_server.db import make_engine
from sync_server.migrate import upgrade


def test_the_migrated_schema_is_the_models_schema(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        upgrade(engine)
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            differences = compare_metadata(context, SQLModel.metadata)
            tables = set(SQLModel.metadata.tables)
    finally:
        engine.dispose()
    assert differences == []
    assert {"webhook_messages", "webhook_fanout", "webhook_deliveries"} <= tables
