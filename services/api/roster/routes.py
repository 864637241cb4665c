"""Roster admin routes: teams, reps (with identities and team history), the bulk import."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import Depends, Request, Response

from services.api.common.auth import ADMIN_ACCESS, READ_ACCESS
from services.api.common.database import Db, api_router
from services.api.common.freshness import Fresh
from services.api.common.params import Id, Now
from services.api.roster import imports, service
from services.api.roster.imports import RosterImport
from services.api.roster.repository import RosterRepository
from services.api.roster.schemas import (
    ImportCounts,
    RepIn,
    RepOut,
    RosterImportIn,
    TeamIn,
    TeamOut,
    inline_schema,
)
from shared.problems import Problem, read_body

router = api_router(prefix="/v1", tags=["roster"])
MAX_IMPORT_BYTES = 16 * 1024 * 1024
IMPORT_BODY = {
    "required": True,
    "content": {
        "application/json": {"schema": inline_schema(RosterImportIn)},
        "text/csv": {
            "schema": {
                "type": "string",
                "description": f"header row {imports.CSV_HEADER}, then one row per identity",
            }
        },
    },
}


def roster_repository(db: Db) -> RosterRepository:
    return RosterRepository(db)


Roster = Annotated[RosterRepository, Depends(roster_repository)]


@router.put("/teams/{team_id}", response_model=TeamOut, dependencies=ADMIN_ACCESS)
async def put_team(team_id: Id, body: TeamIn, roster: Roster, now: Now) -> TeamOut:
    await service.save_team(roster, team_id, body.name)
    return await service.team(roster, team_id, now)


@router.get("/teams/{team_id}", response_model=TeamOut, dependencies=READ_ACCESS)
async def get_team(team_id: Id, _: Fresh, roster: Roster, now: Now) -> TeamOut:
    return await service.team(roster, team_id, now)


@router.put("/reps/{rep_id}", response_model=RepOut, dependencies=ADMIN_ACCESS)
async def put_rep(rep_id: Id, body: RepIn, roster: Roster, now: Now) -> RepOut:
    identities = [(i.provider, i.external_id) for i in body.identities]
    since = service.epoch(body.effective_from or now)
    await service.save_rep(roster, rep_id, body.name, body.team_id, identities, since)
    return await service.rep(roster, rep_id, now)


@router.get("/reps/{rep_id}", response_model=RepOut, dependencies=READ_ACCESS)
async def get_rep(rep_id: Id, _: Fresh, roster: Roster, now: Now) -> RepOut:
    return await service.rep(roster, rep_id, now)


@router.delete("/teams/{team_id}", status_code=204, dependencies=ADMIN_ACCESS)
async def delete_team(team_id: Id, roster: Roster) -> Response:
    await service.delete_team(roster, team_id)
    return Response(status_code=204)


@router.delete("/reps/{rep_id}", status_code=204, dependencies=ADMIN_ACCESS)
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
    openapi_extra={"requestBody": IMPORT_BODY},
    responses={
        409: {"description": "an identity belongs to a rep outside the import"},
        413: {"description": f"a body over {MAX_IMPORT_BYTES} bytes"},
        415: {"description": "neither JSON nor CSV"},
    },
)
async def import_roster(
    imported: Annotated[RosterImport, Depends(import_body)], roster: Roster, now: Now
) -> ImportCounts:
    """Create or update many teams and reps at once, all or nothing: JSON
    ``{teams: [{id, name}], reps: [{id, name, team_id, identities, effective_from?}]}``, or
    ``text/csv`` with one row per identity (teams it names that do not exist are created,
    named by their id). Each item means what its PUT would."""
    return await service.import_roster(roster, imported, now)
