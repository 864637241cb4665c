"""Alerts and notifications SQL. Statements run on the connection given (the edge owns its
transaction; the live stream's poller opens its own)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, delete, exists, func, or_, select
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from services.api.common.database import upsert
from services.api.common.freshness import bump_version
from shared.db.models import Alert as AlertRecord
from shared.db.models import AlertsVersion, Channel, Contest, Delivery, Notification, table

_alerts, _version = table(AlertRecord), table(AlertsVersion)
_channels, _contests = table(Channel), table(Contest)
_notifications, _deliveries = table(Notification), table(Delivery)


@dataclass(frozen=True, slots=True)
class AlertRow:
    id: str
    name: str
    channels: list[str]
    enabled: bool
    message: str | None
    trigger: dict[str, Any]


@dataclass(frozen=True, slots=True)
class NotificationRow:
    id: str
    alert_id: str
    kind: str
    scope: str
    subject_id: str
    data: dict[str, Any]
    raised_at: int  # epoch ms


@dataclass(frozen=True, slots=True)
class DeliveryRow:
    notification_id: str
    channel_id: str
    status: str
    attempts: int
    last_error: str | None
    next_attempt_at: int  # epoch ms
    delivered_at: int | None  # epoch ms


def _alert(row: Row[tuple[object, ...]]) -> AlertRow:
    m = row._mapping
    return AlertRow(
        id=m["id"],
        name=m["name"],
        channels=json.loads(m["channels"]),
        enabled=bool(m["enabled"]),
        message=m["message"],
        trigger=json.loads(m["trigger"]),
    )


def _notification(row: Row[tuple[object, ...]]) -> NotificationRow:
    m = row._mapping
    return NotificationRow(
        id=m["id"],
        alert_id=m["alert_id"],
        kind=m["kind"],
        scope=m["scope"],
        subject_id=m["subject_id"],
        data=json.loads(m["data"]),
        raised_at=int(m["raised_at"]),
    )


def _delivery(row: Row[tuple[object, ...]]) -> DeliveryRow:
    m = row._mapping
    return DeliveryRow(
        notification_id=m["notification_id"],
        channel_id=m["channel_id"],
        status=m["status"],
        attempts=int(m["attempts"]),
        last_error=m["last_error"],
        next_attempt_at=int(m["next_attempt_at"]),
        delivered_at=None if m["delivered_at"] is None else int(m["delivered_at"]),
    )


class AlertRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def get(self, alert_id: str) -> AlertRow | None:
        row = (await self._conn.execute(select(_alerts).where(_alerts.c.id == alert_id))).first()
        return _alert(row) if row is not None else None

    async def all(self) -> list[AlertRow]:
        return [_alert(r) for r in await self._conn.execute(select(_alerts).order_by(_alerts.c.id))]

    async def save(self, alert: AlertRow) -> None:
        values = {
            "name": alert.name,
            "channels": json.dumps(alert.channels),
            "enabled": alert.enabled,
            "message": alert.message,
            "trigger": json.dumps(alert.trigger),
        }
        await upsert(self._conn, _alerts, "id", {"id": alert.id, **values})

    async def count(self, other_than: str) -> int:
        """How many alerts exist, ``other_than`` left out (the one being replaced)."""
        query = select(func.count()).select_from(_alerts).where(_alerts.c.id != other_than)
        return int((await self._conn.execute(query)).scalar_one())

    async def delete(self, alert_id: str) -> bool:
        query = delete(_alerts).where(_alerts.c.id == alert_id)
        return bool((await self._conn.execute(query)).rowcount)

    async def changed(self) -> None:
        """Count a change: the KPI service reloads the alerts it watches when this moves."""
        await bump_version(self._conn, _version)

    async def known_channels(self, channel_ids: list[str]) -> set[str]:
        if not channel_ids:
            return set()
        query = select(_channels.c.id).where(_channels.c.id.in_(channel_ids))
        return set((await self._conn.execute(query)).scalars())

    async def contest_exists(self, contest_id: str) -> bool:
        query = select(_contests.c.id).where(_contests.c.id == contest_id)
        return (await self._conn.execute(query)).first() is not None


class NotificationRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def newest(
        self, alert_id: str | None, status: str | None, limit: int
    ) -> list[NotificationRow]:
        """Newest first; ``status``: only those with a delivery in that status."""
        n, d = _notifications.c, _deliveries.c
        query = select(_notifications).order_by(n.raised_at.desc(), n.id.desc()).limit(limit)
        if alert_id is not None:
            query = query.where(n.alert_id == alert_id)
        if status is not None:
            query = query.where(exists().where(d.notification_id == n.id, d.status == status))
        return [_notification(r) for r in await self._conn.execute(query)]

    async def deliveries(self, notification_ids: list[str]) -> list[DeliveryRow]:
        if not notification_ids:
            return []
        d = _deliveries.c
        query = (
            select(_deliveries)
            .where(d.notification_id.in_(notification_ids))
            .order_by(d.notification_id, d.channel_id)
        )
        return [_delivery(r) for r in await self._conn.execute(query)]

    async def after(self, notification_id: str, limit: int) -> list[NotificationRow]:
        """The last ``limit`` notifications raised after ``notification_id`` (by raised_at,
        then id), oldest first; none when that id is unknown."""
        n = _notifications.c
        mark = (
            await self._conn.execute(select(n.raised_at).where(n.id == notification_id))
        ).scalar()
        if mark is None:
            return []
        later = or_(n.raised_at > mark, and_(n.raised_at == mark, n.id > notification_id))
        query = (
            select(_notifications)
            .where(later)
            .order_by(n.raised_at.desc(), n.id.desc())
            .limit(limit)
        )
        return [_notification(r) for r in reversed((await self._conn.execute(query)).all())]

    async def raised_since(
        self, floor_ms: int, limit: int, after_id: str | None = None
    ) -> list[NotificationRow]:
        """Those raised at or after ``floor_ms`` (past ``after_id`` among those raised at
        ``floor_ms`` itself, when given: a page after a full one), oldest first, at most
        ``limit``."""
        n = _notifications.c
        since = n.raised_at >= floor_ms
        if after_id is not None:
            since = or_(n.raised_at > floor_ms, and_(n.raised_at == floor_ms, n.id > after_id))
        query = select(_notifications).where(since).order_by(n.raised_at, n.id).limit(limit)
        return [_notification(r) for r in await self._conn.execute(query)]
