"""Roster SQL: teams, reps, identities, membership history. Every change bumps the version."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Table, delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared.db.models import Identity, Rep, RepTeam, RosterVersion, Team, table
from shared.db.retry import retrying

_teams = table(Team)
_reps = table(Rep)
_rep_teams = table(RepTeam)
_identities = table(Identity)
_version = table(RosterVersion)


class RosterConflict(Exception):
    """The change contradicts the roster (e.g. an identity another rep owns)."""


class UnknownTeam(Exception):
    pass


@dataclass(frozen=True)
class RepRecord:
    id: str
    name: str
    identities: list[tuple[str, str]]
    memberships: list[tuple[int, str]]  # (effective_from, team_id), ascending

    def team_at(self, ts: int) -> str | None:
        current = [team for since, team in self.memberships if since <= ts]
        return current[-1] if current else None


class RosterStore:
    """Roster reads and writes. Each write is one transaction, run again on a deadlock or a
    serialisation failure (``retrying``): two admins saving at once must both succeed."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._db = engine

    async def put_team(self, team_id: str, name: str) -> None:
        await retrying(lambda: self._put_team_tx(team_id, name), what="put team")

    async def _put_team_tx(self, team_id: str, name: str) -> None:
        async with self._db.begin() as conn:
            changed = await conn.execute(
                update(_teams).where(_teams.c.id == team_id).values(name=name)
            )
            if changed.rowcount == 0:
                await conn.execute(_teams.insert().values(id=team_id, name=name))
            await bump_roster_version(conn)

    async def get_team(self, team_id: str) -> str | None:
        async with self._db.connect() as conn:
            return (
                await conn.execute(select(_teams.c.name).where(_teams.c.id == team_id))
            ).scalar()

    async def delete_team(self, team_id: str) -> bool:
        return await retrying(lambda: self._delete_team_tx(team_id), what="delete team")

    async def _delete_team_tx(self, team_id: str) -> bool:
        async with self._db.begin() as conn:
            gone = (await conn.execute(delete(_teams).where(_teams.c.id == team_id))).rowcount
            await bump_roster_version(conn)
        return bool(gone)

    async def put_rep(
        self,
        rep_id: str,
        name: str,
        team_id: str | None,
        identities: list[tuple[str, str]],
        effective_from: int,
    ) -> None:
        await retrying(
            lambda: self._put_rep_tx(rep_id, name, team_id, identities, effective_from),
            what="put rep",
        )

    async def _put_rep_tx(
        self,
        rep_id: str,
        name: str,
        team_id: str | None,
        identities: list[tuple[str, str]],
        effective_from: int,
    ) -> None:
        async with self._db.begin() as conn:
            if team_id is not None and not await _exists(conn, _teams, team_id):
                raise UnknownTeam(team_id)
            await _claim_identities(conn, rep_id, identities)
            changed = await conn.execute(
                update(_reps).where(_reps.c.id == rep_id).values(name=name)
            )
            if changed.rowcount == 0:
                await conn.execute(_reps.insert().values(id=rep_id, name=name))
            await _move(conn, rep_id, team_id, effective_from)
            await bump_roster_version(conn)

    async def rep_team(self, rep_id: str, at: int) -> tuple[bool, str | None]:
        """(whether the rep exists, the rep's team at ``at``), in one query."""
        team = (
            select(_rep_teams.c.team_id)
            .where(_rep_teams.c.rep_id == rep_id, _rep_teams.c.effective_from <= at)
            .order_by(_rep_teams.c.effective_from.desc())
            .limit(1)
            .scalar_subquery()
        )
        async with self._db.connect() as conn:
            row = (await conn.execute(select(_reps.c.id, team).where(_reps.c.id == rep_id))).first()
        return (False, None) if row is None else (True, row[1])

    async def get_rep(self, rep_id: str) -> RepRecord | None:
        async with self._db.connect() as conn:
            name = (await conn.execute(select(_reps.c.name).where(_reps.c.id == rep_id))).scalar()
            if name is None:
                return None
            idents = await conn.execute(
                select(_identities.c.provider, _identities.c.external_id)
                .where(_identities.c.rep_id == rep_id)
                .order_by(_identities.c.provider)
            )
            history = await conn.execute(
                select(_rep_teams.c.effective_from, _rep_teams.c.team_id)
                .where(_rep_teams.c.rep_id == rep_id)
                .order_by(_rep_teams.c.effective_from)
            )
            return RepRecord(
                rep_id, name, [(p, x) for p, x in idents], [(s, t) for s, t in history]
            )

    async def delete_rep(self, rep_id: str) -> bool:
        return await retrying(lambda: self._delete_rep_tx(rep_id), what="delete rep")

    async def _delete_rep_tx(self, rep_id: str) -> bool:
        async with self._db.begin() as conn:
            await conn.execute(delete(_identities).where(_identities.c.rep_id == rep_id))
            gone = (await conn.execute(delete(_reps).where(_reps.c.id == rep_id))).rowcount
            await bump_roster_version(conn)
        return bool(gone)

    async def all_reps(self) -> list[RepRecord]:
        """Every rep with membership history (identities left out: not needed for boards)."""
        async with self._db.connect() as conn:
            reps = (await conn.execute(select(_reps.c.id, _reps.c.name))).all()
            history = (
                await conn.execute(
                    select(
                        _rep_teams.c.rep_id, _rep_teams.c.effective_from, _rep_teams.c.team_id
                    ).order_by(_rep_teams.c.effective_from)
                )
            ).all()
        by_rep: dict[str, list[tuple[int, str]]] = {}
        for rep_id, since, team_id in history:
            by_rep.setdefault(rep_id, []).append((since, team_id))
        return [RepRecord(r, n, [], by_rep.get(r, [])) for r, n in reps]

    async def all_teams(self) -> dict[str, str]:
        async with self._db.connect() as conn:
            rows = await conn.execute(select(_teams.c.id, _teams.c.name))
            return {row.id: row.name for row in rows}

    async def members(self, team_id: str, at: int) -> list[str]:
        return [r.id for r in await self.all_reps() if r.team_at(at) == team_id]


