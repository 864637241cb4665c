"""The connections: the guides, the settings that turn each route on, and the tallies."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
from sqlalchemy.ext.asyncio import AsyncConnection

from services.api.connections.guides import GUIDES
from services.api.connections.queries import COUNTS, Status, statuses, tallies_since
from services.api.connections.schemas import ConnectionOut, ConnectionsOut, Deliveries
from services.ingest.providers import ROUTES, build_adapters
from shared.settings import Settings

DAY = 24 * 3600
HOUR = 3600


async def connections(
    conn: AsyncConnection, settings: Settings, request_base: str, now: datetime
) -> ConnectionsOut:
    # without PUBLIC_BASE_URL: the ingest's own address as configured (webhooks go there,
    # not to the API this request reached; its host is the API's when it listens everywhere)
    base = (settings.public_base_url or _ingest_base(settings, request_base)).rstrip("/")
    configured = set(build_adapters(settings))
    # the hours that overlap the last 24 h (the current one included)
    since = (int(now.timestamp()) - DAY) // HOUR * HOUR + HOUR
    counts = await tallies_since(conn, since)
    last = await statuses(conn)
    items = []
    for provider, guide in GUIDES.items():
        route, setting = ROUTES[provider]
        status = last.get(provider, Status(None, None, None))
        items.append(
            ConnectionOut(
                provider=provider,
                label=guide.label,
                kind=guide.kind,
                configured=provider in configured,
                setting=setting,
                url=f"{base}{route}",
                where=guide.where,
                subscribe=list(guide.subscribe),
                last_delivery_at=_at(status.last_delivery_at),
                last_24h=Deliveries(**counts.get(provider, dict.fromkeys(COUNTS, 0))),
                last_refusal_at=_at(status.last_refusal_at),
                last_refusal_reason=status.last_refusal_reason,
            )
        )
    return ConnectionsOut(
        base_url=base, public_base_url_set=bool(settings.public_base_url), items=items
    )


def _ingest_base(settings: Settings, request_base: str) -> str:
    host = settings.ingest_host
    if host in ("0.0.0.0", "::", ""):  # noqa: S104 (a comparison, not a bind)
        host = httpx.URL(request_base).host
    return f"http://{host}:{settings.ingest_port}"


def _at(epoch: int | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)
