"""The roster's rules: who is in which team when, what a change may do, and what it answers.

A rep's team at a given time is decided here, by ``team_at``, and nowhere else in the API: the
KPIs, the boards and the roster's own answers all ask it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from services.api.common.database import in_transaction
from services.api.common.params import SubjectKind
from services.api.roster import imports
from services.api.roster.imports import RepItem, RosterImport, RosterState
from services.api.roster.repository import Membership, RepRecord, RosterRepository
from services.api.roster.schemas import IdentityModel, ImportCounts, RepOut, TeamOut
from services.api.roster.schemas import Membership as MembershipOut
from shared.problems import NotFound, Problem, Unprocessable

Change = tuple[str, int, str]  # (rep_id, since, team_id): the rep joins the team from then on


def team_at(memberships: list[Membership], at: int) -> str | None:
    """The team of a rep with these ``memberships`` (ascending) at the instant ``at``."""
    current = [team for since, team in memberships if since <= at]
    return current[-1] if current else None


def epoch(moment: datetime) -> int:
    return int(moment.timestamp())


@dataclass(frozen=True, slots=True)
class Subject:
    """What a KPI is about: a rep (and its team now) or a team (its own ``team_id``)."""

    kind: SubjectKind
    id: str
    team_id: str | None


async def rep_subject(roster: RosterRepository, rep_id: str, now: datetime) -> Subject:
    memberships = await roster.memberships(rep_id)
    if memberships is None:
        raise NotFound(f"no rep {rep_id!r}")
    return Subject("rep", rep_id, team_at(memberships, epoch(now)))


async def team_subject(roster: RosterRepository, team_id: str) -> Subject:
    if await roster.team_name(team_id) is None:
        raise NotFound(f"no team {team_id!r}")
    return Subject("team", team_id, team_id)


async def team(roster: RosterRepository, team_id: str, now: datetime) -> TeamOut:
    name = await roster.team_name(team_id)
    if name is None:
        raise NotFound(f"no team {team_id!r}")
    at = epoch(now)
    members = [r.id for r in await roster.all_reps() if team_at(r.memberships, at) == team_id]
    return TeamOut(id=team_id, name=name, members=sorted(members))


async def save_team(roster: RosterRepository, team_id: str, name: str) -> None:
    await roster.save_team(team_id, name)
    await roster.changed()


async def delete_team(roster: RosterRepository, team_id: str) -> None:
    if not await roster.delete_team(team_id):
        raise NotFound(f"no team {team_id!r}")
    await roster.changed()


async def rep(roster: RosterRepository, rep_id: str, now: datetime) -> RepOut:
    found = await roster.rep(rep_id)
    if found is None:
        raise NotFound(f"no rep {rep_id!r}")
    return _rep_out(found, epoch(now))


def _rep_out(rep: RepRecord, at: int) -> RepOut:
    return RepOut(
        id=rep.id,
        name=rep.name,
        team_id=team_at(rep.memberships, at),
        identities=[IdentityModel(provider=p, external_id=x) for p, x in rep.identities],
        teams=[
            MembershipOut(team_id=t, effective_from=datetime.fromtimestamp(s, UTC))
            for s, t in rep.memberships
        ],
    )


async def save_rep(
    roster: RosterRepository,
    rep_id: str,
    name: str,
    team_id: str | None,
    identities: list[tuple[str, str]],
    since: int,
) -> None:
    """Create or change a rep; a new ``team_id`` counts from ``since`` (epoch seconds)."""
    if team_id is not None and await roster.team_name(team_id) is None:
        raise Unprocessable(
            f"team_id: no team {team_id!r}; PUT /v1/teams/{team_id} first",
            errors=[{"field": "team_id", "message": "unknown team"}],
        )
    await _claim_identities(roster, rep_id, identities)
    await roster.save_rep(rep_id, name)
    await _move(roster, rep_id, team_id, since)
    await roster.changed()


async def _claim_identities(
    roster: RosterRepository, rep_id: str, identities: list[tuple[str, str]]
) -> None:
    """The rep's identities become exactly ``identities``; one owned by another rep is a 409
    naming it (also when another request gave it a rep meanwhile: see ``replace_identities``)."""
    for n, (provider, external_id) in enumerate(identities):
        owner = await roster.identity_owner(provider, external_id)
        if owner is not None and owner != rep_id:
            message = f"identity {provider}:{external_id} belongs to rep {owner}"
            field = f"body.identities.{n}.external_id"
            raise Problem(
                message, status=409, slug="conflict", errors=[{"field": field, "message": message}]
            )
    await roster.replace_identities(rep_id, list(dict.fromkeys(identities)))


async def _move(roster: RosterRepository, rep_id: str, team_id: str | None, since: int) -> None:
    """Record a team change from ``since`` unless the rep is already in that team then."""
    if team_id is None or not changes_team(await roster.memberships(rep_id) or [], team_id, since):
        return
    await roster.join_team(rep_id, team_id, since)


def changes_team(memberships: list[Membership], team_id: str, since: int) -> bool:
    """Whether joining ``team_id`` from ``since`` changes the rep's history: it does unless the
    rep is in that team then already."""
    return team_at(memberships, since) != team_id


async def import_roster(
    roster: RosterRepository, imported: RosterImport, now: datetime
) -> ImportCounts:
    """Apply a checked bulk import (``imports``): what its PUTs would do, in a few set-based
    statements whatever its size, and one roster version bump (the KPI service reloads the
    roster once, and re-credits the unassigned activity of the identities it adds)."""
    rep_ids = imported.rep_ids()
    state = RosterState(
        teams=await roster.team_ids(),
        histories=await roster.histories(rep_ids),
        owners=await roster.owners(imported.pairs()),
    )
    changes = _team_changes(imported.reps, state, epoch(now))
    plan = await asyncio.to_thread(imports.plan, imported, state, changes)  # 50,000 reps: pure CPU
    await roster.save_teams(plan.teams)
    await roster.add_teams(plan.new_teams)
    await roster.save_reps(plan.reps)
    await roster.reassign_identities(rep_ids, plan.identities)
    await roster.join_teams(plan.memberships)
    await roster.changed()
    return plan.counts


def _team_changes(reps: list[RepItem], state: RosterState, now: int) -> list[Change]:
    """The team changes of an import's reps: each as ``save_rep`` would record it."""
    changes = []
    for rep in reps:
        since = now if rep.since is None else rep.since
        history = state.histories.get(rep.id, [])
        if rep.team_id is not None and changes_team(history, rep.team_id, since):
            changes.append((rep.id, since, rep.team_id))
    return changes


async def delete_rep(roster: RosterRepository, rep_id: str) -> None:
    if not await roster.delete_rep(rep_id):
        raise NotFound(f"no rep {rep_id!r}")
    await roster.changed()


class RosterStore:
    """The roster's changes for code outside a request (seeding, tests, benchmarks): each call
    is a transaction of its own, run again on a conflict, as an API write is."""

    def __init__(self, db: AsyncEngine) -> None:
        self._db = db

    async def put_team(self, team_id: str, name: str) -> None:
        await in_transaction(
            self._db, lambda conn: save_team(RosterRepository(conn), team_id, name), what="team"
        )

    async def put_rep(
        self,
        rep_id: str,
        name: str,
        team_id: str | None,
        identities: list[tuple[str, str]],
        effective_from: int,
    ) -> None:
        await in_transaction(
            self._db,
            lambda conn: save_rep(
                RosterRepository(conn), rep_id, name, team_id, identities, effective_from
            ),
            what="rep",
        )
