"""Leaderboard answers (the shapes of ``interfaces.md``)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from services.api.kpis.schemas import MetricValue, PaceOut


class LeaderboardRow(BaseModel):
    rank: int | None = Field(description="standard competition rank; null: unranked")
    previous_rank: int | None = Field(
        default=None, description="rank on the same board a configured interval ago"
    )
    movement: int | None = Field(default=None, description="places gained (negative: lost)")
    rep_id: str | None = None
    name: str
    team_id: str | None
    team_name: str | None = None
    value: MetricValue
    attainment: float | None = Field(default=None, description="value / target, when ranked so")
    volume: int | None = Field(default=None, description="facts a ratio rests on")
    pace: PaceOut | None = Field(
        default=None, description="against the target of the metric, when there is one"
    )


class LeaderboardOut(BaseModel):
    metric: str
    rank_by: str = "value"
    window: str
    from_: datetime = Field(serialization_alias="from")
    to: datetime
    as_of: datetime
    compared_to: datetime | None = Field(
        default=None,
        description="when the board that previous_rank is read from stood; null: there was "
        "none yet (the window had not begun a movement interval ago), so no movement at all",
    )
    rows: list[LeaderboardRow]
    rows_total: int = Field(default=0, description="every contender, rows shown or not")
