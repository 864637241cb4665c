"""The consumer loop: fetch a batch, decode, flush exactly once, then acknowledge."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

from pydantic import ValidationError

from services.kpi import metrics
from services.kpi.engine import Engine, UnusableEvent
from services.kpi.store import Booking, FlushResult, KpiStore
from shared import events as ev
from shared.bus import Bus, Consumer, OutgoingRecord, Record
from shared.deadletter import dead_letter

log = logging.getLogger(__name__)


class KpiConsumer:
    def __init__(
        self,
        bus: Bus,
        store: KpiStore,
        engine: Engine,
        *,
        topic: str,
        group: str,
        deadletter_topic: str,
        batch_size: int = 2000,
        poll_timeout_ms: int = 200,
        business_per_rep: bool = False,
    ) -> None:
        self._business_per_rep = business_per_rep
        self._bus = bus
        self._store = store
        self._engine = engine
        self._deadletter_topic = deadletter_topic
        self._batch_size = batch_size
        self._poll_timeout_ms = poll_timeout_ms
        self._consumer: Consumer = bus.consumer(topic, group, store.load_offsets)
        self.flushed = asyncio.Event()  # set after every flush; tests and dev mode wait on it

    async def run(self, stop: asyncio.Event, until: dict[int, int] | None = None) -> None:
        """Consume until ``stop`` is set (or, given ``until``, once those offsets are stored)."""
        await self._consumer.start()
        try:
            while not stop.is_set():
                if until is not None and self._store.caught_up(until):
                    break
                records = await self._next_batch()
                if records:
                    await self.process(records)
                for partition, lag in self._consumer.lag().items():
                    metrics.CONSUMER_LAG.labels(str(partition)).set(lag)
        finally:
            await self._consumer.stop()

    async def _next_batch(self) -> list[Record]:
        """Wait for records, then take whatever else is already fetched, up to a full batch:
        one transaction per batch, so fuller batches mean fewer round trips per event."""
        records = await self._consumer.getmany(self._poll_timeout_ms, self._batch_size)
        while records and len(records) < self._batch_size:
            more = await self._consumer.getmany(0, self._batch_size - len(records))
            if not more:
                break
            records.extend(more)
        return records

    async def process(self, records: Sequence[Record]) -> FlushResult:
        booking, rejects = self._decode(records)
        if rejects:  # published before the offsets move past them: never lost, maybe repeated
            await self._bus.publish(self._deadletter_topic, rejects)
        started = time.perf_counter()
        result = await self._store.flush(booking)
        committed = time.time()
        metrics.FLUSH_SECONDS.observe(time.perf_counter() - started)
        self._observe(records, result, committed, self._business_per_rep)
        await self._consumer.acknowledge(result.next_offsets)
        self.flushed.set()
        return result

    def _decode(self, records: Sequence[Record]) -> tuple[Booking, list[OutgoingRecord]]:
        booked: list[tuple[ev.Event, dict[str, int]]] = []
        rejects: list[OutgoingRecord] = []
        for record in records:
            try:
                event = ev.parse_event(record.value)
                booked.append((event, self._engine.contributions(event)))
            except (ValidationError, UnusableEvent) as exc:
                reason = "invalid_event" if isinstance(exc, ValidationError) else "unusable_event"
                metrics.DEADLETTERED.labels(reason).inc()
                rejects.append(
                    dead_letter(
                        provider="kpi",
                        reason=f"{reason}: {_summary(exc)}",
                        body=record.value,
                        origin=f"{record.topic}/{record.partition}/{record.offset}",
                    )
                )
        return Booking(records, booked), rejects

    @staticmethod
    def _observe(
        records: Sequence[Record], result: FlushResult, committed: float, per_rep: bool
    ) -> None:
        metrics.EVENTS_APPLIED.inc(len(result.applied))
        metrics.DUPLICATES_SKIPPED.inc(result.duplicates)
        metrics.UNASSIGNED.inc(result.unassigned)
        metrics.count_business(result.booked, per_rep)
        for record in records:
            metrics.EVENT_TO_KPI_SECONDS.observe(max(committed - record.timestamp_ms / 1000, 0))


def _summary(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:5])
    return str(exc)
