"""Roster admin routes: teams, reps (with identities and team history), the bulk import."""

from __future__ import annotations

import asyncio
from typing import Annotated, Literal

from fastapi import Depends, Query, Request, Response

from services.api.common.auth import ADMIN_ACCESS, READ_ACCESS
from services.api.common.database import Db, api_router
from services.api.common.exports import Export
from services.api.common.freshness import Fresh
from services.api.common.pages import DEFAULT_LIMIT, PageCursor, PageLimit
from services.api.common.params import DryRun, Id, Now, merge_patch
from services.api.roster import imports, service
from services.api.roster.imports import RosterImport
from services.api.roster.repository import RepFilter, RosterRepository
from services.api.roster.schemas import (
    Counted,
    ImportCounts,
    RepIn,
    RepList,
    RepOut,
    RepPatch,
    RepsCounted,
    RosterImportIn,
    TeamIn,
    TeamList,
    TeamOut,
    TeamPatch,
    inline_schema,
)
from shared.problems import Problem, read_body

router = api_router(prefix="/v1", tags=["roster"])
MAX_IMPORT_BYTES = 16 * 1024 * 1024
IMPORT_EXAMPLE = {
    "teams": [{"id": "paris", "name": "Paris Grands Comptes"}],
    "reps": [
        {"id": "chloe", "name": "Chloé Martin", "team_id": "paris",
         "email": "chloe.martin@example.com", "effective_from": "2027-01-01T00:00:00+01:00",
         "identities": [{"provider": "hubspot", "external_id": "812"}]},
    ],
}  # fmt: skip
IMPORT_BODY = {
    "required": True,
    "content": {
        "application/json": {"schema": inline_schema(RosterImportIn), "example": IMPORT_EXAMPLE},
        "text/csv": {
            "schema": {
                "type": "string",
                "description": f"header row {imports.CSV_HEADER}, then one row per identity "
                "(`,` or `;`, UTF-8 or Windows-1252: as Excel saves it)",
            },
            "example": "rep_id;name;team_id;provider;external_id;email\n"
            "chloe;Chloé Martin;paris;hubspot;812;chloe.martin@example.com\n"
            "chloe;Chloé Martin;paris;aircall;100042;chloe.martin@example.com\n",
        },
    },
}


def roster_repository(db: Db) -> RosterRepository:
    return RosterRepository(db)


Roster = Annotated[RosterRepository, Depends(roster_repository)]


@router.get(
    "/teams",
    response_model=TeamList,
    dependencies=READ_ACCESS,
    summary="The teams, a page at a time",
)
async def list_teams(
    _: Fresh,
    roster: Roster,
    now: Now,
    export: Export,
    limit: PageLimit = DEFAULT_LIMIT,
    cursor: PageCursor = None,
) -> TeamList | Response:
    """Every team in id order, with how many reps are in it now (``next_cursor`` for more;
    CSV or xlsx: this page)."""
    found = await service.teams(roster, limit, cursor, now)
    return export.of(found.items, "teams") if export.wanted else found


@router.put(
    "/teams/{team_id}",
    response_model=TeamOut,
    dependencies=ADMIN_ACCESS,
    summary="Create or rename a team",
)
async def put_team(team_id: Id, body: TeamIn, roster: Roster, now: Now) -> TeamOut:
    await service.save_team(roster, team_id, body.name)
    return await service.team(roster, team_id, now)


@router.patch(
    "/teams/{team_id}",
    response_model=TeamOut,
    dependencies=ADMIN_ACCESS,
    summary="Change a team's fields (JSON Merge Patch)",
    openapi_extra=merge_patch(TeamPatch),
)
async def patch_team(team_id: Id, body: TeamPatch, roster: Roster, now: Now) -> TeamOut:
    await service.patch_team(roster, team_id, body.name)
    return await service.team(roster, team_id, now)


@router.get(
    "/teams/{team_id}", response_model=TeamOut, dependencies=READ_ACCESS, summary="One team"
)
async def get_team(team_id: Id, _: Fresh, roster: Roster, now: Now) -> TeamOut:
    return await service.team(roster, team_id, now)


@router.get(
    "/reps",
    response_model=RepList,
    dependencies=READ_ACCESS,
    summary="The reps, a page at a time, by team, text or status",
)
async def list_reps(
    _: Fresh,
    roster: Roster,
    now: Now,
    export: Export,
    team: Annotated[str | None, Query(max_length=64, description="reps in this team now")] = None,
    q: Annotated[str | None, Query(max_length=200, description="in the id, name or email")] = None,
    status: Annotated[
        Literal["active", "left", "all"], Query(description="active: not left (default)")
    ] = "active",
    limit: PageLimit = DEFAULT_LIMIT,
    cursor: PageCursor = None,
) -> RepList | Response:
    """Reps in id order, each in full (``next_cursor`` for more; CSV or xlsx: this page, an
    identity a cell)."""
    which = RepFilter(now=service.epoch(now), team=team, q=q, status=status)
    found = await service.reps(roster, which, limit, cursor)
    return export.of(found.items, "reps") if export.wanted else found


