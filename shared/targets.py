"""What a window is measured against. Pure.

A target is set per rep or team, per metric, per period (day, week, month, quarter, year), and
stands for every such period. A calendar window is measured against its period's whole target;
any other window pro-rates: each period it overlaps contributes its target times the share of
that period it covers (``last_7d`` inside a 30-day month: 7/30 of the monthly target).
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

from shared.calendar import Period, periods
from shared.windows import CALENDAR_PERIODS, Window

WINDOW_PERIOD: dict[str, Period] = {name: period for name, (period, _) in CALENDAR_PERIODS.items()}
FALLBACK_ORDER: tuple[Period, ...] = ("month", "week", "day", "quarter", "year")


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
    for span in periods(period, window.start_ts, window.end_ts, tz, week_start):
        covered = min(span.end, window.end_ts) - max(span.start, window.start_ts)
        if covered > 0:
            total += value * covered / span.seconds
    return round(total, 6)
