"""The bus of one process: a log table in the service's own database (SQLite or PostgreSQL).

``salespulse serve`` runs without Kafka and must still never lose an accepted event, so its bus
is a table (``bus_log``) in the database the aggregates live in:

- **publish** returns once the records are committed: ingest answers ``202`` after that. One
  writer task commits whatever is waiting as one transaction (group commit): under load, one
  commit carries many requests' records;
- **offsets** come from a per-partition counter (``bus_log_ends``). A writer takes its range
  with ``UPDATE … RETURNING`` and holds that row until it commits, so writers (in this process
  or another sharing the database) commit in offset order, and a reader that sees an offset has
  seen every one before it: reading by position can never skip a record committed late;
- **consumers** read by position from what their owner stored (the KPI service stores it with
  its aggregates, decision 4). One process per group and topic reads the log (``HeldLock``);
  another stands by, as a Kafka group member with no partition would;
- **retention** (``prune``) deletes what is older than the topic's retention and, for a topic a
  group consumes, below that group's stored position: nothing unread is ever pruned.

One partition (0) per topic: one process reads it, and one partition keeps its order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
from sqlalchemy import Table, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared.bus.base import BusUnavailable, Consumer, OffsetsLoader, OutgoingRecord, Record
from shared.db.locks import HeldLock
from shared.db.models import BusLogEnd, BusLogRecord, ConsumerOffset, table
from shared.db.repeats import database_answers
from shared.db.retry import is_conflict, is_unavailable, retrying

log = logging.getLogger(__name__)

PARTITION = 0
GROUP_LIMIT = 10_000  # records one commit takes at most (requests are never split)
READ_CHUNK = 5_000  # rows a retention DELETE or a move reads at a time
POLL_S = 0.25  # how often an idle consumer looks for records another process wrote
LOCK_CHECK_S = 5.0  # how often a consumer checks that its lock's session is still alive

_LOG: Table = table(BusLogRecord)
_ENDS: Table = table(BusLogEnd)
_OFFSETS: Table = table(ConsumerOffset)


@dataclass
class _Request:
    topic: str
    records: Sequence[OutgoingRecord]
    done: asyncio.Future[None]


class LogBus:
    """The ``Bus`` on a database log. ``owns_db``: dispose of the engine at ``stop``."""

    def __init__(
        self, db: AsyncEngine, *, publish_timeout_s: float = 3.0, owns_db: bool = False
    ) -> None:
        self.db = db
        self._timeout_s = publish_timeout_s
        self._owns_db = owns_db
        self._queue: asyncio.Queue[_Request | None] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None
        self._appended = asyncio.Event()  # replaced after each commit; the old one is set
        self._ends_known: set[str] = set()  # topics whose counter row exists
        self._last_ms = 0

    async def start(self) -> None:
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_loop(), name="bus-log-writer")

    async def stop(self) -> None:
        """Commit what is queued, then stop; dispose of the database if this bus owns it."""
        if self._writer is not None and not self._writer.done():
            await self._queue.put(None)
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
        self._writer = None
        if self._owns_db:
            await self.db.dispose()

    async def ready(self) -> bool:
        return await database_answers(self.db)

    async def ensure_topics(self, topics: Sequence[str]) -> None:
        async with self.db.begin() as conn:
            for topic in topics:
                await self._ensure_end(conn, topic)

    async def end_offsets(self, topic: str) -> dict[int, int]:
        async with self.db.connect() as conn:
            return {PARTITION: await _end(conn, topic)}

    async def publish(self, topic: str, records: Sequence[OutgoingRecord]) -> None:
        """Return once ``records`` are committed to the log; ``BusUnavailable`` if they could
        not be (or not within the publish timeout: they may still be, and a retry is a
        duplicate the KPI service's dedupe drops)."""
        if not records:
            return
        await self.start()
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Request(topic, records, done))
        try:
            await asyncio.wait_for(asyncio.shield(done), self._timeout_s)
        except TimeoutError:
            raise BusUnavailable(
                f"the database did not commit the log within {self._timeout_s:g} s"
            ) from None

    def consumer(self, topic: str, group: str, load_offsets: OffsetsLoader) -> Consumer:
        return LogConsumer(self, topic, group, load_offsets)

    def appended(self) -> asyncio.Event:
        """An event set at the next commit of this process's writer."""
        return self._appended

    # -- the writer ---------------------------------------------------------------------

    async def _write_loop(self) -> None:
        stopping = False
        while not stopping:
            first = await self._queue.get()
            if first is None:
                break
            group, size = [first], len(first.records)
            while size < GROUP_LIMIT and not self._queue.empty():
                more = self._queue.get_nowait()
                if more is None:
                    stopping = True
                    break
                group.append(more)
                size += len(more.records)
            await self._commit_group(group)

    async def _commit_group(self, group: list[_Request]) -> None:
        try:
            await retrying(lambda: self._append(group), what="log append")
        except Exception as exc:  # nothing committed: each caller answers 503 and is retried
            log.warning(
                "log append failed",
                extra={
                    "records": sum(len(r.records) for r in group),
                    "error": repr(exc)[:300],
                },
            )
            for request in group:
                if not request.done.done():
                    request.done.set_exception(BusUnavailable(f"log append failed: {exc!r}"))
            return
        for request in group:
            if not request.done.done():
                request.done.set_result(None)
        woken, self._appended = self._appended, asyncio.Event()
        woken.set()

    async def _append(self, group: list[_Request]) -> None:
        now_ms = max(int(time.time() * 1000), self._last_ms)  # never backwards in this process
        by_topic: dict[str, list[OutgoingRecord]] = {}
        for request in group:
            by_topic.setdefault(request.topic, []).extend(request.records)
        async with self.db.begin() as conn:
            for topic, records in by_topic.items():
                first = await self._take_offsets(conn, topic, len(records))
                rows = [_row(topic, first + i, r, now_ms) for i, r in enumerate(records)]
                await conn.execute(insert(_LOG), rows)  # executemany: paged by SQLAlchemy
        self._last_ms = now_ms

    async def _take_offsets(self, conn: AsyncConnection, topic: str, count: int) -> int:
        """The first of ``count`` offsets for ``topic``; the counter's row stays locked (and
        the next writer waits) until this transaction ends."""
        if topic not in self._ends_known:
            await self._ensure_end(conn, topic)
        end = await conn.scalar(
            update(_ENDS)
            .where(_ENDS.c.topic == topic, _ENDS.c.partition == PARTITION)
            .values(next_offset=_ENDS.c.next_offset + count)
            .returning(_ENDS.c.next_offset)
        )
        if end is None:  # the row vanished (a move to Kafka emptied the log): make it again
            self._ends_known.discard(topic)
            raise _CounterMissing(topic)
        return int(end) - count

    async def _ensure_end(self, conn: AsyncConnection, topic: str) -> None:
        dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
        await conn.execute(
            dialect_insert(_ENDS)
            .values(topic=topic, partition=PARTITION, next_offset=0)
            .on_conflict_do_nothing(index_elements=["topic", "partition"])
        )
        self._ends_known.add(topic)


