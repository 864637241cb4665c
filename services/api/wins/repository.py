"""Wins SQL: the deal states changed since a time (``ix_kpi_states_updated``)."""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.db.models import KpiState, Rep, Team, table

_states, _reps, _teams = table(KpiState), table(Rep), table(Team)


class WinsRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def deals_changed_since(self, since: int) -> Iterator[tuple[str, str]]:
        """(state key, state JSON) of every deal whose state changed at or after ``since``
        (epoch seconds of the flush, not of the event)."""
        rows = await self._conn.execute(
            select(_states.c.key, _states.c.state).where(
                _states.c.kind == "deal", _states.c.updated_at >= since
            )
        )
        return iter(rows.all())

    async def names(self, rep_ids: set[str], team_ids: set[str]) -> dict[tuple[str, str], str]:
        """``(rep|team, id)`` -> name, of those that exist."""
        found: dict[tuple[str, str], str] = {}
        for kind, names, ids in (("rep", _reps, rep_ids), ("team", _teams, team_ids)):
            if ids:
                rows = await self._conn.execute(
                    select(names.c.id, names.c.name).where(names.c.id.in_(sorted(ids)))
                )
                found.update({(kind, i): n for i, n in rows})
        return found
