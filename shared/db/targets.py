"""Reading targets with their history, for the API's caches and the alert checks alike."""

from __future__ import annotations

from collections.abc import Collection
from typing import cast

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.calendar import Period
from shared.db.models import Target, table
from shared.targets import History, TargetBook, TargetKey

_targets = table(Target)


async def read_targets(
    conn: AsyncConnection,
    kinds: Collection[str] | None = None,
    metrics: Collection[str] | None = None,
) -> TargetBook:
    """Every target (of ``kinds`` and ``metrics``, if given) with its history, in one read."""
    t = _targets.c
    query = select(t.scope, t.subject_id, t.metric, t.period, t.starting, t.value).order_by(
        t.scope, t.subject_id, t.metric, t.period, t.starting
    )
    if kinds is not None:
        query = query.where(t.scope.in_(sorted(kinds)))
    if metrics is not None:
        query = query.where(t.metric.in_(sorted(metrics)))
    entries: dict[TargetKey, History] = {}
    for kind, subject, metric, period, starting, value in await conn.execute(query):
        key: TargetKey = (kind, subject, metric, cast(Period, period))
        entries[key] = (*entries.get(key, ()), (int(starting), float(value)))
    return TargetBook(entries)
