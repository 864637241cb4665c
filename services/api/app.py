"""Composition root of the API gateway: the one place its parts are built and wired.

Each feature (``roster``, ``targets``, ``kpis``, ``leaderboards``, ``contests``, ``wallboard``...)
is a folder of routes, service, repository or queries, and schemas; ``common`` holds what they
share, ``live`` what boards and contests both read.

An API process serves requests only (architecture decision 16): its lifespan starts no
background job, and no read writes. Delivery, settlement, the pace checks and retention are the
worker's (``services.worker``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.types import Lifespan

from services.api import console
from services.api.activity import routes as activity
from services.api.alerts import routes as alerts
from services.api.alerts.hub import NotificationHub
from services.api.channels import routes as channels
from services.api.common.auth import KeyRing, scopes_in_openapi
from services.api.common.headers import SecurityHeaders
from services.api.common.sse import StreamSlots
from services.api.connections import routes as connections
from services.api.contests import routes as contests
from services.api.contests.standings import Standings
from services.api.corrections import routes as corrections
from services.api.kpis import routes as kpis
from services.api.leaderboards import routes as leaderboards
from services.api.leaderboards.service import Boards
from services.api.live.hub import BoardHub
from services.api.organisation import routes as organisation
from services.api.reports import routes as reports
from services.api.reports.service import Reports
from services.api.roster import routes as roster
from services.api.targets import routes as targets
from services.api.targets.service import TargetCache
from services.api.wallboard import routes as wallboard
from services.api.wins import routes as wins
from shared.api_docs import serve_docs
from shared.bus import Bus
from shared.db.engine import create_engine
from shared.db.migrate import require_current
from shared.health import ReadinessCheck, database_ready, health_router
from shared.observability import NO_TELEMETRY, HttpMetricsMiddleware
from shared.problems import install_problem_handlers
from shared.settings import Settings


def create_app(
    settings: Settings,
    db: AsyncEngine | None = None,
    *,
    also_ready: ReadinessCheck | None = None,
    bus: Bus | None = None,
) -> FastAPI:
    """The API app; pass ``db`` to share an engine (``serve``) — its owner disposes of it.
    ``also_ready``: more checks for ``/readyz`` (``serve`` adds the KPI consumer's and the
    worker's, the process's one probe). ``bus``: where corrections go (``serve`` passes its
    own, its owner starts it); without one, a Kafka producer when Kafka is configured (the app
    owns it), else none, and making a correction is a 503 problem saying why."""
    owns_db = db is None
    db = db if db is not None else create_engine(settings.database_url, pool_pre_ping=True)
    owns_bus = bus is None and bool(settings.kafka_bootstrap_servers)
    if owns_bus:
        from shared.bus.kafka import KafkaBus

        bus = KafkaBus(
            settings.kafka_bootstrap_servers or "",
            partitions=settings.kafka_partitions,
            replication_factor=settings.kafka_replication_factor,
            client_id="salespulse-api",
            publish_timeout_s=settings.publish_timeout_seconds,
        )
    app = FastAPI(
        title="SalesPulse API",
        version="1",
        lifespan=_lifespan(db, owns_db, bus if owns_bus else None),
        telemetry=NO_TELEMETRY,
        docs_url=None,  # served offline by _document
        redoc_url=None,
    )
    _hold_resources(app, settings, db)
    app.state.bus = bus
    _handle_requests(app, settings)
    _answer_routes(app, db, also_ready)
    _document(app)
    return app


def _lifespan(db: AsyncEngine, owns_db: bool, owned_bus: Bus | None) -> Lifespan[FastAPI]:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await require_current(db)  # the schema is migrated beforehand (salespulse migrate)
        if owned_bus is not None:
            await owned_bus.start()  # a broker down at start: it connects on first publish
        yield
        if owned_bus is not None:
            await owned_bus.stop()
        await app.state.board_hub.close()
        await app.state.contest_hub.close()
        await app.state.notification_hub.close()
        if owns_db:
            await db.dispose()

    return lifespan


def _hold_resources(app: FastAPI, settings: Settings, db: AsyncEngine) -> None:
    """What lives as long as the app: the database, the keys, the caches, the live boards."""
    app.state.settings, app.state.db = settings, db
    app.state.keyring = KeyRing(settings.parsed_api_keys())
    app.state.target_cache = TargetCache()
    app.state.boards = Boards(db, app.state.target_cache, settings)
    app.state.board_hub = BoardHub(app.state.boards, db)
    app.state.reports = Reports()
    app.state.standings = Standings(db, app.state.target_cache, settings)
    app.state.contest_hub = BoardHub(app.state.standings, db, event="standings")
    app.state.notification_hub = NotificationHub(db)
    app.state.stream_slots = StreamSlots(settings.sse_max_streams, settings.sse_max_streams_per_key)


def _handle_requests(app: FastAPI, settings: Settings) -> None:
    """What every request goes through: problem+json errors, HTTP metrics, CORS, and the
    headers every answer carries (``common.headers``)."""
    install_problem_handlers(app)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(HttpMetricsMiddleware, service="api")
    if settings.cors:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors,
            allow_methods=["*"],
            allow_headers=["Authorization", "If-None-Match", "Last-Event-ID", "Content-Type"],
            expose_headers=["ETag"],
        )


def _answer_routes(app: FastAPI, db: AsyncEngine, also_ready: ReadinessCheck | None) -> None:
    """The features' routes, the health probes, the wallboard page, the console."""
    features = (
        roster,
        activity,  # before kpis: /unassigned/{identity}/activity
        kpis,
        corrections,
        leaderboards,
        targets,
        contests,
        channels,
        alerts,
        organisation,
        wins,
        reports,
        connections,
    )
    for feature in features:
        app.include_router(feature.router)

    async def readiness() -> dict[str, bool]:
        more = await also_ready() if also_ready is not None else {}
        return {"database": await database_ready(db), **more}

    app.include_router(health_router(readiness))
    wallboard.install(app)
    console.install(app)


def _document(app: FastAPI) -> None:
    """``/docs`` and ``/redoc`` with no CDN (``shared.api_docs``); the OpenAPI names the scope
    each operation needs (``common.auth``)."""
    serve_docs(app)
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:  # generated once, as FastAPI does
            app.openapi_schema = scopes_in_openapi(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to extend it
