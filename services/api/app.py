"""Composition root of the API gateway."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from sqlalchemy.ext.asyncio import AsyncEngine

from services.api.common.auth import KeyRing
from services.api.kpis import routes as kpis
from services.api.leaderboards import routes as leaderboards
from services.api.leaderboards.hub import BoardHub
from services.api.leaderboards.service import Boards
from services.api.roster import routes as roster
from services.api.targets import routes as targets
from services.api.targets.service import TargetCache
from services.api.wallboard import routes as wallboard
from shared.db.engine import create_engine
from shared.db.migrate import require_current
from shared.health import database_ready, health_router
from shared.observability import HttpMetricsMiddleware
from shared.problems import install_problem_handlers
from shared.settings import Settings


def create_app(settings: Settings, engine: AsyncEngine | None = None) -> FastAPI:
    """The API app; pass ``engine`` to share one (dev mode) — its owner disposes of it."""
    owns_engine = engine is None
    db = engine if engine is not None else create_engine(settings.database_url, pool_pre_ping=True)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await require_current(db)  # the schema is migrated beforehand (salespulse migrate)
        yield
        await app.state.board_hub.close()
        if owns_engine:
            await db.dispose()

    app = FastAPI(title="SalesPulse API", version="1", lifespan=lifespan)
    app.state.settings, app.state.db = settings, db
    app.state.keyring = KeyRing(settings.parsed_api_keys())
    app.state.target_cache = TargetCache()
    app.state.boards = Boards(db, app.state.target_cache, settings)
    app.state.board_hub = BoardHub(app.state.boards, db)
    install_problem_handlers(app)
    app.add_middleware(HttpMetricsMiddleware, service="api")
    if settings.cors:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors,
            allow_methods=["*"],
            allow_headers=["Authorization", "If-None-Match", "Last-Event-ID", "Content-Type"],
            expose_headers=["ETag"],
        )
    app.include_router(roster.router)
    app.include_router(kpis.router)
    app.include_router(leaderboards.router)
    app.include_router(targets.router)

    async def readiness() -> dict[str, bool]:
        return {"database": await database_ready(db)}

    app.include_router(health_router(readiness))
    wallboard.install(app)
    return app
