"""The worker's jobs: a step run on a schedule (``Periodic``), and what ``/readyz`` says of each
(``JobHealth``).

A job is ready:

- while it starts: until its first run has had its first interval (and ``START_GRACE_S``) to
  finish, since a slow first run (the database coming up, a large first settlement) is not a
  failure;
- then while its last run succeeded. A failed run makes it not ready until a run succeeds
  again: a job failing over and over on a healthy database (a bug, logged at ERROR by
  ``shared.db.repeats``) stays not ready, and so does one whose database is down (the
  ``database`` check then says why).

So one lost connection does not cost a whole interval of "not ready", a failed run is tried again
sooner than its interval: after ``RETRY_FIRST_S``, doubled per failure in a row, at most the
interval. Every run is idempotent (a delivery is leased, a settlement conditional, a
notification unique, a prune a ``DELETE``), so running one again early is harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncEngine

from shared.db.repeats import Repeats, log_failure
from shared.runtime import doubled_pause

log = logging.getLogger(__name__)
START_GRACE_S = 30.0  # how long past its first interval a first run may take
RETRY_FIRST_S = 1.0  # the first retry after a failed run; doubled per failure in a row


class JobHealth:
    """Whether one job is ready (``ready``), from what its runs came to."""

    def __init__(self, every_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._first_run_s = every_s + START_GRACE_S
        self._clock = clock
        self._started = clock()
        self.last_ok: bool | None = None  # how its last run ended; None: none has yet
        self.failures = 0  # runs failed in a row

    def start(self) -> None:
        """The job begins (the worker waited for the schema before): its first interval runs
        from now."""
        self._started = self._clock()

    def succeeded(self) -> None:
        self.last_ok, self.failures = True, 0

    def failed(self) -> None:
        self.last_ok, self.failures = False, self.failures + 1

    def ready(self) -> bool:
        if self.last_ok is None:
            return self._clock() - self._started < self._first_run_s
        return self.last_ok


class Job(Protocol):
    """What the worker runs: until ``stop`` is set, reporting to its ``health``."""

    health: JobHealth

    async def run(self, stop: asyncio.Event) -> None: ...


class Periodic:
    """``step`` every ``every_s`` (from the end of one run to the start of the next), until
    ``stop`` is set; a run under way when it is set finishes first."""

    def __init__(
        self,
        what: str,
        every_s: float,
        step: Callable[[], Awaitable[object]],
        db: AsyncEngine,
        clock: Callable[[], float] = time.monotonic,
        retry_s: float = RETRY_FIRST_S,
    ) -> None:
        self.what, self.every_s = what, every_s
        self._step, self._db = step, db
        self._retry_s = retry_s
        self.health = JobHealth(every_s, clock)

    async def run(self, stop: asyncio.Event) -> None:
        self.health.start()
        repeats = Repeats()
        while not stop.is_set():
            try:
                await self._step()
            except Exception as exc:  # the database is down, most likely (or a bug: logged)
                self.health.failed()
                await log_failure(log, self.what, exc, repeats, self._db)
                pause = doubled_pause(self._retry_s, self.every_s, self.health.failures - 1)
            else:
                self.health.succeeded()
                repeats.clear()
                pause = self.every_s
            await idle(stop, pause)


async def idle(stop: asyncio.Event, seconds: float) -> None:
    """Wait ``seconds``, or less when stopped."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
