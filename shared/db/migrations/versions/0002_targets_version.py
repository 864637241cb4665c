"""Targets get a version of their own: a target edit no longer bumps the roster version, which
made every KPI instance reload the whole roster.

The new counter starts where the roster version stands: until now that number also versioned
the targets, so nothing cached or tagged under an earlier number can match a later state.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "targets_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.execute(
        "INSERT INTO targets_version (id, version) "
        "SELECT 1, COALESCE(MAX(version), 0) FROM roster_version"
    )


def downgrade() -> None:
    op.drop_table("targets_version")
