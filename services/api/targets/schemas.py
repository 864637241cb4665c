"""Targets in and out of the API."""

from __future__ import annotations

from pydantic import BaseModel, Field

from services.api.common.params import SubjectKind
from services.api.targets.repository import TargetKey
from shared.calendar import Period


class TargetIn(BaseModel):
    value: float = Field(gt=0, description="the target for one whole period")


class TargetOut(TargetIn):
    scope: SubjectKind
    id: str
    metric: str
    period: Period

    @classmethod
    def of(cls, key: TargetKey, value: float) -> TargetOut:
        return cls(
            scope=key.kind, id=key.subject, metric=key.metric, period=key.period, value=value
        )
