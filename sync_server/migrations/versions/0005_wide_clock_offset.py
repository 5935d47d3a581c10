"""devices.clock_offset_ms as BIGINT: a device clock off by more than ~24.9 days (a tablet that
believes it is 1970) overflowed a 32-bit column on PostgreSQL, and every push failed.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07 23:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        batch.alter_column(
            "clock_offset_ms", existing_type=sa.Integer(), type_=sa.BigInteger(), nullable=True
        )


def downgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        batch.alter_column(
            "clock_offset_ms", existing_type=sa.BigInteger(), type_=sa.Integer(), nullable=True
        )
