"""Named windows (calendar, rolling) and custom ranges, cut in the organisation's time zone."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from shared.calendar import Period, midnight, next_period, period_start
from shared.events import EARLIEST_EVENT_TIME

ROLLING: dict[str, timedelta] = {
    "last_15m": timedelta(minutes=15),
    "last_1h": timedelta(hours=1),
    "last_24h": timedelta(hours=24),
    "last_7d": timedelta(days=7),
    "last_30d": timedelta(days=30),
    "last_90d": timedelta(days=90),
}
# A calendar window is the period holding now (offset 0) or one before it (offset -1).
CALENDAR_PERIODS: dict[str, tuple[Period, int]] = {
    "today": ("day", 0),
    "yesterday": ("day", -1),
    "this_week": ("week", 0),
    "last_week": ("week", -1),
    "this_month": ("month", 0),
    "last_month": ("month", -1),
    "this_quarter": ("quarter", 0),
    "last_quarter": ("quarter", -1),
    "this_year": ("year", 0),
}
CALENDAR: tuple[str, ...] = tuple(CALENDAR_PERIODS)
WINDOWS: tuple[str, ...] = (*CALENDAR, *ROLLING)
# Custom windows lie within these bounds: they cover any activity a sales team can have booked,
# and keep every derived date (tiling, the board an hour earlier, pro-rated targets) far from
# the limits of ``datetime``, which years 1 and 9999 overflow.
EARLIEST = EARLIEST_EVENT_TIME  # nothing is booked before it, so nothing is asked of it
LATEST = datetime(2100, 1, 1, tzinfo=UTC)
CUSTOM_RANGE = f"between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d} UTC"


class WindowError(ValueError):
    """A window name or range that cannot be measured; ``field`` is the parameter at fault."""

    def __init__(self, message: str, field: str = "window") -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True, slots=True)
class Window:
    name: str
    start: datetime  # inclusive, aware
    end: datetime  # exclusive, aware

    @property
    def start_ts(self) -> int:
        return int(self.start.timestamp())

    @property
    def end_ts(self) -> int:
        return int(self.end.timestamp())


def _calendar_days(name: str, today: date, week_start: int) -> tuple[date, date]:
    period, offset = CALENDAR_PERIODS[name]
    first = next_period(period, period_start(period, today, week_start), offset)
    return first, next_period(period, first)


def resolve_window(
    name: str | None,
    *,
    now: datetime,
    tz: ZoneInfo,
    week_start: int = 0,
    start: datetime | None = None,
    end: datetime | None = None,
) -> Window:
    """A named window, or the custom range ``start``..``end`` (which wins when given)."""
    if start is not None or end is not None:
        return _custom(start, end, now, tz)
    name = name or "today"
    if name in ROLLING:
        return Window(name, now - ROLLING[name], now)
    if name in CALENDAR:
        first, after = _calendar_days(name, now.astimezone(tz).date(), week_start)
        return Window(name, midnight(first, tz), midnight(after, tz))
    raise WindowError(f"unknown window {name!r}; one of {', '.join(WINDOWS)} or from/to")


def _custom(start: datetime | None, end: datetime | None, now: datetime, tz: ZoneInfo) -> Window:
    if start is None:
        raise WindowError("a custom window needs 'from' (ISO 8601)", "from")
    given_end = end is not None
    start = _bounded(start if start.tzinfo else start.replace(tzinfo=tz), "from")
    end = _bounded(end if end.tzinfo else end.replace(tzinfo=tz), "to") if end is not None else now
    if end <= start:  # without 'to', the window ends now: then 'from' is what is wrong
        raise WindowError("'to' must be after 'from'", "to" if given_end else "from")
    if end - start > timedelta(days=3660):
        raise WindowError("a custom window spans at most ten years", "to")
    return Window("custom", start, end)


def _bounded(moment: datetime, field: str) -> datetime:
    """``moment`` if it lies within [EARLIEST, LATEST]; compared as instants, so an offset of
    year 1 or 9999 never has to be converted (which would overflow)."""
    if not EARLIEST <= moment <= LATEST:
        raise WindowError(f"'{field}' must lie {CUSTOM_RANGE}", field)
    return moment
