"""Alerts and notifications out of the API (``interfaces.md``, section Alerts).

In, an alert is ``shared.alerts.AlertIn``: what the body alone can refuse (an unknown trigger,
metric or placeholder) is a 422 naming its field there; what needs the database (unknown
channels, an unknown contest) is refused by the service, naming the field too.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

DeliveryStatus = Literal["pending", "delivered", "failed"]


class AlertOut(BaseModel):
    """An alert as saved: its trigger with every default filled in."""

    id: str
    name: str
    channels: list[str]
    enabled: bool
    message: str | None
    trigger: dict[str, Any]


class AlertList(BaseModel):
    alerts: list[AlertOut]


class Subject(BaseModel):
    scope: str = Field(description="rep or team (or what the trigger is about)")
    id: str


class DeliveryOut(BaseModel):
    channel_id: str
    status: DeliveryStatus
    attempts: int
    last_error: str | None
    next_attempt_at: datetime | None = Field(description="null once delivered or failed")
    delivered_at: datetime | None


class NotificationEvent(BaseModel):
    """A notification as the stream sends it (``event: notification``)."""

    id: str = Field(description="stable: the webhook-id of each delivery, the SSE id")
    alert_id: str
    kind: str
    subject: Subject
    raised_at: datetime
    data: dict[str, Any] = Field(
        description="the payload's data: alert_id, kind, subject, window, metric, value, text"
    )


class NotificationOut(NotificationEvent):
    deliveries: list[DeliveryOut]


class NotificationList(BaseModel):
    notifications: list[NotificationOut] = Field(description="newest first")
