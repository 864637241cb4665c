"""Set-based writes of the flush: one statement per kind of row, however large the batch.

``CoreWriter`` speaks SQLAlchemy Core to any database (SQLite in the embedded default).
``PostgresWriter`` COPYs each set into a temporary table of the connection (binary, no
per-row parameters to build, bind or parse), then moves it with one ``INSERT … SELECT``: the
database sorts the rows into lock order and pivots the counters into ``kpi_rollups`` rows.

Deltas arrive one counter at a time (``BucketRow``); a ``kpi_rollups`` row holds all the
counters of one subject's bucket, so both writers add them up per row before writing it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, Protocol

from sqlalchemy import insert, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from services.kpi.domain.activity import COLUMNS, Row, as_dict
from shared.catalogue import BASE_COUNTERS
from shared.db.chunks import chunks
from shared.db.models import AppliedEvent, KpiState, activity, kpi_rollups, table
from shared.db.retry import ConcurrentInsert

BucketRow = tuple[str, str, str, int, str, int]  # scope, metric, grain, start, subject, value
StateRow = tuple[str, str, str]  # kind, key, state JSON
ROW_KEY = ("scope", "grain", "bucket_start", "subject_id")
_applied, _states = table(AppliedEvent), table(KpiState)
_COUNTER = {name: i for i, name in enumerate(BASE_COUNTERS)}


class BulkWriter(Protocol):
    async def begin(self, conn: AsyncConnection) -> None:
        """Ready the flush's transaction for the writes below: once, first."""
        ...

    async def claim(self, conn: AsyncConnection, keys: Sequence[bytes], now: int) -> set[bytes]:
        """Insert the event keys not seen before; return those inserted."""
        ...

    async def lock_states(
        self, conn: AsyncConnection, keys: Sequence[tuple[str, str]]
    ) -> list[StateRow]:
        """The state rows of ``keys`` that exist, locked until commit (in key order)."""
        ...

    async def save_states(
        self, conn: AsyncConnection, new: Sequence[StateRow], changed: Sequence[StateRow]
    ) -> None:
        """Insert the ``new`` rows and update the ``changed`` ones. A new row that another
        transaction inserted meanwhile raises ``ConcurrentInsert``: the flush runs again."""
        ...

    async def add_buckets(self, conn: AsyncConnection, rows: Sequence[BucketRow]) -> None:
        """Add each value to its counter of its ``kpi_rollups`` row (made if new)."""
        ...

    async def add_activity(self, conn: AsyncConnection, rows: Sequence[Row]) -> None:
        """Append the activity record's rows (``domain.activity.rows``)."""
        ...


class CoreWriter:
    def __init__(self, dialect: str) -> None:
        self._insert = postgresql.insert if dialect == "postgresql" else sqlite.insert

    async def begin(self, conn: AsyncConnection) -> None:
        """Nothing to ready: plain statements."""

    async def claim(self, conn: AsyncConnection, keys: Sequence[bytes], now: int) -> set[bytes]:
        statement = (
            self._insert(_applied)
            .on_conflict_do_nothing(index_elements=["key"])
            .returning(_applied.c.key)
        )
        rows = await conn.execute(statement, [{"key": k, "applied_at": now} for k in keys])
        return {bytes(k) for (k,) in rows}

    async def lock_states(
        self, conn: AsyncConnection, keys: Sequence[tuple[str, str]]
    ) -> list[StateRow]:
        found: list[StateRow] = []
        for chunk in chunks(keys, 2):  # (kind, key): two parameters a state
            query = (
                select(_states.c.kind, _states.c.key, _states.c.state)
                .where(tuple_(_states.c.kind, _states.c.key).in_(list(chunk)))
                .order_by(_states.c.kind, _states.c.key)
                .with_for_update()
            )
            found += [(k, y, s) for k, y, s in await conn.execute(query)]
        return found

    async def save_states(
        self, conn: AsyncConnection, new: Sequence[StateRow], changed: Sequence[StateRow]
    ) -> None:
        now = int(time.time())
        if new:
            statement = (
                self._insert(_states)
                .on_conflict_do_nothing(index_elements=["kind", "key"])
                .returning(_states.c.key)
            )
            params = [{"kind": k, "key": y, "state": s, "updated_at": now} for k, y, s in new]
            if len((await conn.execute(statement, params)).all()) < len(new):
                raise ConcurrentInsert("a state row was inserted by another transaction")
        if changed:
            insert = self._insert(_states)
            upsert = insert.on_conflict_do_update(
                index_elements=["kind", "key"],
                set_={"state": insert.excluded.state, "updated_at": insert.excluded.updated_at},
            )
            await conn.execute(
                upsert,
                [{"kind": k, "key": y, "state": s, "updated_at": now} for k, y, s in changed],
            )

    async def add_buckets(self, conn: AsyncConnection, rows: Sequence[BucketRow]) -> None:
        insert = self._insert(kpi_rollups)
        statement = insert.on_conflict_do_update(
            index_elements=list(ROW_KEY),
            set_={c: kpi_rollups.c[c] + insert.excluded[c] for c in BASE_COUNTERS},
        )
        await conn.execute(statement, wide_rows(rows))

    async def add_activity(self, conn: AsyncConnection, rows: Sequence[Row]) -> None:
        if rows:
            await conn.execute(insert(activity), [as_dict(r) for r in rows])  # executemany: paged


def wide_rows(rows: Sequence[BucketRow]) -> list[dict[str, Any]]:
    """The counters of ``rows`` added up per ``kpi_rollups`` row, in key order."""
    wide: dict[tuple[str, str, int, str], dict[str, Any]] = {}
    for scope, metric, grain, start, subject, value in rows:
        key = (scope, grain, start, subject)
        row = wide.get(key)
        if row is None:
            row = wide[key] = dict.fromkeys(BASE_COUNTERS, 0)
            row.update(zip(ROW_KEY, key, strict=True))
        row[metric] += value
    return [wide[key] for key in sorted(wide)]


