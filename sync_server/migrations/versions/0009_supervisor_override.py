"""Supervisor override (SPEC section 11): an event's override PIN, stored hashed
(`override_pin_hash`), and on each reading whether it was a supervisor's override, its reason,
its note and the denial it lifted. Existing rows: no PIN, no override.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-09 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _text(length: int) -> sqlmodel.sql.sqltypes.AutoString:
    return sqlmodel.sql.sqltypes.AutoString(length=length)


def upgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("override_pin_hash", _text(200), nullable=True))
    with op.batch_alter_table("scans") as batch:
        batch.add_column(
            sa.Column("override", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("override_reason", _text(32), nullable=True))
        batch.add_column(sa.Column("override_note", _text(1000), nullable=True))
        batch.add_column(sa.Column("overridden_reason", _text(40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("scans") as batch:
        for name in ("override", "override_reason", "override_note", "overridden_reason"):
            batch.drop_column(name)
    with op.batch_alter_table("events") as batch:
        batch.drop_column("override_pin_hash")
