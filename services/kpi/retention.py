"""Retention of the KPI service's tables: minute and hour buckets past their retention, the
ids of applied events and the states of calls past the deduplication window, and the activity
record past ``ACTIVITY_RETENTION_DAYS``.

Run on a schedule by the worker (``services.worker``), by any number of instances: each pass is
one transaction of ``DELETE`` statements, which concurrent passes simply share. Day and month
buckets are kept for ever; a contest not settled yet keeps what its standings read.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, delete, exists, or_
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.buckets import HOUR
from shared.db.models import AppliedEvent, Contest, KpiState, activity, kpi_rollups, table
from shared.db.retry import retrying

_applied = table(AppliedEvent)
_states = table(KpiState)
_contests = table(Contest)


def _kept_for_contests(grain: str, bucket_start: ColumnElement[int]) -> ColumnElement[bool]:
    """Whether a bucket past its retention is still needed by a contest not settled yet: its
    hours anywhere in its box; its minutes only in the box's partial hours at each edge (the
    standings tile the rest with hours and days). So a contest keeps at most two hours of
    minutes, however long it lasts (a year-long contest used to keep a year of minutes, for
    everyone). ``goal_reached_at`` reads minutes where the retention kept them, hours before.
    """
    c = _contests.c
    box = [c.settled_at.is_(None), bucket_start >= c.starts_at, bucket_start < c.ends_at]
    if grain != "minute":
        return exists().where(*box)
    first_hour = c.starts_at + (HOUR - c.starts_at % HOUR) % HOUR
    last_hour = c.ends_at - c.ends_at % HOUR
    edges = or_(bucket_start < first_hour, bucket_start >= last_hour)
    return exists().where(*box, edges)


async def prune_activity(db: AsyncEngine, floor: int) -> int:
    """Delete the activity record's rows booked before ``floor``: a scan of the table, so the
    worker runs it a few times a day, not at every pass."""

    async def once() -> int:
        async with db.begin() as conn:
            result = await conn.execute(delete(activity).where(activity.c.at < floor))
            return result.rowcount or 0

    return await retrying(once, what="prune activity")


async def prune(
    db: AsyncEngine, minute_floor: int, hour_floor: int, fact_floor: int | None = None
) -> int:
    """Delete minute and hour buckets past their retention (days are kept for ever); and,
    before ``fact_floor``, the ids of applied events and the states of calls: a provider's
    retry or a call's late report older than that would count again. How many rows went."""
    return await retrying(
        lambda: _prune_once(db, minute_floor, hour_floor, fact_floor), what="prune"
    )


async def _prune_once(
    db: AsyncEngine, minute_floor: int, hour_floor: int, fact_floor: int | None
) -> int:
    async with db.begin() as conn:
        pruned = 0
        if fact_floor is not None:
            old_ids = await conn.execute(delete(_applied).where(_applied.c.applied_at < fact_floor))
            old_calls = await conn.execute(
                delete(_states).where(
                    _states.c.kind.in_(("call", "callback")), _states.c.updated_at < fact_floor
                )
            )
            pruned += (old_ids.rowcount or 0) + (old_calls.rowcount or 0)
        for grain, floor in (("minute", minute_floor), ("hour", hour_floor)):
            result = await conn.execute(
                delete(kpi_rollups).where(
                    kpi_rollups.c.grain == grain,
                    kpi_rollups.c.bucket_start < floor,
                    ~_kept_for_contests(grain, kpi_rollups.c.bucket_start),
                )
            )
            pruned += result.rowcount or 0
    return pruned
