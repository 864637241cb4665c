"""Targets in and out of the API.

A target is at least ``MIN_TARGET`` and at most ``MAX_NUMBER`` (``shared.api_model``): the
attainment and the pace divide by it, and must stay finite."""

from __future__ import annotations

from pydantic import BaseModel, Field

from services.api.common.params import SubjectKind
from services.api.targets.repository import TargetKey
from shared.api_model import MAX_NUMBER, MIN_TARGET, ApiModel
from shared.calendar import Period


class TargetIn(ApiModel):
    value: float = Field(
        ge=MIN_TARGET, le=MAX_NUMBER, description="the target for one whole period"
    )


class TargetOut(BaseModel):
    value: float = Field(description="the target for one whole period")
    scope: SubjectKind
    id: str
    metric: str
    period: Period

    @classmethod
    def of(cls, key: TargetKey, value: float) -> TargetOut:
        return cls(
            scope=key.kind, id=key.subject, metric=key.metric, period=key.period, value=value
        )
