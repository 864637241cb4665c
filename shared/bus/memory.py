"""In-memory bus for the embedded default (one process) and for unit tests.

It keeps Kafka's semantics that the services rely on: records keyed into partitions, offsets
per partition, a consumer that seeks to the offsets its owner stored. It persists nothing: the
log of a new process continues the one whose offsets the database stored. The first time a
consumer is positioned on a partition, the partition is renumbered to begin at the stored
offset, so records accepted before that moment (ingest may answer before the KPI service has
read its offsets) are read, never skipped as if they lay before the stored position.
"""

from __future__ import annotations

import asyncio
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from shared.bus.base import Consumer, OffsetsLoader, OutgoingRecord, Record


@dataclass
class _Partition:
    base_offset: int = 0
    records: list[Record] = field(default_factory=list)
    positioned: bool = False  # a consumer was positioned on it: its numbering is settled

    def continue_from(self, stored: int) -> None:
        """Number this process's log from ``stored``, where the previous process stopped."""
        self.records = [replace(r, offset=stored + i) for i, r in enumerate(self.records)]
        self.base_offset = stored

    @property
    def end_offset(self) -> int:
        return self.base_offset + len(self.records)

    def read(self, position: int, limit: int) -> list[Record]:
        start = max(position - self.base_offset, 0)
        return self.records[start : start + limit]


class MemoryBus:
    def __init__(self, partitions: int = 6) -> None:
        self._partition_count = partitions
        self._topics: dict[str, list[_Partition]] = {}
        self._appended = asyncio.Condition()

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def ready(self) -> bool:
        return True

    async def end_offsets(self, topic: str) -> dict[int, int]:
        return {n: p.end_offset for n, p in enumerate(self._log(topic))}

    async def ensure_topics(self, topics: Sequence[str]) -> None:
        for topic in topics:
            self._log(topic)

    def _log(self, topic: str) -> list[_Partition]:
        if topic not in self._topics:
            self._topics[topic] = [_Partition() for _ in range(self._partition_count)]
        return self._topics[topic]

    async def publish(self, topic: str, records: Sequence[OutgoingRecord]) -> None:
        partitions = self._log(topic)
        now_ms = int(time.time() * 1000)
        for out in records:
            number = zlib.crc32(out.key) % len(partitions)
            partition = partitions[number]
            partition.records.append(
                Record(topic, number, partition.end_offset, out.key, out.value, now_ms, out.headers)
            )
        async with self._appended:
            self._appended.notify_all()

    def consumer(self, topic: str, group: str, load_offsets: OffsetsLoader) -> Consumer:
        return MemoryConsumer(self, topic, load_offsets)

    def records(self, topic: str) -> list[Record]:
        """Everything on a topic, partition by partition (for tests and the dead-letter view)."""
        return [r for p in self._log(topic) for r in p.records]


class MemoryConsumer:
    """The only member of its group: it is assigned every partition."""

    def __init__(self, bus: MemoryBus, topic: str, load_offsets: OffsetsLoader) -> None:
        self._bus = bus
        self._topic = topic
        self._load_offsets = load_offsets
        self._positions: dict[int, int] = {}

    async def start(self) -> None:
        partitions = self._bus._log(self._topic)
        stored = await self._load_offsets(self._topic, list(range(len(partitions))))
        for number, partition in enumerate(partitions):
            position = stored.get(number, partition.base_offset)
            if not partition.positioned and position > partition.base_offset:
                partition.continue_from(position)
            partition.positioned = True
            self._positions[number] = position

    async def stop(self) -> None:
        return None

    def _poll(self, max_records: int) -> list[Record]:
        batch: list[Record] = []
        for number, partition in enumerate(self._bus._log(self._topic)):
            if len(batch) >= max_records:
                break
            taken = partition.read(self._positions[number], max_records - len(batch))
            if taken:
                self._positions[number] = taken[-1].offset + 1
                batch.extend(taken)
        return batch

    async def getmany(self, timeout_ms: int, max_records: int) -> list[Record]:
        batch = self._poll(max_records)
        if batch:
            return batch
        try:
            async with self._bus._appended:
                await asyncio.wait_for(self._bus._appended.wait(), timeout_ms / 1000)
        except TimeoutError:
            return []
        return self._poll(max_records)

    async def acknowledge(self, next_offsets: dict[int, int]) -> None:
        return None

    def lag(self) -> dict[int, int]:
        partitions = self._bus._log(self._topic)
        return {n: partitions[n].end_offset - pos for n, pos in self._positions.items()}
