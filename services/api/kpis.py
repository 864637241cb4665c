"""KPI and leaderboard routes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from services.api.auth import require
from services.api.kpi_queries import KpiQueries
from services.api.ranking import Entry, rank
from services.api.roster import Id, Store
from services.api.schemas import LeaderboardOut, LeaderboardRow, RepKpisOut, TeamKpisOut
from shared.catalogue import CATALOGUE, evaluate, needed_counters
from shared.problems import NotFound, Unprocessable
from shared.settings import Scope, Settings
from shared.windows import Window, WindowError, resolve_window

router = APIRouter(prefix="/v1", tags=["kpis"], dependencies=[Depends(require(Scope.read))])


def window_param(
    request: Request,
    window: Annotated[str | None, Query(description="named window, default today")] = None,
    from_: Annotated[datetime | None, Query(alias="from", description="ISO 8601 start")] = None,
    to: Annotated[datetime | None, Query(description="ISO 8601 end (default now)")] = None,
) -> Window:
    settings: Settings = request.app.state.settings
    try:
        return resolve_window(
            window,
            now=datetime.now(UTC),
            tz=settings.tz,
            week_start=settings.week_start.weekday,
            start=from_,
            end=to,
        )
    except WindowError as exc:
        raise Unprocessable(str(exc), errors=[{"field": "window", "message": str(exc)}]) from None


def metrics_param(
    metrics: Annotated[str | None, Query(description="comma-separated metric names")] = None,
) -> list[str]:
    names = [m.strip() for m in (metrics or "").split(",") if m.strip()] or list(CATALOGUE)
    unknown = [m for m in names if m not in CATALOGUE]
    if unknown:
        raise NotFound(f"unknown metric(s) {', '.join(unknown)}; see GET /v1/metrics")
    return names


WindowDep = Annotated[Window, Depends(window_param)]
MetricsDep = Annotated[list[str], Depends(metrics_param)]


def _queries(request: Request) -> KpiQueries:
    queries: KpiQueries = request.app.state.kpi_queries
    return queries


Queries = Annotated[KpiQueries, Depends(_queries)]


@router.get("/reps/{rep_id}/kpis", response_model=RepKpisOut, response_model_by_alias=True)
async def rep_kpis(
    rep_id: Id, window: WindowDep, names: MetricsDep, store: Store, queries: Queries
) -> RepKpisOut:
    rep = await store.get_rep(rep_id)
    if rep is None:
        raise NotFound(f"no rep {rep_id!r}")
    sums = await queries.sums("rep", window, needed_counters(names), [rep_id])
    now = datetime.now(UTC)
    return RepKpisOut(
        rep_id=rep_id,
        team_id=rep.team_at(int(now.timestamp())),
        window=window.name,
        from_=window.start,
        to=window.end,
        as_of=now,
        metrics=evaluate(sums.get(rep_id, {}), names),
    )


@router.get("/teams/{team_id}/kpis", response_model=TeamKpisOut, response_model_by_alias=True)
async def team_kpis(
    team_id: Id, window: WindowDep, names: MetricsDep, store: Store, queries: Queries
) -> TeamKpisOut:
    if await store.get_team(team_id) is None:
        raise NotFound(f"no team {team_id!r}")
    sums = await queries.sums("team", window, needed_counters(names), [team_id])
    return TeamKpisOut(
        team_id=team_id,
        window=window.name,
        from_=window.start,
        to=window.end,
        as_of=datetime.now(UTC),
        metrics=evaluate(sums.get(team_id, {}), names),
    )


@router.get("/leaderboards/{metric}", response_model=LeaderboardOut, response_model_by_alias=True)
async def leaderboard(
    metric: str,
    window: WindowDep,
    store: Store,
    queries: Queries,
    team: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> LeaderboardOut:
    if metric not in CATALOGUE:
        raise NotFound(f"unknown metric {metric!r}; see GET /v1/metrics")
    now = datetime.now(UTC)
    reps = [
        r for r in await store.all_reps() if team is None or r.team_at(int(now.timestamp())) == team
    ]
    sums = await queries.sums("rep", window, CATALOGUE[metric].needs)
    entries = [Entry(r.id, r.name, CATALOGUE[metric].value(sums.get(r.id, {}))) for r in reps]
    teams = {r.id: r.team_at(int(now.timestamp())) for r in reps}
    rows = [
        LeaderboardRow(
            rank=x.rank,
            rep_id=x.entry.key,
            name=x.entry.name,
            team_id=teams[x.entry.key],
            value=x.entry.value,
        )
        for x in rank(entries)[:limit]
    ]
    return LeaderboardOut(
        metric=metric, window=window.name, from_=window.start, to=window.end, as_of=now, rows=rows
    )


@router.get("/metrics", summary="The metric catalogue")
async def metric_catalogue() -> list[dict[str, str]]:
    return [
        {"name": m.name, "kind": m.kind, "unit": m.unit, "definition": m.definition}
        for m in CATALOGUE.values()
    ]