class PostgresWriter:
    # A batch's deltas are pivoted and sorted in memory, not spilled to disk (the default
    # work_mem of 4 MB spilled a 10,000-event batch and doubled the time of the statement).
    TEMPORARY = """
        SET LOCAL work_mem = '64MB';
        CREATE TEMPORARY TABLE IF NOT EXISTS flush_claims (key bytea)
            ON COMMIT DELETE ROWS;
        CREATE TEMPORARY TABLE IF NOT EXISTS flush_state_keys (kind text, key text)
            ON COMMIT DELETE ROWS;
        CREATE TEMPORARY TABLE IF NOT EXISTS flush_states (kind text, key text, state text)
            ON COMMIT DELETE ROWS;
        CREATE TEMPORARY TABLE IF NOT EXISTS flush_deltas (
            scope text, grain text, bucket_start bigint, subject_id text, counter smallint,
            value bigint) ON COMMIT DELETE ROWS"""
    CLAIM = """
        INSERT INTO applied_event_keys (key, applied_at)
        SELECT key, $1 FROM flush_claims ORDER BY key
        ON CONFLICT (key) DO NOTHING RETURNING key"""
    LOCK = """
        SELECT s.kind, s.key, s.state FROM kpi_states s
        JOIN flush_state_keys k ON k.kind = s.kind AND k.key = s.key
        ORDER BY s.kind, s.key FOR UPDATE OF s"""
    INSERT_STATES = """
        INSERT INTO kpi_states (kind, key, state, updated_at)
        SELECT kind, key, state, $1 FROM flush_states ORDER BY kind, key
        ON CONFLICT (kind, key) DO NOTHING"""
    UPDATE_STATES = """
        UPDATE kpi_states s SET state = f.state, updated_at = $1
        FROM flush_states f WHERE s.kind = f.kind AND s.key = f.key"""
    # The counters' columns are the catalogue's names, and their numbers its positions.
    ADD = """
        INSERT INTO kpi_rollups (scope, grain, bucket_start, subject_id, {columns})
        SELECT scope, grain, bucket_start, subject_id, {sums} FROM flush_deltas
        GROUP BY scope, grain, bucket_start, subject_id
        ORDER BY scope, grain, bucket_start, subject_id
        ON CONFLICT (scope, grain, bucket_start, subject_id) DO UPDATE SET {additions}""".format(  # noqa: S608
        columns=", ".join(BASE_COUNTERS),
        sums=", ".join(
            f"coalesce(sum(value) FILTER (WHERE counter = {i}), 0)"
            for i in range(len(BASE_COUNTERS))
        ),
        additions=", ".join(f"{c} = kpi_rollups.{c} + EXCLUDED.{c}" for c in BASE_COUNTERS),
    )

    async def begin(self, conn: AsyncConnection) -> None:
        """The flush's temporary tables (made once per connection, in a transaction that may
        roll back: so each flush, if not there) and its work_mem: one round trip a flush."""
        await (await _driver(conn)).execute(self.TEMPORARY)

    async def claim(self, conn: AsyncConnection, keys: Sequence[bytes], now: int) -> set[bytes]:
        driver = await _driver(conn)
        await _copy(driver, "flush_claims", [(k,) for k in keys])
        return {r["key"] for r in await driver.fetch(self.CLAIM, now)}

    async def lock_states(
        self, conn: AsyncConnection, keys: Sequence[tuple[str, str]]
    ) -> list[StateRow]:
        driver = await _driver(conn)
        await _copy(driver, "flush_state_keys", keys)
        rows = await driver.fetch(self.LOCK)
        return [(r["kind"], r["key"], r["state"]) for r in rows]

    async def save_states(
        self, conn: AsyncConnection, new: Sequence[StateRow], changed: Sequence[StateRow]
    ) -> None:
        driver, now = await _driver(conn), int(time.time())
        if new:
            await _copy(driver, "flush_states", new)
            status = await driver.execute(self.INSERT_STATES, now)
            if int(status.rsplit(" ", 1)[1]) < len(new):
                raise ConcurrentInsert("a state row was inserted by another transaction")
        if changed:
            await _copy(driver, "flush_states", changed)
            await driver.execute(self.UPDATE_STATES, now)

    async def add_buckets(self, conn: AsyncConnection, rows: Sequence[BucketRow]) -> None:
        driver = await _driver(conn)
        counter = _COUNTER
        await _copy(
            driver,
            "flush_deltas",
            [(s, g, b, i, counter[m], v) for s, m, g, b, i, v in rows],
        )
        await driver.execute(self.ADD)

    async def add_activity(self, conn: AsyncConnection, rows: Sequence[Row]) -> None:
        """COPYed straight into the table: appended, never in conflict."""
        if rows:
            driver = await _driver(conn)
            await driver.copy_records_to_table("activity", records=rows, columns=COLUMNS)


async def _driver(conn: AsyncConnection) -> Any:
    """The asyncpg connection under ``conn``, inside the same transaction."""
    return (await conn.get_raw_connection()).driver_connection


async def _copy(driver: Any, name: str, records: Sequence[Sequence[Any]]) -> None:
    """Empty the temporary table ``name``, then COPY ``records`` into it."""
    await driver.execute(f"DELETE FROM {name}")  # noqa: S608 (one of the tables above)
    await driver.copy_records_to_table(name, records=records)


def writer_for(dialect: str) -> BulkWriter:
    return PostgresWriter() if dialect == "postgresql" else CoreWriter(dialect)
