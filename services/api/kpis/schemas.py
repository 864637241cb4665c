"""KPI answers (the shapes of ``interfaces.md``)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

MetricValue = float | int | None


class PaceOut(BaseModel):
    """Where a value stands against its target now (``shared.pacing``)."""

    target: float = Field(description="the window's target")
    expected: float | None = Field(description="target x elapsed share of the window")
    pace: float | None = Field(description="value / expected: 1 is on track")
    projected: float | None = Field(
        description="value / elapsed share: the window's end at this rate"
    )


class KpisOut(BaseModel):
    window: str
    from_: datetime = Field(serialization_alias="from")
    to: datetime
    as_of: datetime
    metrics: dict[str, MetricValue]
    pace: dict[str, PaceOut] = Field(
        default_factory=dict, description="per count or sum metric that has a target"
    )


class KpiRow(BaseModel):
    """A metric of a KPI answer, as a row of an export."""

    metric: str
    label: str = Field(description="what it is called in the organisation's language")
    value: MetricValue
    pace: PaceOut | None = None


class RepKpisOut(KpisOut):
    rep_id: str
    team_id: str | None


class TeamKpisOut(KpisOut):
    team_id: str


class TimeseriesPoint(BaseModel):
    start: datetime
    end: datetime
    value: MetricValue


class TimeseriesOut(BaseModel):
    scope: str = Field(description="rep or team")
    id: str
    metric: str
    interval: str
    window: str
    from_: datetime = Field(serialization_alias="from")
    to: datetime
    as_of: datetime
    points: list[TimeseriesPoint]


class UnassignedRow(BaseModel):
    identity: str = Field(description="provider:external_id as the events named the actor")
    provider: str
    external_id: str
    calls_total: int
    deals_won: int
    revenue: float
    activity: str = Field(
        description="where its events are listed, each with the event_id a correction names"
    )


class UnassignedOut(BaseModel):
    window: str
    from_: datetime = Field(serialization_alias="from")
    to: datetime
    as_of: datetime
    rows: list[UnassignedRow]


class MetricOut(BaseModel):
    name: str
    kind: str = Field(description="count, sum or ratio")
    unit: str
    definition: str
    labels: dict[str, str] = Field(description="what it is called: {fr, en}")
