"""The history loader: past activity onto the bus, as live events go, resumably.

Any input of canonical event bodies (a file, a provider's REST API paged through) is a
``Source``; ``HistoryLoader.load`` takes one and, in order:

1. reads the input's checkpoint (``checkpoints``), unless asked to restart, and lets the source
   resume after it (a source whose input changed since starts over, and says so);
2. validates each line as the ingest validates a live event (``services.ingest.service``: the
   canonical schema, then whether it can be booked); a bad line is counted with its number and
   reason (the first ``max_errors`` kept) and never stops the import;
3. skips an event whose ``(source, id)`` appeared earlier in this run (counted as a duplicate);
4. publishes a batch through the bus, keyed like live events, marked as history
   (``shared.history``: the KPI service decides no alert on it);
5. once the bus acknowledged the batch, records the checkpoint (the last line published and
   the source's mark): an interruption at any instant re-publishes at most one batch, which the
   KPI service's deduplication by event key counts once;
6. at the end, records the checkpoint as finished: a second run reads nothing again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol, TypeVar

import orjson
from pydantic import ValidationError

from services.history.checkpoints import Checkpoint, Checkpoints
from services.ingest.service import bookable, event_errors
from shared import events as ev
from shared.bus import Bus, BusUnavailable, OutgoingRecord
from shared.history import HISTORY
from shared.problems import MAX_PROBLEMS, clip, describe, validation_errors

log = logging.getLogger(__name__)

HEADERS = (("content-type", ev.CONTENT_TYPE.encode()), HISTORY)
DEFAULT_BATCH = 1000
MAX_REASON_CHARS = 300
PUBLISH_TRIES = 6  # a bus that refuses this many times in a row stops the run (resumable)
Body = bytes | str | Mapping[str, Any]
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Line:
    """One item of an input: its number (a file's line, 1-based), and a canonical event body
    (JSON text, or already decoded), or why the input could not make one of it."""

    number: int
    body: Body | None
    error: str | None = None


class Source(Protocol):
    """An input of past events that can say where it got to, and resume from there."""

    @property
    def key(self) -> str:
        """The input's identity, under which its checkpoint is kept (at most 200 characters)."""
        ...

    @property
    def label(self) -> str:
        """What the input is, for people (a path, a provider and a date)."""
        ...

    async def start(self, mark: str | None) -> bool:
        """Position the input after ``mark`` (a ``mark()`` it gave before), or at its beginning
        without one. False when it starts from the beginning though given a mark (the input
        changed since: the mark no longer holds)."""
        ...

    def lines(self) -> Iterable[Line] | AsyncIterable[Line]:
        """The lines from where ``start`` put the input."""
        ...

    def mark(self) -> str:
        """Where to resume after the last line ``lines`` gave."""
        ...

    def done(self) -> tuple[int, int | None]:
        """How far the input is read, and its size if known (the same unit: bytes, items)."""
        ...


@dataclass(frozen=True, slots=True)
class BadLine:
    line: int
    reason: str


@dataclass(frozen=True, slots=True)
class Progress:
    """After each batch: what this run did so far."""

    read: int
    published: int
    bad: int
    duplicates: int
    done: int
    total: int | None
    seconds: float

    @property
    def rate(self) -> float:
        """Events published per second."""
        return self.published / self.seconds if self.seconds > 0 else 0.0


@dataclass(slots=True)
class Summary:
    """One run of an import. ``skipped``: events earlier runs published (not read again);
    ``resumed_from``: the last line they had published (0: from the beginning)."""

    label: str
    read: int = 0
    published: int = 0
    duplicates: int = 0
    bad: int = 0
    errors: list[BadLine] = field(default_factory=list)  # the first ``max_errors``
    skipped: int = 0
    resumed_from: int = 0
    started_over: bool = False  # a checkpoint was there, but the input changed since
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.published / self.seconds if self.seconds > 0 else 0.0


ProgressCallback = Callable[[Progress], None]


class HistoryLoader:
    """Publishes sources of past events to ``topic`` of ``bus`` (``shared.bus.build_bus``),
    keeping each source's checkpoint in ``checkpoints``. ``rates``: the currencies the KPI
    service can book (``Settings.rates``), as the ingest checks them."""

    def __init__(
        self,
        bus: Bus,
        topic: str,
        checkpoints: Checkpoints,
        *,
        rates: Mapping[str, Decimal],
        batch_size: int = DEFAULT_BATCH,
        max_errors: int = MAX_PROBLEMS,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self._bus, self._topic, self._checkpoints = bus, topic, checkpoints
        self._rates = rates
        self._batch_size = batch_size
        self._max_errors = max_errors

    async def load(
        self, source: Source, *, restart: bool = False, progress: ProgressCallback | None = None
    ) -> Summary:
        """Publish what ``source`` holds and earlier runs did not publish; the summary of this
        run. An exception (the bus refusing, or raised by ``progress``) leaves the checkpoint
        of the last batch acknowledged, for the next run to resume from."""
        run = _Run(source, Summary(source.label), time.perf_counter(), progress)
        if restart:
            await self._checkpoints.forget(source.key)
        before = None if restart else await self._checkpoints.get(source.key)
        if not await source.start(before.mark if before else None):
            run.summary.started_over = before is not None
            before = None
        if before is not None:
            run.summary.skipped, run.summary.resumed_from = before.published, before.line
            run.last_line = before.line
        async for line in _each(source.lines()):
            self._take(run, line)
            if len(run.batch) >= self._batch_size:
                await self._publish(run, before)
        await self._publish(run, before, finished=True)
        return run.summary

    def _take(self, run: _Run, line: Line) -> None:
        """Validate one line into the batch, or count it as bad or as a duplicate."""
        summary = run.summary
        summary.read += 1
        run.last_line = line.number
        checked = _validate(line, self._rates)
        if isinstance(checked, str):
            summary.bad += 1
            if len(summary.errors) < self._max_errors:
                summary.errors.append(BadLine(line.number, clip(checked, MAX_REASON_CHARS)))
            return
        key = (checked.source, checked.id)
        if key in run.seen:
            summary.duplicates += 1
            return
        run.seen.add(key)
        run.batch.append(OutgoingRecord(checked.partition_key.encode(), checked.to_json(), HEADERS))

    async def _publish(self, run: _Run, before: Checkpoint | None, finished: bool = False) -> None:
        """Publish the batch, then record how far the input is published (5, 6)."""
        if run.batch:
            await self._patiently(run.batch)
            run.summary.published += len(run.batch)
            run.batch = []
        total = (before.published if before else 0) + run.summary.published
        checkpoint = Checkpoint(run.last_line, run.source.mark(), total, finished)
        await self._checkpoints.save(run.source.key, run.source.label, checkpoint)
        run.summary.seconds = time.perf_counter() - run.started
        if run.progress is not None:
            run.progress(run.snapshot())

    async def _patiently(self, records: list[OutgoingRecord]) -> None:
        pause = 0.5
        for attempt in range(1, PUBLISH_TRIES + 1):
            try:
                await self._bus.publish(self._topic, records)
                return
            except BusUnavailable as exc:
                if attempt == PUBLISH_TRIES:
                    raise
                log.warning(
                    "bus unavailable; publishing the batch again",
                    extra={"error": str(exc)[:300], "retry_in_s": pause},
                )
                await asyncio.sleep(pause)
                pause *= 2


@dataclass(slots=True)
class _Run:
    source: Source
    summary: Summary
    started: float
    progress: ProgressCallback | None
    batch: list[OutgoingRecord] = field(default_factory=list)
    seen: set[tuple[str, str]] = field(default_factory=set)  # (source, id) of this run's events
    last_line: int = 0

    def snapshot(self) -> Progress:
        done, total = self.source.done()
        s = self.summary
        return Progress(s.read, s.published, s.bad, s.duplicates, done, total, s.seconds)


def _validate(line: Line, rates: Mapping[str, Decimal]) -> ev.Event | str:
    """The line's event, as the ingest validates a live one, or why it is refused."""
    if line.error is not None or line.body is None:
        return line.error or "empty line"
    body = line.body
    try:
        event = ev.parse_event_object(body) if isinstance(body, Mapping) else ev.parse_event(body)
    except ValidationError as exc:
        return _located(exc, body)
    return bookable(event, rates) or event


def _located(exc: ValidationError, body: Body) -> str:
    """The reason a body is refused, its fields named as in the event (``data.amount``)."""
    item: Any = body
    if not isinstance(body, Mapping):
        try:
            item = orjson.loads(body)
        except orjson.JSONDecodeError as bad:
            return f"not JSON: {bad}"
    if not isinstance(item, dict):
        return "not a JSON object"
    return describe(validation_errors(event_errors(exc, item)), 3)


async def _each(items: Iterable[T] | AsyncIterable[T]) -> AsyncIterator[T]:
    if isinstance(items, AsyncIterable):
        async for item in items:
            yield item
    else:
        for item in items:
            yield item


@dataclass(slots=True)
class Bodies:
    """A ``Source`` of bodies in memory or from any iterable that gives the same items in the
    same order every time (its mark: how many it gave)."""

    key: str
    label: str
    items: Iterable[Body] | AsyncIterable[Body]
    size: int | None = None
    _skip: int = 0
    _given: int = 0

    async def start(self, mark: str | None) -> bool:
        self._skip = self._given = int(mark) if mark else 0
        return True

    async def lines(self) -> AsyncIterator[Line]:
        number = 0
        async for item in _each(self.items):
            number += 1
            if number <= self._skip:
                continue
            self._given = number
            yield Line(number, item)

    def mark(self) -> str:
        return str(self._given)

    def done(self) -> tuple[int, int | None]:
        return self._given, self.size
