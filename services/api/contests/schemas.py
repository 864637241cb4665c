"""Contests in and out of the API (``interfaces.md``, section Contests).

What a field alone can refuse is refused here (a 422 naming it); what needs the catalogue or
the roster (points of a ratio, unknown teams) is refused by the service, naming the field too.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from services.api.contests.scoring import Participants, Status
from services.api.kpis.schemas import MetricValue
from services.api.roster.schemas import Name, RosterId
from shared.api_model import MAX_NUMBER, MAX_WEIGHT, ApiModel
from shared.windows import CUSTOM_RANGE, EARLIEST, LATEST

MAX_SPAN = timedelta(days=366)
MAX_TEAMS = 1000
MAX_POINTS = 20
Weight = Annotated[float, Field(gt=0, le=MAX_WEIGHT)]


def _whole_minute(moment: datetime, field: str) -> datetime:
    if moment.second or moment.microsecond:
        raise ValueError(f"{field} must fall on a whole minute (buckets hold whole minutes)")
    if not EARLIEST <= moment <= LATEST:
        raise ValueError(f"{field} must lie {CUSTOM_RANGE}")
    return moment


class ScoreIn(ApiModel):
    """``{metric}`` or ``{points: {metric: weight}}``; a weight is positive and at most
    ``MAX_WEIGHT``, so a score (at most ``MAX_POINTS`` weights times BIGINT counters) stays
    finite."""

    metric: str | None = Field(default=None, max_length=48)
    points: dict[Annotated[str, Field(max_length=48)], Weight] | None = Field(
        default=None, max_length=MAX_POINTS
    )

    @model_validator(mode="after")
    def _one_of(self) -> ScoreIn:
        if (self.points is None) == (self.metric is None):
            raise ValueError("give either metric or points")
        return self


ScoreOut = dict[str, str | dict[str, float]]  # {"metric": m} or {"points": {m: weight}}


class ContestIn(ApiModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "Call blitz",
                    "starts_at": "2027-03-01T09:00:00+01:00",
                    "ends_at": "2027-03-01T18:00:00+01:00",
                    "participants": "reps",
                    "score": {"metric": "calls_total"},
                    "goal": 60,
                },
                {
                    "name": "March points race",
                    "starts_at": "2027-03-01T00:00:00+01:00",
                    "ends_at": "2027-04-01T00:00:00+02:00",
                    "participants": "teams",
                    "team_ids": ["north", "south"],
                    "score": {"points": {"deals_won": 10, "meetings_booked": 3, "calls_total": 1}},
                },
            ]
        }
    )

    name: Name
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    participants: Participants = "reps"
    team_ids: list[RosterId] | None = Field(
        default=None, max_length=MAX_TEAMS, description="only these teams, or their reps"
    )
    score: ScoreIn
    goal: float | None = Field(default=None, gt=0, le=MAX_NUMBER)

    @field_validator("starts_at")
    @classmethod
    def _start(cls, moment: datetime) -> datetime:
        return _whole_minute(moment, "starts_at")

    @field_validator("ends_at")
    @classmethod
    def _end(cls, moment: datetime, info: ValidationInfo) -> datetime:
        _whole_minute(moment, "ends_at")
        start = info.data.get("starts_at")
        if start is not None and moment <= start:
            raise ValueError("ends_at must be after starts_at")
        if start is not None and moment - start > MAX_SPAN:
            raise ValueError(f"a contest lasts at most {MAX_SPAN.days} days")
        return moment


class ContestRow(BaseModel):
    rank: int | None = Field(description="standard competition rank; null: unranked")
    rep_id: str | None = None
    team_id: str | None
    name: str
    team_name: str | None = None
    score: MetricValue
    parts: dict[str, MetricValue]
    goal_reached_at: datetime | None = Field(
        default=None,
        description="the start of the minute (the hour, past the minute retention) in which "
        "the score reached the goal",
    )


class Winner(BaseModel):
    rep_id: str | None = None
    team_id: str | None
    name: str


class ContestOut(BaseModel):
    id: str
    name: str
    status: Status
    starts_at: datetime
    ends_at: datetime
    settles_at: datetime = Field(description="when the standings become final")
    participants: Participants
    team_ids: list[str] | None
    score: ScoreOut
    goal: float | None
    final: bool = Field(description="the standings are stored; later events change nothing")
    settled_at: datetime | None = None
    as_of: datetime
    rows: list[ContestRow]
    rows_total: int = Field(description="participants in all; rows holds the first `limit`")
    winners: list[Winner]


class ContestSummary(BaseModel):
    """A contest in a list: its definition and status, without the standings."""

    id: str
    name: str
    status: Status
    starts_at: datetime
    ends_at: datetime
    settles_at: datetime
    participants: Participants
    team_ids: list[str] | None
    score: ScoreOut
    goal: float | None
    winners: list[Winner]


class ContestList(BaseModel):
    contests: list[ContestSummary]
    next_cursor: str | None = Field(
        default=None, description="the next page's cursor (?cursor=); null on the last page"
    )
