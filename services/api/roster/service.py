"""The roster's rules: what a change may do, what it answers, and the lists.

A rep's team at a given time is ``shared.roster.team_at``, the one answer the KPI engine, the
boards, the contests and the roster's own answers all ask.

- **PUT** replaces the whole rep: what is not given is empty (no email, no identities, still
  here), except ``team_id``, which when left out keeps the current team.
- **PATCH** (JSON Merge Patch) changes only the fields given: a team move with
  ``effective_from`` keeps the identities; ``null`` removes an email or a leaving date.
- **Leaving** (``left_at``): the rep's history stays readable; activity after it is unassigned;
  boards and contests of windows that start after it leave the rep out.
- **Emails** are unique (case-insensitive); one held by another rep is a 409, as an identity is.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from services.api.common.database import in_transaction
from services.api.common.pages import decode_cursor, encode_cursor
from services.api.common.params import SubjectKind
from services.api.roster import imports
from services.api.roster.imports import RepItem, RepNow, RosterImport, RosterState
from services.api.roster.repository import Membership, RepFilter, RepRecord, RosterRepository
from services.api.roster.schemas import (
    IdentityOut,
    ImportCounts,
    RepList,
    RepOut,
    RepPatch,
    TeamList,
    TeamOut,
    TeamSummary,
)
from services.api.roster.schemas import Membership as MembershipOut
from shared.problems import Conflict, NotFound, Problem, refused
from shared.roster import present, team_at
from shared.windows import Window

Change = tuple[str, int, str]  # (rep_id, since, team_id): the rep joins the team from then on


def epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def _at(ts: int | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC)


@dataclass(frozen=True, slots=True)
class Subject:
    """What a KPI is about: a rep (and its team now) or a team (its own ``team_id``)."""

    kind: SubjectKind
    id: str
    team_id: str | None


def as_of(window: Window, now: datetime | None) -> int:
    """The instant a window's teams are read at: now, or its last instant if it is over."""
    return min(epoch(now or datetime.now(UTC)), window.end_ts - 1)


async def members_at(roster: RosterRepository, at: int) -> list[tuple[str, str]]:
    """Each rep on the floor at ``at`` with their team then (a team's target falls back to the
    sum of theirs)."""
    found = []
    for rep in await roster.all_reps():
        team = team_at(rep.memberships, at)
        if team is not None and present(rep.left_at, at):
            found.append((rep.id, team))
    return found


async def rep_subject(roster: RosterRepository, rep_id: str, now: datetime) -> Subject:
    memberships = await roster.memberships(rep_id)
    if memberships is None:
        raise NotFound(f"no rep {rep_id!r}")
    return Subject("rep", rep_id, team_at(memberships, epoch(now)))


async def team_subject(roster: RosterRepository, team_id: str) -> Subject:
    if await roster.team_name(team_id) is None:
        raise NotFound(f"no team {team_id!r}")
    return Subject("team", team_id, team_id)


# --- teams ----------------------------------------------------------------------------------


async def team(roster: RosterRepository, team_id: str, now: datetime) -> TeamOut:
    name = await roster.team_name(team_id)
    if name is None:
        raise NotFound(f"no team {team_id!r}")
    at = epoch(now)
    members = [
        r.id
        for r in await roster.all_reps()
        if team_at(r.memberships, at) == team_id and present(r.left_at, at)
    ]
    return TeamOut(id=team_id, name=name, members=sorted(members))


async def save_team(roster: RosterRepository, team_id: str, name: str) -> None:
    await roster.save_team(team_id, name)
    await roster.changed()


async def patch_team(roster: RosterRepository, team_id: str, name: str | None) -> None:
    current = await roster.team_name(team_id)
    if current is None:
        raise NotFound(f"no team {team_id!r}")
    if name is not None and name != current:
        await save_team(roster, team_id, name)


async def delete_team(roster: RosterRepository, team_id: str) -> None:
    if not await roster.delete_team(team_id):
        raise NotFound(f"no team {team_id!r}")
    await roster.changed()


async def teams(roster: RosterRepository, limit: int, cursor: str | None, now: datetime) -> (
    TeamList
):  # fmt: skip
    after = decode_cursor(cursor, (str,))
    found = await roster.teams_page(limit + 1, after[0] if after else None, epoch(now))
    shown = found[:limit]
    return TeamList(
        items=[TeamSummary(id=i, name=n, reps=c) for i, n, c in shown],
        next_cursor=encode_cursor([shown[-1][0]]) if len(found) > limit else None,
    )


# --- reps -----------------------------------------------------------------------------------


async def rep(roster: RosterRepository, rep_id: str, now: datetime) -> RepOut:
    found = await roster.rep(rep_id)
    if found is None:
        raise NotFound(f"no rep {rep_id!r}")
    return _rep_out(found, epoch(now))


def _identity_out(provider: str, external_id: str, learned_at: int | None) -> IdentityOut:
    if learned_at is None:
        return IdentityOut(provider=provider, external_id=external_id)
    return IdentityOut(
        provider=provider,
        external_id=external_id,
        learned_from="email",
        learned_at=datetime.fromtimestamp(learned_at, UTC),
    )


