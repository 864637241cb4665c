"""Reps get an email (optional, unique, kept lower-case) and a time they left; targets get a
history: each value applies from the period ``starting`` names (epoch seconds of its local
start; 0: from the beginning), so a change no longer rewrites past attainment. Existing targets
apply from the beginning, as they did.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("reps") as reps:
        reps.add_column(sa.Column("email", sa.String(length=320), nullable=True))
        reps.add_column(sa.Column("left_at", sa.BigInteger(), nullable=True))
        reps.create_unique_constraint("uq_reps_email", ["email"])
    op.create_table(
        "targets_new",
        sa.Column("scope", sa.String(length=8), nullable=False),
        sa.Column("subject_id", sa.String(length=64), nullable=False),
        sa.Column("metric", sa.String(length=48), nullable=False),
        sa.Column("period", sa.String(length=8), nullable=False),
        sa.Column("starting", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("value", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("scope", "subject_id", "metric", "period", "starting"),
    )
    op.execute(
        "INSERT INTO targets_new (scope, subject_id, metric, period, starting, value) "
        "SELECT scope, subject_id, metric, period, 0, value FROM targets"
    )
    op.drop_table("targets")
    op.rename_table("targets_new", "targets")


def downgrade() -> None:
    op.create_table(
        "targets_old",
        sa.Column("scope", sa.String(length=8), nullable=False),
        sa.Column("subject_id", sa.String(length=64), nullable=False),
        sa.Column("metric", sa.String(length=48), nullable=False),
        sa.Column("period", sa.String(length=8), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("scope", "subject_id", "metric", "period"),
    )
    op.execute(  # each target's latest value stands for every period again
        "INSERT INTO targets_old (scope, subject_id, metric, period, value) "
        "SELECT t.scope, t.subject_id, t.metric, t.period, t.value FROM targets t "
        "WHERE t.starting = (SELECT max(l.starting) FROM targets l WHERE l.scope = t.scope "
        "AND l.subject_id = t.subject_id AND l.metric = t.metric AND l.period = t.period)"
    )
    op.drop_table("targets")
    op.rename_table("targets_old", "targets")
    with op.batch_alter_table("reps") as reps:
        reps.drop_constraint("uq_reps_email", type_="unique")
        reps.drop_column("left_at")
        reps.drop_column("email")
