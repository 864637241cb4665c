"""The producer's lean parts: the partitioner puts every key where aiokafka's default (Java's
murmur2) does, and the wait for acknowledgements ends at the publish timeout."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka.partitioner import DefaultPartitioner

from shared.bus.kafka import KafkaBus, KeyHashPartitioner


def test_every_key_goes_to_the_default_partitioners_partition() -> None:
    remembered, default = KeyHashPartitioner(capacity=100), DefaultPartitioner()
    keys = [f"crm:u-{i}".encode() for i in range(300)] + [b"", b"\x00\xff", "é".encode()]
    for partitions in ([0, 1, 2, 3, 4, 5], [0, 1, 2], list(range(37))):
        for key in keys * 2:  # the second time from memory (past its capacity: recomputed)
            assert remembered(key, partitions, partitions) == default(key, partitions, partitions)


def test_a_record_without_a_key_goes_to_an_available_partition() -> None:
    partitioner = KeyHashPartitioner()
    assert {partitioner(None, [0, 1, 2, 3], [2, 3]) for _ in range(50)} <= {2, 3}


async def test_an_acknowledgement_is_awaited_at_most_the_publish_timeout() -> None:
    bus = KafkaBus("127.0.0.1:1", publish_timeout_s=0.05)
    never: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    with pytest.raises(TimeoutError):
        await bus._acknowledged(never)
    assert never.cancelled()  # the wait is given up, as wait_for gave it up
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    done.set_result(None)
    await bus._acknowledged(done)


async def test_a_caller_cancelled_while_waiting_is_cancelled_not_timed_out() -> None:
    bus = KafkaBus("127.0.0.1:1", publish_timeout_s=30)
    never: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    waiting = asyncio.create_task(bus._acknowledged(never))
    await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