class _CounterMissing(Exception):
    """The offsets counter of a topic was deleted under the writer: a conflict (run again)."""

    sqlstate = "40001"


class LogConsumer:
    """Reads one topic's log by position, for one group, while it holds the group's lock."""

    def __init__(self, bus: LogBus, topic: str, group: str, load_offsets: OffsetsLoader) -> None:
        self._bus = bus
        self._topic = topic
        self._group = group
        self._load_offsets = load_offsets
        self._lock = HeldLock(bus.db, f"log-consumer:{group}:{topic}")
        self._position: int | None = None  # the next offset to read; None while standing by
        self._end = 0  # the log's end as last read (for lag)
        self._checked = 0.0  # when the lock was last found alive
        self._standing_by = False

    async def start(self) -> None:
        await self._claim()

    async def stop(self) -> None:
        await self._lock.release()
        self._position = None

    async def getmany(self, timeout_ms: int, max_records: int) -> list[Record]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_ms / 1000
        while True:
            woken = self._bus.appended()
            try:
                if await self._claim():
                    records = await self._read(max_records)
                    if records:
                        return records
            except Exception as exc:
                if is_unavailable(exc) or is_conflict(exc):
                    raise BusUnavailable(f"log read failed: {exc!r}") from exc
                raise
            remaining = deadline - loop.time()
            if remaining <= 0:
                return []
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(woken.wait(), min(remaining, POLL_S))

    async def acknowledge(self, next_offsets: dict[int, int]) -> None:
        return None  # the owner stored them with its aggregates; retention reads them there

    def lag(self) -> dict[int, int]:
        if self._position is None:
            return {}
        return {PARTITION: max(self._end - self._position, 0)}

    async def _claim(self) -> bool:
        """Hold the group's lock and know where to read from; False while another process
        holds it (this one stands by and tries again at each poll)."""
        now = time.monotonic()
        if self._position is not None:
            if now - self._checked < LOCK_CHECK_S:
                return True
            self._checked = now
            if await self._lock.still_held():
                return True
            self._position = None  # lost with its session: someone else may have moved on
        if not await self._lock.try_acquire():
            if not self._standing_by:
                log.info(
                    "another process reads this log; standing by",
                    extra={"group": self._group, "topic": self._topic},
                )
                self._standing_by = True
            return False
        try:
            stored = await self._load_offsets(self._topic, [PARTITION])
            position = stored.get(PARTITION)
            if position is None:
                position = await self._first_offset()
        except BaseException:
            await self._lock.release()
            raise
        self._position, self._checked, self._standing_by = position, now, False
        return True

    async def _first_offset(self) -> int:
        """Where a group with no stored position starts: the oldest record kept."""
        async with self._bus.db.connect() as conn:
            first = await conn.scalar(
                select(func.min(_LOG.c.offset)).where(
                    _LOG.c.topic == self._topic, _LOG.c.partition == PARTITION
                )
            )
            return int(first) if first is not None else await _end(conn, self._topic)

    async def _read(self, limit: int) -> list[Record]:
        assert self._position is not None
        async with self._bus.db.connect() as conn:
            rows = (
                await conn.execute(
                    select(
                        _LOG.c.offset, _LOG.c.key, _LOG.c.value, _LOG.c.headers, _LOG.c.timestamp_ms
                    )
                    .where(
                        _LOG.c.topic == self._topic,
                        _LOG.c.partition == PARTITION,
                        _LOG.c.offset >= self._position,
                    )
                    .order_by(_LOG.c.offset)
                    .limit(max(limit, 1))
                )
            ).all()
            if rows:
                self._end = max(await _end(conn, self._topic), rows[-1][0] + 1)
        records = [
            Record(self._topic, PARTITION, offset, key, value, ts, _decode_headers(headers))
            for offset, key, value, headers, ts in rows
        ]
        if records:
            self._position = records[-1].offset + 1
        return records


