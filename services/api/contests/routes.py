"""Contests: ``PUT/GET/DELETE /v1/contests/{id}``, ``GET /v1/contests?status=``, the standings
as CSV or xlsx, and ``GET /v1/stream/contests/{id}`` (Server-Sent Events)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request, Response
from fastapi.responses import StreamingResponse

from services.api.common.auth import ADMIN_ACCESS, READ_ACCESS
from services.api.common.database import Db, api_router
from services.api.common.exports import Export
from services.api.common.freshness import Fresh, FreshApart, cache_headers
from services.api.common.pages import DEFAULT_LIMIT, PageCursor, PageLimit
from services.api.common.params import AppSettings, Id, Now
from services.api.common.sse import sse_response
from services.api.contests import definition
from services.api.contests.repository import ContestRepository
from services.api.contests.schemas import (
    ContestIn,
    ContestList,
    ContestOut,
    ContestSummary,
)
from services.api.contests.scoring import Status
from services.api.contests.standings import Standings, StandingsSpec, listed, summary
from services.api.live.hub import BoardHub
from services.api.roster.repository import RosterRepository
from services.api.roster.service import epoch

router = api_router(prefix="/v1", tags=["contests"])
EVERY_ROW = 10_000_000
Limit = Annotated[int, Query(ge=1, le=10_000, description="rows of the standings returned")]


def app_standings(request: Request) -> Standings:
    standings: Standings = request.app.state.standings
    return standings


def app_contest_hub(request: Request) -> BoardHub[StandingsSpec]:
    hub: BoardHub[StandingsSpec] = request.app.state.contest_hub
    return hub


def contest_repository(db: Db) -> ContestRepository:
    return ContestRepository(db)


AppStandings = Annotated[Standings, Depends(app_standings)]
AppContestHub = Annotated[BoardHub[StandingsSpec], Depends(app_contest_hub)]
Contests = Annotated[ContestRepository, Depends(contest_repository)]


@router.put(
    "/contests/{contest_id}",
    response_model=ContestSummary,
    dependencies=ADMIN_ACCESS,
    summary="Create or redefine a contest",
)
async def put_contest(
    contest_id: Id, body: ContestIn, db: Db, contests: Contests, settings: AppSettings, now: Now
) -> ContestSummary:
    """Create or redefine a contest: its definition and status (the standings: GET)."""
    at = epoch(now)
    saved = await definition.save(
        contests, RosterRepository(db), definition.define(contest_id, body, at, settings)
    )
    return summary(saved, [], at, settings.contest_settle_seconds)


@router.get(
    "/contests",
    response_model=ContestList,
    dependencies=READ_ACCESS,
    summary="The contests in start order, a page at a time",
)
async def list_contests(
    _: Fresh,
    contests: Contests,
    settings: AppSettings,
    now: Now,
    status: Annotated[Status | None, Query(description="only contests in this status")] = None,
    limit: PageLimit = DEFAULT_LIMIT,
    cursor: PageCursor = None,
) -> ContestList:
    """The contests in start order, a page at a time (``next_cursor``)."""
    settle_s = settings.contest_settle_seconds
    return await listed(contests, status, epoch(now), settle_s, limit, cursor)


@router.get(
    "/contests/{contest_id}",
    response_model=ContestOut,
    dependencies=READ_ACCESS,
    summary="A contest and its standings",
)
async def get_contest(
    contest_id: Id,
    version: FreshApart,
    standings: AppStandings,
    now: Now,
    response: Response,
    export: Export,
    limit: Limit = 100,
) -> ContestOut | Response:
    shown = EVERY_ROW if export.wanted else limit  # an export holds every participant
    out, encoded = await standings.board(StandingsSpec(contest_id, shown), version, now)
    if export.wanted:
        return export.of(out.rows, f"contest-{contest_id}")
    return Response(encoded, media_type="application/json", headers=cache_headers(response))


@router.delete(
    "/contests/{contest_id}",
    status_code=204,
    dependencies=ADMIN_ACCESS,
    summary="Delete a contest",
)
async def delete_contest(contest_id: Id, contests: Contests) -> Response:
    await definition.delete(contests, contest_id)
    return Response(status_code=204)


@router.get(
    "/stream/contests/{contest_id}",
    summary="Server-Sent Events: the standings each time they change",
    description="`event: standings` with an `id:` each time the standings change (the shape "
    "of `GET /v1/contests/{id}`), `event: status` when they cannot be refreshed, heartbeats.",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {}}},
        404: {"description": "no such contest", "content": {"application/problem+json": {}}},
    },
    dependencies=READ_ACCESS,
)
async def stream_contest(
    request: Request, contest_id: Id, hub: AppContestHub, contests: Contests, limit: Limit = 100
) -> StreamingResponse:
    await definition.existing(contests, contest_id)  # a 404 now, not a stream that never starts
    spec = StandingsSpec(contest_id, limit)
    hub.admit(spec)
    return sse_response(hub.stream(spec, request.headers.get("last-event-id"), request), request)
