"""The worker as it runs: it waits for the schema, then runs every job until stopped.

It is built and disposed by ``services.worker.app.build_worker``, the one place the worker is
wired; ``salespulse worker``, the one-process modes and the tests all get it from there.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from types import TracebackType

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from services.worker.jobs import Job, idle
from shared.db.migrate import SchemaBehind, require_current
from shared.health import database_ready

log = logging.getLogger(__name__)


async def readiness(db: AsyncEngine, jobs: dict[str, Job]) -> dict[str, bool]:
    """The database answers, and each job is ready (``services.worker.jobs``)."""
    return {
        "database": await database_ready(db),
        **{name: job.health.ready() for name, job in jobs.items()},
    }


@dataclass
class Worker:
    db: AsyncEngine
    jobs: dict[str, Job]  # by the name /readyz gives it
    health: FastAPI  # /healthz, /readyz, /metrics
    owns_db: bool = False  # whether it opened ``db`` itself, hence disposes of it

    async def __aenter__(self) -> Worker:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Dispose of the database, if the worker opened it."""
        if self.owns_db:
            await self.db.dispose()

    async def run(self, stop: asyncio.Event) -> None:
        """Every job until ``stop`` is set (each finishes the run under way first)."""
        if not await self._schema_current(stop):
            return
        log.info("worker running", extra={"jobs": sorted(self.jobs)})
        await asyncio.gather(*(job.run(stop) for job in self.jobs.values()))

    async def readiness(self) -> dict[str, bool]:
        """What ``/readyz`` checks (``readiness``)."""
        return await readiness(self.db, self.jobs)

    async def _schema_current(self, stop: asyncio.Event) -> bool:
        """Wait until the schema can be checked (the orchestrator may start us before the
        database); False if asked to stop first. A schema behind is not an outage: someone
        has to run ``salespulse migrate``."""
        delay = 0.5
        while not stop.is_set():
            try:
                await require_current(self.db)
                return True
            except SchemaBehind:
                raise
            except Exception as exc:  # not there yet: the jobs' first intervals wait too
                log.warning(
                    "not ready at start; retrying",
                    extra={"step": "schema", "error": repr(exc)[:300], "in_s": delay},
                )
                await idle(stop, delay)
                delay = min(delay * 2, 10)
        return False
