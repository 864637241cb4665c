"""Request and response models of the API (the shapes of ``interfaces.md``)."""

from __future__ import annotations

from datetime import datetime

from pydantic import AwareDatetime, BaseModel, Field

Identifier = str


class TeamIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)


class TeamOut(BaseModel):
    id: str
    name: str
    members: list[str]


class IdentityModel(BaseModel):
    provider: str = Field(min_length=1, max_length=64)
    external_id: str = Field(min_length=1, max_length=256)


class RepIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    team_id: str | None = Field(default=None, max_length=64)
    identities: list[IdentityModel] = Field(default_factory=list, max_length=50)
    effective_from: AwareDatetime | None = None


class Membership(BaseModel):
    team_id: str
    effective_from: datetime


class RepOut(BaseModel):
    id: str
    name: str
    team_id: str | None
    identities: list[IdentityModel]
    teams: list[Membership]


MetricValue = float | int | None


class KpisOut(BaseModel):
    window: str
    from_: datetime = Field(serialization_alias="from")
    to: datetime
    as_of: datetime
    metrics: dict[str, MetricValue]


class RepKpisOut(KpisOut):
    rep_id: str
    team_id: str | None


class TeamKpisOut(KpisOut):
    team_id: str


class LeaderboardRow(BaseModel):
    rank: int | None = Field(description="standard competition rank; null: unranked")
    previous_rank: int | None = Field(
        default=None, description="rank on the same board a configured interval ago"
    )
    movement: int | None = Field(default=None, description="places gained (negative: lost)")
    rep_id: str | None = None
    name: str
    team_id: str | None
    value: MetricValue
    attainment: float | None = Field(default=None, description="value / target, when ranked so")
    volume: int | None = Field(default=None, description="facts a ratio rests on")


class LeaderboardOut(BaseModel):
    metric: str
    rank_by: str = "value"
    window: str
    from_: datetime = Field(serialization_alias="from")
    to: datetime
    as_of: datetime
    rows: list[LeaderboardRow]


class TimeseriesPoint(BaseModel):
    start: datetime
    end: datetime
    value: MetricValue


class TimeseriesOut(BaseModel):
    scope: str
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
