"""The consumer loop's failure handling on the embedded stack (in-memory bus, SQLite): what it
waits out, and what it never blames on an event."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from services.kpi.app import build_kpi_service
from services.kpi.consumer import infrastructure_down
from shared.bus import BusUnavailable, OutgoingRecord, Record
from shared.bus.memory import MemoryBus
from shared.db.engine import create_engine
from shared.db.migrate import migrate
from shared.settings import Settings
from tests.conftest import canonical


class FetchFailsOnTopUp:
    """A consumer whose first fetch returns records and whose next one fails (as aiokafka does
    when another partition's error surfaces on the call after)."""

    def __init__(self, records: list[Record]) -> None:
        self.records, self.calls = records, 0

    async def getmany(self, timeout_ms: int, max_records: int) -> list[Record]:
        self.calls += 1
        if self.calls == 1:
            return list(self.records)
        raise BusUnavailable("fetch failed")


async def test_records_in_hand_are_kept_when_the_top_up_fetch_fails(
    make_settings: Callable[..., Settings],
) -> None:
    service = build_kpi_service(make_settings(), MemoryBus(), create_engine("sqlite://"))
    fetched = [Record("t", 0, 7, b"k", b"{}", 0)]
    consumer: Any = service.consumer
    consumer._consumer = FetchFailsOnTopUp(fetched)
    assert await consumer._next_batch() == fetched


def test_contention_past_the_flush_retries_is_waited_out_not_blamed_on_an_event() -> None:
    class Deadlock(Exception):
        sqlstate = "40P01"

    assert infrastructure_down(Deadlock("deadlock detected"))
    assert infrastructure_down(BusUnavailable("down"))
    assert not infrastructure_down(OverflowError("date value out of range"))


async def test_a_database_that_refuses_every_write_dead_letters_no_event(
    make_settings: Callable[..., Settings], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lone event in a batch, and a database that refuses even the offsets (read-only after
    a failover, say): the event is not the fault, so it is not dead-lettered."""
    settings = make_settings(database_url=f"sqlite:///{tmp_path / 'ro.db'}")
    bus, db = MemoryBus(), create_engine(settings.database_url)
    await migrate(db)
    service = build_kpi_service(settings, bus, db)
    await bus.publish(
        settings.activity_topic, [OutgoingRecord(b"k", orjson.dumps(canonical(actor="u-1")))]
    )

    async def read_only(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("attempt to write a readonly database")

    monkeypatch.setattr(service.consumer._store, "flush", read_only)
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    try:
        for _ in range(100):
            if not service.consumer.healthy:
                break
            await asyncio.sleep(0.05)
        assert not service.consumer.healthy
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
        await db.dispose()
    assert bus.records(settings.deadletter_topic) == []
