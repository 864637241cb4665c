"""Correction routes: ``POST /v1/corrections`` (admin), ``GET /v1/corrections``,
``DELETE /v1/corrections/{id}`` (admin, an undo)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Path, Request, Response

from services.api.activity.queries import ActivityQueries
from services.api.common.auth import READ_ACCESS, AdminCaller
from services.api.common.database import AfterCommit, Db, api_router
from services.api.common.exports import Export
from services.api.common.pages import (
    DEFAULT_LIMIT,
    PageCursor,
    PageLimit,
    decode_cursor,
    encode_cursor,
)
from services.api.common.params import AppSettings, Now
from services.api.corrections.repository import CorrectionsRepository
from services.api.corrections.schemas import CorrectionIn, CorrectionOut, CorrectionsOut
from services.api.corrections.service import Corrections, view
from services.api.roster.repository import RosterRepository

router = api_router(prefix="/v1", tags=["corrections"])
PROBLEMS: dict[int | str, dict[str, Any]] = {
    status: {"description": what, "content": {"application/problem+json": {}}}
    for status, what in (
        (404, "no such event (or correction)"),
        (409, "the event has a correction in force"),
        (503, "no bus to send the correction on"),
    )
}
CorrectionId = Annotated[str, Path(min_length=1, max_length=40)]


def request_corrections(request: Request, db: Db, settings: AppSettings) -> Corrections:
    return Corrections(
        ActivityQueries(db),
        CorrectionsRepository(db),
        RosterRepository(db),
        request.app.state.bus,
        settings.activity_topic,
    )


RequestCorrections = Annotated[Corrections, Depends(request_corrections)]


@router.post(
    "/corrections",
    status_code=201,
    response_model=CorrectionOut,
    summary="Reassign one event to a rep, or exclude it",
    description="Recorded, then sent to the KPI service, which moves every KPI, board, "
    "unsettled contest and timeseries as if the event had been so from the start (`status` "
    "turns `applied`). One correction in force per event: undo it to make another (409).",
    responses=PROBLEMS,
)
async def make(
    body: CorrectionIn, who: AdminCaller, corrections: RequestCorrections, now: Now,
    later: AfterCommit,
) -> CorrectionOut:  # fmt: skip
    return await corrections.make(body, who.name, now, later)


@router.delete(
    "/corrections/{correction_id}",
    response_model=CorrectionOut,
    summary="Undo a correction (it stays listed, undone)",
    responses=PROBLEMS,
)
async def undo(
    correction_id: CorrectionId, who: AdminCaller, corrections: RequestCorrections, now: Now,
    later: AfterCommit,
) -> CorrectionOut:  # fmt: skip
    return await corrections.undo(correction_id, who.name, now, later)


@router.get(
    "/corrections",
    response_model=CorrectionsOut,
    dependencies=READ_ACCESS,
    summary="The corrections, newest first: who (the key's name), when, why, applied or not",
)
async def listed(
    db: Db, export: Export, limit: PageLimit = DEFAULT_LIMIT, cursor: PageCursor = None
) -> CorrectionsOut | Response:
    below = decode_cursor(cursor, (int, str))
    rows = await CorrectionsRepository(db).page(
        None if below is None else (below[0], below[1]), limit + 1
    )
    items = [view(r) for r in rows[:limit]]
    more = len(rows) > limit
    last = rows[limit - 1] if more else None
    next_cursor = encode_cursor([last["made_at"], last["id"]]) if last is not None else None
    if export.wanted:
        return export.of(items, "corrections")
    return CorrectionsOut(items=items, next_cursor=next_cursor)
