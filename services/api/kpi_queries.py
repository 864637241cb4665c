"""Bucket sums for a window: the window is tiled by the coarsest buckets, then summed in SQL."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.buckets import coarsen, tile
from shared.db.models import KpiBucket, table
from shared.windows import Window

_buckets = table(KpiBucket)

Sums = dict[str, dict[str, int]]  # subject id -> base counter -> sum


class KpiQueries:
    def __init__(
        self,
        engine: AsyncEngine,
        tz: ZoneInfo,
        floors: Callable[[float], tuple[int, int]] | None = None,
    ) -> None:
        self._db = engine
        self._tz = tz
        self._floors = floors  # now -> (minute floor, hour floor): the retention

    async def sums(
        self,
        scope: str,
        window: Window,
        counters: Iterable[str],
        subjects: list[str] | None = None,
    ) -> Sums:
        """Per subject of ``scope`` (all, or the listed), the window's sum of each counter."""
        ranges = tile(window.start_ts, window.end_ts, self._tz)
        if self._floors is not None:
            ranges = coarsen(ranges, self._tz, *self._floors(time.time()))
        counters = sorted(set(counters))
        if not ranges or not counters or subjects == []:
            return {}
        in_window = or_(
            *(
                and_(
                    _buckets.c.grain == r.grain,
                    _buckets.c.bucket_start >= r.lo,
                    _buckets.c.bucket_start < r.hi,
                )
                for r in ranges
            )
        )
        query = (
            select(_buckets.c.subject_id, _buckets.c.metric, func.sum(_buckets.c.value))
            .where(_buckets.c.scope == scope, _buckets.c.metric.in_(counters), in_window)
            .group_by(_buckets.c.subject_id, _buckets.c.metric)
        )
        if subjects is not None:
            query = query.where(_buckets.c.subject_id.in_(subjects))
        async with self._db.connect() as conn:
            rows = (await conn.execute(query)).all()
        sums: Sums = defaultdict(dict)
        for subject, metric, total in rows:
            sums[subject][metric] = int(total)
        return sums
