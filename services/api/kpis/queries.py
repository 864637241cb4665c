"""Bucket sums for a window: the window is tiled by the coarsest buckets, then summed in SQL.

The queries run on the request's connection (or, outside a request, one taken from an engine for
each call): they never begin or commit.
"""

from __future__ import annotations

import time
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Callable, Iterable
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, func, or_, select, text

from services.api.common.database import Database, connected
from shared.buckets import BucketRange, coarsen, tile
from shared.db.models import kpi_rollups as _rollups
from shared.windows import Window

Sums = dict[str, dict[str, int]]  # subject id -> base counter -> sum


class KpiQueries:
    def __init__(
        self,
        db: Database,
        tz: ZoneInfo,
        floors: Callable[[float], tuple[int, int]] | None = None,
    ) -> None:
        self._db = db
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
        ranges = self._tiling(window)
        counters = sorted(set(counters))
        if not ranges or not counters or subjects == []:
            return {}
        query = (
            select(_rollups.c.subject_id, *(func.sum(_rollups.c[c]) for c in counters))
            .where(_rollups.c.scope == scope, _within(ranges))
            .group_by(_rollups.c.subject_id)
        )
        if subjects is not None:
            query = query.where(_rollups.c.subject_id.in_(subjects))
        async with connected(self._db) as conn:
            if subjects is None and conn.dialect.name == "postgresql":
                # A whole board may aggregate many buckets: hash them in memory rather than
                # sort them on disk, and skip JIT compilation (slower than the query). For the
                # rest of the connection's transaction, which is the board's own.
                await conn.execute(text("SET LOCAL work_mem = '64MB'"))
                await conn.execute(text("SET LOCAL jit = off"))
            rows = (await conn.execute(query)).all()
        sums: Sums = {}
        for subject, *totals in rows:
            sums[subject] = {c: int(t) for c, t in zip(counters, totals, strict=True)}
        return sums

    async def sums_per_window(
        self, scope: str, subject: str, windows: list[Window], counters: Iterable[str]
    ) -> list[dict[str, int]]:
        """One subject's sums for each of several disjoint windows (timeseries points), from one
        range scan of its buckets; each bucket counts in the window whose tiling holds it."""
        tilings = [self._tiling(w) for w in windows]
        spans = [r for tiling in tilings for r in tiling]
        result: list[dict[str, int]] = [defaultdict(int) for _ in windows]
        if not spans:
            return result
        counters = sorted(set(counters))
        query = select(
            _rollups.c.grain, _rollups.c.bucket_start, *(_rollups.c[c] for c in counters)
        ).where(
            _rollups.c.scope == scope,
            _rollups.c.subject_id == subject,
            _rollups.c.bucket_start >= min(r.lo for r in spans),
            _rollups.c.bucket_start < max(r.hi for r in spans),
        )
        async with connected(self._db) as conn:
            rows = (await conn.execute(query)).all()
        points = PointIndex(tilings)
        for grain, start, *values in rows:
            point = points.of(grain, start)
            if point is not None:
                sums = result[point]
                for counter, value in zip(counters, values, strict=True):
                    sums[counter] += int(value)
        return result

    def _tiling(self, window: Window) -> list[BucketRange]:
        ranges = tile(window.start_ts, window.end_ts, self._tz)
        if self._floors is not None:
            ranges = coarsen(ranges, self._tz, *self._floors(time.time()))
        return ranges


def _within(ranges: list[BucketRange]) -> ColumnElement[bool]:
    """The buckets of a window's tiling."""
    return or_(
        *(
            and_(
                _rollups.c.grain == r.grain,
                _rollups.c.bucket_start >= r.lo,
                _rollups.c.bucket_start < r.hi,
            )
            for r in ranges
        )
    )


class PointIndex:
    """Which point's tiling holds a bucket: a bisection over each grain's ranges, so a series
    costs its rows + points (times a log), not rows x points.

    Tilings rounded outwards past a retention can overlap (two hourly points inside one
    remaining day bucket); a bucket then counts once, in the first point that holds it, as
    its earlier ranges sort first and claim the overlap.
    """

    def __init__(self, tilings: list[list[BucketRange]]) -> None:
        self._los: dict[str, list[int]] = defaultdict(list)  # grain -> segment starts, ascending
        self._ends: dict[str, list[tuple[int, int]]] = defaultdict(list)  # grain -> (hi, point)
        spans = sorted((r.grain, r.lo, point, r.hi) for point, t in enumerate(tilings) for r in t)
        for grain, lo, point, hi in spans:
            ends = self._ends[grain]
            lo = max(lo, ends[-1][0]) if ends else lo  # what an earlier point holds stays its
            if lo < hi:
                self._los[grain].append(lo)
                ends.append((hi, point))

    def of(self, grain: str, start: int) -> int | None:
        """The index of the point whose tiling holds the ``grain`` bucket at ``start``."""
        at = bisect_right(self._los.get(grain, []), start) - 1
        if at < 0:
            return None
        hi, point = self._ends[grain][at]
        return point if start < hi else None
