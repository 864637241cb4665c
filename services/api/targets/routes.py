"""Targets admin: ``/v1/targets/{reps|teams}/{id}/{metric}/{period}`` (``rep``/``team`` too)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Depends, Path, Request, Response

from services.api.common.auth import ADMIN_ACCESS, READ_ACCESS
from services.api.common.database import Db, api_router
from services.api.common.freshness import Fresh
from services.api.common.params import AppSettings, Id, Metric, SubjectKind
from services.api.targets.repository import TargetKey, TargetRepository
from services.api.targets.schemas import TargetIn, TargetOut
from services.api.targets.service import TargetCache, Targets
from shared.calendar import Period

router = api_router(prefix="/v1/targets", tags=["targets"])
PATH = "/{scope}/{id}/{metric}/{period}"
KIND_IN_PATH: dict[str, SubjectKind] = {
    "reps": "rep",
    "teams": "team",
    "rep": "rep",
    "team": "team",
}
KindInPath = Annotated[
    Literal["reps", "teams", "rep", "team"],
    Path(description="reps or teams, like /v1/reps/…; the singular rep or team works too"),
]


def target_key(scope: KindInPath, id: Id, metric: Metric, period: Period) -> TargetKey:
    return TargetKey(KIND_IN_PATH[scope], id, metric, period)


def request_targets(request: Request, db: Db, settings: AppSettings) -> Targets:
    cache: TargetCache = request.app.state.target_cache
    return Targets(TargetRepository(db), cache, settings.tz, settings.week_start.weekday)


TargetAt = Annotated[TargetKey, Depends(target_key)]
RequestTargets = Annotated[Targets, Depends(request_targets)]


@router.put(PATH, response_model=TargetOut, dependencies=ADMIN_ACCESS)
async def put_target(key: TargetAt, body: TargetIn, targets: RequestTargets) -> TargetOut:
    await targets.save(key, body.value)
    return TargetOut.of(key, body.value)


@router.get(PATH, response_model=TargetOut, dependencies=READ_ACCESS)
async def get_target(version: Fresh, key: TargetAt, targets: RequestTargets) -> TargetOut:
    return TargetOut.of(key, await targets.value(key, version.targets))


@router.delete(PATH, status_code=204, dependencies=ADMIN_ACCESS)
async def delete_target(key: TargetAt, targets: RequestTargets) -> Response:
    await targets.delete(key)
    return Response(status_code=204)
