"""The connections: the guides, the settings that turn each route on, and the tallies."""

from __future__ import annotations

from datetime import UTC, datetime

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
    base = (settings.public_base_url or request_base).rstrip("/")
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


def _at(epoch: int | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)
