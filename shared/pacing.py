"""Pace against a target: where a rep or team stands now against where it should be. Pure.

The elapsed share of a window is measured in working time: with ``WORKDAYS`` set, only the
local days of those weekdays count (a Saturday neither adds to the share nor is expected to
add to the value); the days are cut at the organisation's local midnights, so a day of 23 or 25
hours around a DST switch counts for what it lasts. Without ``WORKDAYS`` every second counts.

- ``expected`` = target x elapsed share: what the value should be by now.
- ``pace`` = value / expected: 1 is on track, above is ahead.
- ``projected`` = value / elapsed share: where the window ends at this rate.

Only additive metrics (counts and sums) have a pace: a ratio is not accumulated over time.
"""

from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import ZoneInfo

from shared.calendar import local_date, periods
from shared.catalogue import CATALOGUE

WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
FULL_NAMES = frozenset(
    ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
)  # accepted too; not ``calendar.day_name``, which follows the locale
PACED_KINDS = ("count", "sum")
Workdays = frozenset[int] | None  # weekday numbers (Monday 0), or None: every day


def paced(metric: str) -> bool:
    return CATALOGUE[metric].kind in PACED_KINDS


def parse_workdays(text: str) -> Workdays:
    """``"mon,tue,wed,thu,fri"`` as weekday numbers; empty: every day counts."""
    names = [n.strip().lower() for n in text.split(",") if n.strip()]
    if not names:
        return None
    unknown = [n for n in names if n not in WEEKDAYS and n not in FULL_NAMES]
    if unknown:
        raise ValueError(f"unknown weekday(s) {', '.join(unknown)}; use {','.join(WEEKDAYS)}")
    return frozenset(WEEKDAYS.index(n[:3]) for n in names)


def working_seconds(start: int, end: int, tz: ZoneInfo, workdays: Workdays) -> int:
    """The seconds of [start, end) that fall on working days, local days cut at midnight."""
    if end <= start:
        return 0
    if workdays is None:
        return end - start
    return sum(
        min(end, day.end) - max(start, day.start)
        for day in periods("day", start, end, tz)
        if local_date(day.start, tz).weekday() in workdays
    )


def elapsed_share(start: int, end: int, now: int, tz: ZoneInfo, workdays: Workdays) -> float | None:
    """How much of the window's working time has passed at ``now`` (0 to 1); None for a
    window with no working time at all."""
    whole = working_seconds(start, end, tz, workdays)
    if whole == 0:
        return None
    return working_seconds(start, min(max(now, start), end), tz, workdays) / whole


@dataclass(frozen=True, slots=True)
class Pace:
    target: float
    expected: float | None
    pace: float | None
    projected: float | None


def pace(value: float | int | None, target: float, share: float | None) -> Pace:
    """``value`` against ``target`` with ``share`` of the window elapsed."""
    if share is None:
        return Pace(target, None, None, None)
    expected = round(target * share, 6)
    achieved = float(value or 0)
    return Pace(
        target=target,
        expected=expected,
        pace=round(achieved / expected, 6) if expected else None,
        projected=round(achieved / share, 6) if share else None,
    )
