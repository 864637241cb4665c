"""``GET /v1/reports/{reps|teams}``: the floor's numbers, one row per rep or team (thin: the work
is ``service``'s; the files are ``common.exports``')."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request, Response

from services.api.common.auth import READ_ACCESS
from services.api.common.database import api_router
from services.api.common.exports import Export
from services.api.common.freshness import Fresh, cache_headers
from services.api.common.params import AppSettings, Now, RequestWindow, refuse_unknown
from services.api.kpis.routes import RequestKpis
from services.api.reports import service
from services.api.reports.schemas import ReportOut, Scope
from services.api.reports.service import Reports
from services.api.roster.routes import Roster
from shared.catalogue import HEADLINE

router = api_router(prefix="/v1", tags=["reports"], dependencies=READ_ACCESS)
METRICS_DOC = f"comma-separated metric names, in column order; default {','.join(HEADLINE)}"


def app_reports(request: Request) -> Reports:
    reports: Reports = request.app.state.reports
    return reports


def report_metrics(
    metrics: Annotated[str | None, Query(max_length=2000, description=METRICS_DOC)] = None,
) -> list[str]:
    """The metrics asked for (each once, in order), each known to the catalogue (404 otherwise);
    the headline metrics by default."""
    names = list(dict.fromkeys(m.strip() for m in (metrics or "").split(",") if m.strip()))
    refuse_unknown(names)
    return names or list(HEADLINE)


AppReports = Annotated[Reports, Depends(app_reports)]
ReportMetrics = Annotated[list[str], Depends(report_metrics)]


@router.get(
    "/reports/{scope}",
    response_model=ReportOut,
    response_model_by_alias=True,
    summary="Every rep (or team) with the chosen metrics over a window",
)
async def report(
    scope: Scope,
    window: RequestWindow,
    names: ReportMetrics,
    version: Fresh,
    kpis: RequestKpis,
    roster: Roster,
    reports: AppReports,
    settings: AppSettings,
    now: Now,
    response: Response,
    export: Export,
    team: Annotated[str | None, Query(max_length=64, description="one team's reps")] = None,
) -> ReportOut | Response:
    """One row per rep (or team) with the metrics' values, as ``GET .../kpis`` gives them,
    as JSON, CSV or xlsx (``?format=``)."""
    out = await reports.of(scope, window, names, team, (kpis, roster), version, now)
    if export.wanted:
        columns = service.export_columns(scope, names, settings.currency)
        return export.of(service.export_rows(out), f"report-{scope}-{window.name}", columns)
    body = out.model_dump_json(by_alias=True)
    return Response(body, media_type="application/json", headers=cache_headers(response))
