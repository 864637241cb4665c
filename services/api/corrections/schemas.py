"""A correction as the API takes and answers it (``interfaces.md``: "corrections")."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.api_model import ApiModel

Action = Literal["reassign", "exclude"]
Status = Literal["pending", "applied", "undo_pending", "undone"]


class CorrectionIn(ApiModel):
    model_config = ConfigDict(
        allow_inf_nan=False,
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "event_id": "evt-2027-0142",
                    "action": "reassign",
                    "rep_id": "alice",
                    "reason": "logged from Bob's phone while he covered Alice's line",
                },
                {"event_id": "evt-2027-0143", "action": "exclude", "reason": "a test call"},
            ]
        },
    )
    event_id: str = Field(min_length=1, max_length=256, description="an event of the activity")
    action: Action
    rep_id: str | None = Field(
        default=None, max_length=64, description="reassign: the rep who gets the event"
    )
    reason: str = Field(max_length=2000, description="why, for whoever reads the audit; required")


class CorrectionOut(BaseModel):
    id: str
    event_id: str
    action: Action
    rep_id: str | None
    reason: str
    made_by: str = Field(description="the name of the API key that made it")
    made_at: datetime
    status: Status = Field(
        description="pending: not applied by the KPI service yet; applied; undo_pending: "
        "undone, the undo not applied yet; undone"
    )
    applied_at: datetime | None
    undone_by: str | None
    undone_at: datetime | None
    undo_applied_at: datetime | None


class CorrectionsOut(BaseModel):
    items: list[CorrectionOut] = Field(description="newest first")
    next_cursor: str | None = None
