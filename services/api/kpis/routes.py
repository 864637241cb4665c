"""KPI routes: a rep's or a team's KPIs and timeseries, unassigned activity, the catalogue.

The rep and team routes are one handler each, registered for both kinds of subject: only how the
subject is found differs (``rep_in_path``, ``team_in_path``).
"""

# No ``from __future__ import annotations`` here: the handlers' annotations name the closure's
# ``find``, so they must be evaluated where they are written, not later by FastAPI.

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Query, Response

from services.api.common.auth import READ_ACCESS
from services.api.common.database import Db, api_router
from services.api.common.exports import Export
from services.api.common.freshness import Fresh
from services.api.common.params import AppSettings, Id, Metric, Metrics, Now, RequestWindow
from services.api.kpis import service
from services.api.kpis.queries import KpiQueries
from services.api.kpis.schemas import (
    KpisOut,
    MetricOut,
    PaceOut,
    RepKpisOut,
    TeamKpisOut,
    TimeseriesOut,
    UnassignedOut,
)
from services.api.kpis.service import MAX_POINTS, Interval, Kpis
from services.api.roster.repository import RosterRepository
from services.api.roster.routes import Roster
from services.api.roster.service import Subject, rep_subject, team_subject
from services.api.targets.routes import RequestTargets

router = api_router(prefix="/v1", tags=["kpis"], dependencies=READ_ACCESS)
SERIES_DOC = (
    f"The window cut at interval boundaries (days and weeks in the organisation's time zone). "
    f"A series has at most {MAX_POINTS} points: a window and interval that would give more are "
    "refused with 400 (problem `too-many-points`, naming `interval`)."
)
IntervalParam = Annotated[
    Interval, Query(description=f"the width of a point; at most {MAX_POINTS} points per series")
]
KPI_COLUMNS = ["metric", "label", "value", *(f"pace.{f}" for f in PaceOut.model_fields)]
TOO_MANY_POINTS: dict[int | str, dict[str, Any]] = {
    400: {
        "description": f"more than {MAX_POINTS} points",
        "content": {"application/problem+json": {}},
    }
}


def request_kpis(db: Db, targets: RequestTargets, settings: AppSettings) -> Kpis:
    queries = KpiQueries(db, settings.tz, settings.retention_floors)
    return Kpis(queries, targets, settings, RosterRepository(db))


async def rep_in_path(rep_id: Id, roster: Roster, now: Now) -> Subject:
    return await rep_subject(roster, rep_id, now)


async def team_in_path(team_id: Id, roster: Roster) -> Subject:
    return await team_subject(roster, team_id)


RequestKpis = Annotated[Kpis, Depends(request_kpis)]
FindSubject = Callable[..., Awaitable[Subject]]


def kpis_of(find: FindSubject) -> Callable[..., Awaitable[KpisOut | Response]]:
    async def kpis(
        window: RequestWindow,
        names: Metrics,
        version: Fresh,
        subject: Annotated[Subject, Depends(find)],
        kpis: RequestKpis,
        now: Now,
        export: Export,
    ) -> KpisOut | Response:
        found = await kpis.of(subject, window, names, version, now)
        if export.wanted:
            return export.of(kpis.rows(found), f"kpis-{subject.kind}-{subject.id}", KPI_COLUMNS)
        return found

    return kpis


def timeseries_of(find: FindSubject) -> Callable[..., Awaitable[TimeseriesOut | Response]]:
    async def timeseries(
        metric: Metric,
        window: RequestWindow,
        version: Fresh,
        subject: Annotated[Subject, Depends(find)],
        kpis: RequestKpis,
        export: Export,
        interval: IntervalParam = "hour",
    ) -> TimeseriesOut | Response:
        series = await kpis.timeseries(subject, metric, window, interval, version)
        return export.of(series.points, f"timeseries-{metric}") if export.wanted else series

    return timeseries


@dataclass(frozen=True)
class _Subjects:
    kind: str
    path: str  # the subject's own path, with its id parameter
    find: FindSubject
    kpis_out: type[KpisOut]
    whose: str


for subjects in (
    _Subjects("rep", "/reps/{rep_id}", rep_in_path, RepKpisOut, "A rep's"),
    _Subjects("team", "/teams/{team_id}", team_in_path, TeamKpisOut, "A team's"),
):
    router.add_api_route(
        f"{subjects.path}/kpis",
        kpis_of(subjects.find),
        methods=["GET"],
        name=f"{subjects.kind}_kpis",
        response_model=subjects.kpis_out,
        response_model_by_alias=True,
        summary=f"{subjects.whose} KPIs in a window: every metric, or those of ?metrics=",
    )
    router.add_api_route(
        f"{subjects.path}/timeseries/{{metric}}",
        timeseries_of(subjects.find),
        methods=["GET"],
        name=f"{subjects.kind}_timeseries",
        response_model=TimeseriesOut,
        response_model_by_alias=True,
        summary=f"{subjects.whose} metric per interval",
        description=SERIES_DOC,
        responses=TOO_MANY_POINTS,
    )


@router.get(
    "/unassigned",
    response_model=UnassignedOut,
    response_model_by_alias=True,
    summary="Activity whose actor is not on the roster yet",
)
async def unassigned(
    window: RequestWindow, version: Fresh, kpis: RequestKpis, export: Export
) -> UnassignedOut | Response:
    found = await kpis.unassigned(window, version)
    return export.of(found.rows, "unassigned") if export.wanted else found


@router.get("/metrics", summary="The metric catalogue", response_model=list[MetricOut])
async def metric_catalogue(_: Fresh, export: Export) -> list[MetricOut] | Response:
    rows = service.catalogue()
    return export.of(rows, "metrics") if export.wanted else rows
