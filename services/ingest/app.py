"""Composition root of the ingest service: stateless verify -> normalise -> produce."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

import httpx
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from services.ingest import metrics
from services.ingest.deliveries import DeliveryLog, keep_writing
from services.ingest.enrichment import Enricher
from services.ingest.providers import ROUTES, build_adapters
from services.ingest.publisher import EventPublisher
from services.ingest.routes import Ingest, add_webhook_routes
from services.providers_api.hubspot import HubSpotClient, http_client
from shared.api_docs import serve_docs
from shared.bus import Bus, build_bus
from shared.db.engine import create_engine
from shared.health import health_router
from shared.observability import NO_TELEMETRY, HttpMetricsMiddleware
from shared.problems import install_problem_handlers
from shared.settings import Settings

log = logging.getLogger(__name__)


def enrichment_client(settings: Settings) -> httpx.AsyncClient | None:
    """HubSpot's API client when enrichment is on: a token, and the HubSpot route on."""
    if settings.hubspot_access_token is None or settings.hubspot_client_secret is None:
        return None
    return http_client(settings.hubspot_api_base, settings.hubspot_access_token)


def create_app(
    settings: Settings, bus: Bus | None = None, db: AsyncEngine | None = None
) -> FastAPI:
    """The ingest app; pass ``bus`` to share one (dev mode, tests) — its owner starts it — and
    ``db`` likewise (the database the deliveries' tallies go to, for ``/v1/connections``)."""
    owns_bus = bus is None
    the_bus = bus if bus is not None else build_bus(settings, client_id="salespulse-ingest")
    owns_db = db is None
    the_db = db if db is not None else create_engine(settings.database_url, pool_pre_ping=True)
    deliveries = DeliveryLog()

    publisher = EventPublisher(the_bus, settings.activity_topic, settings.deadletter_topic)
    hubspot_api = enrichment_client(settings)
    enricher = (
        Enricher(
            HubSpotClient(hubspot_api, settings.hubspot_access_token),
            publisher,
            settings.rates,
            settings.enrichment_queue_size,
            settings.hubspot_api_base,
        )
        if hubspot_api is not None and settings.hubspot_access_token is not None
        else None
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if owns_bus:
            await the_bus.start()
            try:
                await the_bus.ensure_topics([settings.activity_topic, settings.deadletter_topic])
            except Exception as exc:  # the broker may come later; publishes answer 503 till then
                log.warning("could not ensure topics at start", extra={"error": repr(exc)})
        stop = asyncio.Event()
        writing = asyncio.create_task(
            keep_writing(the_db, deliveries, settings.connection_tallies_seconds, stop)
        )
        enriching = asyncio.create_task(enricher.run()) if enricher is not None else None
        yield
        if enriching is not None:
            enriching.cancel()
            with suppress(asyncio.CancelledError):
                await enriching
        if hubspot_api is not None:
            await hubspot_api.aclose()
        stop.set()
        await writing
        if owns_db:
            await the_db.dispose()
        if owns_bus:
            await the_bus.stop()

    app = FastAPI(
        title="SalesPulse ingest",
        version="1",
        lifespan=lifespan,
        telemetry=NO_TELEMETRY,
        docs_url=None,  # served offline by serve_docs
        redoc_url=None,
    )
    ingest = Ingest(
        adapters=build_adapters(settings),
        publisher=publisher,
        rates=settings.rates,
        max_body_bytes=settings.max_body_bytes,
        public_base_url=settings.public_base_url,
        deliveries=deliveries,
        enricher=enricher,
    )
    app.state.enricher = enricher  # its queue can be waited on (a graceful stop, tests)
    metrics.initialise(ROUTES, [settings.activity_topic, settings.deadletter_topic])
    install_problem_handlers(app)
    app.add_middleware(HttpMetricsMiddleware, service="ingest")
    add_webhook_routes(app, ingest)

    async def readiness() -> dict[str, bool]:
        return {"bus": await the_bus.ready()}

    app.include_router(health_router(readiness))
    serve_docs(app)
    return app
