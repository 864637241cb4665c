"""Leaderboard routes: rep and team boards, CSV, and the live SSE stream for wallboards."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response, StreamingResponse
from sqlalchemy.ext.asyncio import AsyncEngine

from services.api.auth import require
from services.api.boards import Boards, BoardSpec, RankBy, Scope
from services.api.csv_export import csv_response, wants_csv
from services.api.freshness import DataVersion, Fresh, cache_headers, data_version
from services.api.kpis import FROM_DOC, TO_DOC, window_problem
from services.api.schemas import LeaderboardOut
from shared.catalogue import CATALOGUE
from shared.problems import NotFound
from shared.settings import Scope as KeyScope
from shared.windows import WindowError

router = APIRouter(
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


@router.get(
    "/stream/leaderboards/{metric}",
    summary="Server-Sent Events: the board each time it changes",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def stream_leaderboard(
    request: Request, spec: Annotated[BoardSpec, Depends(board_spec("rep"))]
) -> StreamingResponse:
    hub: BoardHub = request.app.state.board_hub
    last_seen = request.headers.get("last-event-id")
    return StreamingResponse(
        hub.stream(spec, last_seen, request),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


class BoardHub:
    """One watcher per board however many screens listen: it polls the data version (one tiny
    query), recomputes the board when that moves, and pushes it only if it changed."""

    def __init__(
        self, boards: Boards, db: AsyncEngine, poll_s: float = 0.25, heartbeat_s: float = 15.0
    ) -> None:
        self._boards, self._db = boards, db
        self._poll_s, self._heartbeat_s = poll_s, heartbeat_s
        self._latest: dict[BoardSpec, tuple[str, bytes]] = {}  # spec -> (event id, payload)
        self._changed: dict[BoardSpec, asyncio.Condition] = {}
        self._watchers: dict[BoardSpec, asyncio.Task[None]] = {}
        self._listeners: dict[BoardSpec, int] = {}

    async def stream(
        self, spec: BoardSpec, last_seen: str | None, request: Request
    ) -> AsyncIterator[bytes]:
        self._listeners[spec] = self._listeners.get(spec, 0) + 1
        condition = self._changed.setdefault(spec, asyncio.Condition())
        if spec not in self._watchers:
            self._watchers[spec] = asyncio.create_task(self._watch(spec))
        sent = last_seen
        try:
            while not await request.is_disconnected():
                latest = self._latest.get(spec)
                if latest and latest[0] != sent:
                    sent = latest[0]
                    yield (
                        b"id: "
                        + sent.encode()
                        + b"\nevent: leaderboard\ndata: "
                        + latest[1]
                        + b"\n\n"
                    )
                    continue
                async with condition:
                    try:
                        await asyncio.wait_for(condition.wait(), self._heartbeat_s)
                    except TimeoutError:
                        yield b": heartbeat\n\n"
        finally:
            self._listeners[spec] -= 1

    async def _watch(self, spec: BoardSpec) -> None:
        try:
            while self._listeners.get(spec, 0) > 0:
                version = await data_version(self._db)
                board, _ = await self._boards.board(spec, version)
                payload = board.model_dump_json(by_alias=True, exclude={"as_of"}).encode()
                event_id = hashlib.sha256(payload).hexdigest()[:16]
                if self._latest.get(spec, ("",))[0] != event_id:
                    full = board.model_dump_json(by_alias=True).encode()
                    self._latest[spec] = (event_id, full)
                    condition = self._changed[spec]
                    async with condition:
                        condition.notify_all()
                await asyncio.sleep(self._poll_s)
        finally:
            self._watchers.pop(spec, None)

    async def close(self) -> None:
        for task in list(self._watchers.values()):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
