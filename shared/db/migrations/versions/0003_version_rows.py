"""The one row of ``roster_version`` exists from the start.

Before, the first roster change inserted it: two first changes at once could both insert it
(one failing), and a KPI flush reading it ``FOR SHARE`` before it existed locked nothing, so
the first roster change was not ordered against the flushes under way.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        "INSERT INTO roster_version (id, version) "
        "SELECT 1, 0 WHERE NOT EXISTS (SELECT 1 FROM roster_version)"
    )


def downgrade() -> None:
    pass  # the row is harmless to earlier revisions
