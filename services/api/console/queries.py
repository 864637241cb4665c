"""What the console reads that no API route lists: the channels (the API reads them one at a
time), and the dead letters of the last day when the bus is the database's own log."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from services.api.channels.schemas import ChannelOut
from shared.db.models import BusLogRecord, Channel, table
from shared.notify.messages import Channel as ChannelRecord

_channels, _log = table(Channel), table(BusLogRecord)


async def channels(conn: AsyncConnection) -> list[ChannelOut]:
    """Every channel, as the API shows one: the URL's origin only, never the secret."""
    rows = await conn.execute(
        select(_channels.c.id, _channels.c.kind, _channels.c.url, _channels.c.secret).order_by(
            _channels.c.id
        )
    )
    return [ChannelOut.of(ChannelRecord(id=i, kind=k, url=u, secret=s)) for i, k, u, s in rows]


async def dead_letters_since(conn: AsyncConnection, topic: str, since_ms: int) -> int:
    """Dead letters written to the database log since ``since_ms`` (``salespulse serve``)."""
    found = await conn.scalar(
        select(func.count())
        .select_from(_log)
        .where(_log.c.topic == topic, _log.c.timestamp_ms >= since_ms)
    )
    return int(found or 0)
