"""Set-based writes of the flush: one statement per kind of row, however large the batch.

``CoreWriter`` speaks SQLAlchemy Core to any database (SQLite in the embedded default).
``PostgresWriter`` sends each set as a handful of arrays through ``unnest`` on the asyncpg
connection of the same transaction: no per-row parameters to build, bind or parse, which is
most of the cost of a flush at thousands of rows per batch.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, Protocol

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.db.models import AppliedEvent, KpiBucket, KpiState, table

BucketRow = tuple[str, str, str, int, str, int]  # scope, metric, grain, start, subject, value
StateRow = tuple[str, str, str]  # kind, key, state JSON
_buckets, _applied, _states = table(KpiBucket), table(AppliedEvent), table(KpiState)


class BulkWriter(Protocol):
    async def claim(
        self, conn: AsyncConnection, keys: Sequence[tuple[str, str]], now: int
    ) -> set[tuple[str, str]]:
        """Insert (source, id) pairs not seen before; return those inserted."""
        ...

    async def lock_states(
        self, conn: AsyncConnection, keys: Sequence[tuple[str, str]]
    ) -> list[StateRow]:
        """Fetch or create the state rows, locked until commit, in the order given."""
        ...

    async def save_states(self, conn: AsyncConnection, rows: Sequence[StateRow]) -> None: ...

    async def add_buckets(self, conn: AsyncConnection, rows: Sequence[BucketRow]) -> None:
        """Add each value to its bucket (created at the value if new), in the order given."""
        ...


class CoreWriter:
    def __init__(self, dialect: str) -> None:
        self._insert = postgresql.insert if dialect == "postgresql" else sqlite.insert

    async def claim(
        self, conn: AsyncConnection, keys: Sequence[tuple[str, str]], now: int
    ) -> set[tuple[str, str]]:
        statement = (
            self._insert(_applied)
            .on_conflict_do_nothing(index_elements=["source", "id"])
            .returning(_applied.c.source, _applied.c.id)
        )
        rows = await conn.execute(
            statement, [{"source": s, "id": i, "applied_at": now} for s, i in keys]
        )
        return {(s, i) for s, i in rows}

    async def lock_states(
        self, conn: AsyncConnection, keys: Sequence[tuple[str, str]]
    ) -> list[StateRow]:
        insert = self._insert(_states)
        statement = insert.on_conflict_do_update(
            index_elements=["kind", "key"], set_={"kind": insert.excluded.kind}
        ).returning(_states.c.kind, _states.c.key, _states.c.state)
        rows = await conn.execute(
            statement, [{"kind": k, "key": y, "state": "{}"} for k, y in keys]
        )
        return [(k, y, s) for k, y, s in rows]

    async def save_states(self, conn: AsyncConnection, rows: Sequence[StateRow]) -> None:
        insert = self._insert(_states)
        statement = insert.on_conflict_do_update(
            index_elements=["kind", "key"],
            set_={"state": insert.excluded.state, "updated_at": insert.excluded.updated_at},
        )
        now = int(time.time())
        await conn.execute(
            statement, [{"kind": k, "key": y, "state": s, "updated_at": now} for k, y, s in rows]
        )

    async def add_buckets(self, conn: AsyncConnection, rows: Sequence[BucketRow]) -> None:
        insert = self._insert(_buckets)
        statement = insert.on_conflict_do_update(
            index_elements=["scope", "metric", "grain", "bucket_start", "subject_id"],
            set_={"value": _buckets.c.value + insert.excluded.value},
        )
        names = ("scope", "metric", "grain", "bucket_start", "subject_id", "value")
        await conn.execute(statement, [dict(zip(names, row, strict=True)) for row in rows])


class PostgresWriter:
    CLAIM = """
        INSERT INTO applied_events (source, id, applied_at)
        SELECT s, i, $3 FROM unnest($1::text[], $2::text[]) AS t(s, i)
        ON CONFLICT (source, id) DO NOTHING RETURNING source, id"""
    LOCK = """
        INSERT INTO kpi_states (kind, key, state)
        SELECT k, y, '{}' FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS t(k, y, n)
        ORDER BY n
        ON CONFLICT (kind, key) DO UPDATE SET kind = EXCLUDED.kind
        RETURNING kind, key, state"""
    SAVE = """
        INSERT INTO kpi_states (kind, key, state, updated_at)
        SELECT k, y, s, $4 FROM unnest($1::text[], $2::text[], $3::text[]) AS t(k, y, s)
        ON CONFLICT (kind, key) DO UPDATE
        SET state = EXCLUDED.state, updated_at = EXCLUDED.updated_at"""
    ADD = """
        INSERT INTO kpi_buckets (scope, metric, grain, bucket_start, subject_id, value)
        SELECT s, m, g, b, i, v FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[],
                                            $5::text[], $6::bigint[])
            WITH ORDINALITY AS t(s, m, g, b, i, v, n)
        ORDER BY n
        ON CONFLICT (scope, metric, grain, bucket_start, subject_id)
        DO UPDATE SET value = kpi_buckets.value + EXCLUDED.value"""

    async def claim(
        self, conn: AsyncConnection, keys: Sequence[tuple[str, str]], now: int
    ) -> set[tuple[str, str]]:
        rows = await (await _driver(conn)).fetch(self.CLAIM, *_columns(keys, 2), now)
        return {(r["source"], r["id"]) for r in rows}

    async def lock_states(
        self, conn: AsyncConnection, keys: Sequence[tuple[str, str]]
    ) -> list[StateRow]:
        rows = await (await _driver(conn)).fetch(self.LOCK, *_columns(keys, 2))
        return [(r["kind"], r["key"], r["state"]) for r in rows]

    async def save_states(self, conn: AsyncConnection, rows: Sequence[StateRow]) -> None:
        await (await _driver(conn)).execute(self.SAVE, *_columns(rows, 3), int(time.time()))

    async def add_buckets(self, conn: AsyncConnection, rows: Sequence[BucketRow]) -> None:
        await (await _driver(conn)).execute(self.ADD, *_columns(rows, 6))


async def _driver(conn: AsyncConnection) -> Any:
    """The asyncpg connection under ``conn``, inside the same transaction."""
    return (await conn.get_raw_connection()).driver_connection


def _columns(rows: Sequence[Sequence[Any]], width: int) -> list[list[Any]]:
    return [[row[i] for row in rows] for i in range(width)] if rows else [[] for _ in range(width)]


def writer_for(dialect: str) -> BulkWriter:
    return PostgresWriter() if dialect == "postgresql" else CoreWriter(dialect)
