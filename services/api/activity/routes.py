"""Activity routes: the events behind a rep's, a team's or an unknown identity's value of a
metric in a window (``/v1/{reps|teams}/{id}/activity``, ``/v1/unassigned/{identity}/activity``),
and a deal's history (``/v1/deals/{deal_id}``)."""

# No ``from __future__ import annotations``: the handlers' annotations name the closure's
# ``find``, so they must be evaluated where they are written (as in ``kpis.routes``).

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, Path, Query, Response

from services.api.activity.queries import ActivityQueries, Whose
from services.api.activity.schemas import ActivityItem, ActivityOut, DealOut
from services.api.activity.service import Asked, Drilldown, deal_history
from services.api.common.auth import READ_ACCESS
from services.api.common.database import Db, api_router
from services.api.common.exports import Export
from services.api.common.freshness import Fresh
from services.api.common.pages import DEFAULT_LIMIT, PageCursor, PageLimit
from services.api.common.params import AppSettings, Now, RequestWindow
from services.api.kpis.queries import KpiQueries
from services.api.kpis.routes import RequestKpis, rep_in_path, team_in_path
from services.api.roster.service import Subject
from shared.catalogue import CATALOGUE, evaluate, needed_counters
from shared.problems import NotFound

router = api_router(prefix="/v1", tags=["activity"], dependencies=READ_ACCESS)
DOC = (
    "The events that make the metric's value in the window, newest first, in pages. For a "
    "count or a sum their `contribution`s add up exactly to the value (when `complete`); for "
    "a ratio each says whether it `counts_in` the numerator, the denominator or both. Before "
    "`detail_from` (ACTIVITY_RETENTION_DAYS, or an upgraded database) the detail is no longer "
    "kept: a window wholly before it is a 410 problem. `?format=csv|xlsx` (and "
    "`?dialect=excel-fr`) give the page as a file."
)
EXPORT_COLUMNS = [
    *(name for name in ActivityItem.model_fields if name not in ("event_key", "corrected")),
    "corrected",
]
MetricQuery = Annotated[str, Query(max_length=48, description="a metric of GET /v1/metrics")]
Identity = Annotated[str, Path(min_length=3, max_length=330, description="provider:external_id")]
GONE: dict[int | str, dict[str, Any]] = {
    410: {
        "description": "the window is before detail_from",
        "content": {"application/problem+json": {}},
    }
}


def known(metric: str) -> str:
    if metric not in CATALOGUE:
        raise NotFound(
            f"unknown metric {metric!r}; see GET /v1/metrics",
            errors=[{"field": "query.metric", "message": "not in the catalogue"}],
        )
    return metric


def drilldown(db: Db, settings: AppSettings, now: Now) -> Drilldown:
    kpis = KpiQueries(db, settings.tz, settings.retention_floors)
    return Drilldown(ActivityQueries(db), kpis, settings.activity_retention_days, now)


RequestDrilldown = Annotated[Drilldown, Depends(drilldown)]


def answer(found: ActivityOut, export: Export, name: str) -> ActivityOut | Response:
    if not export.wanted:
        return found
    rows = [item.model_dump(exclude={"event_key"}) for item in found.items]
    for row in rows:
        row["corrected"] = " ".join(row["corrected"])
    return export.of(rows, name, EXPORT_COLUMNS)


def activity_of(
    find: Callable[..., Awaitable[Subject]],
) -> Callable[..., Awaitable[ActivityOut | Response]]:
    async def activity(
        metric: MetricQuery,
        window: RequestWindow,
        version: Fresh,
        subject: Annotated[Subject, Depends(find)],
        kpis: RequestKpis,
        drill: RequestDrilldown,
        now: Now,
        export: Export,
        limit: PageLimit = DEFAULT_LIMIT,
        cursor: PageCursor = None,
    ) -> ActivityOut | Response:
        name = known(metric)
        members = await kpis.members(subject.kind, window, now)
        values = await kpis.values(subject.kind, [subject.id], window, [name], version, members)
        asked = Asked(Whose(subject.kind, subject.id), CATALOGUE[name], window, limit, cursor)
        found = await drill.page(asked, values[subject.id][name], version.as_of)
        return answer(found, export, f"activity-{subject.kind}-{subject.id}-{name}")

    return activity


for kind, path, find in (
    ("rep", "/reps/{rep_id}", rep_in_path),
    ("team", "/teams/{team_id}", team_in_path),
):
    router.add_api_route(
        f"{path}/activity",
        activity_of(find),
        methods=["GET"],
        name=f"{kind}_activity",
        response_model=ActivityOut,
        response_model_by_alias=True,
        summary=f"The events behind a {kind}'s value of a metric",
        description=DOC,
        responses=GONE,
    )


@router.get(
    "/unassigned/{identity}/activity",
    response_model=ActivityOut,
    response_model_by_alias=True,
    summary="The events of an identity not on the roster, behind its value of a metric",
    description=DOC + " A single event is given to a rep with a correction (POST /v1/corrections, "
    "`reassign`); the whole identity by adding it to the rep (PUT /v1/reps/{id}).",
    responses=GONE,
)
async def unassigned_activity(
    identity: Identity,
    metric: MetricQuery,
    window: RequestWindow,
    version: Fresh,
    db: Db,
    drill: RequestDrilldown,
    settings: AppSettings,
    export: Export,
    limit: PageLimit = DEFAULT_LIMIT,
    cursor: PageCursor = None,
) -> ActivityOut | Response:
    name = known(metric)
    queries = ActivityQueries(db)
    if not await queries.has_unassigned(identity):
        owner = await queries.owner_of(identity)
        held = f": it is rep {owner!r}'s now" if owner else ""
        raise NotFound(f"no unassigned activity of {identity!r}{held}")
    kpi = KpiQueries(db, settings.tz, settings.retention_floors)
    sums = await kpi.sums("unassigned", window, needed_counters([name]), [identity])
    value = evaluate(sums.get(identity, {}), [name])[name]
    asked = Asked(Whose("unassigned", identity), CATALOGUE[name], window, limit, cursor)
    found = await drill.page(asked, value, version.as_of)
    return answer(found, export, f"activity-unassigned-{name}")


@router.get(
    "/deals/{deal_id}",
    response_model=DealOut,
    summary="A deal now, and every change with what it booked, for which rep and team",
)
async def deal(
    deal_id: Annotated[str, Path(min_length=1, max_length=256)], db: Db, _: Fresh
) -> DealOut:
    return await deal_history(ActivityQueries(db), deal_id)
