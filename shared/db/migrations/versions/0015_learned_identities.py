"""Identities the KPI service learns by email: how (``learned_from``) and when (``learned_at``).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("identities") as batch:
        batch.add_column(sa.Column("learned_from", sa.String(16), nullable=True))
        batch.add_column(sa.Column("learned_at", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("identities") as batch:
        batch.drop_column("learned_at")
        batch.drop_column("learned_from")
