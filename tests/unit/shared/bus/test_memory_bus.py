from __future__ import annotations

from shared.bus import OutgoingRecord
from shared.bus.memory import MemoryBus


async def no_offsets(topic: str, partitions: list[int]) -> dict[int, int]:
    return {}


async def test_records_keep_key_order_within_a_partition() -> None:
    bus = MemoryBus(partitions=3)
    await bus.publish("t", [OutgoingRecord(b"rep-1", str(i).encode()) for i in range(5)])
    consumer = bus.consumer("t", "g", no_offsets)
    await consumer.start()
    records = await consumer.getmany(10, 100)
    assert [r.value for r in records] == [b"0", b"1", b"2", b"3", b"4"]
    assert len({r.partition for r in records}) == 1
    assert await consumer.getmany(10, 100) == []


async def test_consumer_resumes_at_stored_offsets_even_past_a_fresh_log() -> None:
    bus = MemoryBus(partitions=1)

    async def stored(topic: str, partitions: list[int]) -> dict[int, int]:
        return {0: 41}  # what a previous dev process committed

    consumer = bus.consumer("t", "g", stored)
    await consumer.start()
    await bus.publish("t", [OutgoingRecord(b"k", b"v")])
    [record] = await consumer.getmany(10, 10)
    assert record.offset == 41
    assert consumer.lag() == {0: 0}


async def test_events_accepted_before_the_first_seek_are_read_not_skipped() -> None:
    """A restarted `make run`: ingest accepts events before the KPI consumer has read its
    offsets; they follow the stored position instead of lying before it."""
    bus = MemoryBus(partitions=1)
    await bus.publish("t", [OutgoingRecord(b"k", b"early-1"), OutgoingRecord(b"k", b"early-2")])

    async def stored(topic: str, partitions: list[int]) -> dict[int, int]:
        return {0: 500}  # what the previous dev process stored

    consumer = bus.consumer("t", "g", stored)
    await consumer.start()
    await bus.publish("t", [OutgoingRecord(b"k", b"late")])
    records = await consumer.getmany(10, 10)
    assert [(r.offset, r.value) for r in records] == [
        (500, b"early-1"),
        (501, b"early-2"),
        (502, b"late"),
    ]


async def test_a_consumer_restarted_in_the_same_process_resumes_without_rereading() -> None:
    bus = MemoryBus(partitions=1)
    await bus.publish("t", [OutgoingRecord(b"k", str(i).encode()) for i in range(5)])
    first = bus.consumer("t", "g", no_offsets)
    await first.start()
    assert len(await first.getmany(10, 10)) == 5

    async def stored(topic: str, partitions: list[int]) -> dict[int, int]:
        return {0: 5}

    second = bus.consumer("t", "g", stored)
    await second.start()
    await bus.publish("t", [OutgoingRecord(b"k", b"new")])
    assert [(r.offset, r.value) for r in await second.getmany(10, 10)] == [(5, b"new")]
