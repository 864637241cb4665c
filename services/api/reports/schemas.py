"""Report answers: ``GET /v1/reports/{reps|teams}``."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from services.api.kpis.schemas import MetricValue

Scope = Literal["reps", "teams"]


class ReportRow(BaseModel):
    rep_id: str | None = Field(default=None, description="null in a report of teams")
    name: str = Field(description="the rep's name, or the team's")
    team_id: str | None = Field(description="the rep's team at the window's end (or now)")
    team_name: str | None = None
    values: dict[str, MetricValue] = Field(
        description="metric -> value, as GET /v1/{reps|teams}/{id}/kpis gives it"
    )


class ReportOut(BaseModel):
    scope: Scope
    window: str
    from_: datetime = Field(serialization_alias="from")
    to: datetime
    as_of: datetime
    team: str | None = Field(default=None, description="the team asked for (?team=), if any")
    metrics: list[str] = Field(description="the metrics of each row's values, in column order")
    rows: list[ReportRow] = Field(description="by team name, then name")
