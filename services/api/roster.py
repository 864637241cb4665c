"""Roster admin routes: teams, reps (with identities and team history)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Path, Request, Response

from services.api.common.auth import require
from services.api.common.database import api_router
from services.api.common.freshness import Fresh
from services.api.roster_store import RosterConflict, RosterStore, UnknownTeam
from services.api.schemas import IdentityModel, Membership, RepIn, RepOut, TeamIn, TeamOut
from shared.problems import NotFound, Problem, Unprocessable
from shared.settings import KeyScope

router = api_router(prefix="/v1", tags=["roster"])
admin = [Depends(require(KeyScope.admin))]
reader = [Depends(require(KeyScope.read))]
Id = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._~-]+$")]


def _store(request: Request) -> RosterStore:
    store: RosterStore = request.app.state.roster
    return store


Store = Annotated[RosterStore, Depends(_store)]


async def _team_out(store: RosterStore, team_id: str) -> TeamOut:
    name = await store.get_team(team_id)
    if name is None:
        raise NotFound(f"no team {team_id!r}")
    members = await store.members(team_id, int(datetime.now(UTC).timestamp()))
    return TeamOut(id=team_id, name=name, members=sorted(members))


@router.put("/teams/{team_id}", response_model=TeamOut, dependencies=admin)
async def put_team(team_id: Id, body: TeamIn, store: Store) -> TeamOut:
    await store.put_team(team_id, body.name)
    return await _team_out(store, team_id)


@router.get("/teams/{team_id}", response_model=TeamOut, dependencies=reader)
async def get_team(team_id: Id, store: Store, _: Fresh) -> TeamOut:
    return await _team_out(store, team_id)


@router.delete("/teams/{team_id}", status_code=204, dependencies=admin)
async def delete_team(team_id: Id, store: Store) -> Response:
    if not await store.delete_team(team_id):
        raise NotFound(f"no team {team_id!r}")
    return Response(status_code=204)


async def _rep_out(store: RosterStore, rep_id: str) -> RepOut:
    rep = await store.get_rep(rep_id)
    if rep is None:
        raise NotFound(f"no rep {rep_id!r}")
    return RepOut(
        id=rep.id,
        name=rep.name,
        team_id=rep.team_at(int(datetime.now(UTC).timestamp())),
        identities=[IdentityModel(provider=p, external_id=x) for p, x in rep.identities],
        teams=[
            Membership(team_id=t, effective_from=datetime.fromtimestamp(s, UTC))
            for s, t in rep.memberships
        ],
    )


@router.put("/reps/{rep_id}", response_model=RepOut, dependencies=admin)
async def put_rep(rep_id: Id, body: RepIn, store: Store) -> RepOut:
    since = body.effective_from or datetime.now(UTC)
    try:
        await store.put_rep(
            rep_id,
            body.name,
            body.team_id,
            [(i.provider, i.external_id) for i in body.identities],
            int(since.timestamp()),
        )
    except UnknownTeam:
        raise Unprocessable(
            f"team_id: no team {body.team_id!r}; PUT /v1/teams/{body.team_id} first",
            errors=[{"field": "team_id", "message": "unknown team"}],
        ) from None
    except RosterConflict as exc:
        raise Problem(str(exc), status=409, slug="conflict") from None
    return await _rep_out(store, rep_id)


@router.get("/reps/{rep_id}", response_model=RepOut, dependencies=reader)
async def get_rep(rep_id: Id, store: Store, _: Fresh) -> RepOut:
    return await _rep_out(store, rep_id)


@router.delete("/reps/{rep_id}", status_code=204, dependencies=admin)
async def delete_rep(rep_id: Id, store: Store) -> Response:
    if not await store.delete_rep(rep_id):
        raise NotFound(f"no rep {rep_id!r}")
    return Response(status_code=204)
