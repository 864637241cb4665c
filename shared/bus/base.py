"""The bus: one interface, two implementations (Kafka, in-memory). Same code, two buses."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True, slots=True)
class OutgoingRecord:
    key: bytes
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()


@dataclass(frozen=True, slots=True)
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    timestamp_ms: int
    headers: tuple[tuple[str, bytes], ...] = field(default=())


# (topic, partitions just assigned) -> the next offset to read for those the caller knows.
OffsetsLoader = Callable[[str, list[int]], Awaitable[dict[int, int]]]


class BusUnavailable(Exception):
    """The bus could not take (or acknowledge) the records now; the caller should retry later."""


class Consumer(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def getmany(self, timeout_ms: int, max_records: int) -> list[Record]:
        """Up to ``max_records`` records (possibly none after ``timeout_ms``)."""
        ...

    async def acknowledge(self, next_offsets: dict[int, int]) -> None:
        """Tell the broker how far this group got (monitoring only: the database is the truth)."""
        ...

    def lag(self) -> dict[int, int]:
        """Records behind the end of the log, per assigned partition (as last seen)."""
        ...


class Bus(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def ensure_topics(self, topics: Sequence[str]) -> None: ...

    async def publish(self, topic: str, records: Sequence[OutgoingRecord]) -> None:
        """Return once every record is acknowledged; raise ``BusUnavailable`` otherwise."""
        ...

    async def ready(self) -> bool: ...

    async def end_offsets(self, topic: str) -> dict[int, int]:
        """The offset after the last record of each partition, as of now."""
        ...

    def consumer(self, topic: str, group: str, load_offsets: OffsetsLoader) -> Consumer: ...
