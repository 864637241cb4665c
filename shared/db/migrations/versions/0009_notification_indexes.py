"""Notifications are read newest first (the list, the stream's poll) and by alert: index them
so those reads stay small as the table grows.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_notifications_raised", "notifications", ["raised_at", "id"])
    op.create_index("ix_notifications_alert", "notifications", ["alert_id", "raised_at"])


def downgrade() -> None:
    op.drop_index("ix_notifications_alert", table_name="notifications")
    op.drop_index("ix_notifications_raised", table_name="notifications")
