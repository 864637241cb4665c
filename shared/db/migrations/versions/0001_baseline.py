"""Baseline: the schema of the releases made before migrations.

A database those releases created is adopted (``shared/db/adopt.py``) and stamped with this
revision; a new database is created by it.

Revision ID: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    _roster_tables()
    _kpi_tables()


def _roster_tables() -> None:
    """Teams, reps, identities, membership history, targets, the roster version."""
    op.create_table(
        "identities",
        sa.Column("provider", sa.String(length=64), nullable=False),
        sa.Column("external_id", sa.String(length=256), nullable=False),
        sa.Column("rep_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("provider", "external_id"),
    )
    op.create_index("ix_identities_rep_id", "identities", ["rep_id"])

    op.create_table(
        "rep_teams",
        sa.Column("rep_id", sa.String(length=64), nullable=False),
        sa.Column("effective_from", sa.BigInteger(), nullable=False),
        sa.Column("team_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("rep_id", "effective_from"),
    )
    op.create_table(
        "reps",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "roster_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "targets",
        sa.Column("scope", sa.String(length=8), nullable=False),
        sa.Column("subject_id", sa.String(length=64), nullable=False),
        sa.Column("metric", sa.String(length=48), nullable=False),
        sa.Column("period", sa.String(length=8), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("scope", "subject_id", "metric", "period"),
    )
    op.create_table(
        "teams",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def _kpi_tables() -> None:
    """Buckets, applied event ids, states, consumer offsets."""
    op.create_table(
        "applied_events",
        sa.Column("source", sa.String(length=256), nullable=False),
        sa.Column("id", sa.String(length=256), nullable=False),
        sa.Column("applied_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("source", "id"),
    )
    op.create_table(
        "consumer_offsets",
        sa.Column("consumer_group", sa.String(length=200), nullable=False),
        sa.Column("topic", sa.String(length=200), nullable=False),
        sa.Column("partition", sa.Integer(), nullable=False),
        sa.Column("next_offset", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("consumer_group", "topic", "partition"),
    )
    op.create_table(
        "kpi_buckets",
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("metric", sa.String(length=48), nullable=False),
        sa.Column("grain", sa.String(length=8), nullable=False),
        sa.Column("bucket_start", sa.BigInteger(), nullable=False),
        sa.Column("subject_id", sa.String(length=330), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("scope", "metric", "grain", "bucket_start", "subject_id"),
    )
    op.create_index(
        "ix_kpi_buckets_subject", "kpi_buckets", ["scope", "subject_id", "grain", "bucket_start"]
    )

    op.create_table(
        "kpi_states",
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=600), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("kind", "key"),
    )


def downgrade() -> None:
    op.drop_table("teams")
    op.drop_table("targets")
    op.drop_table("roster_version")
    op.drop_table("reps")
    op.drop_table("rep_teams")
    op.drop_table("kpi_states")
    op.drop_index("ix_kpi_buckets_subject", "kpi_buckets")

    op.drop_table("kpi_buckets")
    op.drop_index("ix_identities_rep_id", "identities")

    op.drop_table("identities")
    op.drop_table("consumer_offsets")
    op.drop_table("applied_events")
