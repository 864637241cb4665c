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

from sqlalchemy import or_, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from services.api.common.database import Database, connected
from shared.buckets import BucketRange, coarsen, tile
from shared.db.chunks import chunks
from shared.db.models import kpi_rollups as _rollups
from shared.db.rollups import per_subject, summed, within
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
        query = per_subject(scope, ranges, *(_rollups.c[c] for c in counters))
        async with connected(self._db) as conn:
            if subjects is None:
                await _for_a_board(conn)
                rows = (await conn.execute(query)).all()
            else:
                rows = []
                for chunk in chunks(subjects):  # under the drivers' parameter limit
                    named = query.where(_rollups.c.subject_id.in_(list(chunk)))
                    rows += (await conn.execute(named)).all()
        sums: Sums = {}
        for subject, *totals in rows:
            sums[subject] = {c: int(t) for c, t in zip(counters, totals, strict=True)}
        return sums

    async def totals(self, scope: str, window: Window, counters: Iterable[str]) -> dict[str, int]:
        """``totals_per_window`` for one window."""
        return (await self.totals_per_window(scope, [window], counters))[0]

    async def totals_per_window(
        self, scope: str, windows: list[Window], counters: Iterable[str]
    ) -> list[dict[str, int]]:
        """Per subject of ``scope``, the sum of ``counters`` added together (a count or sum
        metric's whole input: one number a subject), for each of ``windows`` (they may overlap),
        from one scan of their buckets: a subject is in a window's totals if that window's
        tiling holds a bucket of it."""
        tilings = [self._tiling(w) for w in windows]
        asked = [i for i, tiling in enumerate(tilings) if tiling]
        columns = [_rollups.c[c] for c in sorted(set(counters))]
        result: list[dict[str, int]] = [{} for _ in windows]
        if not asked or not columns:
            return result
        total = sum(columns[1:], columns[0])
        query = (
            select(
                _rollups.c.subject_id,
                *(summed(total, within(tilings[i])) for i in asked),
            )
            .where(_rollups.c.scope == scope, or_(*(within(tilings[i]) for i in asked)))
            .group_by(_rollups.c.subject_id)
        )
        async with connected(self._db) as conn:
            await _for_a_board(conn)
            rows = (await conn.execute(query)).all()
        for column, i in enumerate(asked, start=1):  # NULL: no bucket of it in the window
            result[i] = {row[0]: int(row[column]) for row in rows if row[column] is not None}
        return result

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

    def tiling(self, window: Window) -> list[BucketRange]:
        """The buckets that answer ``window``: the coarsest that fit, those past their
        retention replaced by the coarser ones holding them. Each range [lo, hi) covers exactly
        the instants in it, so the activity record's rows at instants in these ranges are
        what the window's value adds up (the drill-down reads them)."""
        return self._tiling(window)

    def _tiling(self, window: Window) -> list[BucketRange]:
        ranges = tile(window.start_ts, window.end_ts, self._tz)
        if self._floors is not None:
            ranges = coarsen(ranges, self._tz, *self._floors(time.time()))
        return ranges


async def _for_a_board(conn: AsyncConnection) -> None:
    """A whole board may aggregate many buckets: hash them in memory rather than sort them on
    disk, and skip JIT compilation (slower than the query). For the rest of the connection's
    transaction, which is the board's own."""
    if conn.dialect.name == "postgresql":
        await conn.execute(text("SET LOCAL work_mem = '64MB'"))
        await conn.execute(text("SET LOCAL jit = off"))


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
