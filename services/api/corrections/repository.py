"""Corrections SQL: the ``corrections`` rows, newest first."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.db.models import Correction, table

_corrections = table(Correction)
_c = _corrections.c


class CorrectionsRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add(self, row: dict[str, Any]) -> None:
        await self._conn.execute(insert(_corrections).values(row))

    async def get(self, correction_id: str) -> dict[str, Any] | None:
        found = await self._conn.execute(select(_corrections).where(_c.id == correction_id))
        row = found.mappings().first()
        return None if row is None else dict(row)

    async def open_on(self, event_key: bytes) -> str | None:
        """The correction of the event that is not undone, if any."""
        found = await self._conn.execute(
            select(_c.id).where(_c.event_key == event_key, _c.undone_at.is_(None)).limit(1)
        )
        value: str | None = found.scalar()
        return value

    async def undo(self, correction_id: str, by: str, at: int) -> bool:
        """Mark it undone, unless it already is: whether this call did."""
        done = await self._conn.execute(
            update(_corrections)
            .where(_c.id == correction_id, _c.undone_at.is_(None))
            .values(undone_by=by, undone_at=at)
        )
        return bool(done.rowcount)

    async def page(self, below: tuple[int, str] | None, limit: int) -> list[dict[str, Any]]:
        """Up to ``limit`` corrections, newest first, from below ``(made_at, id)``."""
        query = select(_corrections).order_by(_c.made_at.desc(), _c.id.desc()).limit(limit)
        if below is not None:
            query = query.where(tuple_(_c.made_at, _c.id) < tuple_(*below))
        return [dict(r) for r in (await self._conn.execute(query)).mappings()]
