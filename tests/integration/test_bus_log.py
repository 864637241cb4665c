"""The log bus (``shared.bus.log``) on SQLite and PostgreSQL: what ``salespulse serve`` stands
on instead of Kafka. Publishing returns once the records are committed, concurrent publishers
get gap-free offsets in commit order, one consumer per group reads by position (another stands
by), retention prunes only what was read and is old, and the unconsumed tail moves to Kafka."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.bus.base import OutgoingRecord, Record
from shared.bus.kafka import KafkaBus
from shared.bus.log import Keep, LogBus, LogInUse, move_to, prune
from shared.db.models import BusLogRecord, ConsumerOffset, table
from tests.integration.test_kafka_bus import read_until

TOPIC = "sales.activity.v1"
_LOG, _OFFSETS = table(BusLogRecord), table(ConsumerOffset)


def records(n: int, prefix: str = "e") -> list[OutgoingRecord]:
    return [
        OutgoingRecord(f"k{i % 7}".encode(), f"{prefix}{i}".encode(), (("ct", b"json"),))
        for i in range(n)
    ]


async def nothing_stored(_: str, __: list[int]) -> dict[int, int]:
    return {}


async def drain(bus: LogBus, group: str, expected: int) -> list[Record]:
    consumer = bus.consumer(TOPIC, group, nothing_stored)
    await consumer.start()
    got: list[Record] = []
    try:
        for _ in range(100):
            got += await consumer.getmany(100, 1000)
            if len(got) >= expected:
                break
    finally:
        await consumer.stop()
    return got


async def store_offset(db: AsyncEngine, group: str, next_offset: int) -> None:
    async with db.begin() as conn:
        await conn.execute(
            insert(_OFFSETS).values(
                consumer_group=group, topic=TOPIC, partition=0, next_offset=next_offset
            )
        )


async def test_concurrent_publishers_get_gap_free_offsets_and_keep_their_records(
    db: AsyncEngine,
) -> None:
    bus = LogBus(db)
    await bus.start()
    try:
        await asyncio.gather(*(bus.publish(TOPIC, records(50, f"p{p}-")) for p in range(20)))
        assert await bus.end_offsets(TOPIC) == {0: 1000}
        got = await drain(bus, "g", 1000)
    finally:
        await bus.stop()
    assert [r.offset for r in got] == list(range(1000))
    values = [r.value for r in got]
    assert sorted(values) == sorted(f"p{p}-{i}".encode() for p in range(20) for i in range(50))
    for p in range(3):  # a request's records stay together and in order
        mine = [v for v in values if v.startswith(f"p{p}-".encode())]
        assert mine == [f"p{p}-{i}".encode() for i in range(50)]
    assert got[0].headers == (("ct", b"json"),)
    assert got[0].key == b"k0"


async def test_two_processes_writing_one_log_interleave_without_gaps(db: AsyncEngine) -> None:
    """Two buses on one database (two processes' writers): offsets stay gap-free and unique."""
    one, two = LogBus(db), LogBus(db)
    await one.start()
    await two.start()
    try:
        await asyncio.gather(
            *(
                b.publish(TOPIC, records(20, f"{n}-{i}-"))
                for i in range(10)
                for n, b in (("a", one), ("b", two))
            )
        )
        got = await drain(one, "g", 400)
    finally:
        await one.stop()
        await two.stop()
    assert [r.offset for r in got] == list(range(400))
    assert len({r.value for r in got}) == 400


async def test_a_consumer_starts_from_its_stored_position_and_wakes_on_publish(
    db: AsyncEngine,
) -> None:
    bus = LogBus(db)
    await bus.publish(TOPIC, records(10))

    async def stored(_: str, __: list[int]) -> dict[int, int]:
        return {0: 7}

    consumer = bus.consumer(TOPIC, "g", stored)
    await consumer.start()
    try:
        assert [r.offset for r in await consumer.getmany(0, 100)] == [7, 8, 9]
        assert consumer.lag() == {0: 0}
        waiting = asyncio.create_task(consumer.getmany(10_000, 100))
        await asyncio.sleep(0.05)
        started = time.monotonic()
        await bus.publish(TOPIC, records(1, "late"))
        [late] = await waiting
        assert (late.offset, late.value) == (10, b"late0")
        assert time.monotonic() - started < 1.0  # woken by the commit, not by the timeout
    finally:
        await consumer.stop()
        await bus.stop()


async def test_a_second_consumer_of_a_group_stands_by_until_the_first_stops(
    db: AsyncEngine,
) -> None:
    bus = LogBus(db)
    await bus.publish(TOPIC, records(5))
    first = bus.consumer(TOPIC, "g", nothing_stored)
    second = bus.consumer(TOPIC, "g", nothing_stored)
    other_group = bus.consumer(TOPIC, "h", nothing_stored)
    await first.start()
    await second.start()
    await other_group.start()
    try:
        assert len(await first.getmany(0, 100)) == 5
        assert await second.getmany(300, 100) == []  # standing by
        assert second.lag() == {}
        assert len(await other_group.getmany(0, 100)) == 5  # another group reads on its own
        await first.stop()
        assert len(await second.getmany(1000, 100)) == 5  # took over, from the stored position
    finally:
        for consumer in (first, second, other_group):
            await consumer.stop()
        await bus.stop()


async def test_retention_prunes_only_what_the_group_read_and_what_is_old(
    db: AsyncEngine,
) -> None:
    bus = LogBus(db)
    await bus.publish(TOPIC, records(12_000))
    await bus.publish("sales.deadletter.v1", records(3))
    await bus.stop()
    later = time.time() + 8 * 86400
    keep = {TOPIC: Keep(7 * 86400, "kpi"), "sales.deadletter.v1": Keep(30 * 86400)}
    assert await prune(db, keep, now=later) == 0  # the group stored nothing yet: all unread
    await store_offset(db, "kpi", 11_000)
    assert await prune(db, keep, now=time.time()) == 0  # read, but not old yet
    assert await prune(db, keep, now=later) == 11_000
    async with db.connect() as conn:
        kept = (
            await conn.execute(
                select(func.min(_LOG.c.offset), func.count()).where(_LOG.c.topic == TOPIC)
            )
        ).one()
    assert tuple(kept) == (11_000, 1_000)
    assert await prune(db, keep, now=time.time() + 31 * 86400) == 3  # dead letters: by age
    # emptied by retention, the log goes on numbering where it was
    await store_offset_to(db, "kpi", 12_000)
    assert await prune(db, keep, now=later) == 1_000
    bus = LogBus(db)
    await bus.publish(TOPIC, records(1))
    assert await bus.end_offsets(TOPIC) == {0: 12_001}
    await bus.stop()


async def store_offset_to(db: AsyncEngine, group: str, next_offset: int) -> None:
    async with db.begin() as conn:
        await conn.execute(
            _OFFSETS.update()
            .where(_OFFSETS.c.consumer_group == group, _OFFSETS.c.topic == TOPIC)
            .values(next_offset=next_offset)
        )


async def test_the_unconsumed_tail_moves_to_kafka(
    db: AsyncEngine, kafka_bootstrap: str, topic_prefix: str
) -> None:
    bus = LogBus(db)
    await bus.publish(TOPIC, records(30))
    await store_offset(db, "kpi", 20)
    reader = bus.consumer(TOPIC, "kpi", nothing_stored)
    await reader.start()
    kafka = KafkaBus(kafka_bootstrap, partitions=3, client_id=f"move-{uuid.uuid4().hex[:6]}")
    await kafka.start()
    target = f"{topic_prefix}activity"
    try:
        with pytest.raises(LogInUse):
            await move_to(kafka, db, {TOPIC: "kpi"})
        await reader.stop()
        await kafka.ensure_topics([target])
        moved = await move_to(_Renamed(kafka, target), db, {TOPIC: "kpi"})
        assert moved == {TOPIC: 10}
        in_kafka = await read_everything(kafka, target, 10)
    finally:
        await kafka.stop()
        await bus.stop()
    assert sorted(r.value for r in in_kafka) == sorted(f"e{i}".encode() for i in range(20, 30))
    async with db.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(_LOG)) == 0
        assert await conn.scalar(select(func.count()).select_from(_OFFSETS)) == 0


async def read_everything(kafka: KafkaBus, topic: str, count: int) -> list[Record]:
    consumer = kafka.consumer(topic, f"check-{uuid.uuid4().hex[:6]}", nothing_stored)
    await consumer.start()
    try:
        return await read_until(consumer, count)
    finally:
        await consumer.stop()


class _Renamed:
    """Kafka under another topic name (tests share one broker)."""

    def __init__(self, bus: KafkaBus, topic: str) -> None:
        self._bus, self._topic = bus, topic

    async def publish(self, topic: str, records: Sequence[OutgoingRecord]) -> None:
        await self._bus.publish(self._topic, records)
