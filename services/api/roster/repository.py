"""Roster SQL: teams, reps, identities, membership history, and the roster version.

Every statement runs on the connection it is given: the request's, whose transaction the edge
owns (``services.api.common.database``).

The bulk import's statements are set-based: one statement per kind of row, whatever the
size, each passing its rows as a few parameters (``_rows``: arrays on PostgreSQL, JSON on
SQLite) rather than one parameter per value, which the drivers cap at about 32,000.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Select, Subquery, Table, delete, func, or_, select, true
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from services.api.common.database import upsert
from services.api.common.freshness import bump_version
from shared.db.models import Identity, Rep, RepTeam, RosterVersion, Team, table
from shared.db.retry import ConcurrentInsert
from shared.db.rows import values_table

_teams = table(Team)
_reps = table(Rep)
_rep_teams = table(RepTeam)
_identities = table(Identity)
_version = table(RosterVersion)

Membership = tuple[int, str]  # (effective_from, team_id): in the team from then on
Pair = tuple[str, str]  # (provider, external_id)


@dataclass(frozen=True)
class RepRecord:
    id: str
    name: str
    identities: list[tuple[str, str]]  # (provider, external_id)
    memberships: list[Membership]  # ascending
    email: str | None = None
    left_at: int | None = None  # epoch seconds
    learned: dict[tuple[str, str], int] = field(default_factory=dict)  # by email: when


@dataclass(frozen=True, slots=True)
class RepFilter:
    """Which reps a list shows: of a team (now), matching ``q`` (id, name or email), by
    status at ``now`` (``active``: not left; ``left``; ``all``)."""

    now: int
    team: str | None = None
    q: str | None = None
    status: str = "active"


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
        await upsert(self._conn, _teams, "id", {"id": team_id, "name": name})

    async def delete_team(self, team_id: str) -> bool:
        query = delete(_teams).where(_teams.c.id == team_id)
        return bool((await self._conn.execute(query)).rowcount)

    async def save_rep(
        self, rep_id: str, name: str, email: str | None = None, left_at: int | None = None
    ) -> None:
        """Create or replace the rep's own fields. The service checks first that no other rep
        holds the email; one that another transaction gave a rep meanwhile breaks the unique
        constraint: ``ConcurrentInsert``, and the request runs again and sees it (409)."""
        row = {"id": rep_id, "name": name, "email": email, "left_at": left_at}
        try:
            await upsert(self._conn, _reps, "id", row)
        except IntegrityError:
            raise ConcurrentInsert("an email was given to another rep meanwhile") from None

    async def email_owner(self, email: str) -> str | None:
        query = select(_reps.c.id).where(_reps.c.email == email)
        return (await self._conn.execute(query)).scalar()

    async def rep(self, rep_id: str) -> RepRecord | None:
        found = await self._named_history(rep_id)
        if found is None:
            return None
        identities = (
            await self._conn.execute(
                select(_identities.c.provider, _identities.c.external_id, _identities.c.learned_at)
                .where(_identities.c.rep_id == rep_id)
                .order_by(_identities.c.provider, _identities.c.external_id)
            )
        ).all()
        name, email, left_at, history = found
        return RepRecord(
            rep_id,
            name,
            [(p, x) for p, x, _ in identities],
            history,
            email,
            left_at,
            {(p, x): int(at) for p, x, at in identities if at is not None},
        )

    async def memberships(self, rep_id: str) -> list[Membership] | None:
        """The rep's team history, ascending; None if there is no such rep. One query."""
        found = await self._named_history(rep_id)
        return None if found is None else found[3]

    async def _named_history(
        self, rep_id: str
    ) -> tuple[str, str | None, int | None, list[Membership]] | None:
        query = (
            select(_reps.c.name, _reps.c.email, _reps.c.left_at, _rep_teams.c.effective_from,
                   _rep_teams.c.team_id)
            .outerjoin(_rep_teams, _rep_teams.c.rep_id == _reps.c.id)
            .where(_reps.c.id == rep_id)
            .order_by(_rep_teams.c.effective_from)
        )  # fmt: skip
        rows = (await self._conn.execute(query)).all()
        if not rows:
            return None
        name, email, left_at = rows[0].name, rows[0].email, rows[0].left_at
        return name, email, left_at, [(s, t) for *_, s, t in rows if t is not None]

    async def all_reps(self) -> list[RepRecord]:
        """Every rep with membership history (identities left out: not needed for boards)."""
        reps = (
            await self._conn.execute(
                select(_reps.c.id, _reps.c.name, _reps.c.email, _reps.c.left_at)
            )
        ).all()
        history = await self._conn.execute(
            select(_rep_teams.c.rep_id, _rep_teams.c.effective_from, _rep_teams.c.team_id).order_by(
                _rep_teams.c.effective_from
            )
        )
        by_rep: dict[str, list[Membership]] = {}
        for rep_id, since, team_id in history:
            by_rep.setdefault(rep_id, []).append((since, team_id))
        return [RepRecord(r, n, [], by_rep.get(r, []), e, left) for r, n, e, left in reps]

    # --- lists: a page at a time, in id order ---------------------------------------------

    async def teams_page(
        self, limit: int, after: str | None, now: int
    ) -> list[tuple[str, str, int]]:
        """Up to ``limit`` teams after the id ``after``: (id, name, reps in it now)."""
        current = self._current_team(now)
        members = (
            select(current.label("team_id"))
            .where(or_(_reps.c.left_at.is_(None), _reps.c.left_at > now))
            .subquery()
        )
        counts = (
            select(members.c.team_id, func.count().label("n"))
            .group_by(members.c.team_id)
            .subquery()
        )
        query = (
            select(_teams.c.id, _teams.c.name, func.coalesce(counts.c.n, 0))
            .outerjoin(counts, counts.c.team_id == _teams.c.id)
            .order_by(_teams.c.id)
            .limit(limit)
        )
        if after is not None:
            query = query.where(_teams.c.id > after)
        return [(i, n, int(c)) for i, n, c in await self._conn.execute(query)]

    async def reps_page(self, which: RepFilter, limit: int, after: str | None) -> list[RepRecord]:
        """Up to ``limit`` reps after the id ``after`` that ``which`` shows, in full."""
        query = select(_reps.c.id).order_by(_reps.c.id).limit(limit)
        if after is not None:
            query = query.where(_reps.c.id > after)
        if which.team is not None:
            query = query.where(self._current_team(which.now) == which.team)
        if which.q:
            text = which.q.lower()
            query = query.where(
                or_(*(func.lower(column).contains(text, autoescape=True)
                      for column in (_reps.c.id, _reps.c.name, _reps.c.email)))
            )  # fmt: skip
        gone = _reps.c.left_at.is_not(None) & (_reps.c.left_at <= which.now)
        if which.status == "active":
            query = query.where(~gone)
        elif which.status == "left":
            query = query.where(gone)
        ids = [rep_id for (rep_id,) in await self._conn.execute(query)]
        found = [await self.rep(rep_id) for rep_id in ids]  # a page: at most 1000, by key
        return [rep for rep in found if rep is not None]

    def _current_team(self, now: int) -> Any:
        """The team a rep of the outer query is in at ``now`` (a correlated subquery)."""
        return (
            select(_rep_teams.c.team_id)
            .where(_rep_teams.c.rep_id == _reps.c.id, _rep_teams.c.effective_from <= now)
            .order_by(_rep_teams.c.effective_from.desc())
            .limit(1)
            .scalar_subquery()
        )

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
        """The rep holds exactly ``identities`` (distinct, each held by no other rep when its
        owner was read). One that another transaction gave a rep meanwhile raises
        ``ConcurrentInsert``: the request runs again, sees the new owner and answers 409, as
        if it had come second (the import does the same, in ``reassign_identities``)."""
        await self._conn.execute(delete(_identities).where(_identities.c.rep_id == rep_id))
        if not identities:
            return
        rows = [{"provider": p, "external_id": x, "rep_id": rep_id} for p, x in identities]
        insert = (
            self._insert(_identities)
            .values(rows)
            .on_conflict_do_nothing(index_elements=["provider", "external_id"])
            .returning(_identities.c.rep_id)
        )
        if len((await self._conn.execute(insert)).all()) < len(identities):
            raise ConcurrentInsert("an identity of the rep was given to another rep meanwhile")

    async def delete_rep(self, rep_id: str) -> bool:
        await self._conn.execute(delete(_identities).where(_identities.c.rep_id == rep_id))
        gone = await self._conn.execute(delete(_reps).where(_reps.c.id == rep_id))
        return bool(gone.rowcount)

    async def changed(self) -> None:
        """Bump the roster version: the KPI service reloads, caches and ETags move on."""
        await bump_version(self._conn, _version)

    # --- the bulk import: set-based ------------------------------------------------------

    async def team_ids(self) -> set[str]:
        return set((await self._conn.execute(select(_teams.c.id))).scalars())

    async def histories(self, rep_ids: Sequence[str]) -> dict[str, list[Membership]]:
        """The team history (ascending) of each of ``rep_ids`` that exists."""
        if not rep_ids:
            return {}
        wanted = self._rows(id=rep_ids)
        query = (
            select(_reps.c.id, _rep_teams.c.effective_from, _rep_teams.c.team_id)
            .outerjoin(_rep_teams, _rep_teams.c.rep_id == _reps.c.id)
            .where(_reps.c.id.in_(select(wanted.c.id)))
            .order_by(_reps.c.id, _rep_teams.c.effective_from)
        )
        found: dict[str, list[Membership]] = {}
        for rep_id, since, team_id in await self._conn.execute(query):
            history = found.setdefault(rep_id, [])
            if team_id is not None:
                history.append((since, team_id))
        return found

    async def owners(self, pairs: Sequence[Pair]) -> dict[Pair, str]:
        """The rep holding each of the identities ``pairs`` that someone holds."""
        if not pairs:
            return {}
        wanted = self._rows(p=[p for p, _ in pairs], x=[x for _, x in pairs])
        columns = (_identities.c.provider, _identities.c.external_id, _identities.c.rep_id)
        query = select(*columns).join(
            wanted,
            (_identities.c.provider == wanted.c.p) & (_identities.c.external_id == wanted.c.x),
        )
        return {(p, x): rep for p, x, rep in await self._conn.execute(query)}

    async def reps_now(
        self, rep_ids: Sequence[str]
    ) -> dict[str, tuple[str, str | None, set[Pair]]]:
        """Each of ``rep_ids`` that exists: its name, email and identities."""
        if not rep_ids:
            return {}
        wanted = self._rows(id=rep_ids)
        reps = await self._conn.execute(
            select(_reps.c.id, _reps.c.name, _reps.c.email).where(
                _reps.c.id.in_(select(wanted.c.id))
            )
        )
        found: dict[str, tuple[str, str | None, set[Pair]]] = {
            rep: (name, email, set()) for rep, name, email in reps
        }
        held = await self._conn.execute(
            select(_identities.c.rep_id, _identities.c.provider, _identities.c.external_id).where(
                _identities.c.rep_id.in_(select(wanted.c.id))
            )
        )
        for rep, provider, external_id in held:
            found[rep][2].add((provider, external_id))
        return found

    async def email_owners(self, emails: Sequence[str]) -> dict[str, str]:
        """The rep holding each of ``emails`` that someone holds."""
        if not emails:
            return {}
        wanted = self._rows(e=emails)
        query = select(_reps.c.email, _reps.c.id).where(_reps.c.email.in_(select(wanted.c.e)))
        return dict((await self._conn.execute(query)).all())

    async def set_emails(self, emails: Sequence[tuple[str, str | None]]) -> None:
        """Each rep ``(id, email)`` has that email: theirs are cleared first, so two reps of
        one import may swap theirs."""
        if not emails:
            return
        rows = self._rows(id=[r for r, _ in emails])
        await self._conn.execute(
            _reps.update().where(_reps.c.id.in_(select(rows.c.id))).values(email=None)
        )
        given = [(r, e) for r, e in emails if e is not None]
        if given:
            new = self._rows(id=[r for r, _ in given], e=[e for _, e in given])
            await self._conn.execute(
                _reps.update().where(_reps.c.id == new.c.id).values(email=new.c.e)
            )

    async def save_teams(self, teams: Sequence[tuple[str, str]]) -> None:
        """Create or rename the teams ``(id, name)``."""
        if not teams:
            return
        rows = self._rows(id=[t for t, _ in teams], name=[n for _, n in teams])
        insert = self._insert(_teams).from_select(["id", "name"], _all(rows))
        await self._conn.execute(
            insert.on_conflict_do_update(index_elements=["id"], set_={"name": insert.excluded.name})
        )

    async def add_teams(self, team_ids: Sequence[str]) -> None:
        """Create the teams ``team_ids``, named by their id, unless they exist."""
        if not team_ids:
            return
        rows = self._rows(id=team_ids)
        insert = self._insert(_teams).from_select(["id", "name"], _all(rows, rows.c.id, rows.c.id))
        await self._conn.execute(insert.on_conflict_do_nothing(index_elements=["id"]))

    async def save_reps(self, reps: Sequence[tuple[str, str]]) -> None:
        """Create or rename the reps ``(id, name)``."""
        if not reps:
            return
        rows = self._rows(id=[r for r, _ in reps], name=[n for _, n in reps])
        insert = self._insert(_reps).from_select(["id", "name"], _all(rows))
        await self._conn.execute(
            insert.on_conflict_do_update(index_elements=["id"], set_={"name": insert.excluded.name})
        )

    async def reassign_identities(
        self, rep_ids: Sequence[str], identities: Sequence[tuple[str, str, str]]
    ) -> None:
        """The reps ``rep_ids`` hold exactly ``identities`` ``(provider, external_id, rep_id)``
        (each held by none of the other reps: ``imports.plan`` saw to it). One that another
        transaction gave a rep meanwhile raises ``ConcurrentInsert``: the import runs again,
        sees the new owner and answers 409, as if it had come second."""
        if not rep_ids:
            return
        reps = self._rows(id=rep_ids)
        await self._conn.execute(
            delete(_identities).where(_identities.c.rep_id.in_(select(reps.c.id)))
        )
        if not identities:
            return
        rows = self._rows(
            p=[i[0] for i in identities], x=[i[1] for i in identities], r=[i[2] for i in identities]
        )
        insert = (
            self._insert(_identities)
            .from_select(["provider", "external_id", "rep_id"], _all(rows))
            .on_conflict_do_nothing(index_elements=["provider", "external_id"])
            .returning(_identities.c.rep_id)
        )
        if len((await self._conn.execute(insert)).all()) < len(identities):
            raise ConcurrentInsert("an identity of the import was given to a rep meanwhile")

    async def join_teams(self, memberships: Sequence[tuple[str, int, str]]) -> None:
        """Each rep ``(rep_id, since, team_id)`` is in the team from then on (replacing a change
        at that instant), as ``join_team`` for one."""
        if not memberships:
            return
        rows = self._rows(
            r=[m[0] for m in memberships],
            s=[m[1] for m in memberships],
            t=[m[2] for m in memberships],
        )
        insert = self._insert(_rep_teams).from_select(
            ["rep_id", "effective_from", "team_id"], _all(rows)
        )
        await self._conn.execute(
            insert.on_conflict_do_update(
                index_elements=["rep_id", "effective_from"],
                set_={"team_id": insert.excluded.team_id},
            )
        )

    def _insert(self, into: Table) -> Any:
        return (postgresql.insert if self._postgres else sqlite.insert)(into)

    @property
    def _postgres(self) -> bool:
        return self._conn.dialect.name == "postgresql"

    def _rows(self, **columns: Sequence[str] | Sequence[int]) -> Subquery:
        """The rows zipped from ``columns`` as a table (``shared.db.rows``)."""
        return values_table(self._postgres, **columns)


def _all(rows: Subquery, *columns: ColumnElement[Any]) -> Select[Any]:
    """Every row of ``rows`` (or these columns of it), as the source of an INSERT. The WHERE is
    SQLite's: without one, the ON CONFLICT of an upsert would read as the join's ON."""
    return (select(*columns) if columns else select(rows)).where(true())
