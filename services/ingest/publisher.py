"""Turn accepted canonical events into Kafka records and publish them in one batch."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from shared import events as ev
from shared.bus import Bus, OutgoingRecord

_HEADERS = (("content-type", ev.CONTENT_TYPE.encode()),)


@dataclass(frozen=True, slots=True)
class Outcome:
    accepted: int
    duplicates: int
    ids: list[str]


class RecentIds:
    """A bounded memory of event ids this process saw acknowledged.

    Only an answer-time courtesy ("duplicates" in the response, less traffic on a quick retry):
    exactness comes from the KPI service's dedupe, which sees every instance's events.
    """

    def __init__(self, capacity: int = 100_000) -> None:
        self._capacity = capacity
        self._ids: OrderedDict[tuple[str, str], None] = OrderedDict()

    def __contains__(self, key: tuple[str, str]) -> bool:
        return key in self._ids

    def add(self, keys: Sequence[tuple[str, str]]) -> None:
        for key in keys:
            self._ids[key] = None
            self._ids.move_to_end(key)
        while len(self._ids) > self._capacity:
            self._ids.popitem(last=False)


class EventPublisher:
    def __init__(
        self, bus: Bus, topic: str, deadletter_topic: str, recent: RecentIds | None = None
    ) -> None:
        self._bus = bus
        self._topic = topic
        self._deadletter_topic = deadletter_topic
        self._recent = recent or RecentIds()

    @property
    def topic(self) -> str:
        return self._topic

    @property
    def deadletter_topic(self) -> str:
        return self._deadletter_topic

    async def dead_letter(self, records: Sequence[OutgoingRecord]) -> None:
        await self._bus.publish(self._deadletter_topic, records)

    async def publish(self, events: Sequence[ev.Event]) -> Outcome:
        """Publish the events not seen before; return once Kafka acknowledged them all."""
        fresh: dict[tuple[str, str], ev.Event] = {}
        for event in events:
            key = (event.source, event.id)
            if key not in self._recent:
                fresh.setdefault(key, event)
        records = [
            OutgoingRecord(e.partition_key.encode(), e.to_json(), _HEADERS) for e in fresh.values()
        ]
        if records:
            await self._bus.publish(self._topic, records)
            self._recent.add(list(fresh))
        return Outcome(len(fresh), len(events) - len(fresh), [e.id for e in events])
