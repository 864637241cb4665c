"""The dispatcher loop: claims due deliveries, delivers them, records what came of each.

One pass, in order (why each step is where it is):

1. *claim* — in one short transaction, lock the due rows others have not locked (``SKIP
   LOCKED``), push their ``next_attempt_at`` to now + lease and count the attempt, commit. The
   rows are now invisible to every other dispatcher until the lease ends;
2. *deliver* — outside any transaction (a slow receiver holds no lock and no connection), each
   claimed delivery concurrently, through the SSRF-guarded client;
3. *record* — each outcome in its own short transaction, as soon as it is known.

A crash between 1 and 3 loses nothing: the lease ends, the row is due again, and another
dispatcher delivers it again with the same notification id (at least once; the receiver
deduplicates on ``webhook-id``). All state is in the database, so any number of instances share
the work and a restart resumes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from services.worker.dispatcher import metrics
from services.worker.dispatcher.backoff import Backoff, Recorded, after_attempt
from services.worker.dispatcher.repository import Claimed, claim_due, count_pending, record
from services.worker.jobs import JobHealth
from shared.db.repeats import Repeats, log_failure
from shared.db.retry import retrying
from shared.notify.guard import guarded_client
from shared.notify.outcome import CHANNEL_DELETED as DELETED
from shared.notify.outcome import TIMEOUT, DeliveryResult, classified
from shared.notify.send import deliver
from shared.runtime import doubled_pause
from shared.settings import Settings

log = logging.getLogger(__name__)
CHANNEL_DELETED = DeliveryResult("failed", error=DELETED)
MAX_IDLE_S = 30.0  # the longest wait after repeated failures of a pass (database down)


class Dispatcher:
    """Delivers the outbox (``run``), a job of the worker: ``health`` says whether its last
    pass succeeded (``services.worker.jobs``)."""

    def __init__(
        self,
        db: AsyncEngine,
        settings: Settings,
        *,
        poll_s: float | None = None,
        lease_s: float = 60.0,
        batch: int = 50,
        backoff: Backoff | None = None,
        timeout_s: float = 10.0,
        pending_every_s: float = 15.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db, self._settings = db, settings
        self._poll_s = poll_s if poll_s is not None else settings.dispatch_poll_seconds
        self._lease_ms, self._batch = round(lease_s * 1000), batch
        self._backoff = backoff or Backoff()
        self._timeout_s, self._pending_every_s = timeout_s, pending_every_s
        self._clock = clock
        self._pending_read_at = float("-inf")
        self.health = JobHealth(self._poll_s)
        self.claimed = 0  # deliveries this dispatcher claimed (which instance did what: tests)

    def client(self) -> httpx.AsyncClient:
        """The client deliveries go through: every connection passes the SSRF guard."""
        return guarded_client(
            self._settings.allow_private_channels,
            self._timeout_s,
            max_connections=max(self._batch, 10),
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Dispatch until ``stop`` is set (a pass under way finishes first)."""
        metrics.initialise()
        self.health.start()
        failures, repeats = 0, Repeats()
        async with self.client() as client:
            while not stop.is_set():
                try:
                    claimed = await self.dispatch_once(client)
                    failures = 0
                    repeats.clear()
                    self.health.succeeded()
                except Exception as exc:  # the database is down, most likely: wait, try again
                    failures += 1
                    self.health.failed()
                    await log_failure(log, "dispatching", exc, repeats, self._db)  # or a bug
                    await self._idle(stop, doubled_pause(self._poll_s, MAX_IDLE_S, failures))
                    continue
                if claimed < self._batch:  # a full batch: more may be due at once
                    await self._idle(stop, self._poll_s)

    async def dispatch_once(self, client: httpx.AsyncClient) -> int:
        """One pass: claim, deliver and record the due deliveries; how many were claimed."""
        await self._read_pending()
        claimed = await retrying(self._claim, what="claim deliveries")
        self.claimed += len(claimed)
        await asyncio.gather(*(self._attempt(client, one) for one in claimed))
        return len(claimed)

    async def _claim(self) -> list[Claimed]:
        async with self._db.begin() as conn:
            return await claim_due(conn, self._now_ms(), self._lease_ms, self._batch)

    async def _attempt(self, client: httpx.AsyncClient, claimed: Claimed) -> None:
        if claimed.channel is None:
            result = CHANNEL_DELETED
        else:
            result = await self._deliver(client, claimed)
        now_ms = self._now_ms()
        outcome = after_attempt(
            result, claimed.attempts, claimed.raised_at_ms, now_ms, self._backoff
        )
        try:
            stored = await retrying(lambda: self._record(claimed, outcome), what="delivery")
        except Exception as exc:  # the lease ends and the delivery is made again
            log.warning(
                "delivery outcome not recorded; it is due again after its lease",
                extra={**_about(claimed), "outcome": outcome.status, "error": repr(exc)[:300]},
            )
            return
        if stored:
            _count(claimed, outcome, now_ms)
            _log(claimed, outcome)

    async def _deliver(self, client: httpx.AsyncClient, claimed: Claimed) -> DeliveryResult:
        """One attempt, cut short well within its lease: a receiver trickling its answer must
        not outlive the lease (another instance would then deliver it too) nor hold the pass."""
        assert claimed.channel is not None
        try:
            async with asyncio.timeout(self._lease_ms / 1000 / 2):
                return await deliver(client, claimed.channel, claimed.notification)
        except TimeoutError:
            return DeliveryResult("retry", None, classified(TIMEOUT, "no answer in time"), None)

    async def _record(self, claimed: Claimed, outcome: Recorded) -> bool:
        async with self._db.begin() as conn:
            return await record(conn, claimed, outcome)

    async def _read_pending(self) -> None:
        """The pending gauge, read now and then (a count per pass would load the database)."""
        if self._clock() - self._pending_read_at < self._pending_every_s:
            return
        async with self._db.connect() as conn:
            metrics.PENDING.set(await count_pending(conn))
        self._pending_read_at = self._clock()

    async def _idle(self, stop: asyncio.Event, seconds: float) -> None:
        """Wait ``seconds``, or less when stopped."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), seconds)

    def _now_ms(self) -> int:
        return round(self._clock() * 1000)


def _kind(claimed: Claimed) -> str:
    return claimed.channel.kind if claimed.channel is not None else metrics.DELETED


def _about(claimed: Claimed) -> dict[str, object]:
    """What a log line says about a delivery: ids and attempt, never the URL or the secret."""
    return {
        "notification_id": claimed.notification.id,
        "channel_id": claimed.channel_id,
        "channel_kind": _kind(claimed),
        "attempt": claimed.attempts,
    }


def _count(claimed: Claimed, outcome: Recorded, now_ms: int) -> None:
    kind = _kind(claimed)
    if outcome.status == "delivered":
        metrics.DELIVERED.labels(kind).inc()
        latency_s = max(0.0, (now_ms - claimed.raised_at_ms) / 1000)
        metrics.DELIVERY_SECONDS.labels(kind).observe(latency_s)
    elif outcome.status == "failed":
        metrics.FAILED.labels(kind).inc()
    else:
        metrics.RETRIES.labels(kind).inc()


def _log(claimed: Claimed, outcome: Recorded) -> None:
    about = {**_about(claimed), "error": outcome.last_error}
    if outcome.status == "delivered":
        log.debug("notification delivered", extra=_about(claimed))
    elif outcome.status == "failed":
        log.warning("notification delivery failed for good", extra=about)
    else:
        log.info("notification delivery to be retried", extra=about)
