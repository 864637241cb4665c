"""What alert checks read, in the caller's transaction: a metric's value per subject over a
window (from the exact buckets, the batch's own rows included) and the targets the window is
measured against. Shared by the KPI flush and the API's scheduled checks."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.buckets import tile
from shared.catalogue import evaluate, needed_counters
from shared.db.models import Target, table
from shared.db.models import kpi_rollups as _rollups
from shared.db.rollups import per_subject
from shared.targets import window_target
from shared.windows import Window

_targets = table(Target)


async def window_values(
    conn: AsyncConnection,
    scope: str,
    subjects: list[str] | None,
    metric: str,
    window: Window,
    tz: ZoneInfo,
) -> dict[str, float | int | None]:
    """Per subject (of ``subjects``, or all of ``scope``), the metric over ``window``, read in
    this transaction (so with the batch's own rows)."""
    counters = sorted(needed_counters([metric]))
    ranges = tile(window.start_ts, window.end_ts, tz)
    query = per_subject(scope, ranges, *(_rollups.c[c] for c in counters))
    if subjects is not None:
        query = query.where(_rollups.c.subject_id.in_(subjects))
    values = {}
    for subject, *totals in await conn.execute(query):
        sums = {c: int(t or 0) for c, t in zip(counters, totals, strict=True)}
        values[subject] = evaluate(sums, [metric])[metric]
    return values


async def window_targets(
    conn: AsyncConnection,
    scope: str,
    subjects: list[str] | None,
    metric: str,
    window: Window,
    tz: ZoneInfo,
    week_start: int,
) -> dict[str, float]:
    """Per subject with a standing target of ``metric`` (of ``subjects``, or all of
    ``scope``), the target ``window`` is measured against."""
    query = select(_targets.c.subject_id, _targets.c.period, _targets.c.value).where(
        _targets.c.scope == scope, _targets.c.metric == metric
    )
    if subjects is not None:
        query = query.where(_targets.c.subject_id.in_(subjects))
    periods: dict[str, dict[Any, float]] = {}
    for subject, period, value in await conn.execute(query):
        periods.setdefault(subject, {})[period] = float(value)
    found = {}
    for subject, standing in periods.items():
        target = window_target(standing, window, tz, week_start)
        if target:
            found[subject] = target
    return found
