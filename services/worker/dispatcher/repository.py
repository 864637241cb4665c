"""Deliveries SQL: claiming the due ones, recording what came of an attempt, counting pending.
Statements run on the connection given (the dispatcher owns its transactions).

Claiming locks the due rows with ``FOR UPDATE OF notification_deliveries SKIP LOCKED`` on
PostgreSQL, so concurrent dispatchers each take different rows; SQLite's dialect renders no
locking clause (it has none), which is right for its single process.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import cast

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from services.worker.dispatcher.backoff import Recorded
from shared.db.models import Channel as ChannelRecord
from shared.db.models import Delivery, Notification, table
from shared.notify.messages import Channel, ChannelKind
from shared.notify.messages import Notification as Message

_deliveries = table(Delivery)
_notifications = table(Notification)
_channels = table(ChannelRecord)


@dataclass(frozen=True, slots=True)
class Claimed:
    """A delivery leased to this dispatcher: ``attempts`` counts the attempt about to be made
    (it is also the lease's token: a later claim of the same row increments it)."""

    notification: Message
    channel_id: str
    channel: Channel | None  # None: the channel was deleted since the notification was raised
    attempts: int
    raised_at_ms: int


def _claimed(m: RowMapping) -> Claimed:
    raised_at_ms = cast(int, m["raised_at"])
    message = Message(
        id=m["notification_id"],
        kind=m["kind"],
        time=datetime.fromtimestamp(raised_at_ms / 1000, UTC),
        data=json.loads(m["data"]),
    )
    channel = None
    if m["url"] is not None:
        channel = Channel(
            id=m["channel_id"],
            kind=cast(ChannelKind, m["channel_kind"]),
            url=m["url"],
            secret=m["secret"],
        )
    return Claimed(message, m["channel_id"], channel, m["attempts"] + 1, raised_at_ms)


async def claim_due(conn: AsyncConnection, now_ms: int, lease_ms: int, limit: int) -> list[Claimed]:
    """Lock up to ``limit`` due deliveries (others' locked rows skipped), lease them until
    ``now_ms + lease_ms`` and count the attempt. The caller commits."""
    d, n, c = _deliveries, _notifications, _channels
    due = (
        select(
            d.c.notification_id,
            d.c.channel_id,
            d.c.attempts,
            n.c.kind,
            n.c.data,
            n.c.raised_at,
            c.c.kind.label("channel_kind"),
            c.c.url,
            c.c.secret,
        )
        .join(n, n.c.id == d.c.notification_id)
        .outerjoin(c, c.c.id == d.c.channel_id)
        .where(d.c.status == "pending", d.c.next_attempt_at <= now_ms)
        .order_by(d.c.next_attempt_at)
        .limit(limit)
        .with_for_update(skip_locked=True, of=d)
    )
    claimed = [_claimed(row) for row in (await conn.execute(due)).mappings()]
    if claimed:
        await _lease(conn, claimed, now_ms + lease_ms)
    return claimed


async def _lease(conn: AsyncConnection, claimed: Sequence[Claimed], until_ms: int) -> None:
    d = _deliveries
    lease = (
        update(d)
        .where(d.c.notification_id == bindparam("nid"), d.c.channel_id == bindparam("cid"))
        .values(next_attempt_at=until_ms, attempts=d.c.attempts + 1)
    )
    keys = [{"nid": one.notification.id, "cid": one.channel_id} for one in claimed]
    await conn.execute(lease, keys)


async def record(conn: AsyncConnection, claimed: Claimed, outcome: Recorded) -> bool:
    """Store what attempt ``claimed.attempts`` came to; False when the row has moved on.

    A delivery is recorded whenever the row is still pending (whoever holds the lease now, the
    receiver has it). A retry or a failure is recorded only by the lease's holder: if the lease
    expired and another dispatcher claimed the row again, its attempt decides."""
    d = _deliveries
    query = update(d).where(
        d.c.notification_id == claimed.notification.id,
        d.c.channel_id == claimed.channel_id,
        d.c.status == "pending",
    )
    if outcome.status != "delivered":
        query = query.where(d.c.attempts == claimed.attempts)
    values: dict[str, object] = {"status": outcome.status}
    if outcome.status != "delivered":  # a delivery keeps the error of the attempt before it
        values["last_error"] = outcome.last_error
    if outcome.next_attempt_at is not None:
        values["next_attempt_at"] = outcome.next_attempt_at
    if outcome.delivered_at is not None:
        values["delivered_at"] = outcome.delivered_at
    return bool((await conn.execute(query.values(**values))).rowcount)


async def count_pending(conn: AsyncConnection) -> int:
    query = select(func.count()).select_from(_deliveries).where(_deliveries.c.status == "pending")
    return int((await conn.execute(query)).scalar_one())