@router.put(
    "/reps/{rep_id}",
    response_model=RepOut,
    dependencies=ADMIN_ACCESS,
    summary="Create or replace a rep (the whole rep: see PATCH to change a field)",
)
async def put_rep(rep_id: Id, body: RepIn, roster: Roster, now: Now) -> RepOut:
    """Everything not given is emptied: no email, no identities, not left; a ``team_id`` left
    out keeps the current team."""
    change = service.RepChange(
        name=body.name,
        team_id=body.team_id,
        identities=[(i.provider, i.external_id) for i in body.identities],
        since=service.epoch(body.effective_from or now),
        email=body.email,
        left_at=service.epoch(body.left_at) if body.left_at else None,
    )
    await service.save_rep(roster, rep_id, change)
    return await service.rep(roster, rep_id, now)


@router.patch(
    "/reps/{rep_id}",
    response_model=RepOut,
    dependencies=ADMIN_ACCESS,
    summary="Change a rep's fields: move, leave, email, identities (JSON Merge Patch)",
    openapi_extra=merge_patch(RepPatch),
)
async def patch_rep(rep_id: Id, body: RepPatch, roster: Roster, now: Now) -> RepOut:
    """Only the fields given change (RFC 7396): a move with ``effective_from`` keeps the
    identities; ``{"left_at": ...}`` lets a rep leave, ``null`` brings them back."""
    await service.patch_rep(roster, rep_id, body, now)
    return await service.rep(roster, rep_id, now)


@router.get("/reps/{rep_id}", response_model=RepOut, dependencies=READ_ACCESS, summary="One rep")
async def get_rep(rep_id: Id, _: Fresh, roster: Roster, now: Now) -> RepOut:
    return await service.rep(roster, rep_id, now)


@router.delete(
    "/teams/{team_id}", status_code=204, dependencies=ADMIN_ACCESS, summary="Delete a team"
)
async def delete_team(team_id: Id, roster: Roster) -> Response:
    await service.delete_team(roster, team_id)
    return Response(status_code=204)


@router.delete(
    "/reps/{rep_id}",
    status_code=204,
    dependencies=ADMIN_ACCESS,
    summary="Erase a rep (personal data gone, team totals kept; to let a rep leave: PATCH left_at)",
)
async def delete_rep(rep_id: Id, roster: Roster) -> Response:
    await service.delete_rep(roster, rep_id)
    return Response(status_code=204)


async def import_body(request: Request) -> RosterImport:
    """The import in the body, JSON or CSV by its ``Content-Type``, read and checked once per
    request: a run again after a conflict (``UnitOfWorkRoute``) reuses it."""
    parsed: RosterImport | None = getattr(request.state, "roster_import", None)
    if parsed is None:
        media = request.headers.get("content-type", "").partition(";")[0].strip().lower()
        if media == "text/csv":
            parse = imports.from_csv
        elif media in ("", "application/json") or media.endswith("+json"):
            parse = imports.from_json
        else:
            raise Problem(
                f"Content-Type {media!r}: send application/json or text/csv",
                status=415,
                slug="unsupported-media-type",
            )
        body = await read_body(request, MAX_IMPORT_BYTES, "; split the import")
        # Off the event loop: a 16 MiB body takes seconds to check, and every other request
        # (health probes included) must be answered meanwhile.
        parsed = request.state.roster_import = await asyncio.to_thread(parse, body)
    return parsed


@router.post(
    "/roster/import",
    response_model=ImportCounts,
    dependencies=ADMIN_ACCESS,
    summary="Create or update many teams and reps at once (JSON or CSV, all or nothing)",
    openapi_extra={"requestBody": IMPORT_BODY},
    responses={
        409: {"description": "an identity or an email belongs to a rep outside the import"},
        413: {"description": f"a body over {MAX_IMPORT_BYTES} bytes"},
        415: {"description": "neither JSON nor CSV"},
    },
)
async def import_roster(
    request: Request, roster: Roster, now: Now, dry_run: DryRun = False
) -> ImportCounts:
    """JSON ``{teams: [{id, name}], reps: [{id, name, team_id, identities, email?,
    effective_from?}]}``, or ``text/csv`` with one row per identity (as Excel writes it: ``,``
    or ``;``, UTF-8 or Windows-1252; teams it names that do not exist are created, named by
    their id). Each item means what its PUT would. ``?dry_run=1`` answers what would change
    (created, updated, unchanged, moved) or what is wrong, and writes nothing."""
    try:
        imported = await import_body(request)
        return await service.import_roster(roster, imported, now, dry_run)
    except Problem as problem:
        if not dry_run or problem.status not in (409, 422):
            raise
        return preview_of(problem)


def preview_of(problem: Problem) -> ImportCounts:
    """A dry run of an import a real one would refuse: nothing counted, its errors listed."""
    zero = {"created": 0, "updated": 0}
    return ImportCounts(
        dry_run=True,
        teams=Counted(**zero),
        reps=RepsCounted(**zero),
        identities=0,
        team_changes=0,
        errors=problem.extensions.get("errors") or [{"field": "body", "message": problem.detail}],
        errors_total=problem.extensions.get("errors_total", 1),
    )
