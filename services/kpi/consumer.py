"""The consumer loop: fetch a batch, decode, flush exactly once, then acknowledge.

One bad event never stops the line (architecture decision 11):

- an event that cannot be decoded or booked (invalid, out of bounds, a currency with no rate,
  an engine error) is dead-lettered with its reason and origin at decode time;
- a flush that fails for a reason other than the infrastructure is bisected with dry runs
  (rolled back) down to the events that fail on their own; those are dead-lettered and the
  batch is flushed without them, their records still moving the offsets, so the rest of the
  batch (and every later event) goes on;
- when the database or the broker is unavailable, nothing is skipped: the same step is tried
  again with a growing pause, the service reports not-ready meanwhile, and it resumes by itself;
- but a flush that fails with the identical "unavailable" error ``REPEATS`` times while the
  database answers a probe is not waiting for an outage: it is a bug (decision 15), and goes
  through the isolation above like any other failure;
- when no event is at fault (a bug, a broken schema), nothing is dead-lettered and the batch is
  tried again with a growing pause, loudly: not ready, an ERROR log each round, and
  ``salespulse_kpi_stalled`` at 1 until a flush succeeds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TypeVar

from pydantic import ValidationError

from services.kpi import metrics
from services.kpi.domain.engine import Engine, Item, UnusableEvent
from services.kpi.flush import Booking, FlushResult, KpiStore
from services.kpi.offsets import OffsetsWentBackwards
from shared import events as ev
from shared.bus import Bus, BusUnavailable, Consumer, OutgoingRecord, Record
from shared.corrections import CONTENT_TYPE as CORRECTION_TYPE
from shared.corrections import CorrectionMessage
from shared.db.repeats import Repeats, fingerprint
from shared.db.retry import is_conflict, is_unavailable
from shared.deadletter import dead_letter
from shared.history import is_history

log = logging.getLogger(__name__)
T = TypeVar("T")
# each record, with its event (and the event's counters), or its correction, if it decoded
Decoded = list[tuple[Record, Item | CorrectionMessage | None]]
MAX_PAUSE_S = 30.0
DECODE_SLICE = 500


@dataclass(frozen=True, slots=True)
class Fetched:
    """A batch as fetched: its records, each with its event if it decoded, and the dead
    letters of those that did not."""

    records: Sequence[Record]
    decoded: Decoded
    rejects: list[OutgoingRecord]


class Stopping(Exception):
    """Asked to stop while waiting for the infrastructure: leave without acknowledging."""


class SystemicFailure(Exception):
    """A flush fails, but not because of particular events (a bug, a broken schema): none is
    dead-lettered; the batch is retried with a growing pause, and the service reports
    not-ready, logs an ERROR and sets ``salespulse_kpi_stalled``."""


class NotAnOutage(Exception):
    """A step failed with an "unavailable" error that repeats identically while the database
    answers: a bug, not an outage; its cause is the error itself."""


def infrastructure_down(exc: BaseException) -> bool:
    """The database or the broker is unavailable, or contended past the flush's own retries:
    wait, never skip (a conflict is nobody's data at fault)."""
    return isinstance(exc, BusUnavailable) or is_unavailable(exc) or is_conflict(exc)


class KpiConsumer:
    def __init__(
        self,
        bus: Bus,
        store: KpiStore,
        kpi: Engine,
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
        self._kpi = kpi
        self._deadletter_topic = deadletter_topic
        self._batch_size = batch_size
        self._poll_timeout_ms = poll_timeout_ms
        self._stop = asyncio.Event()
        self._consumer: Consumer = bus.consumer(topic, group, self._load_offsets)
        self.flushed = asyncio.Event()  # set after every flush; tests and dev mode wait on it
        self.healthy = True  # False while waiting for the database or the broker (readiness)
        self._bugs: set[str] = set()  # fingerprints of errors found to be bugs, until a flush

    async def run(self, stop: asyncio.Event, until: dict[int, int] | None = None) -> None:
        """Consume until ``stop`` is set (or, given ``until``, once those offsets are stored).

        Pipelined: the next batch is fetched and decoded while this one is in the database.
        Records fetched ahead and not flushed when the loop ends are read again at the next
        start, from the offsets stored with the aggregates."""
        self._stop = stop
        await self._consumer.start()
        ahead: asyncio.Task[Fetched] | None = None
        try:
            while not stop.is_set():
                if until is not None and self._store.caught_up(until):
                    break
                fetched = await (ahead if ahead is not None else self._fetch())
                ahead = asyncio.create_task(self._fetch())
                if fetched.records:
                    await self._process(fetched)
                for partition, lag in self._consumer.lag().items():
                    metrics.CONSUMER_LAG.labels(str(partition)).set(lag)
        except Stopping:
            log.info("stopped while waiting for the infrastructure")
        finally:
            if ahead is not None:
                ahead.cancel()
                with contextlib.suppress(asyncio.CancelledError, Stopping):
                    await ahead
            await self._consumer.stop()

    async def _fetch(self) -> Fetched:
        """The next batch, decoded a slice at a time: between slices the flush under way
        gets the answers of the database without waiting for the whole batch to decode."""
        records = await self._patiently("fetch", self._next_batch)
        decoded: Decoded = []
        rejects: list[OutgoingRecord] = []
        for start in range(0, len(records), DECODE_SLICE):
            more, bad = self._decode(records[start : start + DECODE_SLICE])
            decoded += more
            rejects += bad
            await asyncio.sleep(0)
        return Fetched(records, decoded, rejects)

    async def _next_batch(self) -> list[Record]:
        """Wait for records, then take whatever else is already fetched, up to a full batch:
        one transaction per batch, so fuller batches mean fewer round trips per event. Batches
        are as large as the backlog (up to ``batch_size``): one event at a time when idle."""
        records = await self._consumer.getmany(self._poll_timeout_ms, self._batch_size)
        while records and len(records) < self._batch_size:
            try:
                more = await self._consumer.getmany(0, self._batch_size - len(records))
            except BusUnavailable:
                # The consumer's position is already past ``records``: flush them now. Only a
                # fetch that holds nothing yet may fail (and be retried from the same position).
                break
            if not more:
                break
            records.extend(more)
        return records

    async def _process(self, fetched: Fetched) -> FlushResult:
        """Dead-letter what cannot be booked, flush the rest, acknowledge."""
        if fetched.rejects:  # published before the offsets move past them: never lost
            await self._patiently("dead-letter", lambda: self._publish_letters(fetched.rejects))
        result = await self._flush_isolated(fetched.decoded)
        self._observe(fetched.records, result, time.time(), self._business_per_rep)
        await self._consumer.acknowledge(result.next_offsets)
        self.flushed.set()
        return result

    def _decode(self, records: Sequence[Record]) -> tuple[Decoded, list[OutgoingRecord]]:
        decoded: Decoded = []
        rejects: list[OutgoingRecord] = []
        for record in records:
            try:
                if _is_correction(record):
                    decoded.append((record, CorrectionMessage.model_validate_json(record.value)))
                    continue
                event = ev.parse_event(record.value)
                decoded.append((record, (event, self._kpi.contributions(event))))
            except Exception as exc:  # anything one event makes fail fails that event alone
                decoded.append((record, None))
                rejects.append(self._letter(record, _reason(exc)))
        return decoded, rejects

    # -- flushing, one bad event at a time ------------------------------------------------

    async def _flush_isolated(self, decoded: Decoded) -> FlushResult:
        """Flush the batch; if the data makes it fail, dead-letter the events at fault and
        flush the rest (their records still move the offsets)."""
        pause = 0.5
        while True:
            try:
                flush = partial(self._flush, decoded)
                result = await self._patiently("flush", flush, isolate=True)
            except (Stopping, OffsetsWentBackwards):
                raise
            except Exception as exc:
                log.warning(
                    "flush failed on the data; isolating the events at fault",
                    extra={"records": len(decoded), "error": _summary(exc)},
                )
                poison = await self._poison(decoded) if await self._offsets_flush(decoded) else {}
                if poison:
                    decoded = await self._reject(decoded, poison)
                    continue
                await self._stalled(SystemicFailure(_summary(exc)), len(decoded), pause)
                pause = min(pause * 2, MAX_PAUSE_S)
                continue
            self._bugs.clear()
            metrics.STALLED.set(0)
            return result

    async def _stalled(self, exc: SystemicFailure, records: int, pause: float) -> None:
        """No event is at fault, yet the flush fails: say so loudly, then wait and try again."""
        metrics.SYSTEMIC_FAILURES.inc()
        metrics.STALLED.set(1)
        log.error(
            "KPI service stalled: flushes fail and no event is at fault (a bug or a broken "
            "schema, not an outage); nothing moves until it is fixed",
            extra={"records": records, "error": _summary(exc), "retry_in_s": pause},
        )
        await self._pause(pause)

    async def _offsets_flush(self, decoded: Decoded) -> bool:
        """Whether the batch's records alone (no events) would flush: if not, the fault is not
        in any event (a read-only or broken database), and no event may be blamed for it."""
        try:
            await self._patiently(
                "flush", lambda: self._flush([(r, None) for r, _ in decoded], True), isolate=True
            )
        except (Stopping, OffsetsWentBackwards):
            raise
        except Exception:
            return False
        return True

    async def _poison(self, decoded: Decoded) -> dict[int, str]:
        """Index -> reason of each event that fails a flush on its own, found by bisection with
        dry runs (rolled back, so nothing is booked or dead-lettered while searching).

        Empty when the fault is not in the events: none fails alone, or most of them do (a bug
        or a broken schema fails them all; dead-lettering the stream would hide it)."""
        found: dict[int, str] = {}
        events = sum(1 for _, item in decoded if item is not None)
        limit = events // 2 if events > 2 else events  # more than that: not the events' fault
        await self._bisect(decoded, 0, found, limit)
        return {} if len(found) > limit else found

    async def _bisect(self, decoded: Decoded, base: int, found: dict[int, str], limit: int) -> None:
        if len(found) > limit:
            return  # already too many to be bad data: stop searching
        try:
            dry_run = partial(self._flush, decoded, dry_run=True)
            await self._patiently("flush", dry_run, isolate=True)
            return
        except (Stopping, OffsetsWentBackwards):
            raise
        except Exception as exc:
            if len(decoded) == 1:
                if decoded[0][1] is not None:  # offsets alone failing is not the event's fault
                    found[base] = f"engine_error: {_summary(exc)}"
                return
        middle = len(decoded) // 2
        await self._bisect(decoded[:middle], base, found, limit)
        await self._bisect(decoded[middle:], base + middle, found, limit)

    async def _reject(self, decoded: Decoded, poison: dict[int, str]) -> Decoded:
        """Dead-letter the events at fault; their records stay, without events, for offsets."""
        letters = [self._letter(decoded[i][0], reason) for i, reason in poison.items()]
        await self._patiently("dead-letter", lambda: self._publish_letters(letters))
        metrics.DEADLETTERED.labels("engine_error").inc(len(letters))
        for index, reason in poison.items():
            log.error(
                "event dead-lettered: a flush fails on it alone",
                extra={"origin": _origin(decoded[index][0]), "reason": reason},
            )
        return [(record, None if i in poison else item) for i, (record, item) in enumerate(decoded)]

    async def _flush(self, decoded: Decoded, dry_run: bool = False) -> FlushResult:
        records = [record for record, _ in decoded]
        items = [item for _, item in decoded if item is not None]
        booking = Booking(
            records,
            [item for item in items if not isinstance(item, CorrectionMessage)],
            [item for item in items if isinstance(item, CorrectionMessage)],
            frozenset(_history(decoded)),
        )
        started = time.perf_counter()
        result = await self._store.flush(booking, dry_run=dry_run)
        if not dry_run:
            metrics.FLUSH_SECONDS.observe(time.perf_counter() - started)
        return result

    # -- waiting out the infrastructure ---------------------------------------------------

    async def _patiently(
        self, what: str, step: Callable[[], Awaitable[T]], *, isolate: bool = False
    ) -> T:
        """Run ``step`` until it succeeds, waiting while the database or broker is down.

        An "unavailable" error that repeats identically on a database that answers is a bug:
        with ``isolate`` (a flush) it is raised as ``NotAnOutage``, for the caller to isolate;
        otherwise it is logged at ERROR each time, and waited out all the same."""
        pause, repeats = 0.5, Repeats()
        while True:
            try:
                result = await step()
            except Exception as exc:
                if not infrastructure_down(exc):
                    raise
                bug = await self._a_bug(exc, repeats)
                if bug and isolate:
                    raise NotAnOutage(_summary(exc)) from exc
                await self._wait_out(exc, what, pause, bug)
                pause = min(pause * 2, MAX_PAUSE_S)
                continue
            if not self.healthy:
                log.info("infrastructure back; resuming", extra={"step": what})
            self.healthy = True
            return result

    async def _a_bug(self, exc: Exception, repeats: Repeats) -> bool:
        """Whether ``exc``, a database "unavailable" error, is a bug: found so before (until
        the next flush), or repeating identically while the database answers. The broker
        being down is never one (the probe asks the database), nor contention between
        instances (a conflict repeats its message, and it is no event's fault)."""
        if isinstance(exc, BusUnavailable) or not is_unavailable(exc):
            return False
        if fingerprint(exc) in self._bugs:
            return True
        if not await self._store.is_a_bug(repeats, exc):
            return False
        self._bugs.add(fingerprint(exc))
        return True

    async def _wait_out(
        self, exc: BaseException, what: str, pause: float = MAX_PAUSE_S, bug: bool = False
    ) -> None:
        if bug:  # waited out all the same (a step other than a flush has no isolation)
            metrics.STALLED.set(1)
            log.error(
                "the same error again while the database answers: a bug, not an outage; waiting",
                extra={"step": what, "error": _summary(exc), "retry_in_s": pause},
            )
        else:
            metrics.INFRASTRUCTURE_WAITS.labels(what).inc()
            log.warning(
                "infrastructure unavailable; waiting",
                extra={"step": what, "error": _summary(exc), "retry_in_s": pause},
            )
        await self._pause(pause)

    async def _pause(self, pause: float) -> None:
        """Not ready, for ``pause`` seconds or until asked to stop (then ``Stopping``)."""
        self.healthy = False
        try:
            await asyncio.wait_for(self._stop.wait(), pause)
        except TimeoutError:
            return
        raise Stopping

    async def _load_offsets(self, topic: str, partitions: list[int]) -> dict[int, int]:
        """Stored offsets for an assignment, waiting for the database if it is down: a
        partition must never be read from anywhere else."""
        return await self._patiently(
            "load offsets", lambda: self._store.load_offsets(topic, partitions)
        )

    async def _publish_letters(self, letters: Sequence[OutgoingRecord]) -> None:
        await self._bus.publish(self._deadletter_topic, letters)

    def _letter(self, record: Record, reason: str) -> OutgoingRecord:
        return dead_letter(provider="kpi", reason=reason, body=record.value, origin=_origin(record))

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


def _reason(exc: Exception) -> str:
    """The dead letter's reason: what kind of failure, then the details."""
    kind = (
        "invalid_event"
        if isinstance(exc, ValidationError)
        else "unusable_event"
        if isinstance(exc, UnusableEvent)
        else "engine_error"
    )
    metrics.DEADLETTERED.labels(kind).inc()
    return f"{kind}: {_summary(exc)}"


def _origin(record: Record) -> str:
    return f"{record.topic}/{record.partition}/{record.offset}"


def _summary(exc: BaseException) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:5])
    if isinstance(exc, UnusableEvent | SystemicFailure | NotAnOutage):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"[:500]


def _is_correction(record: Record) -> bool:
    """A correction made through the API, not an event (``shared.corrections``)."""
    return dict(record.headers).get("content-type", b"").decode(errors="replace") == CORRECTION_TYPE


def _history(decoded: Decoded) -> Iterator[tuple[str, str]]:
    """The ``(source, id)`` of the batch's imported past events (``shared.history``)."""
    for record, item in decoded:
        if isinstance(item, tuple) and is_history(record.headers):
            yield item[0].source, item[0].id
