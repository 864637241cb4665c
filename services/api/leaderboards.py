"""Leaderboard routes: rep and team boards, CSV, and the live SSE stream for wallboards."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.responses import Response, StreamingResponse

from services.api.board_hub import MAX_STREAMS
from services.api.board_hub import BoardHub as BoardHub  # app.py takes it from here
from services.api.boards import Boards, BoardSpec, RankBy, Scope
from services.api.common.auth import require
from services.api.common.csv_export import csv_response, wants_csv
from services.api.common.database import api_router
from services.api.common.freshness import DataVersion, Fresh, cache_headers
from services.api.common.params import FROM_DOC, TO_DOC, window_problem
from services.api.schemas import LeaderboardOut
from shared.catalogue import CATALOGUE
from shared.problems import NotFound
from shared.settings import KeyScope
from shared.windows import WindowError

router = api_router(
    prefix="/v1", tags=["leaderboards"], dependencies=[Depends(require(KeyScope.read))]
)
CSV_COLUMNS = [
    "rank",
    "previous_rank",
    "movement",
    "rep_id",
    "name",
    "team_id",
    "value",
    "attainment",
    "volume",
]


def board_spec(scope: Scope) -> Callable[..., BoardSpec]:
    """The dependency that reads a board's query parameters, for rep or team boards."""

    def spec(
        request: Request,
        metric: str,
        window: Annotated[str | None, Query(description="named window, default today")] = None,
        from_: Annotated[datetime | None, Query(alias="from", description=FROM_DOC)] = None,
        to: Annotated[datetime | None, Query(description=TO_DOC)] = None,
        team: Annotated[str | None, Query(max_length=64)] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        rank_by: Annotated[RankBy, Query(description="value, or attainment of target")] = "value",
    ) -> BoardSpec:
        if metric not in CATALOGUE:
            raise NotFound(f"unknown metric {metric!r}; see GET /v1/metrics")
        board = BoardSpec(scope, metric, window, from_, to, team, limit, rank_by)
        try:
            boards(request).resolve(board, datetime.now().astimezone())
        except WindowError as exc:
            raise window_problem(exc) from None
        return board

    return spec


def boards(request: Request) -> Boards:
    found: Boards = request.app.state.boards
    return found


async def _answer(
    request: Request, response: Response, spec: BoardSpec, version: DataVersion
) -> LeaderboardOut | Response:
    board, encoded = await boards(request).board(spec, version)
    if wants_csv(request):
        return csv_response(
            board.rows, cache_headers(response), f"leaderboard-{spec.metric}", CSV_COLUMNS
        )
    # served as encoded once per change: no re-validation or re-serialisation per request
    return Response(encoded, media_type="application/json", headers=cache_headers(response))


@router.get(
    "/leaderboards/{metric}",
    response_model=LeaderboardOut,
    response_model_by_alias=True,
    summary="Reps ranked by a metric",
)
async def rep_leaderboard(
    request: Request,
    response: Response,
    version: Fresh,
    spec: Annotated[BoardSpec, Depends(board_spec("rep"))],
) -> LeaderboardOut | Response:
    return await _answer(request, response, spec, version)


@router.get(
    "/team-leaderboards/{metric}",
    response_model=LeaderboardOut,
    response_model_by_alias=True,
    summary="Teams ranked by a metric (summed parts)",
)
async def team_leaderboard(
    request: Request,
    response: Response,
    version: Fresh,
    spec: Annotated[BoardSpec, Depends(board_spec("team"))],
) -> LeaderboardOut | Response:
    return await _answer(request, response, spec, version)


STREAM_DOC = f"""Server-Sent Events of one board.

- `event: leaderboard` with an `id:` each time the board changes (the shape of
  `GET /v1/leaderboards/{{metric}}`); reconnecting with `Last-Event-ID` sends nothing until
  the board changes again.
- `event: status`, `data: {{"live": false, "reason": "database unavailable"}}` when the
  board cannot be refreshed (the stream stays open and retries), then `{{"live": true}}` and
  the board again once it can.
- `: heartbeat` comments while nothing changes.

At most {MAX_STREAMS} distinct boards (metric, window, `from`/`to`, team, limit) are live at
once: a new one beyond that is refused with 503 and `Retry-After`."""


@router.get(
    "/stream/leaderboards/{metric}",
    summary="Server-Sent Events: the board each time it changes",
    description=STREAM_DOC,
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {}}},
        503: {
            "description": "too many distinct live boards; see Retry-After",
            "content": {"application/problem+json": {}},
        },
    },
)
async def stream_leaderboard(
    request: Request, spec: Annotated[BoardSpec, Depends(board_spec("rep"))]
) -> StreamingResponse:
    hub: BoardHub = request.app.state.board_hub
    hub.admit(spec)
    last_seen = request.headers.get("last-event-id")
    return StreamingResponse(
        hub.stream(spec, last_seen, request),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