# -- retention ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Keep:
    """How long a topic's records stay; with ``group``, also never before its stored position
    (and nothing at all before that group stored one)."""

    retention_s: int
    group: str | None = None


async def prune(db: AsyncEngine, keep: Mapping[str, Keep], now: float | None = None) -> int:
    """Delete what each topic no longer keeps, a chunk per transaction; the rows deleted."""
    now_ms = int((time.time() if now is None else now) * 1000)
    deleted = 0
    for topic, rule in keep.items():
        upper = await _consumed_up_to(db, topic, rule.group) if rule.group else None
        if rule.group and upper is None:
            continue
        deleted += await _prune_topic(db, topic, now_ms - rule.retention_s * 1000, upper)
    return deleted


async def _consumed_up_to(db: AsyncEngine, topic: str, group: str | None) -> int | None:
    async with db.connect() as conn:
        stored = await conn.scalar(
            select(_OFFSETS.c.next_offset).where(
                _OFFSETS.c.consumer_group == group,
                _OFFSETS.c.topic == topic,
                _OFFSETS.c.partition == PARTITION,
            )
        )
    return int(stored) if stored is not None else None


async def _prune_topic(db: AsyncEngine, topic: str, cutoff_ms: int, upper: int | None) -> int:
    """Delete from the oldest record up: offsets and times grow together, so the first chunk
    not wholly deleted is where the kept records begin."""
    deleted = 0
    while True:
        async with db.begin() as conn:
            low = await conn.scalar(
                select(func.min(_LOG.c.offset)).where(
                    _LOG.c.topic == topic, _LOG.c.partition == PARTITION
                )
            )
            if low is None:
                return deleted
            high = int(low) + READ_CHUNK if upper is None else min(int(low) + READ_CHUNK, upper)
            if high <= low:
                return deleted
            result = await conn.execute(
                delete(_LOG).where(
                    _LOG.c.topic == topic,
                    _LOG.c.partition == PARTITION,
                    _LOG.c.offset >= low,
                    _LOG.c.offset < high,
                    _LOG.c.timestamp_ms < cutoff_ms,
                )
            )
        count = result.rowcount or 0
        deleted += count
        if count < high - low:
            return deleted


