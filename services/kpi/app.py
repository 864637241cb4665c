"""Composition root of the KPI service: the one place it is wired.

``build_kpi_service`` builds the bus, the database, the KPI engine, its store, the consumer and
the health app; the CLI (``salespulse kpi`` and ``replay``), dev mode and the tests all call it.
What it builds it also disposes (``async with`` the service, or ``close()``); a bus or database
passed in is shared (dev mode, tests) and stays its owner's to start and dispose.
"""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from services.kpi.alerts import AlertWatch
from services.kpi.consumer import KpiConsumer
from services.kpi.domain.engine import Engine
from services.kpi.flush import KpiStore
from services.kpi.service import KpiService, Owned
from shared.bus import Bus, build_bus
from shared.db.engine import create_engine
from shared.health import database_ready, health_router
from shared.observability import NO_TELEMETRY
from shared.settings import Settings, voice_of


def build_kpi_service(
    settings: Settings,
    bus: Bus | None = None,
    db: AsyncEngine | None = None,
    *,
    consumer_group: str | None = None,
    client_id: str = "salespulse-kpi",
) -> KpiService:
    """The KPI service. ``consumer_group`` overrides the Kafka group (a replay reads on its
    own, while offsets are stored under the KPI group for the live service to resume from);
    ``client_id`` names the bus client it builds when none is passed."""
    owned = Owned(bus=bus is None, db=db is None)
    # pre-ping: a connection the pool kept across a database restart is replaced, not failed
    db = db if db is not None else create_engine(settings.database_url, pool_pre_ping=True)
    bus = bus if bus is not None else build_bus(settings, client_id=client_id, db=db)
    # with HubSpot enrichment on, a thin win is announced once completed (its rep, its amount)
    enriching = settings.hubspot_access_token is not None  # the KPI needs no webhook secret
    kpi = Engine(settings.tz, settings.currency, settings.rates, hold_thin_wins=enriching)
    alerts = AlertWatch(settings.tz, settings.week_start.weekday, voice_of(settings))
    store = KpiStore(db, kpi, settings.kpi_group, settings.activity_topic, alerts)
    consumer = KpiConsumer(
        bus,
        store,
        kpi,
        topic=settings.activity_topic,
        group=consumer_group or settings.kpi_group,
        deadletter_topic=settings.deadletter_topic,
        batch_size=settings.kpi_batch_size,
        poll_timeout_ms=settings.kpi_poll_timeout_ms,
        business_per_rep=settings.business_metrics_per_rep,
    )
    return KpiService(
        consumer,
        store,
        db,
        bus,
        (settings.activity_topic, settings.deadletter_topic),
        create_health_app(bus, db, consumer),
        owned=owned,
    )


def create_health_app(bus: Bus, db: AsyncEngine, consumer: KpiConsumer) -> FastAPI:
    """/healthz, /readyz (database, bus, consuming) and /metrics of the KPI service."""
    app = FastAPI(
        title="SalesPulse KPI", version="1", docs_url=None, redoc_url=None, telemetry=NO_TELEMETRY
    )

    async def readiness() -> dict[str, bool]:
        return {
            "database": await database_ready(db),
            "bus": await bus.ready(),
            "consuming": consumer.healthy,  # False while it waits out an outage
        }

    app.include_router(health_router(readiness))
    return app
