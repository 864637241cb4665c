"""Corrections sent again: the API publishes a correction (or its undo) once its row is
committed; if the bus failed it then, the row stays pending. Every few minutes the worker
sends again what the KPI service has not marked applied after ``RESEND_AFTER_S``. Sending twice
is harmless: the KPI service claims each message once (``CorrectionMessage.key``)."""

from __future__ import annotations

import logging

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.bus import Bus, OutgoingRecord
from shared.corrections import message_of, outgoing
from shared.db.models import Correction, table

log = logging.getLogger(__name__)
RESEND_EVERY_S = 120.0
RESEND_AFTER_S = 300  # long enough for the KPI service to apply what was just sent
_c = table(Correction).c


async def resend_pending(db: AsyncEngine, bus: Bus, topic: str, now: int) -> int:
    """Publish again each correction, and each undo, not applied ``RESEND_AFTER_S`` after it
    was made; a correction undone before it was applied goes before its undo (same key, same
    partition: in that order). How many records it sent."""
    before = now - RESEND_AFTER_S
    query = (
        select(_c.id, _c.action, _c.rep_id, _c.target, _c.applied_at, _c.undone_at)
        .where(
            _c.target.is_not(None),
            or_(
                and_(_c.applied_at.is_(None), _c.made_at < before),
                and_(_c.undone_at < before, _c.undo_applied_at.is_(None)),
            ),
        )
        .order_by(_c.made_at, _c.id)
    )
    async with db.connect() as conn:
        rows = (await conn.execute(query)).all()
    records: list[OutgoingRecord] = []
    for correction_id, action, rep_id, target, applied_at, undone_at in rows:
        if applied_at is None:
            records.append(outgoing(message_of(correction_id, action, rep_id, target, False)))
        if undone_at is not None:
            records.append(outgoing(message_of(correction_id, action, rep_id, target, True)))
    if records:
        await bus.publish(topic, records)
        log.info("corrections sent again", extra={"records": len(records)})
    return len(records)
