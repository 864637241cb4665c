"""The Kafka bus against a real Apache Kafka broker."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from shared.bus import BusUnavailable, OutgoingRecord, Record
from shared.bus.kafka import KafkaBus

pytestmark = pytest.mark.kafka


async def read_until(consumer: object, count: int, seconds: float = 20) -> list[Record]:
    got: list[Record] = []
    deadline = asyncio.get_running_loop().time() + seconds
    while len(got) < count and asyncio.get_running_loop().time() < deadline:
        got += await consumer.getmany(500, 1000)  # type: ignore[attr-defined]
    return got


async def test_topics_are_created_with_the_configured_partitions(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    bus = KafkaBus(kafka_bootstrap, partitions=4)
    topic = f"{topic_prefix}sales.activity.v1"
    await bus.ensure_topics([topic])
    await bus.ensure_topics([topic])  # idempotent
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        [description] = await admin.describe_topics([topic])
        assert len(description["partitions"]) == 4
    finally:
        await admin.close()


async def test_publish_acknowledged_then_consumed_from_stored_offsets(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    bus = KafkaBus(kafka_bootstrap, partitions=2)
    topic = f"{topic_prefix}t"
    await bus.ensure_topics([topic])
    await bus.start()
    try:
        await bus.publish(topic, [OutgoingRecord(b"rep-1", f"v{i}".encode()) for i in range(10)])
        assert await bus.ready()
    finally:
        await bus.stop()
    stored: dict[int, int] = {}

    async def load(_: str, partitions: list[int]) -> dict[int, int]:
        return {p: stored[p] for p in partitions if p in stored}

    first = bus.consumer(topic, f"{topic_prefix}g", load)
    await first.start()
    try:
        records = await read_until(first, 10)
    finally:
        await first.stop()
    assert [r.value for r in records] == [f"v{i}".encode() for i in range(10)]
    partition = records[0].partition
    stored[partition] = records[6].offset + 1  # as if the database holds offsets up to v6

    second = bus.consumer(topic, f"{topic_prefix}g", load)
    await second.start()
    try:
        resumed = await read_until(second, 3)
        assert [r.value for r in resumed] == [b"v7", b"v8", b"v9"]
        assert second.lag()[partition] == 0
    finally:
        await second.stop()


async def test_unreachable_broker_is_bus_unavailable() -> None:
    bus = KafkaBus("127.0.0.1:1", publish_timeout_s=2)
    await bus.start()  # does not raise: the service starts and answers 503 until Kafka is back
    assert not await bus.ready()
    with pytest.raises(BusUnavailable):
        await bus.publish("t", [OutgoingRecord(b"k", b"v")])
    await bus.stop()
