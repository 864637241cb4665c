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
