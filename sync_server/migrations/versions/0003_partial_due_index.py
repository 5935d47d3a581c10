"""the outbox's due deliveries in one partial index ordered by next_attempt_at: a dispatcher's
claim (the oldest N due) reads N index entries instead of sorting every pending delivery.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 11:35:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DUE = sa.text("state IN ('pending', 'retrying')")


def upgrade() -> None:
    op.drop_index("ix_deliveries_due", table_name="webhook_deliveries")
    op.create_index(
        "ix_deliveries_due",
        "webhook_deliveries",
        ["next_attempt_at"],
        sqlite_where=DUE,
        postgresql_where=DUE,
    )


def downgrade() -> None:
    op.drop_index("ix_deliveries_due", table_name="webhook_deliveries")
    op.create_index("ix_deliveries_due", "webhook_deliveries", ["state", "next_attempt_at"])
