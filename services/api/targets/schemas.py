"""Targets in and out of the API.

A target is at least ``MIN_TARGET`` and at most ``MAX_NUMBER`` (``shared.api_model``): the
attainment and the pace divide by it, and must stay finite."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from services.api.common.params import SubjectKind
from services.api.roster.schemas import RosterId
from shared.api_model import MAX_NUMBER, MIN_TARGET, ApiModel
from shared.calendar import Period

STARTING = (
    "the first period this value applies to: 2027 (year), 2027-Q1, 2027-01, 2027-W03 (ISO "
    "week) or a date (the period holding it); earlier periods keep the value they had. "
    "Absent: a first value applies from the beginning, a new one from the current period"
)
TargetValue = Field(ge=MIN_TARGET, le=MAX_NUMBER, description="the target for one whole period")


class TargetIn(ApiModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"value": 50000, "starting": "2027-01"}, {"value": 40}]}
    )
    value: float = TargetValue
    starting: str | None = Field(default=None, max_length=32, description=STARTING)


class HistoryStep(BaseModel):
    starting: str | None = Field(description="the first period it applies to; null: the beginning")
    starts_at: datetime | None = Field(description="when that period starts (local time)")
    value: float


class TargetOut(BaseModel):
    scope: SubjectKind
    id: str
    metric: str
    period: Period
    value: float | None = Field(description="in force in the current period; null: none yet")
    history: list[HistoryStep] = Field(description="every value, oldest first")


class TargetList(BaseModel):
    items: list[TargetOut]
    next_cursor: str | None = Field(
        default=None, description="the next page's cursor (?cursor=); null on the last page"
    )


class TargetItem(ApiModel):
    """One target of an import: what ``PUT /v1/targets/{scope}/{id}/{metric}/{period}`` takes,
    with where it goes."""

    scope: Literal["reps", "teams", "rep", "team"]
    id: RosterId
    metric: str = Field(min_length=1, max_length=48)
    period: Period
    value: float = TargetValue
    starting: str | None = Field(default=None, max_length=32, description=STARTING)


class TargetsImportIn(ApiModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"targets": [
                    {"scope": "reps", "id": "chloe", "metric": "revenue", "period": "month",
                     "value": 45000, "starting": "2027-01"},
                    {"scope": "teams", "id": "paris", "metric": "calls_total", "period": "day",
                     "value": 400},
                ]}
            ]
        }
    )  # fmt: skip
    targets: list[TargetItem] = Field(default_factory=list, max_length=100_000)


class TargetsImported(BaseModel):
    """What an import did, or would do (``dry_run``): targets created (no value before),
    changed (another value from that period on), unchanged; nothing is written in a dry run."""

    dry_run: bool
    created: int
    changed: int
    unchanged: int
