"""``GET /v1/connections``: per provider, connected or not, the URL to paste and what to
subscribe to, the last delivery, and what the deliveries of the last 24 h became."""

from __future__ import annotations

from fastapi import Request

from services.api.common.auth import READ_ACCESS
from services.api.common.database import Db, api_router
from services.api.common.params import AppSettings, Now
from services.api.connections import service
from services.api.connections.schemas import ConnectionsOut

router = api_router(prefix="/v1", tags=["connections"])


@router.get(
    "/connections",
    response_model=ConnectionsOut,
    dependencies=READ_ACCESS,
    summary="Each provider: connected or not, what to paste and subscribe to, its deliveries",
)
async def connections(
    request: Request, conn: Db, settings: AppSettings, now: Now
) -> ConnectionsOut:
    return await service.connections(conn, settings, str(request.base_url), now)
