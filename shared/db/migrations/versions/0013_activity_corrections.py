"""The activity behind each number, and corrections: ``activity`` holds what each applied event
booked (written by the KPI flush with the aggregates, pruned after ``ACTIVITY_RETENTION_DAYS``),
and ``activity_record`` from when it explains every number (an upgraded database's earlier
bookings have no rows); ``corrections`` what a manager corrected, who, when and why.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "activity",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("event_key", sa.LargeBinary(length=16), nullable=False),
        sa.Column("event_id", sa.String(length=256), nullable=False),
        sa.Column("source", sa.String(length=1024), nullable=False),
        sa.Column("type", sa.String(length=48), nullable=False),
        sa.Column("time", sa.BigInteger(), nullable=False),
        sa.Column("actor", sa.String(length=330), nullable=True),
        sa.Column("call_id", sa.String(length=256), nullable=True),
        sa.Column("deal_id", sa.String(length=256), nullable=True),
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("subject", sa.String(length=330), nullable=False),
        sa.Column("team_id", sa.String(length=64), nullable=True),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("counters", sa.Text(), nullable=False),
        sa.Column("mask", sa.BigInteger(), nullable=False),
        sa.Column("correction", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_activity_subject", "activity", ["scope", "subject", "at"])
    op.create_index("ix_activity_team", "activity", ["team_id", "at"])
    op.create_index("ix_activity_event", "activity", ["event_id"])
    op.create_table(
        "activity_record",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("unrecorded_before", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    # What was booked before this revision has no rows in the record: a drill-down of a window
    # that starts before the last day booked then (two days' margin: a local day is at most 25
    # hours) says it cannot list everything.
    op.execute(
        "INSERT INTO activity_record (id, unrecorded_before) "
        "SELECT 1, max(bucket_start) + 2 * 86400 FROM kpi_rollups WHERE grain = 'day'"
    )
    op.create_table(
        "corrections",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("event_id", sa.String(length=256), nullable=False),
        sa.Column("event_key", sa.LargeBinary(length=16), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("rep_id", sa.String(length=64), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("made_by", sa.String(length=200), nullable=False),
        sa.Column("made_at", sa.BigInteger(), nullable=False),
        sa.Column("applied_at", sa.BigInteger(), nullable=True),
        sa.Column("undone_by", sa.String(length=200), nullable=True),
        sa.Column("undone_at", sa.BigInteger(), nullable=True),
        sa.Column("undo_applied_at", sa.BigInteger(), nullable=True),
        sa.Column("bus_key", sa.String(length=340), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_corrections_event_key", "corrections", ["event_key"])
    op.create_index("ix_corrections_made_at", "corrections", ["made_at"])


def downgrade() -> None:
    op.drop_table("corrections")
    op.drop_table("activity_record")
    op.drop_index("ix_activity_event", table_name="activity")
    op.drop_index("ix_activity_team", table_name="activity")
    op.drop_index("ix_activity_subject", table_name="activity")
    op.drop_table("activity")
