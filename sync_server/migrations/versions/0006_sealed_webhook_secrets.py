"""Webhook signing secrets are stored sealed (AES-GCM under the server secret, like ticket keys):
their columns widen to hold the sealed form. The rows written before are sealed by the server
itself at its next start (`sync_server.migrate.seal_webhook_secrets`): a migration does not
know the server secret.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-08 00:10:00
"""

from collections.abc import Sequence

import sqlmodel
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = ("secret", "previous_secret")


def upgrade() -> None:
    with op.batch_alter_table("webhook_endpoints") as batch:
        for name in _COLUMNS:
            batch.alter_column(
                name,
                existing_type=sqlmodel.sql.sqltypes.AutoString(length=100),
                type_=sqlmodel.sql.sqltypes.AutoString(length=200),
                existing_nullable=name != "secret",
            )


def downgrade() -> None:
    with op.batch_alter_table("webhook_endpoints") as batch:
        for name in _COLUMNS:
            batch.alter_column(
                name,
                existing_type=sqlmodel.sql.sqltypes.AutoString(length=200),
                type_=sqlmodel.sql.sqltypes.AutoString(length=100),
                existing_nullable=name != "secret",
            )
