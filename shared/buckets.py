"""Time buckets at four grains, and the tiling of a window by the coarsest buckets that fit.

Minute and hour buckets start on UTC minute/hour boundaries; day buckets start at local midnight
in the organisation's time zone (so a day bucket is 23, 24 or 25 hours long around DST changes and
tiles the calendar days that windows are cut in; ``shared.calendar`` finds those midnights), and
month buckets at the local midnight of the month's first day.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Literal
from zoneinfo import ZoneInfo

from shared.calendar import local_midnight, local_month_start, next_local_midnight, next_local_month

Grain = Literal["minute", "hour", "day", "month"]
GRAINS: tuple[Grain, ...] = ("minute", "hour", "day", "month")
MINUTE, HOUR = 60, 3600


@dataclass(frozen=True, slots=True)
class BucketRange:
    """Buckets of one grain whose start lies in [lo, hi)."""

    grain: Grain
    lo: int
    hi: int


def bucket_starts(ts: int, tz: ZoneInfo) -> tuple[tuple[Grain, int], ...]:
    """The start of the minute, hour, day and month bucket that hold the instant ``ts``.

    Called for every booked event: memoised per minute (every bucket holds whole minutes)."""
    return _starts_of_minute(ts - ts % MINUTE, tz)


@lru_cache(maxsize=4096)
def _starts_of_minute(minute: int, tz: ZoneInfo) -> tuple[tuple[Grain, int], ...]:
    return (
        ("minute", minute),
        ("hour", minute - minute % HOUR),
        ("day", local_midnight(minute, tz)),
        ("month", local_month_start(minute, tz)),
    )


def _ceil(ts: int, step: int) -> int:
    return -(-ts // step) * step


def tile(start: int, end: int, tz: ZoneInfo) -> list[BucketRange]:
    """Cover [start, end) with month buckets where whole local months fit, days at the edges,
    then hours, then minutes. ``start`` is rounded down and ``end`` up to whole minutes (a
    bucket is indivisible)."""
    start, end = start - start % MINUTE, _ceil(end, MINUTE)
    if start >= end:
        return []
    first_month = local_month_start(start, tz)
    if first_month < start:
        first_month = next_local_month(first_month, tz)
    last_month = local_month_start(end, tz)
    if first_month >= last_month:
        return _tile_days(start, end, tz)
    return [
        *_tile_days(start, first_month, tz),
        BucketRange("month", first_month, last_month),
        *_tile_days(last_month, end, tz),
    ]


def _tile_days(start: int, end: int, tz: ZoneInfo) -> list[BucketRange]:
    if start >= end:
        return []
    first_day = local_midnight(start, tz)
    if first_day < start:
        first_day = next_local_midnight(first_day, tz)
    last_day = local_midnight(end, tz)
    if first_day >= last_day:
        return _tile_hours(start, end)
    return [
        *_tile_hours(start, first_day),
        BucketRange("day", first_day, last_day),
        *_tile_hours(last_day, end),
    ]


def _tile_hours(start: int, end: int) -> list[BucketRange]:
    first_hour, last_hour = _ceil(start, HOUR), end - end % HOUR
    if first_hour >= last_hour:
        return [BucketRange("minute", start, end)] if start < end else []
    ranges = [
        BucketRange("minute", start, first_hour),
        BucketRange("hour", first_hour, last_hour),
        BucketRange("minute", last_hour, end),
    ]
    return [r for r in ranges if r.lo < r.hi]


def coarsen(
    ranges: list[BucketRange],
    tz: ZoneInfo,
    minute_floor: int | None = None,
    hour_floor: int | None = None,
) -> list[BucketRange]:
    """Replace buckets older than their grain's retention by the coarser bucket holding them.

    Minute buckets before ``minute_floor`` and hour buckets before ``hour_floor`` have been
    pruned, so such an edge of a window is answered from the whole enclosing hour (or day): a
    window reaching back past the retention is rounded outwards to the buckets that still exist.
    """
    if minute_floor is None and hour_floor is None:
        return ranges
    minutes, hours = _minutes_and_hours(ranges, minute_floor)
    hours, days = _expire_hours(hours, hour_floor, tz)
    minutes = {
        m for m in minutes if m - m % HOUR not in hours and local_midnight(m, tz) not in days
    }
    hours = {h for h in hours if local_midnight(h, tz) not in days}
    kept = [r for r in ranges if r.grain in ("day", "month")]  # never pruned
    return [
        *_runs("minute", minutes, MINUTE),
        *_runs("hour", hours, HOUR),
        *kept,
        *_days_outside(days, kept, tz),
    ]


def _minutes_and_hours(
    ranges: list[BucketRange], minute_floor: int | None
) -> tuple[set[int], set[int]]:
    """The starts of the minute buckets still kept, and of the hour buckets needed: those of
    the ranges, and those holding a minute bucket already pruned."""
    minutes: set[int] = set()
    hours: set[int] = set()
    for r in ranges:
        if r.grain == "minute":
            for start in range(r.lo, r.hi, MINUTE):
                if minute_floor is not None and start < minute_floor:
                    hours.add(start - start % HOUR)
                else:
                    minutes.add(start)
        elif r.grain == "hour":
            hours.update(range(r.lo, r.hi, HOUR))
    return minutes, hours


def _expire_hours(
    hours: set[int], hour_floor: int | None, tz: ZoneInfo
) -> tuple[set[int], set[int]]:
    """The hour buckets still kept, and the local days holding the hours already pruned."""
    if hour_floor is None:
        return hours, set()
    expired = {h for h in hours if h < hour_floor}
    return hours - expired, {local_midnight(h, tz) for h in expired}


def _days_outside(days: set[int], kept: list[BucketRange], tz: ZoneInfo) -> list[BucketRange]:
    """One day bucket per day in ``days`` that the window's own day and month buckets do not
    hold."""
    return [
        BucketRange("day", d, next_local_midnight(d, tz))
        for d in sorted(days)
        if not any(r.lo <= d < r.hi if r.grain == "day" else _in_month(d, r, tz) for r in kept)
    ]


def _in_month(day: int, months: BucketRange, tz: ZoneInfo) -> bool:
    return months.lo <= local_month_start(day, tz) < months.hi


def _runs(grain: Grain, starts: set[int], step: int) -> list[BucketRange]:
    runs: list[BucketRange] = []
    for start in sorted(starts):
        if runs and runs[-1].hi == start:
            runs[-1] = BucketRange(grain, runs[-1].lo, start + step)
        else:
            runs.append(BucketRange(grain, start, start + step))
    return runs
