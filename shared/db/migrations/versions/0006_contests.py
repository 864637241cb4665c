"""Contests: their definitions and, once settled, their final standings; and a contests
version, bumped with every change, for the API's caches and ETags.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "contests",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("starts_at", sa.BigInteger(), nullable=False),
        sa.Column("ends_at", sa.BigInteger(), nullable=False),
        sa.Column("participants", sa.String(length=8), nullable=False),
        sa.Column("team_ids", sa.Text(), nullable=True),
        sa.Column("score", sa.Text(), nullable=False),
        sa.Column("goal", sa.Float(), nullable=True),
        sa.Column("minutes_from", sa.BigInteger(), nullable=False),
        sa.Column("settled_at", sa.BigInteger(), nullable=True),
        sa.Column("final", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "contests_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.execute("INSERT INTO contests_version (id, version) VALUES (1, 0)")


def downgrade() -> None:
    op.drop_table("contests_version")
    op.drop_table("contests")
