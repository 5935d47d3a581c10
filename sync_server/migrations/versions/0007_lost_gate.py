"""What a lost gate may expose: per-event device settings (`device_data_ttl_hours`,
`require_device_pin`, `gate_email`) and the remote wipe of a device (requested, confirmed, why)
with the count of uploads the device last reported queued. Existing rows get the defaults.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-08 01:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import sync_server.db

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_DEVICE_TIMES = ("wipe_requested_at", "wipe_confirmed_at", "pending_reported_at")


def upgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.add_column(
            sa.Column("device_data_ttl_hours", sa.Integer(), nullable=False, server_default="48")
        )
        batch.add_column(
            sa.Column("require_device_pin", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(
            sa.Column("gate_email", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("devices") as batch:
        for name in _DEVICE_TIMES:
            batch.add_column(
                sa.Column(name, sync_server.db.UTCDateTime(timezone=True), nullable=True)
            )
        batch.add_column(
            sa.Column("wipe_reason", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True)
        )
        batch.add_column(sa.Column("pending_uploads", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        for name in (*_DEVICE_TIMES, "wipe_reason", "pending_uploads"):
            batch.drop_column(name)
    with op.batch_alter_table("events") as batch:
        for name in ("device_data_ttl_hours", "require_device_pin", "gate_email"):
            batch.drop_column(name)
