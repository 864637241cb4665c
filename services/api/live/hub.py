"""Live leaderboards for Server-Sent Events: every screen watching a board shares one feed, and
one poller of the data version serves every feed.

- **One poller.** While anyone listens, one task polls the data version (one tiny query, every
  ``poll_s``) and recomputes the boards whose version or minute moved, however many distinct
  boards are watched: the database sees one poll per interval, not one per board.
- **Bounded.** A feed (its latest board, its status) lives while it has listeners and is dropped
  with the last one; the poller stops with the last feed. At most ``max_streams`` distinct boards
  are live at once: beyond, a new one is refused with 503 and ``Retry-After``.
- **Never lies.** When the version or a board cannot be read, the poller keeps going: it retries
  with a backoff (capped at ``max_backoff_s``), logs a warning, and tells the feed's screens
  ``event: status`` / ``data: {"live": false, "reason": ...}``. Once a refresh succeeds again it
  sends ``{"live": true}`` and the board again.

Boards carry an ``id:`` (a hash of the board without ``as_of``), so a screen reconnecting with
``Last-Event-ID`` gets nothing until the board changes. Status events carry no id: a browser keeps
the last board's id across them.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Generic, Protocol, TypeVar

from fastapi import Request
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncEngine

from services.api.common import sse
from services.api.common.freshness import DataVersion, data_version
from services.api.live.stamped import Stamp, stamp_of
from shared.db.retry import is_unavailable
from shared.problems import Unavailable
from shared.runtime import doubled_pause

log = logging.getLogger(__name__)
DATABASE_UNAVAILABLE = "database unavailable"
CANNOT_REFRESH = "the board cannot be refreshed"
MAX_STREAMS = 256  # distinct live boards: each holds a board in memory and costs recomputes
RETRY_AFTER_SECONDS = "30"  # a full hub frees a place when a screen moves on or goes away
Spec = TypeVar("Spec", bound=Hashable)
Spec_contra = TypeVar("Spec_contra", bound=Hashable, contravariant=True)


class BoardSource(Protocol[Spec_contra]):
    """What a hub serves: the board of a spec at a data version and instant, and its JSON
    (leaderboards, contest standings), cached by the source."""

    async def board(
        self, spec: Spec_contra, version: DataVersion, now: datetime, *, wait: bool = False
    ) -> tuple[BaseModel, bytes]: ...


@dataclass(eq=False)
class _Feed(Generic[Spec]):
    """What the screens watching one board share; dropped with its last listener."""

    spec: Spec
    listeners: int = 0
    board: tuple[str, bytes] | None = None  # (event id, JSON) of the latest board
    stamp: Stamp | None = None  # the version and minute ``board`` is up to date with
    problem: str | None = None  # why it cannot refresh; None while live
    failures: int = 0  # refreshes failed in a row (its backoff)
    retry_at: float = 0.0  # loop time before which a failed refresh is not tried again
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def publish(self) -> None:
        """Wake the listeners: the board or the status changed. Each waits on the event it saw
        when it last looked, so a change made between its look and its wait is not missed."""
        self.changed.set()
        self.changed = asyncio.Event()


class BoardHub(Generic[Spec]):
    """Feeds of live boards, refreshed by one poller of the data version (see the module).
    ``event`` names the SSE event a board is sent as."""

    def __init__(
        self,
        boards: BoardSource[Spec],
        db: AsyncEngine,
        poll_s: float = 0.25,
        heartbeat_s: float = 15.0,
        *,
        max_streams: int = MAX_STREAMS,
        max_backoff_s: float = 5.0,
        concurrency: int = 4,
        version: Callable[[], Awaitable[DataVersion]] | None = None,
        event: str = "leaderboard",
    ) -> None:
        self._boards, self._event = boards, event.encode()
        self._version = version or (lambda: data_version(db))
        self._poll_s, self._heartbeat_s = poll_s, heartbeat_s
        self._max_streams, self._max_backoff_s = max_streams, max_backoff_s
        # Boards recomputed at once: a new minute makes every clock-bound board due together,
        # and they must queue here rather than exhaust the connection pool.
        self._computing = asyncio.Semaphore(concurrency)
        self._feeds: dict[Spec, _Feed[Spec]] = {}
        self._poller: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()  # a new feed wants its first board, or the last one left

    @property
    def streams(self) -> int:
        """How many distinct boards are live."""
        return len(self._feeds)

    @property
    def polling(self) -> bool:
        return self._poller is not None and not self._poller.done()

    def holds(self, spec: Spec) -> bool:
        """Whether anything is kept for ``spec`` (only while a screen watches it)."""
        return spec in self._feeds

    def admit(self, spec: Spec) -> None:
        """Refuse a new distinct board beyond ``max_streams`` (503 with Retry-After)."""
        if spec not in self._feeds and len(self._feeds) >= self._max_streams:
            raise Unavailable(
                f"{self._max_streams} distinct live boards are being served; "
                "try again later or watch one of them",
                headers={"Retry-After": RETRY_AFTER_SECONDS},
            )

    async def stream(
        self, spec: Spec, last_seen: str | None, request: Request
    ) -> AsyncIterator[bytes]:
        """The board's SSE stream: boards as they change, status changes, heartbeats."""
        feed = self._join(spec)  # here, not in the route: left in the ``finally`` below
        try:
            async for chunk in self._serve(feed, last_seen, request):
                yield chunk
        finally:
            self._leave(feed)

    async def _serve(
        self, feed: _Feed[Spec], last_seen: str | None, request: Request
    ) -> AsyncIterator[bytes]:
        sent, told_live = last_seen, True
        while not await request.is_disconnected():
            changed = feed.changed  # taken before looking: see _Feed.publish
            live = feed.problem is None
            if live != told_live:
                told_live = live
                yield _status_event(feed.problem)
                if live:
                    sent = None  # back: the board again, whatever the screen showed
                continue
            if feed.board is not None and feed.board[0] != sent:
                sent = feed.board[0]
                yield sse.event(self._event, *feed.board)
                continue
            try:
                await asyncio.wait_for(changed.wait(), self._heartbeat_s)
            except TimeoutError:
                yield b": heartbeat\n\n"

    def _join(self, spec: Spec) -> _Feed[Spec]:
        feed = self._feeds.get(spec)
        if feed is None:
            feed = self._feeds[spec] = _Feed(spec)
            self._wake.set()  # its first board now, not after a poll interval
        feed.listeners += 1
        if not self.polling:
            self._poller = asyncio.create_task(self._poll(), name="board-hub-poller")
        return feed

    def _leave(self, feed: _Feed[Spec]) -> None:
        feed.listeners -= 1
        if feed.listeners == 0 and self._feeds.get(feed.spec) is feed:
            del self._feeds[feed.spec]
            # The poller ends by itself once no feed is left: woken, it finishes the query it
            # may be in (cancelling one midway can spoil a pooled connection).
            self._wake.set()

    async def _poll(self) -> None:
        failures = 0
        while self._feeds:
            self._wake.clear()
            try:
                version = await self._version()
            except Exception as exc:
                failures += 1
                self._cannot_refresh(
                    list(self._feeds.values()), DATABASE_UNAVAILABLE, exc, failures
                )
            else:
                if failures:
                    log.info("live boards: the data version can be read again")
                failures = 0
                await self._refresh_due(version)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._pause(failures))

    async def _refresh_due(self, version: DataVersion) -> None:
        """Recompute the boards whose version or minute moved, and those not live."""
        now = datetime.now(UTC)  # the poll's one clock, for every board it refreshes
        stamp, clock = stamp_of(version, now), asyncio.get_running_loop().time()
        due = [
            feed
            for feed in self._feeds.values()
            if (feed.stamp != stamp or feed.problem is not None) and feed.retry_at <= clock
        ]
        await asyncio.gather(*(self._refresh(feed, version, now) for feed in due))

    async def _refresh(self, feed: _Feed[Spec], version: DataVersion, now: datetime) -> None:
        try:
            async with self._computing:
                board, encoded = await self._boards.board(feed.spec, version, now, wait=True)
        except Exception as exc:
            feed.failures += 1
            feed.retry_at = asyncio.get_running_loop().time() + self._pause(feed.failures)
            reason = DATABASE_UNAVAILABLE if is_unavailable(exc) else CANNOT_REFRESH
            self._cannot_refresh([feed], reason, exc, feed.failures)
            return
        feed.failures, feed.retry_at, feed.stamp = 0, 0.0, stamp_of(version, now)
        unstamped = board.model_dump_json(by_alias=True, exclude={"as_of"}).encode()
        event_id = hashlib.sha256(unstamped).hexdigest()[:16]
        if feed.board is not None and feed.board[0] == event_id and feed.problem is None:
            return  # the same board: nothing to push
        feed.board, feed.problem = (event_id, encoded), None
        feed.publish()

    def _cannot_refresh(
        self, feeds: list[_Feed[Spec]], reason: str, exc: Exception, attempt: int
    ) -> None:
        log.warning(
            "live boards cannot refresh; retrying",
            extra={
                "reason": reason,
                "boards": len(feeds),
                "attempt": attempt,
                "retry_in_s": self._pause(attempt),
                "error": repr(exc)[:300],
            },
        )
        for feed in feeds:
            if feed.problem != reason:
                feed.problem = reason
                feed.publish()

    def _pause(self, failures: int) -> float:
        """The poll interval, doubled per failure in a row up to ``max_backoff_s``."""
        return doubled_pause(self._poll_s, self._max_backoff_s, failures)

    async def close(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller


def _status_event(problem: str | None) -> bytes:
    body = {"live": True} if problem is None else {"live": False, "reason": problem}
    return b"event: status\ndata: " + json.dumps(body).encode() + b"\n\n"
