"""Roster SQL: teams, reps, identities, membership history, and the roster version.

Every statement runs on the connection it is given: the request's, whose transaction the edge
owns (``services.api.common.database``).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from services.api.common.freshness import bump_version
from shared.db.models import Identity, Rep, RepTeam, RosterVersion, Team, table

_teams = table(Team)
_reps = table(Rep)
_rep_teams = table(RepTeam)
_identities = table(Identity)
_version = table(RosterVersion)

Membership = tuple[int, str]  # (effective_from, team_id): in the team from then on


@dataclass(frozen=True)
class RepRecord:
    id: str
    name: str
    identities: list[tuple[str, str]]  # (provider, external_id)
    memberships: list[Membership]  # ascending


class RosterRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def team_name(self, team_id: str) -> str | None:
        query = select(_teams.c.name).where(_teams.c.id == team_id)
        return (await self._conn.execute(query)).scalar()

    async def all_teams(self) -> dict[str, str]:
        rows = await self._conn.execute(select(_teams.c.id, _teams.c.name))
        return {row.id: row.name for row in rows}

    async def save_team(self, team_id: str, name: str) -> None:
        query = update(_teams).where(_teams.c.id == team_id).values(name=name)
        if (await self._conn.execute(query)).rowcount == 0:
            await self._conn.execute(_teams.insert().values(id=team_id, name=name))

    async def delete_team(self, team_id: str) -> bool:
        query = delete(_teams).where(_teams.c.id == team_id)
        return bool((await self._conn.execute(query)).rowcount)

    async def save_rep(self, rep_id: str, name: str) -> None:
        query = update(_reps).where(_reps.c.id == rep_id).values(name=name)
        if (await self._conn.execute(query)).rowcount == 0:
            await self._conn.execute(_reps.insert().values(id=rep_id, name=name))

    async def rep(self, rep_id: str) -> RepRecord | None:
        found = await self._named_history(rep_id)
        if found is None:
            return None
        identities = await self._conn.execute(
            select(_identities.c.provider, _identities.c.external_id)
            .where(_identities.c.rep_id == rep_id)
            .order_by(_identities.c.provider)
        )
        return RepRecord(rep_id, found[0], [(p, x) for p, x in identities], found[1])

    async def memberships(self, rep_id: str) -> list[Membership] | None:
        """The rep's team history, ascending; None if there is no such rep. One query."""
        found = await self._named_history(rep_id)
        return None if found is None else found[1]

    async def _named_history(self, rep_id: str) -> tuple[str, list[Membership]] | None:
        query = (
            select(_reps.c.name, _rep_teams.c.effective_from, _rep_teams.c.team_id)
            .outerjoin(_rep_teams, _rep_teams.c.rep_id == _reps.c.id)
            .where(_reps.c.id == rep_id)
            .order_by(_rep_teams.c.effective_from)
        )
        rows = (await self._conn.execute(query)).all()
        if not rows:
            return None
        return rows[0].name, [(since, team) for _, since, team in rows if team is not None]

    async def all_reps(self) -> list[RepRecord]:
        """Every rep with membership history (identities left out: not needed for boards)."""
        reps = (await self._conn.execute(select(_reps.c.id, _reps.c.name))).all()
        history = await self._conn.execute(
            select(_rep_teams.c.rep_id, _rep_teams.c.effective_from, _rep_teams.c.team_id).order_by(
                _rep_teams.c.effective_from
            )
        )
        by_rep: dict[str, list[Membership]] = {}
        for rep_id, since, team_id in history:
            by_rep.setdefault(rep_id, []).append((since, team_id))
        return [RepRecord(r, n, [], by_rep.get(r, [])) for r, n in reps]

    async def join_team(self, rep_id: str, team_id: str, since: int) -> None:
        """The rep is in ``team_id`` from ``since`` on (replacing a change at that instant)."""
        await self._conn.execute(
            delete(_rep_teams).where(
                _rep_teams.c.rep_id == rep_id, _rep_teams.c.effective_from == since
            )
        )
        await self._conn.execute(
            _rep_teams.insert().values(rep_id=rep_id, effective_from=since, team_id=team_id)
        )

    async def identity_owner(self, provider: str, external_id: str) -> str | None:
        query = select(_identities.c.rep_id).where(
            _identities.c.provider == provider, _identities.c.external_id == external_id
        )
        return (await self._conn.execute(query)).scalar()

    async def replace_identities(self, rep_id: str, identities: list[tuple[str, str]]) -> None:
        await self._conn.execute(delete(_identities).where(_identities.c.rep_id == rep_id))
        if identities:
            await self._conn.execute(
                _identities.insert(),
                [{"provider": p, "external_id": x, "rep_id": rep_id} for p, x in identities],
            )

    async def delete_rep(self, rep_id: str) -> bool:
        await self._conn.execute(delete(_identities).where(_identities.c.rep_id == rep_id))
        gone = await self._conn.execute(delete(_reps).where(_reps.c.id == rep_id))
        return bool(gone.rowcount)

    async def changed(self) -> None:
        """Bump the roster version: the KPI service reloads, caches and ETags move on."""
        await bump_version(self._conn, _version)
