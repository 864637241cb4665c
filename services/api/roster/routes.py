"""Roster admin routes: teams, reps (with identities and team history)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Response

from services.api.common.auth import ADMIN_ACCESS, READ_ACCESS
from services.api.common.database import Db, api_router
from services.api.common.freshness import Fresh
from services.api.common.params import Id, Now
from services.api.roster import service
from services.api.roster.repository import RosterRepository
from services.api.roster.schemas import RepIn, RepOut, TeamIn, TeamOut

router = api_router(prefix="/v1", tags=["roster"])


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
