"""The KPI service as it runs: start-up steps, the consumer loop, and replay. (Retention, the
pruning of what it wrote, is the worker's: ``services.kpi.retention``.)

It is built and disposed by ``services.kpi.app.build_kpi_service``, the one place the KPI
service is wired; the CLI (``salespulse kpi``, ``salespulse replay``), dev mode and the tests
all get it from there.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import TracebackType

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from services.kpi import metrics
from services.kpi.consumer import KpiConsumer
from services.kpi.flush import KpiStore
from shared.bus import Bus
from shared.db.migrate import SchemaBehind, require_current

log = logging.getLogger(__name__)


@dataclass
class Owned:
    """What the service opened itself, hence starts and disposes (not what it was given)."""

    bus: bool = False
    db: bool = False


@dataclass
class KpiService:
    consumer: KpiConsumer
    store: KpiStore
    db: AsyncEngine
    bus: Bus
    topics: tuple[str, ...]  # (activity, dead letters)
    health: FastAPI  # /healthz, /readyz, /metrics

    teams_every_s: float = 10
    owned: Owned = field(default_factory=Owned)

    async def __aenter__(self) -> KpiService:
        if self.owned.bus:
            await self.bus.start()
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop the bus and dispose of the database, if this service opened them."""
        try:
            if self.owned.bus:
                await self.bus.stop()
        finally:
            if self.owned.db:
                await self.db.dispose()

    async def run(self, stop: asyncio.Event) -> None:
        if not await self._patiently("schema", lambda: require_current(self.db), stop):
            return
        if not await self._patiently("topics", lambda: self.bus.ensure_topics(self.topics), stop):
            return
        metrics.initialise()
        teams = asyncio.create_task(self._watch_teams(stop))
        try:
            await self.consumer.run(stop)
        finally:
            teams.cancel()

    async def _watch_teams(self, stop: asyncio.Event) -> None:
        """Every team's business series exists from when the team does, not from its first
        booking: the teams are read at start and again whenever the roster version moves (a
        team added while the service runs, with no activity yet, shows 0, not "No data")."""
        seen = None
        while not stop.is_set():
            try:
                version = await self.store.roster_version()
                if version != seen:
                    metrics.initialise_teams(await self.store.team_ids())
                    seen = version
            except Exception as exc:  # monitoring only: the next round will do it
                log.debug("teams not read; next round later", extra={"error": repr(exc)[:300]})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.teams_every_s)

    async def replay(self, stop: asyncio.Event) -> dict[int, int]:
        """Rebuild every aggregate from the topic (the roster stays); return the offsets reached.

        The live KPI service must be stopped meanwhile: both would write the same tables."""
        await require_current(self.db)
        await self.bus.ensure_topics(self.topics)
        targets = await self.bus.end_offsets(self.topics[0])
        # Rebuilding history decides nothing anew: every old win and leader would otherwise be
        # announced again (notifications already sent are history, kept in the outbox).
        self.store.alerts.enabled = False
        await self.store.clear()
        await self.consumer.run(stop, until=targets)
        return targets

    async def _patiently(
        self, what: str, step: Callable[[], Awaitable[None]], stop: asyncio.Event
    ) -> bool:
        """Run a start-up step until it succeeds (the orchestrator may start us before the
        broker or the database); False if asked to stop first."""
        delay = 0.5
        while not stop.is_set():
            try:
                await step()
                return True
            except SchemaBehind:
                raise  # not an outage: someone has to run `salespulse migrate`
            except Exception as exc:  # not there yet: wait, report not-ready meanwhile
                self.consumer.healthy = False
                log.warning(
                    "not ready at start; retrying",
                    extra={"step": what, "error": repr(exc)[:300], "in_s": delay},
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
                delay = min(delay * 2, 10)
        return False
