"""Leaderboard routes: rep and team boards, CSV, and the live SSE stream for wallboards.

The rep and team boards are one handler, registered for both kinds of subject.
"""

# No ``from __future__ import annotations`` here: the handlers' annotations name the closure's
# ``kind``, so they must be evaluated where they are written, not later by FastAPI.

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.responses import Response, StreamingResponse

from services.api.common.auth import READ_ACCESS
from services.api.common.database import api_router
from services.api.common.exports import Export
from services.api.common.freshness import FreshApart, cache_headers
from services.api.common.params import AskedWindow, Metric, Now, RequestWindow, SubjectKind
from services.api.common.sse import sse_response
from services.api.leaderboards.schemas import LeaderboardOut
from services.api.leaderboards.service import Boards, BoardSpec, RankBy
from services.api.live.hub import MAX_STREAMS, BoardHub
from shared.pacing import paced
from shared.problems import Unprocessable

router = api_router(prefix="/v1", tags=["leaderboards"], dependencies=READ_ACCESS)
CSV_COLUMNS = [
    "rank",
    "previous_rank",
    "movement",
    "rep_id",
    "name",
    "team_id",
    "team_name",
    "value",
    "attainment",
    "volume",
]


def app_boards(request: Request) -> Boards:
    boards: Boards = request.app.state.boards
    return boards


def app_board_hub(request: Request) -> BoardHub[BoardSpec]:
    hub: BoardHub[BoardSpec] = request.app.state.board_hub
    return hub


AppBoards = Annotated[Boards, Depends(app_boards)]
AppBoardHub = Annotated[BoardHub[BoardSpec], Depends(app_board_hub)]


def board_spec(kind: SubjectKind) -> Callable[..., BoardSpec]:
    """The dependency that reads a board's parameters, for rep or team boards; its window
    must resolve (``RequestWindow``: a 422 otherwise)."""

    def spec(
        metric: Metric,
        asked: AskedWindow,
        _: RequestWindow,
        team: Annotated[str | None, Query(max_length=64)] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        rank_by: Annotated[
            RankBy, Query(description="value, attainment of target, or pace against it")
        ] = "value",
    ) -> BoardSpec:
        if rank_by == "pace" and not paced(metric):
            message = f"{metric} is a ratio: only count and sum metrics have a pace"
            raise Unprocessable(message, errors=[{"field": "query.rank_by", "message": message}])
        return BoardSpec(kind, metric, asked.name, asked.start, asked.end, team, limit, rank_by)

    return spec


def board_of(kind: SubjectKind) -> Callable[..., Awaitable[LeaderboardOut | Response]]:
    async def board(
        version: FreshApart,
        spec: Annotated[BoardSpec, Depends(board_spec(kind))],
        window: RequestWindow,
        now: Now,
        boards: AppBoards,
        response: Response,
        export: Export,
    ) -> LeaderboardOut | Response:
        board, encoded = await boards.board(spec, version, now, window)
        if export.wanted:
            return export.of(board.rows, f"leaderboard-{spec.metric}", CSV_COLUMNS)
        # served as encoded once per change: no re-validation or re-serialisation per request
        return Response(encoded, media_type="application/json", headers=cache_headers(response))

    return board


BOARDS: tuple[tuple[SubjectKind, str, str], ...] = (
    ("rep", "/leaderboards/{metric}", "Reps ranked by a metric"),
    ("team", "/team-leaderboards/{metric}", "Teams ranked by a metric (summed parts)"),
)
for kind, path, summary in BOARDS:
    router.add_api_route(
        path,
        board_of(kind),
        methods=["GET"],
        name=f"{kind}_leaderboard",
        response_model=LeaderboardOut,
        response_model_by_alias=True,
        summary=summary,
    )


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
    request: Request,
    spec: Annotated[BoardSpec, Depends(board_spec("rep"))],
    hub: AppBoardHub,
) -> StreamingResponse:
    hub.admit(spec)
    last_seen = request.headers.get("last-event-id")
    return sse_response(hub.stream(spec, last_seen, request), request)