def _rep_out(rep: RepRecord, at: int) -> RepOut:
    return RepOut(
        id=rep.id,
        name=rep.name,
        team_id=team_at(rep.memberships, at),
        email=rep.email,
        left_at=_at(rep.left_at),
        identities=[_identity_out(p, x, rep.learned.get((p, x))) for p, x in rep.identities],
        teams=[
            MembershipOut(team_id=t, effective_from=datetime.fromtimestamp(s, UTC))
            for s, t in rep.memberships
        ],
    )


async def reps(
    roster: RosterRepository, which: RepFilter, limit: int, cursor: str | None
) -> RepList:
    after = decode_cursor(cursor, (str,))
    found = await roster.reps_page(which, limit + 1, after[0] if after else None)
    shown = found[:limit]
    return RepList(
        items=[_rep_out(r, which.now) for r in shown],
        next_cursor=encode_cursor([shown[-1].id]) if len(found) > limit else None,
    )


@dataclass(frozen=True, slots=True)
class RepChange:
    """A rep as a PUT or a PATCH leaves it: ``identities`` None keeps them, ``team_id`` None
    keeps the team."""

    name: str
    team_id: str | None
    identities: list[tuple[str, str]] | None
    since: int
    email: str | None
    left_at: int | None


async def save_rep(roster: RosterRepository, rep_id: str, change: RepChange) -> None:
    """Create or change a rep; a new ``team_id`` counts from ``since`` (epoch seconds)."""
    if change.team_id is not None and await roster.team_name(change.team_id) is None:
        raise refused(("team_id", f"no team {change.team_id!r}; PUT /v1/teams/{change.team_id} "
                                  "first"))  # fmt: skip
    if change.email is not None:
        owner = await roster.email_owner(change.email)
        if owner is not None and owner != rep_id:
            raise Conflict(
                f"email {change.email} belongs to rep {owner}",
                errors=[{"field": "body.email", "message": f"the email of rep {owner}"}],
            )
    if change.identities is not None:
        await _claim_identities(roster, rep_id, change.identities)
    await roster.save_rep(rep_id, change.name, change.email, change.left_at)
    await _move(roster, rep_id, change.team_id, change.since)
    await roster.changed()


async def patch_rep(roster: RosterRepository, rep_id: str, patch: RepPatch, now: datetime) -> None:
    """Change the fields ``patch`` gives (JSON Merge Patch), the others as they are."""
    current = await roster.rep(rep_id)
    if current is None:
        raise NotFound(f"no rep {rep_id!r}")
    given = patch.model_fields_set
    for name in ("name", "identities", "team_id"):
        if name in given and getattr(patch, name) is None:
            raise refused((name, f"{name} cannot be removed" + (
                "; move the rep to another team, or PATCH left_at" if name == "team_id" else ""
            )))  # fmt: skip
    identities = None
    if "identities" in given and patch.identities is not None:
        identities = [(i.provider, i.external_id) for i in patch.identities]
    change = RepChange(
        name=patch.name if patch.name is not None else current.name,
        team_id=patch.team_id,
        identities=identities,
        since=epoch(patch.effective_from or now),
        email=patch.email if "email" in given else current.email,
        left_at=_left(patch.left_at) if "left_at" in given else current.left_at,
    )
    await save_rep(roster, rep_id, change)


def _left(moment: datetime | None) -> int | None:
    return None if moment is None else epoch(moment)


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


async def delete_rep(roster: RosterRepository, rep_id: str) -> None:
    if not await roster.delete_rep(rep_id):
        raise NotFound(f"no rep {rep_id!r}")
    await roster.changed()


# --- the bulk import ------------------------------------------------------------------------


async def import_roster(
    roster: RosterRepository, imported: RosterImport, now: datetime, dry_run: bool = False
) -> ImportCounts:
    """Apply a checked bulk import (``imports``): what its PUTs would do, in a few set-based
    statements whatever its size, and one roster version bump (the KPI service reloads the
    roster once, and re-credits the unassigned activity of the identities it adds). A
    ``dry_run`` answers the same counts and writes nothing."""
    rep_ids = imported.rep_ids()
    found = await roster.reps_now(rep_ids)
    emails = sorted({r.email for r in imported.reps if r.email_given and r.email})
    state = RosterState(
        teams=await roster.team_ids(),
        histories=await roster.histories(rep_ids),
        owners=await roster.owners(imported.pairs()),
        reps={r: RepNow(n, e, frozenset(i)) for r, (n, e, i) in found.items()},
        email_owners=await roster.email_owners(emails),
    )
    changes = _team_changes(imported.reps, state, epoch(now))
    plan = await asyncio.to_thread(imports.plan, imported, state, changes)  # 50,000 reps: CPU
    if dry_run:
        return plan.counts.model_copy(update={"dry_run": True})
    await roster.save_teams(plan.teams)
    await roster.add_teams(plan.new_teams)
    await roster.save_reps(plan.reps)
    await roster.set_emails(plan.emails)
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
        email: str | None = None,
    ) -> None:
        change = RepChange(name, team_id, identities, effective_from, email, None)
        await in_transaction(
            self._db,
            lambda conn: save_rep(RosterRepository(conn), rep_id, change),
            what="rep",
        )
