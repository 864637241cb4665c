"""Channels SQL. Statements run on the connection given (the edge owns its transaction)."""

from __future__ import annotations

from typing import cast

from sqlalchemy import delete, select
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from services.api.common.database import upsert
from shared.db.models import Channel as ChannelRecord
from shared.db.models import table
from shared.notify.messages import Channel, ChannelKind

_channels = table(ChannelRecord)


def _channel(row: Row[tuple[object, ...]]) -> Channel:
    m = row._mapping
    return Channel(id=m["id"], kind=cast(ChannelKind, m["kind"]), url=m["url"], secret=m["secret"])


class ChannelRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def get(self, channel_id: str) -> Channel | None:
        query = select(_channels).where(_channels.c.id == channel_id)
        row = (await self._conn.execute(query)).first()
        return _channel(row) if row is not None else None

    async def save(self, channel: Channel) -> None:
        values = {"kind": channel.kind, "url": channel.url, "secret": channel.secret}
        await upsert(self._conn, _channels, "id", {"id": channel.id, **values})

    async def delete(self, channel_id: str) -> bool:
        query = delete(_channels).where(_channels.c.id == channel_id)
        return bool((await self._conn.execute(query)).rowcount)
