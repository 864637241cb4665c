"""Applied events are kept by a 16-byte key: ``applied_events`` (source and id, up to 512
characters a row, in two text columns and their index) becomes ``applied_event_keys``.

The key is the MD5 of ``source``, the unit separator and ``id`` (``shared.db.models.event_key``
computes the same), so a duplicate of an event applied before the upgrade is still recognised.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHUNK = 10_000


def upgrade() -> None:
    keys = op.create_table(
        "applied_event_keys",
        sa.Column("key", sa.LargeBinary(16), nullable=False),
        sa.Column("applied_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute(
            "INSERT INTO applied_event_keys (key, applied_at) "
            "SELECT decode(md5(source || chr(31) || id), 'hex'), max(applied_at) "
            "FROM applied_events GROUP BY 1"
        )
    else:  # SQLite has no MD5: computed here, a chunk at a time
        rows = bind.execute(sa.text("SELECT source, id, applied_at FROM applied_events"))
        while chunk := rows.fetchmany(CHUNK):
            op.bulk_insert(keys, [{"key": _key(s, i), "applied_at": at} for s, i, at in chunk])
    op.drop_table("applied_events")


def _key(source: str, event_id: str) -> bytes:
    return hashlib.md5(f"{source}\x1f{event_id}".encode(), usedforsecurity=False).digest()


def downgrade() -> None:
    raise NotImplementedError("event ids cannot be recovered from their keys")
