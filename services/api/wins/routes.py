"""``GET /v1/wins``: the deals won in a window, newest first (the wallboard's ticker)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, Response

from services.api.common.auth import READ_ACCESS
from services.api.common.database import Db, api_router
from services.api.common.exports import Export
from services.api.common.freshness import Fresh
from services.api.common.params import RequestWindow
from services.api.wins import service
from services.api.wins.repository import WinsRepository
from services.api.wins.schemas import WinOut, WinsOut

router = api_router(prefix="/v1", tags=["wins"])


@router.get(
    "/wins",
    response_model=WinsOut,
    response_model_by_alias=True,
    dependencies=READ_ACCESS,
    summary="The deals won in a window (default today), newest first",
)
async def wins(
    window: RequestWindow,
    version: Fresh,
    db: Db,
    export: Export,
    team: Annotated[str | None, Query(max_length=64, description="one team's wins")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> WinsOut | Response:
    repo = WinsRepository(db)
    found = [w for w in await service.won(repo, window) if team in (None, w.team_id)][:limit]
    names = await repo.names({w.rep_id for w in found}, {w.team_id for w in found if w.team_id})
    rows = [
        WinOut(
            deal_id=w.deal_id,
            won_at=service.at(w.at),
            rep_id=w.rep_id,
            name=names.get(("rep", w.rep_id), w.rep_id),
            team_id=w.team_id,
            team_name=names.get(("team", w.team_id)) if w.team_id else None,
            amount=w.revenue_cents / 100,
        )
        for w in found
    ]
    if export.wanted:
        return export.of(rows, "wins")
    return WinsOut(
        window=window.name, from_=window.start, to=window.end, as_of=version.as_of, wins=rows
    )
