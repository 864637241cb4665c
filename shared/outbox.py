"""The alerts outbox: writing notifications in the caller's transaction (``architecture.md``,
decision 12). Used by the KPI flush (crossings of what a batch booked) and by the worker
(a contest's winners at settlement, scheduled pace checks); the crossings are decided by
``shared.alerting``.

A notification is unique per alert, subject and occurrence: ``write`` inserts with
``ON CONFLICT DO NOTHING``, so a crossing seen again (a replay, a duplicate, a correction and
a re-crossing, two instances at once) writes nothing more. Each new notification gets a
pending delivery per channel of its alert, and a stable id (``ntf_...``) the receivers
deduplicate on.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from typing import Any

import orjson
from prometheus_client import Counter
from pydantic import TypeAdapter, ValidationError
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.alerting import Crossing, Watched
from shared.alerts import DEFAULT_MESSAGES, Trigger, Voice
from shared.db.chunks import chunks
from shared.db.models import Alert, Delivery, Notification, Rep, Team, table

log = logging.getLogger(__name__)
_alerts = table(Alert)
_notifications, _deliveries = table(Notification), table(Delivery)
_reps, _teams = table(Rep), table(Team)
_TRIGGER: TypeAdapter[Any] = TypeAdapter(Trigger)
RAISED = Counter(
    "salespulse_notifications_raised_total",
    "Alert notifications written to the outbox, by trigger kind",
    ["kind"],
)


def initialise_metrics() -> None:
    """Every trigger kind's series from the start, at 0."""
    for kind in DEFAULT_MESSAGES:
        RAISED.labels(kind)


UNIQUE = ["alert_id", "scope", "subject_id", "occurrence"]  # a notification fires once per these


async def enabled_alerts(conn: AsyncConnection) -> list[Watched]:
    """The enabled alerts, in id order. One whose stored trigger no longer validates (a metric
    since removed from the catalogue) is logged and left out: it must not stop the flush."""
    rows = await conn.execute(
        select(_alerts.c.id, _alerts.c.name, _alerts.c.channels, _alerts.c.message,
               _alerts.c.trigger).where(_alerts.c.enabled.is_(True)).order_by(_alerts.c.id)
    )  # fmt: skip
    watched = []
    for alert_id, name, channels, message, trigger in rows:
        try:
            parsed = _TRIGGER.validate_json(trigger)
        except ValidationError as exc:
            log.warning("alert left out: its trigger is no longer valid",
                        extra={"alert": alert_id, "error": str(exc)[:300]})  # fmt: skip
            continue
        watched.append(Watched(alert_id, name, tuple(orjson.loads(channels)), message, parsed))
    return watched


async def write(
    conn: AsyncConnection,
    crossings: Iterable[Crossing],
    at: float,
    voice: Voice,
) -> int:
    """Write each crossing not written before, with its deliveries, its text in ``voice``:
    how many were new.
    ``salespulse_notifications_raised_total`` counts them, by trigger kind, in whichever
    process raised them (the KPI service, the worker's pace checks and settlements)."""
    crossings = await _not_written(conn, list(crossings))
    if not crossings:
        return 0
    names = await _names(conn, crossings)
    raised_at = int(at * 1000)
    by_id = {f"ntf_{uuid.uuid4().hex}": crossing for crossing in crossings}
    rows = [
        {
            "id": notification_id,
            "alert_id": crossing.alert.id,
            "kind": crossing.alert.trigger.kind,
            "scope": crossing.scope,
            "subject_id": crossing.subject,
            "occurrence": crossing.occurrence,
            "data": orjson.dumps(_data(crossing, names, voice)).decode(),
            "raised_at": raised_at,
        }
        for notification_id, crossing in by_id.items()
    ]
    new = await _insert_new(conn, rows)
    deliveries = [
        {
            "notification_id": notification_id,
            "channel_id": channel,
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": raised_at,
        }
        for notification_id in new
        for channel in by_id[notification_id].alert.channels
    ]
    if deliveries:  # executemany: SQLAlchemy pages it under the parameter limit (chunks.py)
        await conn.execute(_deliveries.insert(), deliveries)
    for notification_id in new:
        RAISED.labels(by_id[notification_id].alert.trigger.kind).inc()
    return len(new)


async def _insert_new(conn: AsyncConnection, rows: list[dict[str, Any]]) -> list[str]:
    """Insert the notification ``rows`` not there yet: the ids inserted. A multi-row
    ``INSERT`` per chunk, each under the drivers' parameter limit."""
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    new: list[str] = []
    for chunk in chunks(rows, len(_notifications.c)):
        created = await conn.execute(
            insert(_notifications)
            .values(list(chunk))
            .on_conflict_do_nothing(index_elements=UNIQUE)  # fired before (another instance)
            .returning(_notifications.c.id)
        )
        new += [notification_id for (notification_id,) in created]
    return new


async def _not_written(conn: AsyncConnection, crossings: list[Crossing]) -> list[Crossing]:
    """The crossings not written before, found in one read per chunk: most of what a flush
    sees at or past a threshold fired earlier that day, and each insert is a round trip under
    the flush's locks. (The insert's ``ON CONFLICT`` still settles a race with another
    instance.) A crossing names up to three values in the read's ``IN`` lists."""
    written: set[tuple[str, ...]] = set()
    n = _notifications.c
    for chunk in chunks(crossings, 3):
        existing = await conn.execute(
            select(n.alert_id, n.scope, n.subject_id, n.occurrence).where(
                n.alert_id.in_(sorted({c.alert.id for c in chunk})),
                n.occurrence.in_(sorted({c.occurrence for c in chunk})),
                n.subject_id.in_(sorted({c.subject for c in chunk})),
            )
        )
        written.update(tuple(row) for row in existing)
    return [c for c in crossings if (c.alert.id, c.scope, c.subject, c.occurrence) not in written]


def _data(crossing: Crossing, names: dict[tuple[str, str], str], voice: Voice) -> dict[str, Any]:
    """The payload's ``data``: who, what (as numbers), and the text (as a reader reads it)."""
    alert, kind = crossing.alert, crossing.alert.trigger.kind
    name = names.get((crossing.scope, crossing.subject), crossing.subject)
    text = voice.render(alert.message, kind, {
        "alert": alert.name, "subject": name, "subject_id": crossing.subject,
        **crossing.values,
    })  # fmt: skip
    return {
        "alert_id": alert.id,
        "kind": kind,
        "subject": {"scope": crossing.scope, "id": crossing.subject, "name": name},
        **crossing.values,
        "text": text,
    }


async def _names(conn: AsyncConnection, crossings: list[Crossing]) -> dict[tuple[str, str], str]:
    found: dict[tuple[str, str], str] = {}
    for scope, names in (("rep", _reps), ("team", _teams)):
        wanted = sorted({c.subject for c in crossings if c.scope == scope})
        for chunk in chunks(wanted):
            rows = await conn.execute(select(names.c.id, names.c.name).where(names.c.id.in_(chunk)))
            found.update({(scope, i): n for i, n in rows})
    return found
