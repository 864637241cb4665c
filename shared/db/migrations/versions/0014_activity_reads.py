"""What the API reads of the activity record and the corrections: a deal's rows by its id
(``ix_activity_deal``, partial: most rows are calls, with no deal), and each correction's target
as it was published (``corrections.target``), so that the worker can send it again and an undo
can be published whatever the activity record still holds.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-14
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_activity_deal",
        "activity",
        ["deal_id"],
        sqlite_where=sa.text("deal_id IS NOT NULL"),
        postgresql_where=sa.text("deal_id IS NOT NULL"),
    )
    with op.batch_alter_table("corrections") as batch:
        batch.add_column(sa.Column("target", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("corrections") as batch:
        batch.drop_column("target")
    op.drop_index("ix_activity_deal", table_name="activity")
