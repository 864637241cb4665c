"""The live notification stream: every screen watching shares one poller of the outbox.

- **One poller.** While anyone listens, one task reads the notifications raised lately (one
  query every ``poll_s``) and publishes the ones it has not seen to every listener; it stops
  with the last listener. The database sees one query per interval, however many screens.
- **Nothing lost to a slow commit.** A notification's ``raised_at`` is stamped inside the KPI
  flush transaction, which commits a little later: one stamped earlier may become visible after
  a later one. Each poll therefore reads back ``lookback_ms`` behind the newest seen and skips
  the ids already sent (``Seen``, pure), so a late commit is sent late rather than never.
- **Bounded.** The ids remembered are those of the look-back window; the notifications kept for
  listeners are the last ``backlog`` (a listener that falls further behind skips the oldest);
  a poll reads at most ``batch`` rows (a burst is read over several polls).
- **A new listener** gets the notifications raised from the instant its request arrived
  (``since_ms``), whether published before it joined or after; plus, when it sent a
  ``Last-Event-ID``, the replay the route read for it (sent once, not again live).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncEngine

from services.api.alerts.repository import NotificationRepository, NotificationRow
from services.api.alerts.service import event_of
from services.api.common.sse import event
from shared.runtime import doubled_pause

log = logging.getLogger(__name__)
LOOKBACK_MS = 30_000  # a flush transaction commits well within this after stamping raised_at
BACKLOG = 1000  # notifications kept for listeners that have not read them yet
BATCH = 500  # rows read by one poll
MAX_BACKOFF_S = 5.0


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class Seen:
    """Which notifications of the look-back window were already taken. Pure.

    ``cutoff_ms``: those raised before it and visible at the first poll are old (the stream
    started after them) and are only remembered, never published.
    """

    cutoff_ms: int
    lookback_ms: int = LOOKBACK_MS
    high_ms: int = field(init=False)  # the newest raised_at taken (or the cutoff)
    high_id: str | None = None  # the last id of the last full batch, to page past it
    ids: dict[str, int] = field(default_factory=dict)  # id -> raised_at, within the window
    primed: bool = False  # the first poll is done
    catching_up: bool = False  # the last poll was a full batch: read on from where it stopped

    def __post_init__(self) -> None:
        self.high_ms = self.cutoff_ms

    def floor_ms(self) -> int:
        """Where the next poll reads from."""
        return self.high_ms if self.catching_up else self.high_ms - self.lookback_ms

    def take(self, rows: list[NotificationRow], batch: int) -> list[NotificationRow]:
        """The rows of a poll (oldest first) not taken before, and not old."""
        new = []
        for row in rows:
            if row.id in self.ids:
                continue
            self.ids[row.id] = row.raised_at
            if self.primed or row.raised_at >= self.cutoff_ms:
                new.append(row)
        self.primed = True
        self.high_ms = max([self.high_ms, *(r.raised_at for r in rows)])
        self.catching_up = len(rows) >= batch
        # A full batch may end among many rows raised at one instant (one pace check writes
        # them all at once): the next page starts after its last (raised_at, id), not at it.
        self.high_id = rows[-1].id if self.catching_up and rows else None
        # Remember the whole look-back window, even while paging: once caught up, the next
        # poll reads that window again, and must know what it has sent.
        floor = self.high_ms - self.lookback_ms
        self.ids = {i: at for i, at in self.ids.items() if at >= floor}
        return new


@dataclass(frozen=True, slots=True)
class _Published:
    seq: int
    id: str
    raised_at: int
    payload: bytes


class NotificationHub:
    """Notifications as they are raised, to every listener (see the module)."""

    def __init__(
        self,
        db: AsyncEngine,
        poll_s: float = 0.5,
        heartbeat_s: float = 15.0,
        *,
        lookback_ms: int = LOOKBACK_MS,
        backlog: int = BACKLOG,
        batch: int = BATCH,
    ) -> None:
        self._db = db
        self._poll_s, self._heartbeat_s = poll_s, heartbeat_s
        self._lookback_ms, self._batch = lookback_ms, batch
        self._recent: deque[_Published] = deque(maxlen=backlog)
        self._next_seq = 0
        self._changed = asyncio.Event()
        self._listeners = 0
        self._seen: Seen | None = None
        self._poller: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()  # the last listener left

    @property
    def listeners(self) -> int:
        return self._listeners

    @property
    def polling(self) -> bool:
        return self._poller is not None and not self._poller.done()

    async def stream(
        self, since_ms: int, replay: list[NotificationRow], request: Request
    ) -> AsyncIterator[bytes]:
        """``replay`` first, then each notification raised from ``since_ms`` on, heartbeats."""
        position = self._join(since_ms)  # here, not in the route: left in the ``finally``
        try:
            replayed = {row.id for row in replay}
            for row in replay:
                yield _event(row.id, event_of(row).model_dump_json().encode())
            while not await request.is_disconnected():
                changed = self._changed  # taken before looking: see _publish
                pending = [p for p in self._recent if p.seq >= position]
                if pending:
                    position = pending[-1].seq + 1
                    for p in pending:
                        if p.id not in replayed:
                            yield _event(p.id, p.payload)
                    continue
                try:
                    await asyncio.wait_for(changed.wait(), self._heartbeat_s)
                except TimeoutError:
                    yield b": heartbeat\n\n"
        finally:
            self._leave()

    def _join(self, since_ms: int) -> int:
        """Count the listener, start the poller if it is the first; where it starts reading."""
        self._listeners += 1
        if not self.polling:
            self._seen = Seen(since_ms, self._lookback_ms)
            self._poller = asyncio.create_task(self._poll(), name="notification-hub-poller")
        already = [p.seq for p in self._recent if p.raised_at >= since_ms]
        return already[0] if already else self._next_seq

    def _leave(self) -> None:
        self._listeners -= 1
        if self._listeners == 0:
            self._recent.clear()
            # The poller ends by itself once nobody listens: woken, it finishes the query it
            # may be in (cancelling one midway can spoil a pooled connection).
            self._wake.set()

    async def _poll(self) -> None:
        failures = 0
        while self._listeners:
            self._wake.clear()
            try:
                await self._poll_once()
            except Exception as exc:
                failures += 1
                log.warning(
                    "notification stream cannot read the outbox; retrying",
                    extra={"attempt": failures, "error": repr(exc)[:300]},
                )
            else:
                failures = 0
            pause = doubled_pause(self._poll_s, MAX_BACKOFF_S, failures)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), pause)

    async def _poll_once(self) -> None:
        seen = self._seen
        assert seen is not None, "set by _join before the poller starts"
        async with self._db.connect() as conn:
            rows = await NotificationRepository(conn).raised_since(
                seen.floor_ms(), self._batch, seen.high_id if seen.catching_up else None
            )
        new = seen.take(rows, self._batch)
        for row in new:
            payload = event_of(row).model_dump_json().encode()
            self._recent.append(_Published(self._next_seq, row.id, row.raised_at, payload))
            self._next_seq += 1
        if new:
            self._publish()

    def _publish(self) -> None:
        """Wake the listeners. Each waits on the event it saw when it last looked, so a
        notification published between its look and its wait is not missed."""
        self._changed.set()
        self._changed = asyncio.Event()

    async def close(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller


def _event(notification_id: str, payload: bytes) -> bytes:
    return event(b"notification", notification_id, payload)
