"""What alert checks read, in the caller's transaction: base counters per subject over a window
(from the exact buckets, the batch's own rows included), the metrics made of them, and the
targets the window is measured against. Shared by the KPI flush and the worker's scheduled checks.

Each read is one statement for any number of metrics (the counters they need, summed side by
side), so alerts watching the same scope and window share it; a list of subjects is named in
chunks under the drivers' parameter limit (``shared.db.chunks``)."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.alerting import Values
from shared.buckets import tile
from shared.catalogue import evaluate, needed_counters
from shared.db.chunks import chunks
from shared.db.models import kpi_rollups as _rollups
from shared.db.rollups import per_subject
from shared.db.targets import read_targets
from shared.windows import Window

Sums = dict[str, dict[str, int]]  # subject -> base counter -> sum over the window


async def window_sums(
    conn: AsyncConnection,
    scope: str,
    subjects: Sequence[str] | None,
    counters: Iterable[str],
    window: Window,
    tz: ZoneInfo,
) -> Sums:
    """Per subject (of ``subjects``, or all of ``scope``) with buckets in ``window``, the sum
    of each of ``counters``."""
    names = sorted(set(counters))
    ranges = tile(window.start_ts, window.end_ts, tz)
    if not names or not ranges:
        return {}
    query = per_subject(scope, ranges, *(_rollups.c[c] for c in names))
    sums: Sums = {}
    for statement in _naming(query, _rollups.c.subject_id, subjects):
        for subject, *totals in await conn.execute(statement):
            sums[subject] = {c: int(t or 0) for c, t in zip(names, totals, strict=True)}
    return sums


def metric_values(sums: Sums, metric: str) -> Values:
    """Per subject of ``sums``, ``metric`` made of its counters."""
    return {subject: evaluate(counters, [metric])[metric] for subject, counters in sums.items()}


async def window_values(
    conn: AsyncConnection,
    scope: str,
    subjects: Sequence[str] | None,
    metric: str,
    window: Window,
    tz: ZoneInfo,
) -> Values:
    """Per subject (of ``subjects``, or all of ``scope``), the metric over ``window``, read in
    this transaction (so with the batch's own rows)."""
    counters = needed_counters([metric])
    return metric_values(await window_sums(conn, scope, subjects, counters, window, tz), metric)


async def window_targets(
    conn: AsyncConnection,
    scope: str,
    subjects: Sequence[str] | None,
    metric: str,
    window: Window,
    tz: ZoneInfo,
    week_start: int,
    members: Iterable[tuple[str, str | None]] | None = None,
) -> dict[str, float]:
    """Per subject with a target of ``metric`` (of ``subjects``, or all of ``scope``), the
    target ``window`` is measured against (a team without its own: its reps' summed)."""
    found = await targets_by_metric(
        conn, scope, subjects, [metric], window, tz, week_start, members
    )
    return found.get(metric, {})


async def targets_by_metric(
    conn: AsyncConnection,
    scope: str,
    subjects: Sequence[str] | None,
    metrics: Collection[str],
    window: Window,
    tz: ZoneInfo,
    week_start: int,
    members: Iterable[tuple[str, str | None]] | None = None,
) -> dict[str, dict[str, float]]:
    """``window_targets`` of several metrics from one read: metric -> subject -> target. A
    team's own target, else the sum of its reps' (``members``: each rep and its team now), as
    everywhere else (``shared.targets.TargetBook``)."""
    if not metrics:
        return {}
    kinds = {scope, "rep"} if scope == "team" and members is not None else {scope}
    book = await read_targets(conn, kinds, metrics)
    wanted = None if subjects is None else set(subjects)
    found: dict[str, dict[str, float]] = {}
    for subject, by_metric in book.for_window(
        scope, metrics, window, tz, week_start, members=members
    ).items():
        if wanted is None or subject in wanted:
            for metric, target in by_metric.items():
                found.setdefault(metric, {})[subject] = target
    return found


def _naming(query: Select[Any], column: Any, subjects: Sequence[str] | None) -> list[Select[Any]]:
    """``query`` for every subject (``subjects`` None), or once per chunk of ``subjects`` (its
    other parameters, a tiling or a list of metrics, fit in the chunks' reserve)."""
    if subjects is None:
        return [query]
    return [query.where(column.in_(list(chunk))) for chunk in chunks(subjects)]