# -- moving to Kafka ---------------------------------------------------------------------


async def move_to(
    target: Publisher, db: AsyncEngine, topics: Mapping[str, str | None]
) -> dict[str, int]:
    """Publish each topic's records ``target`` has not had (those after the group's stored
    position, or all kept ones without a group) to ``target``, then empty the log and forget
    the groups' positions on it (the target's partitions are numbered anew). Refused while a
    process consumes the log. Run again after a failure: a record published twice is a
    duplicate the KPI service's dedupe drops. Returns the records moved per topic."""
    locks = [
        HeldLock(db, f"log-consumer:{group}:{topic}") for topic, group in topics.items() if group
    ]
    try:
        for lock in locks:
            if not await lock.try_acquire():
                raise LogInUse("a process still reads the log: stop `salespulse serve` first")
        moved = {t: await _publish_tail(target, db, t, g) for t, g in topics.items()}
        async with db.begin() as conn:
            for topic, group in topics.items():
                await conn.execute(delete(_LOG).where(_LOG.c.topic == topic))
                await conn.execute(delete(_ENDS).where(_ENDS.c.topic == topic))
                if group:
                    await conn.execute(
                        delete(_OFFSETS).where(
                            _OFFSETS.c.consumer_group == group, _OFFSETS.c.topic == topic
                        )
                    )
        return moved
    finally:
        for lock in locks:
            await lock.release()


class Publisher(Protocol):
    async def publish(self, topic: str, records: Sequence[OutgoingRecord]) -> None: ...


class LogInUse(RuntimeError):
    """The log cannot be moved while a process reads it."""


async def _publish_tail(target: Publisher, db: AsyncEngine, topic: str, group: str | None) -> int:
    position = (await _consumed_up_to(db, topic, group) if group else None) or 0
    moved = 0
    while True:
        async with db.connect() as conn:
            rows = (
                await conn.execute(
                    select(_LOG.c.offset, _LOG.c.key, _LOG.c.value, _LOG.c.headers)
                    .where(
                        _LOG.c.topic == topic,
                        _LOG.c.partition == PARTITION,
                        _LOG.c.offset >= position,
                    )
                    .order_by(_LOG.c.offset)
                    .limit(READ_CHUNK)
                )
            ).all()
        if not rows:
            return moved
        await target.publish(
            topic,
            [OutgoingRecord(key or b"", value, _decode_headers(h)) for _, key, value, h in rows],
        )
        moved += len(rows)
        position = rows[-1][0] + 1


# -- rows --------------------------------------------------------------------------------


def _row(topic: str, offset: int, record: OutgoingRecord, now_ms: int) -> dict[str, Any]:
    return {
        "topic": topic,
        "partition": PARTITION,
        "offset": offset,
        "key": record.key,
        "value": record.value,
        "headers": _encode_headers(record.headers),
        "timestamp_ms": now_ms,
    }


def _encode_headers(headers: tuple[tuple[str, bytes], ...]) -> bytes | None:
    if not headers:
        return None
    return orjson.dumps([[name, value.decode("latin-1")] for name, value in headers])


def _decode_headers(raw: bytes | None) -> tuple[tuple[str, bytes], ...]:
    if not raw:
        return ()
    return tuple((str(name), str(value).encode("latin-1")) for name, value in orjson.loads(raw))


async def _end(conn: AsyncConnection, topic: str) -> int:
    end = await conn.scalar(
        select(_ENDS.c.next_offset).where(_ENDS.c.topic == topic, _ENDS.c.partition == PARTITION)
    )
    return int(end) if end is not None else 0
