"""Targets: ``/v1/targets/{reps|teams}/{id}/{metric}/{period}`` (``rep``/``team`` too), the
list, and the bulk import."""

from __future__ import annotations

import asyncio
from typing import Annotated, Literal

from fastapi import Depends, Path, Query, Request, Response

from services.api.common.auth import ADMIN_ACCESS, READ_ACCESS
from services.api.common.database import Db, api_router
from services.api.common.exports import Export
from services.api.common.freshness import Fresh, data_version
from services.api.common.pages import DEFAULT_LIMIT, PageCursor, PageLimit
from services.api.common.params import AppSettings, DryRun, Id, Metric, Now, SubjectKind
from services.api.roster.routes import MAX_IMPORT_BYTES
from services.api.roster.schemas import inline_schema
from services.api.targets import imports, service
from services.api.targets.repository import TargetKey, TargetRepository
from services.api.targets.schemas import (
    TargetIn,
    TargetList,
    TargetOut,
    TargetsImported,
    TargetsImportIn,
)
from services.api.targets.service import TargetCache, Targets, kind_of
from shared.calendar import Period
from shared.problems import Problem, read_body

router = api_router(prefix="/v1/targets", tags=["targets"])
PATH = "/{scope}/{id}/{metric}/{period}"
KindInPath = Annotated[
    Literal["reps", "teams", "rep", "team"],
    Path(description="reps or teams, like /v1/reps/…; the singular rep or team works too"),
]
Starting = Annotated[
    str | None, Query(max_length=32, description="one value of the history: its first period")
]
IMPORT_BODY = {
    "required": True,
    "content": {
        "application/json": {"schema": inline_schema(TargetsImportIn)},
        "text/csv": {
            "schema": {
                "type": "string",
                "description": "header row scope,id,metric,period,value[,starting], then one "
                "target a row (`,` or `;`, a decimal comma, UTF-8 or Windows-1252)",
            },
            "example": "scope;id;metric;period;value;starting\n"
            "reps;chloe;revenue;month;45000;2027-01\nteams;paris;calls_total;day;400;\n",
        },
    },
}


def target_key(scope: KindInPath, id: Id, metric: Metric, period: Period) -> TargetKey:
    return TargetKey(kind_of(scope), id, metric, period)


def request_targets(request: Request, db: Db, settings: AppSettings) -> Targets:
    cache: TargetCache = request.app.state.target_cache
    return Targets(TargetRepository(db), cache, settings.tz, settings.week_start.weekday)


TargetAt = Annotated[TargetKey, Depends(target_key)]
RequestTargets = Annotated[Targets, Depends(request_targets)]


@router.get(
    "",
    response_model=TargetList,
    dependencies=READ_ACCESS,
    summary="The targets, with their history, a page at a time",
)
async def list_targets(
    version: Fresh,
    targets: RequestTargets,
    now: Now,
    export: Export,
    scope: Annotated[Literal["reps", "teams", "rep", "team"] | None, Query()] = None,
    id: Annotated[str | None, Query(max_length=64, description="one rep's or team's")] = None,
    metric: Annotated[str | None, Query(max_length=48)] = None,
    period: Period | None = None,
    limit: PageLimit = DEFAULT_LIMIT,
    cursor: PageCursor = None,
) -> TargetList | Response:
    """Targets in (scope, id, metric, period) order, each with the value in force now and its
    history (``next_cursor`` for more; CSV or xlsx: this page)."""
    kind: SubjectKind | None = kind_of(scope) if scope else None
    found = await targets.listed(version.targets, now, kind, id, metric, period, limit, cursor)
    return export.of(found.items, "targets") if export.wanted else found


@router.put(
    PATH,
    response_model=TargetOut,
    dependencies=ADMIN_ACCESS,
    summary="Set a target, from a period on (earlier periods keep theirs)",
)
async def put_target(
    key: TargetAt, body: TargetIn, targets: RequestTargets, db: Db, now: Now
) -> TargetOut:
    """``starting`` names the first period the value applies to (``2027-01``, ``2027-W03``,
    ``2027-Q1``, ``2027``, a date). Without it, a first value applies from the beginning and a
    new one from the current period. A rep or team that does not exist is a 404."""
    version = await data_version(db)
    await targets.save(key, body.value, body.starting, now, version.targets)
    return await targets.shown(key, (await data_version(db)).targets, now)


@router.get(
    PATH,
    response_model=TargetOut,
    dependencies=READ_ACCESS,
    summary="A target: the value in force now, and its history",
)
async def get_target(version: Fresh, key: TargetAt, targets: RequestTargets, now: Now) -> TargetOut:
    return await targets.shown(key, version.targets, now)


@router.delete(
    PATH,
    status_code=204,
    dependencies=ADMIN_ACCESS,
    summary="Delete a target (or, with ?starting=, one value of its history)",
)
async def delete_target(key: TargetAt, targets: RequestTargets, starting: Starting = None) -> (
    Response
):  # fmt: skip
    await targets.delete(key, starting)
    return Response(status_code=204)


async def import_items(request: Request) -> list[imports.Placed]:
    """The targets in the body, JSON or CSV by its ``Content-Type``, read off the event loop
    and once per request (a run again after a conflict reuses them)."""
    found: list[imports.Placed] | None = getattr(request.state, "target_import", None)
    if found is None:
        media = request.headers.get("content-type", "").partition(";")[0].strip().lower()
        if media == "text/csv":
            parse = imports.from_csv
        elif media in ("", "application/json") or media.endswith("+json"):
            parse = imports.from_json
        else:
            raise Problem(
                f"Content-Type {media!r}: send application/json or text/csv",
                status=415,
                slug="unsupported-media-type",
            )
        body = await read_body(request, MAX_IMPORT_BYTES, "; split the import")
        found = request.state.target_import = await asyncio.to_thread(parse, body)
    return found


@router.post(
    "/import",
    response_model=TargetsImported,
    dependencies=ADMIN_ACCESS,
    summary="Set many targets at once (JSON or CSV, all or nothing)",
    openapi_extra={"requestBody": IMPORT_BODY},
    responses={413: {"description": "a body too large"}, 415: {"description": "not JSON/CSV"}},
)
async def import_targets(
    request: Request, targets: RequestTargets, db: Db, now: Now, dry_run: DryRun = False
) -> TargetsImported:
    """JSON ``{targets: [{scope, id, metric, period, value, starting?}]}`` or CSV
    ``scope,id,metric,period,value[,starting]`` as Excel writes it. Each target means what its
    PUT would; a target of a rep or team not on the roster is refused, naming where it is.
    ``?dry_run=1`` counts what would be created, changed and left as it is, and writes
    nothing."""
    items = await import_items(request)
    version = await data_version(db)
    return await service.import_targets(targets, items, now, version.targets, dry_run)
