"""Health and readiness routes every service mounts."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.db.repeats import database_answers
from shared.observability import metrics_endpoint

ReadinessCheck = Callable[[], Awaitable[dict[str, bool]]]


async def database_ready(db: AsyncEngine) -> bool:
    """Whether the database answers a trivial query now (any failure means "not ready"; the
    orchestrator retries)."""
    return await database_answers(db)


def health_router(readiness: ReadinessCheck) -> APIRouter:
    router = APIRouter(include_in_schema=True, tags=["operations"])

    @router.get("/healthz", summary="The process is alive")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz", summary="Dependencies answer (503 when one does not)")
    async def readyz() -> JSONResponse:
        checks = await readiness()
        ready = all(checks.values())
        return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)

    router.add_api_route(
        "/metrics",
        metrics_endpoint,
        methods=["GET"],
        summary="Prometheus exposition",
        include_in_schema=True,
    )
    return router