async def _exists(conn: AsyncConnection, source: Table, key: str) -> bool:
    return (await conn.execute(select(source.c.id).where(source.c.id == key))).first() is not None


async def _claim_identities(
    conn: AsyncConnection, rep_id: str, identities: list[tuple[str, str]]
) -> None:
    """The rep's identities become exactly ``identities``; one owned by another rep conflicts."""
    for provider, external_id in identities:
        owner = (
            await conn.execute(
                select(_identities.c.rep_id).where(
                    _identities.c.provider == provider, _identities.c.external_id == external_id
                )
            )
        ).scalar()
        if owner is not None and owner != rep_id:
            raise RosterConflict(f"identity {provider}:{external_id} belongs to rep {owner}")
    await conn.execute(delete(_identities).where(_identities.c.rep_id == rep_id))
    if identities:
        await conn.execute(
            _identities.insert(),
            [
                {"provider": p, "external_id": x, "rep_id": rep_id}
                for p, x in dict.fromkeys(identities)
            ],
        )


async def _move(conn: AsyncConnection, rep_id: str, team_id: str | None, since: int) -> None:
    """Record a team change from ``since`` unless the rep is already in that team then."""
    current = (
        await conn.execute(
            select(_rep_teams.c.team_id)
            .where(_rep_teams.c.rep_id == rep_id, _rep_teams.c.effective_from <= since)
            .order_by(_rep_teams.c.effective_from.desc())
            .limit(1)
        )
    ).scalar()
    if team_id is None or current == team_id:
        return
    await conn.execute(
        delete(_rep_teams).where(
            _rep_teams.c.rep_id == rep_id, _rep_teams.c.effective_from == since
        )
    )
    await conn.execute(
        _rep_teams.insert().values(rep_id=rep_id, effective_from=since, team_id=team_id)
    )


async def bump_roster_version(conn: AsyncConnection) -> None:
    """Roster and targets changed: the KPI service reloads, caches and ETags move on."""
    bumped = await conn.execute(
        update(_version).where(_version.c.id == 1).values(version=_version.c.version + 1)
    )
    if bumped.rowcount == 0:
        await conn.execute(_version.insert().values(id=1, version=1))
