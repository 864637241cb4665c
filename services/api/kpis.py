"""KPI routes: a rep's or a team's KPIs, timeseries, unassigned activity, the catalogue."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import Depends, Path, Query, Request, Response

from services.api.common.auth import require
from services.api.common.csv_export import csv_response, wants_csv
from services.api.common.database import api_router
from services.api.common.freshness import Fresh, cache_headers
from services.api.common.params import Id, Now, SubjectKind
from services.api.kpi_queries import KpiQueries
from services.api.roster.routes import Roster
from services.api.roster.service import rep_subject, team_subject
from services.api.schemas import (
    MetricOut,
    RepKpisOut,
    TeamKpisOut,
    TimeseriesOut,
    TimeseriesPoint,
    UnassignedOut,
    UnassignedRow,
)
from services.api.targets.routes import RequestTargets
from services.api.targets.service import Targets
from shared.catalogue import CATALOGUE, TARGETED, evaluate, needed_counters
from shared.problems import NotFound, Problem, Unprocessable
from shared.settings import KeyScope, Settings
from shared.targets import Period, next_period, period_start
from shared.windows import CUSTOM_RANGE, Window, WindowError, resolve_window

router = api_router(prefix="/v1", tags=["kpis"], dependencies=[Depends(require(KeyScope.read))])
Interval = Literal["minute", "hour", "day", "week"]
MAX_POINTS = 1500  # points of one timeseries; more is a 400 (a day of minutes fits)
SERIES_DOC = (
    f"The window cut at interval boundaries (days and weeks in the organisation's time zone). "
    f"A series has at most {MAX_POINTS} points: a window and interval that would give more are "
    "refused with 400 (problem `too-many-points`, naming `interval`)."
)
IntervalParam = Annotated[
    Interval, Query(description=f"the width of a point; at most {MAX_POINTS} points per series")
]
TOO_MANY_POINTS: dict[int | str, dict[str, Any]] = {
    400: {
        "description": f"more than {MAX_POINTS} points",
        "content": {"application/problem+json": {}},
    }
}


FROM_DOC = f"ISO 8601 start of a custom window, {CUSTOM_RANGE}"
TO_DOC = f"ISO 8601 end of a custom window (default now), {CUSTOM_RANGE}"


def window_problem(exc: WindowError) -> Unprocessable:
    """A window that cannot be measured, as a 422 naming the parameter at fault."""
    return Unprocessable(str(exc), errors=[{"field": exc.field, "message": str(exc)}])


def window_param(
    request: Request,
    window: Annotated[str | None, Query(description="named window, default today")] = None,
    from_: Annotated[datetime | None, Query(alias="from", description=FROM_DOC)] = None,
    to: Annotated[datetime | None, Query(description=TO_DOC)] = None,
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
        raise window_problem(exc) from None


def metrics_param(
    metrics: Annotated[str | None, Query(description="comma-separated metric names")] = None,
) -> list[str]:
    names = [m.strip() for m in (metrics or "").split(",") if m.strip()] or list(CATALOGUE)
    unknown = [m for m in names if m not in CATALOGUE]
    if unknown:
        raise NotFound(f"unknown metric(s) {', '.join(unknown)}; see GET /v1/metrics")
    return names


def _queries(request: Request) -> KpiQueries:
    queries: KpiQueries = request.app.state.kpi_queries
    return queries


WindowDep = Annotated[Window, Depends(window_param)]
MetricsDep = Annotated[list[str], Depends(metrics_param)]
Queries = Annotated[KpiQueries, Depends(_queries)]
MetricName = Annotated[str, Path(max_length=48)]


@router.get("/reps/{rep_id}/kpis", response_model=RepKpisOut, response_model_by_alias=True)
async def rep_kpis(
    request: Request,
    rep_id: Id,
    window: WindowDep,
    names: MetricsDep,
    roster: Roster,
    now: Now,
    queries: Queries,
    version: Fresh,
    request_targets: RequestTargets,
) -> RepKpisOut:
    team_id = (await rep_subject(roster, rep_id, now)).team_id
    sums = await queries.sums("rep", window, needed_counters(names), [rep_id])
    targets = await targets_for(request_targets, "rep", window, names, rep_id, version.targets)
    return RepKpisOut(
        rep_id=rep_id,
        team_id=team_id,
        window=window.name,
        from_=window.start,
        to=window.end,
        as_of=version.as_of,
        metrics=evaluate(sums.get(rep_id, {}), names, targets),
    )


@router.get("/teams/{team_id}/kpis", response_model=TeamKpisOut, response_model_by_alias=True)
async def team_kpis(
    request: Request,
    team_id: Id,
    window: WindowDep,
    names: MetricsDep,
    roster: Roster,
    queries: Queries,
    version: Fresh,
    request_targets: RequestTargets,
) -> TeamKpisOut:
    await team_subject(roster, team_id)
    sums = await queries.sums("team", window, needed_counters(names), [team_id])
    targets = await targets_for(request_targets, "team", window, names, team_id, version.targets)
    return TeamKpisOut(
        team_id=team_id,
        window=window.name,
        from_=window.start,
        to=window.end,
        as_of=version.as_of,
        metrics=evaluate(sums.get(team_id, {}), names, targets),
    )


@router.get(
    "/reps/{rep_id}/timeseries/{metric}",
    response_model=TimeseriesOut,
    response_model_by_alias=True,
    summary="A rep's metric per interval",
    description=SERIES_DOC,
    responses=TOO_MANY_POINTS,
)
async def rep_timeseries(
    request: Request,
    response: Response,
    rep_id: Id,
    metric: MetricName,
    window: WindowDep,
    roster: Roster,
    now: Now,
    queries: Queries,
    version: Fresh,
    interval: IntervalParam = "hour",
) -> TimeseriesOut | Response:
    await rep_subject(roster, rep_id, now)
    return await _timeseries(
        request, response, "rep", rep_id, metric, window, interval, queries, version
    )


@router.get(
    "/teams/{team_id}/timeseries/{metric}",
    response_model=TimeseriesOut,
    response_model_by_alias=True,
    summary="A team's metric per interval",
    description=SERIES_DOC,
    responses=TOO_MANY_POINTS,
)
async def team_timeseries(
    request: Request,
    response: Response,
    team_id: Id,
    metric: MetricName,
    window: WindowDep,
    roster: Roster,
    queries: Queries,
    version: Fresh,
    interval: IntervalParam = "hour",
) -> TimeseriesOut | Response:
    await team_subject(roster, team_id)
    return await _timeseries(
        request, response, "team", team_id, metric, window, interval, queries, version
    )


async def _timeseries(
    request: Request,
    response: Response,
    scope: str,
    subject: str,
    metric: str,
    window: Window,
    interval: Interval,
    queries: KpiQueries,
    version: Fresh,
) -> TimeseriesOut | Response:
    if metric not in CATALOGUE:
        raise NotFound(f"unknown metric {metric!r}; see GET /v1/metrics")
    settings: Settings = request.app.state.settings
    cuts = interval_cuts(window, interval, settings)
    _within_limit(cuts)
    per_point = await queries.sums_per_window(scope, subject, cuts, needed_counters([metric]))
    points = [
        TimeseriesPoint(start=cut.start, end=cut.end, value=evaluate(sums, [metric])[metric])
        for cut, sums in zip(cuts, per_point, strict=True)
    ]
    if wants_csv(request):
        return csv_response(points, cache_headers(response), f"timeseries-{metric}")
    return TimeseriesOut(
        scope=scope,
        id=subject,
        metric=metric,
        interval=interval,
        window=window.name,
        from_=window.start,
        to=window.end,
        as_of=version.as_of,
        points=points,
    )


def _within_limit(cuts: list[Window]) -> None:
    if len(cuts) > MAX_POINTS:
        # 400, not 422: each parameter is valid alone; it is their combination that asks for
        # a series longer than the API serves.
        raise Problem(
            f"more than {MAX_POINTS} points: at most {MAX_POINTS}; pick a longer interval "
            "or a shorter window",
            slug="too-many-points",
            errors=[{"field": "interval", "message": f"more than {MAX_POINTS} points"}],
        )


def interval_cuts(window: Window, interval: Interval, settings: Settings) -> list[Window]:
    """The window cut at interval boundaries (days and weeks in the organisation's zone)."""
    tz = settings.tz
    cuts: list[Window] = []
    if interval in ("minute", "hour"):
        step = 60 if interval == "minute" else 3600
        edge = window.start_ts - window.start_ts % step
        while edge < window.end_ts and len(cuts) <= MAX_POINTS:
            cuts.append(_cut(window, edge, edge + step))
            edge += step
        return cuts
    period: Period = "day" if interval == "day" else "week"
    day = period_start(period, window.start.astimezone(tz).date(), settings.week_start.weekday)
    while len(cuts) <= MAX_POINTS:
        start = int(datetime(day.year, day.month, day.day, tzinfo=tz).timestamp())
        if start >= window.end_ts:
            break
        day = next_period(period, day)
        cuts.append(
            _cut(window, start, int(datetime(day.year, day.month, day.day, tzinfo=tz).timestamp()))
        )
    return cuts


def _cut(window: Window, start: int, end: int) -> Window:
    return Window(
        window.name,
        datetime.fromtimestamp(max(start, window.start_ts), UTC),
        datetime.fromtimestamp(min(end, window.end_ts), UTC),
    )


@router.get(
    "/unassigned",
    response_model=UnassignedOut,
    response_model_by_alias=True,
    summary="Activity whose actor is not on the roster yet",
)
async def unassigned(
    request: Request, response: Response, window: WindowDep, queries: Queries, version: Fresh
) -> UnassignedOut | Response:
    names = ["calls_total", "deals_won", "revenue"]
    sums = await queries.sums("unassigned", window, needed_counters(names))
    rows = []
    for identity, own in sorted(sums.items()):
        values = evaluate(own, names)
        provider, _, external_id = identity.partition(":")
        rows.append(
            UnassignedRow(
                identity=identity,
                provider=provider,
                external_id=external_id,
                calls_total=int(values["calls_total"] or 0),
                deals_won=int(values["deals_won"] or 0),
                revenue=float(values["revenue"] or 0),
            )
        )
    rows = [r for r in rows if r.calls_total or r.deals_won or r.revenue]
    if wants_csv(request):
        return csv_response(rows, cache_headers(response), "unassigned")
    return UnassignedOut(
        window=window.name, from_=window.start, to=window.end, as_of=version.as_of, rows=rows
    )


async def targets_for(
    targets: Targets,
    kind: SubjectKind,
    window: Window,
    names: list[str],
    subject: str,
    version: int,
) -> dict[str, float]:
    """The window's targets of the metrics that the listed attainment metrics measure."""
    wanted = {TARGETED[n] for n in names if n in TARGETED}
    return (await targets.for_window(kind, wanted, window, version, subject)).get(subject, {})


@router.get("/metrics", summary="The metric catalogue", response_model=list[MetricOut])
async def metric_catalogue(
    request: Request, response: Response, version: Fresh
) -> list[MetricOut] | Response:
    rows = [
        MetricOut(name=m.name, kind=m.kind, unit=m.unit, definition=m.definition)
        for m in CATALOGUE.values()
    ]
    if wants_csv(request):
        return csv_response(rows, cache_headers(response), "metrics")
    return rows
