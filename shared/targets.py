"""What a window is measured against. Pure.

A target is set per rep or team, per metric, per period (day, week, month, quarter, year), and
stands for every such period. A calendar window is measured against its period's whole target;
any other window pro-rates: each period it overlaps contributes its target times the share of
that period it covers (``last_7d`` inside a 30-day month: 7/30 of the monthly target).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from shared.windows import Window

Period = Literal["day", "week", "month", "quarter", "year"]
PERIODS: tuple[Period, ...] = ("day", "week", "month", "quarter", "year")
WINDOW_PERIOD: dict[str, Period] = {
    "today": "day",
    "yesterday": "day",
    "this_week": "week",
    "last_week": "week",
    "this_month": "month",
    "last_month": "month",
    "this_quarter": "quarter",
    "last_quarter": "quarter",
    "this_year": "year",
}
FALLBACK_ORDER: tuple[Period, ...] = ("month", "week", "day", "quarter", "year")


def period_start(period: Period, day: date, week_start: int = 0) -> date:
    if period == "day":
        return day
    if period == "week":
        return day - timedelta(days=(day.weekday() - week_start) % 7)
    if period == "month":
        return day.replace(day=1)
    if period == "quarter":
        return date(day.year, (day.month - 1) // 3 * 3 + 1, 1)
    return date(day.year, 1, 1)


def next_period(period: Period, start: date) -> date:
    if period == "day":
        return start + timedelta(days=1)
    if period == "week":
        return start + timedelta(days=7)
    months = {"month": 1, "quarter": 3, "year": 12}[period]
    index = start.year * 12 + start.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def window_target(
    targets: dict[Period, float], window: Window, tz: ZoneInfo, week_start: int = 0
) -> float | None:
    """The target for ``window`` from the subject's standing targets by period, or None."""
    if not targets:
        return None
    own = WINDOW_PERIOD.get(window.name)
    period = own if own in targets else next(p for p in FALLBACK_ORDER if p in targets)
    value = targets[period]
    total = 0.0
    cursor = period_start(period, window.start.astimezone(tz).date(), week_start)
    # Epoch seconds, not datetime arithmetic: two times in one zone subtract as wall clocks,
    # and a period holding a DST change is an hour longer or shorter than its wall clock says.
    while (start := _midnight(cursor, tz)) < window.end_ts:
        after = next_period(period, cursor)
        end = _midnight(after, tz)
        covered = min(end, window.end_ts) - max(start, window.start_ts)
        if covered > 0:
            total += value * covered / (end - start)
        cursor = after
    return round(total, 6)


def _midnight(day: date, tz: ZoneInfo) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=tz).timestamp())
