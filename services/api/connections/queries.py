"""Connections SQL: the deliveries' tallies since an instant, and each provider's last ones."""

from __future__ import annotations

from typing import NamedTuple

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.db.models import CONNECTION_COUNTS, ConnectionDeliveries, ConnectionStatus, table

_deliveries, _status = table(ConnectionDeliveries), table(ConnectionStatus)
COUNTS = CONNECTION_COUNTS


class Status(NamedTuple):
    last_delivery_at: int | None
    last_refusal_at: int | None
    last_refusal_reason: str | None


async def tallies_since(conn: AsyncConnection, since: int) -> dict[str, dict[str, int]]:
    """Per provider, each count added up over the hours starting at or after ``since``."""
    query = (
        select(_deliveries.c.provider, *(func.sum(_deliveries.c[n]) for n in COUNTS))
        .where(_deliveries.c.hour_start >= since)
        .group_by(_deliveries.c.provider)
    )
    return {
        provider: dict(zip(COUNTS, (int(v or 0) for v in values), strict=True))
        for provider, *values in await conn.execute(query)
    }


async def statuses(conn: AsyncConnection) -> dict[str, Status]:
    rows = await conn.execute(select(_status))
    return {
        r.provider: Status(r.last_delivery_at, r.last_refusal_at, r.last_refusal_reason)
        for r in rows
    }
