"""Composition root of the KPI service: consumer loop + a small health/metrics endpoint."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from services.kpi import metrics
from services.kpi.consumer import KpiConsumer
from services.kpi.engine import Engine
from services.kpi.store import KpiStore
from shared.bus import Bus
from shared.db.migrate import SchemaBehind, require_current
from shared.health import database_ready, health_router
from shared.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class KpiService:
    consumer: KpiConsumer
    db: AsyncEngine
    bus: Bus
    topics: tuple[str, ...]

    store: KpiStore

    floors: Callable[[float], tuple[int, int]] | None = None
    prune_every_s: float = 600
    fact_retention_s: int = 35 * 86400

    async def run(self, stop: asyncio.Event) -> None:
        if not await self._patiently("schema", lambda: require_current(self.db), stop):
            return
        if not await self._patiently("topics", lambda: self.bus.ensure_topics(self.topics), stop):
            return
        metrics.initialise()
        metrics.initialise_teams(await self.store.team_ids())
        pruner = asyncio.create_task(self._prune_periodically(stop))
        try:
            await self.consumer.run(stop)
        finally:
            pruner.cancel()

    async def _prune_periodically(self, stop: asyncio.Event) -> None:
        """Keep minute and hour buckets within their retention (any instance may do it)."""
        while self.floors is not None and not stop.is_set():
            now = time.time()
            try:
                pruned = await self.store.prune(*self.floors(now), int(now) - self.fact_retention_s)
            except Exception as exc:  # housekeeping: the next round will do it
                log.warning("pruning failed; next round later", extra={"error": repr(exc)[:300]})
                pruned = 0
            if pruned:
                log.info("buckets pruned", extra={"rows": pruned})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.prune_every_s)

    async def replay(self, stop: asyncio.Event) -> dict[int, int]:
        """Rebuild every aggregate from the topic (the roster stays); return the offsets reached.

        The live KPI service must be stopped meanwhile: both would write the same tables."""
        await require_current(self.db)
        await self.bus.ensure_topics(self.topics)
        targets = await self.bus.end_offsets(self.topics[0])
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


def build_kpi_service(
    settings: Settings, bus: Bus, db: AsyncEngine, consumer_group: str | None = None
) -> KpiService:
    """The KPI service; ``consumer_group`` overrides the Kafka group (a replay reads on its
    own, while offsets are stored under the KPI group for the live service to resume from)."""
    engine = Engine(settings.tz, settings.currency, settings.rates)
    store = KpiStore(db, engine, settings.kpi_group, settings.activity_topic)
    consumer = KpiConsumer(
        bus,
        store,
        engine,
        topic=settings.activity_topic,
        group=consumer_group or settings.kpi_group,
        deadletter_topic=settings.deadletter_topic,
        batch_size=settings.kpi_batch_size,
        poll_timeout_ms=settings.kpi_poll_timeout_ms,
        business_per_rep=settings.business_metrics_per_rep,
    )
    return KpiService(
        consumer,
        db,
        bus,
        (settings.activity_topic, settings.deadletter_topic),
        store,
        settings.retention_floors,
        fact_retention_s=settings.dedupe_retention_days * 86400,
    )


def create_health_app(bus: Bus, db: AsyncEngine, consumer: KpiConsumer) -> FastAPI:
    app = FastAPI(title="SalesPulse KPI", version="1", docs_url=None, redoc_url=None)

    async def readiness() -> dict[str, bool]:
        return {
            "database": await database_ready(db),
            "bus": await bus.ready(),
            "consuming": consumer.healthy,  # False while it waits out an outage
        }

    app.include_router(health_router(readiness))
    return app
