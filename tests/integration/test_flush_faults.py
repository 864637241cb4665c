"""The flush under the faults that once misled operators: a deadlock raised by the raw asyncpg
bulk writes is retried like one raised through SQLAlchemy, and the unassigned counter counts."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import AsyncEngine

from services.kpi.consumer import KpiConsumer
from shared.db.retry import is_conflict, is_unavailable
from tests.conftest import canonical
from tests.integration.test_flush import booking, make_store, records, roster, today_calls


def _unassigned_total() -> float:
    return REGISTRY.get_sample_value("salespulse_kpi_unassigned_events_total") or 0.0


async def test_the_unassigned_counter_counts_the_events_nobody_on_the_roster_owns(
    db: AsyncEngine,
) -> None:
    await roster(db)  # u-1 is alice's; u-7 is nobody's
    store, engine = make_store(db)
    before = _unassigned_total()
    result = await store.flush(
        booking(
            engine, records(canonical(actor="u-1"), canonical(actor="u-7"), canonical(actor="u-7"))
        )
    )
    assert result.unassigned == 2
    KpiConsumer._observe([], result, 0.0, per_rep=False)
    assert _unassigned_total() - before == 2


def test_a_raw_asyncpg_deadlock_is_a_conflict_and_a_lost_connection_an_outage() -> None:
    asyncpg = pytest.importorskip("asyncpg")
    assert is_conflict(asyncpg.exceptions.DeadlockDetectedError("deadlock detected"))
    assert is_conflict(asyncpg.exceptions.SerializationError("could not serialize"))
    assert not is_conflict(asyncpg.exceptions.StringDataRightTruncationError("too long"))
    assert is_unavailable(asyncpg.exceptions.ConnectionDoesNotExistError("closed"))
    assert is_unavailable(asyncpg.exceptions.AdminShutdownError("terminating"))
    assert not is_unavailable(asyncpg.exceptions.StringDataRightTruncationError("too long"))


async def test_a_deadlock_in_the_bulk_writes_is_retried_and_books_once(
    db: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    asyncpg = pytest.importorskip("asyncpg")
    await roster(db)
    store, engine = make_store(db)
    writer = store._writer
    original = writer.add_buckets
    failures = [asyncpg.exceptions.DeadlockDetectedError("deadlock detected")]

    async def add_buckets(*args: Any) -> None:
        if failures:  # the first attempt meets another instance's locks
            raise failures.pop()
        await original(*args)

    monkeypatch.setattr(writer, "add_buckets", add_buckets)
    result = await store.flush(booking(engine, records(canonical(actor="u-1", talk_seconds=7))))
    assert not failures
    assert len(result.applied) == 1
    assert await today_calls(db) == {"alice": {"calls_placed": 1, "talk_seconds": 7}}
