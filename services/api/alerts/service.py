"""Alerts: saved by admins when every channel (and the contest, for ``contest_won``) exists;
notifications shown with their deliveries.

- **Saving** (PUT) refuses, in one 422, unknown channel ids (``body.channels``, listing them)
  and a ``contest_won`` trigger naming a contest that does not exist
  (``body.trigger.contest_id``); and, in a 422 of its own, a new alert beyond
  ``MAX_ALERTS``. Every change (save, delete) bumps ``alerts_version``, in the same
  transaction: the KPI service reloads the alerts it watches when it moves.
- **Notifications** are newest first, each with its deliveries. Deleting an alert keeps them:
  they are the history of what was sent.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, cast

from pydantic import BaseModel, ConfigDict

from services.api.alerts.repository import (
    AlertRepository,
    AlertRow,
    DeliveryRow,
    NotificationRepository,
    NotificationRow,
)
from services.api.alerts.schemas import (
    AlertOut,
    DeliveryOut,
    DeliveryStatus,
    NotificationEvent,
    NotificationOut,
    Subject,
)
from shared.alerts import AlertIn, ContestWon
from shared.problems import NotFound, Unprocessable, refused

# The KPI flush evaluates every enabled alert it touches (one read per scope and window they
# share, so the cost is bounded by what they read, not their number); the cap keeps their
# list, their reload and the evaluation of each crossing bounded too (README, "Alerts").
MAX_ALERTS = 500
DATA_COLUMNS = ("window", "metric", "value", "text")  # of a notification's data, in the CSV
STATUSES: tuple[DeliveryStatus, ...] = ("pending", "delivered", "failed")
CSV_COLUMNS = (
    "id",
    "alert_id",
    "kind",
    "subject.scope",
    "subject.id",
    "raised_at",
    *(f"data.{c}" for c in DATA_COLUMNS),
    *(f"channels.{s}" for s in STATUSES),
    "last_error",
)


def _at(epoch_ms: int | None) -> datetime | None:
    return None if epoch_ms is None else datetime.fromtimestamp(epoch_ms / 1000, UTC)


# --- alerts -------------------------------------------------------------------------------


def shown_alert(alert: AlertRow) -> AlertOut:
    return AlertOut(
        id=alert.id,
        name=alert.name,
        channels=alert.channels,
        enabled=alert.enabled,
        message=alert.message,
        trigger=alert.trigger,
    )


async def _problems(alerts: AlertRepository, body: AlertIn) -> list[tuple[str, str]]:
    """What the database refuses in ``body``: unknown channels, an unknown contest."""
    problems = []
    known = await alerts.known_channels(body.channels)
    unknown = [c for c in body.channels if c not in known]
    if unknown:
        listed = ", ".join(repr(c) for c in unknown)
        problems.append(("channels", f"unknown channel(s) {listed}; see PUT /v1/channels/{{id}}"))
    trigger = body.trigger
    contest_id = trigger.contest_id if isinstance(trigger, ContestWon) else None
    if contest_id is not None and not await alerts.contest_exists(contest_id):
        problems.append(("trigger.contest_id", f"no contest {contest_id!r}"))
    return problems


async def save(alerts: AlertRepository, alert_id: str, body: AlertIn) -> AlertOut:
    """Create or replace the alert, and count the change; a new alert beyond ``MAX_ALERTS``
    is refused."""
    if problems := await _problems(alerts, body):
        raise refused(*problems)
    await alerts.changed()  # first: its row lock makes concurrent creations count in turn
    if await alerts.count(other_than=alert_id) >= MAX_ALERTS:
        raise Unprocessable(
            f"at most {MAX_ALERTS} alerts may exist; delete one (DELETE /v1/alerts/{{id}}) "
            "before creating another",
            slug="too-many-alerts",
            limit=MAX_ALERTS,
        )
    alert = AlertRow(
        id=alert_id,
        name=body.name,
        channels=body.channels,
        enabled=body.enabled,
        message=body.message,
        trigger=body.trigger.model_dump(mode="json"),
    )
    await alerts.save(alert)
    return shown_alert(alert)


async def shown(alerts: AlertRepository, alert_id: str) -> AlertOut:
    alert = await alerts.get(alert_id)
    if alert is None:
        raise NotFound(f"no alert {alert_id!r}")
    return shown_alert(alert)


async def listed(alerts: AlertRepository) -> list[AlertOut]:
    return [shown_alert(a) for a in await alerts.all()]


async def delete(alerts: AlertRepository, alert_id: str) -> None:
    if not await alerts.delete(alert_id):
        raise NotFound(f"no alert {alert_id!r}")
    await alerts.changed()


# --- notifications ------------------------------------------------------------------------


def event_of(row: NotificationRow) -> NotificationEvent:
    return NotificationEvent(
        id=row.id,
        alert_id=row.alert_id,
        kind=row.kind,
        subject=Subject(scope=row.scope, id=row.subject_id),
        raised_at=datetime.fromtimestamp(row.raised_at / 1000, UTC),
        data=row.data,
    )


def _delivery_out(row: DeliveryRow) -> DeliveryOut:
    return DeliveryOut(
        channel_id=row.channel_id,
        status=cast(DeliveryStatus, row.status),  # the dispatcher writes only these three
        attempts=row.attempts,
        last_error=row.last_error,
        next_attempt_at=_at(row.next_attempt_at) if row.status == "pending" else None,
        delivered_at=_at(row.delivered_at),
    )


def with_deliveries(
    notifications: list[NotificationRow], deliveries: Iterable[DeliveryRow]
) -> list[NotificationOut]:
    """Each notification with its deliveries (by channel id), in the notifications' order."""
    by_notification: dict[str, list[DeliveryOut]] = {n.id: [] for n in notifications}
    for delivery in deliveries:
        by_notification[delivery.notification_id].append(_delivery_out(delivery))
    return [
        NotificationOut(**event_of(n).model_dump(), deliveries=by_notification[n.id])
        for n in notifications
    ]


async def notifications(
    found: NotificationRepository, alert_id: str | None, status: DeliveryStatus | None, limit: int
) -> list[NotificationOut]:
    """Newest first; ``status``: those with a delivery in that status."""
    rows = await found.newest(alert_id, status, limit)
    return with_deliveries(rows, await found.deliveries([n.id for n in rows]))


class CsvRow(BaseModel):
    """A notification flattened for a spreadsheet (columns: ``CSV_COLUMNS``)."""

    model_config = ConfigDict(extra="allow")


def csv_rows(shown: list[NotificationOut]) -> list[CsvRow]:
    """One row per notification: its data's main fields, and the channel ids per delivery
    status (space-separated), with the first delivery error."""
    return [CsvRow(**_flat(n)) for n in shown]


def _flat(notification: NotificationOut) -> dict[str, Any]:
    row: dict[str, Any] = notification.model_dump(exclude={"data", "deliveries"})
    subject = row.pop("subject")
    row |= {"subject.scope": subject["scope"], "subject.id": subject["id"]}
    row |= {f"data.{c}": _cell(notification.data.get(c)) for c in DATA_COLUMNS}
    for status in STATUSES:
        ids = [d.channel_id for d in notification.deliveries if d.status == status]
        row[f"channels.{status}"] = " ".join(ids)
    errors = [d.last_error for d in notification.deliveries if d.last_error]
    row["last_error"] = errors[0] if errors else None
    return row


def _cell(value: Any) -> Any:
    """A scalar as it is; anything else (a window given as an object) as compact JSON."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return json.dumps(value, separators=(",", ":"))
