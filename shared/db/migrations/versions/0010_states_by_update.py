"""The KPI service's states are read by kind and time of their last change: the deals won of a
day (the wallboard's wins), and the calls past the dedupe retention (pruning). Index them so
neither scans every state.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_kpi_states_updated", "kpi_states", ["kind", "updated_at"])


def downgrade() -> None:
    op.drop_index("ix_kpi_states_updated", table_name="kpi_states")
