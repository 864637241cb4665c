"""Where the KPI consumer resumes: the next offset of every partition, stored in the database
with the aggregates (architecture decision 4).

The flush records the offsets in its own transaction (``record``), so the aggregates and the
position commit together; on every partition assignment the consumer seeks to what is stored
(``load``). Offsets only ever move forward: the upsert keeps the greater, and ``check_forward``
refuses a batch positioned behind what this process already stored.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from sqlalchemy import delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.bus import Record
from shared.db.models import ConsumerOffset, table

_offsets = table(ConsumerOffset)


class OffsetsWentBackwards(AssertionError):
    """The flush was about to store an offset lower than one this process already stored."""


class Offsets:
    """The offsets of ``group`` on ``topic``: what this process last stored, and the SQL of
    reading and writing them (on the connection given: the flush owns the transaction)."""

    def __init__(self, group: str, topic: str, dialect: str) -> None:
        self._group, self._topic = group, topic
        self._insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        self._greatest = func.greatest if dialect == "postgresql" else func.max
        self._stored: dict[int, int] = {}  # partition -> next offset this process last stored

    async def load(
        self, conn: AsyncConnection, topic: str, partitions: list[int]
    ) -> dict[int, int]:
        """Where to resume each partition: the offsets stored with the aggregates."""
        query = select(_offsets.c.partition, _offsets.c.next_offset).where(
            _offsets.c.consumer_group == self._group,
            _offsets.c.topic == topic,
            _offsets.c.partition.in_(partitions),
        )
        stored = {int(p): int(o) for p, o in (await conn.execute(query)).all()}
        self._stored.update(stored)
        return stored

    def stored(self) -> dict[int, int]:
        """The next offset per partition as this process last stored it."""
        return dict(self._stored)

    def caught_up(self, targets: dict[int, int]) -> bool:
        """Whether this process stored offsets at or past ``targets`` on every partition."""
        return all(self._stored.get(p, 0) >= o for p, o in targets.items() if o > 0)

    def check_forward(self, next_offsets: dict[int, int]) -> None:
        # Paranoid check: a lower offset than one already stored would mean the consumer was
        # positioned behind the database, i.e. the seek-to-stored-offsets contract is broken.
        for partition, offset in next_offsets.items():
            if offset < self._stored.get(partition, 0):
                raise OffsetsWentBackwards(
                    f"partition {partition}: {offset} < stored {self._stored[partition]}"
                )

    async def record(self, conn: AsyncConnection, next_offsets: dict[int, int]) -> None:
        """Write ``next_offsets`` in the caller's transaction (never moving one backwards)."""
        if not next_offsets:
            return
        statement = self._insert(_offsets)
        statement = statement.on_conflict_do_update(
            index_elements=["consumer_group", "topic", "partition"],
            set_={
                "next_offset": self._greatest(
                    _offsets.c.next_offset, statement.excluded.next_offset
                ),
                "updated_at": statement.excluded.updated_at,
            },
        )
        now_ms = int(time.time() * 1000)
        await conn.execute(
            statement,
            [
                {
                    "consumer_group": self._group,
                    "topic": self._topic,
                    "partition": p,
                    "next_offset": o,
                    "updated_at": now_ms,
                }
                for p, o in sorted(next_offsets.items())
            ],
        )

    def committed(self, next_offsets: dict[int, int]) -> None:
        """The transaction that recorded ``next_offsets`` has committed."""
        self._stored.update(next_offsets)

    async def forget(self, conn: AsyncConnection) -> None:
        """Delete the group's offsets (a replay starts from the beginning)."""
        await conn.execute(delete(_offsets).where(_offsets.c.consumer_group == self._group))
        self._stored.clear()


def next_offsets(records: Sequence[Record]) -> dict[int, int]:
    """Per partition of ``records``, the offset after the last of them."""
    offsets: dict[int, int] = {}
    for record in records:
        offsets[record.partition] = max(offsets.get(record.partition, 0), record.offset + 1)
    return offsets
