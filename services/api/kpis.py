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
from services.api.targets import TargetStore
from shared.catalogue import CATALOGUE, TARGETED, evaluate, needed_counters
from shared.problems import NotFound, Unprocessable
from shared.settings import Scope, Settings
from shared.targets import Period, window_target
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
    request: Request,
    rep_id: Id,
    window: WindowDep,
    names: MetricsDep,
    store: Store,
    queries: Queries,
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
        metrics=evaluate(
            sums.get(rep_id, {}), names, await targets_for(request, "rep", window, names, rep_id)
        ),
    )


@router.get("/teams/{team_id}/kpis", response_model=TeamKpisOut, response_model_by_alias=True)
async def team_kpis(
    request: Request,
    team_id: Id,
    window: WindowDep,
    names: MetricsDep,
    store: Store,
    queries: Queries,
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
        metrics=evaluate(
            sums.get(team_id, {}), names, await targets_for(request, "team", window, names, team_id)
        ),
    )


@router.get("/leaderboards/{metric}", response_model=LeaderboardOut, response_model_by_alias=True)
async def leaderboard(
    request: Request,
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
    sums = await queries.sums("rep", window, needed_counters([metric]))
    targets = await all_targets_for(request, window, metric)
    entries = [
        Entry(r.id, r.name, evaluate(sums.get(r.id, {}), [metric], targets.get(r.id))[metric])
        for r in reps
    ]
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


async def targets_for(
    request: Request, scope: str, window: Window, names: list[str], subject: str
) -> dict[str, float]:
    """The window's targets of the metrics that the listed attainment metrics measure."""
    wanted = {TARGETED[n] for n in names if n in TARGETED}
    if not wanted:
        return {}
    store: TargetStore = request.app.state.targets
    found = (await store.of(scope, wanted, subject)).get(subject, {})
    return _for_window(request, found, window)


async def all_targets_for(
    request: Request, window: Window, metric: str
) -> dict[str, dict[str, float]]:
    if metric not in TARGETED:
        return {}
    store: TargetStore = request.app.state.targets
    found = await store.of("rep", {TARGETED[metric]})
    return {rep: _for_window(request, by_metric, window) for rep, by_metric in found.items()}


def _for_window(
    request: Request, by_metric: dict[str, dict[Period, float]], window: Window
) -> dict[str, float]:
    settings: Settings = request.app.state.settings
    targets = {}
    for name, periods in by_metric.items():
        target = window_target(periods, window, settings.tz, settings.week_start.weekday)
        if target is not None:
            targets[name] = target
    return targets


@router.get("/metrics", summary="The metric catalogue")
async def metric_catalogue() -> list[dict[str, str]]:
    return [
        {"name": m.name, "kind": m.kind, "unit": m.unit, "definition": m.definition}
        for m in CATALOGUE.values()
    ]
