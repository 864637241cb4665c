"""Imports of past activity resume where they stopped: one checkpoint per input
(``history_imports``), written once the bus acknowledged each batch.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-16
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "history_imports",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("label", sa.String(length=1024), nullable=False),
        sa.Column("line", sa.BigInteger(), nullable=False),
        sa.Column("mark", sa.Text(), nullable=False),
        sa.Column("published", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.Column("finished_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("key"),
    )


def downgrade() -> None:
    op.drop_table("history_imports")
