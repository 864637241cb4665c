"""Composition root of the KPI service: consumer loop + a small health/metrics endpoint."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from services.kpi.consumer import KpiConsumer
from services.kpi.engine import Engine
from services.kpi.store import KpiStore
from shared.bus import Bus
from shared.db.engine import create_schema
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
        await create_schema(self.db)
        if not await self._topics_ready(stop):
            return
        pruner = asyncio.create_task(self._prune_periodically(stop))
        try:
            await self.consumer.run(stop)
        finally:
            pruner.cancel()

    async def _prune_periodically(self, stop: asyncio.Event) -> None:
        """Keep minute and hour buckets within their retention (any instance may do it)."""
        while self.floors is not None and not stop.is_set():
            now = time.time()
            pruned = await self.store.prune(*self.floors(now), int(now) - self.fact_retention_s)
            if pruned:
                log.info("buckets pruned", extra={"rows": pruned})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.prune_every_s)

    async def replay(self, stop: asyncio.Event) -> dict[int, int]:
        """Rebuild every aggregate from the topic (the roster stays); return the offsets reached.

        The live KPI service must be stopped meanwhile: both would write the same tables."""
        await create_schema(self.db)
        await self.bus.ensure_topics(self.topics)
        targets = await self.bus.end_offsets(self.topics[0])
        await self.store.clear()
        await self.consumer.run(stop, until=targets)
        return targets

    async def _topics_ready(self, stop: asyncio.Event) -> bool:
        """Wait (with backoff) for the broker to take the topics; False if asked to stop first."""
        delay = 0.5
        while not stop.is_set():
            try:
                await self.bus.ensure_topics(self.topics)
                return True
            except (
                Exception
            ) as exc:  # the broker is not there yet: the orchestrator may start us first
                log.warning("topics not ready; retrying", extra={"error": repr(exc), "in_s": delay})
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


def create_health_app(bus: Bus, db: AsyncEngine) -> FastAPI:
    app = FastAPI(title="SalesPulse KPI", version="1", docs_url=None, redoc_url=None)

    async def readiness() -> dict[str, bool]:
        return {"database": await database_ready(db), "bus": await bus.ready()}

    app.include_router(health_router(readiness))
    return app
