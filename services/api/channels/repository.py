"""Channels SQL. Statements run on the connection given (the edge owns its transaction)."""

from __future__ import annotations

from typing import cast

from sqlalchemy import delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

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

    async def save(self, channel: Channel, *, keep_secret: bool) -> str | None:
        """Create or replace ``channel`` in one statement; with ``keep_secret``, a secret the
        stored channel has wins over ``channel.secret``. The secret stored, as it is after
        this statement: two first saves at once cannot both believe theirs was kept."""
        insert = postgresql.insert if self._conn.dialect.name == "postgresql" else sqlite.insert
        row = {"id": channel.id, "kind": channel.kind, "url": channel.url, "secret": channel.secret}
        statement = insert(_channels).values(**row)
        stored, given = _channels.c.secret, statement.excluded.secret
        upsert = statement.on_conflict_do_update(
            index_elements=["id"],
            set_={
                "kind": statement.excluded.kind,
                "url": statement.excluded.url,
                "secret": func.coalesce(stored, given) if keep_secret else given,
            },
        ).returning(stored)
        found: str | None = (await self._conn.execute(upsert)).scalar_one()
        return found

    async def delete(self, channel_id: str) -> bool:
        query = delete(_channels).where(_channels.c.id == channel_id)
        return bool((await self._conn.execute(query)).rowcount)
