"""What each provider's deliveries became (``GET /v1/connections``): counts per hour, and the
last delivery and refusal of each.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "connection_deliveries",
        sa.Column("provider", sa.String(64), primary_key=True),
        sa.Column("hour_start", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("accepted", sa.BigInteger(), nullable=False),
        sa.Column("duplicates", sa.BigInteger(), nullable=False),
        sa.Column("deadlettered", sa.BigInteger(), nullable=False),
        sa.Column("refused", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "connection_status",
        sa.Column("provider", sa.String(64), primary_key=True),
        sa.Column("last_delivery_at", sa.BigInteger(), nullable=True),
        sa.Column("last_refusal_at", sa.BigInteger(), nullable=True),
        sa.Column("last_refusal_reason", sa.Text(), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("connection_status")
    op.drop_table("connection_deliveries")
