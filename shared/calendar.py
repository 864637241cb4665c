"""Calendar arithmetic in the organisation's time zone: local midnights and periods. Pure.

Every other module cuts days, weeks, months, quarters and years here, so there is one answer to
"when does this period start, and when does the next one".

- A *date* is a local calendar date in the zone; an *instant* is epoch seconds (``int``) or an
  aware ``datetime``.
- A local day runs from one local midnight to the next, so it lasts 23, 24 or 25 hours around a
  DST change. Lengths are therefore always differences of epoch seconds, never of wall clocks
  (two aware times in one zone subtract as wall clocks).
- A local midnight that does not exist (a zone whose clocks jump at 00:00) is the first instant
  of that day, and one that happens twice is the first of the two: ``fold=0`` gives both.
- A week starts on ``week_start`` (0 = Monday … 6 = Sunday); a quarter starts in January, April,
  July or October.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Literal
from zoneinfo import ZoneInfo

Period = Literal["day", "week", "month", "quarter", "year"]
PERIODS: tuple[Period, ...] = ("day", "week", "month", "quarter", "year")
_MONTHS: dict[Period, int] = {"month": 1, "quarter": 3, "year": 12}
# Local midnights are looked up per quarter-hour slot: every UTC offset and DST change in use
# since 1980 falls on a quarter hour (Nepal +5:45, Chatham +12:45), so every instant of a slot
# belongs to the same local day. A slot per hour would be wrong where midnight is at :30 UTC.
_SLOT = 900


@dataclass(frozen=True, slots=True)
class Span:
    """The instants [start, end) of one period, in epoch seconds."""

    start: int
    end: int

    @property
    def seconds(self) -> int:
        return self.end - self.start


def midnight(day: date, tz: ZoneInfo) -> datetime:
    """The instant at which the local day ``day`` begins, as an aware time in ``tz``."""
    return datetime(day.year, day.month, day.day, tzinfo=tz)


def midnight_ts(day: date, tz: ZoneInfo) -> int:
    """The instant at which the local day ``day`` begins, in epoch seconds."""
    return int(midnight(day, tz).timestamp())


def local_date(ts: int, tz: ZoneInfo) -> date:
    """The local calendar date holding the instant ``ts``."""
    return datetime.fromtimestamp(ts, tz).date()


def local_midnight(ts: int, tz: ZoneInfo) -> int:
    """Epoch seconds of the local midnight that starts the day holding ``ts``.

    Called for every booked event: memoised per quarter-hour slot."""
    return _midnight_of_slot(ts - ts % _SLOT, tz)


@lru_cache(maxsize=16384)
def _midnight_of_slot(slot_start: int, tz: ZoneInfo) -> int:
    return midnight_ts(local_date(slot_start, tz), tz)


def local_month_start(ts: int, tz: ZoneInfo) -> int:
    """Epoch seconds of the local midnight that starts the month holding ``ts`` (memoised
    per quarter-hour slot, like ``local_midnight``)."""
    return _month_of_slot(ts - ts % _SLOT, tz)


@lru_cache(maxsize=16384)
def _month_of_slot(slot_start: int, tz: ZoneInfo) -> int:
    return midnight_ts(local_date(slot_start, tz).replace(day=1), tz)


def next_local_month(ts: int, tz: ZoneInfo) -> int:
    """The local midnight that starts the month after the one holding ``ts``."""
    return midnight_ts(next_period("month", local_date(ts, tz).replace(day=1)), tz)


def next_local_midnight(ts: int, tz: ZoneInfo) -> int:
    """The local midnight after the day holding ``ts`` (``ts`` is usually itself a midnight)."""
    return midnight_ts(local_date(ts, tz) + timedelta(days=1), tz)


def period_start(period: Period, day: date, week_start: int = 0) -> date:
    """The first date of the ``period`` holding ``day``."""
    if period == "day":
        return day
    if period == "week":
        return day - timedelta(days=(day.weekday() - week_start) % 7)
    if period == "month":
        return day.replace(day=1)
    if period == "quarter":
        return date(day.year, (day.month - 1) // 3 * 3 + 1, 1)
    return date(day.year, 1, 1)


def next_period(period: Period, start: date, count: int = 1) -> date:
    """The first date of the ``period`` ``count`` periods after the one starting on ``start``
    (before it when ``count`` is negative). ``start`` must be a period start."""
    if period == "day":
        return start + timedelta(days=count)
    if period == "week":
        return start + timedelta(days=7 * count)
    index = start.year * 12 + start.month - 1 + _MONTHS[period] * count
    return date(index // 12, index % 12 + 1, 1)


def period_end(period: Period, day: date, week_start: int = 0) -> date:
    """The first date after the ``period`` holding ``day`` (the start of the next one)."""
    return next_period(period, period_start(period, day, week_start))


def period_span(period: Period, first: date, tz: ZoneInfo) -> Span:
    """The instants of the ``period`` that starts on the date ``first``."""
    return Span(midnight_ts(first, tz), midnight_ts(next_period(period, first), tz))


def period_at(period: Period, ts: int, tz: ZoneInfo, week_start: int = 0) -> Span:
    """The instants of the ``period`` holding the instant ``ts``."""
    return period_span(period, period_start(period, local_date(ts, tz), week_start), tz)


def periods(
    period: Period, start: int, end: int, tz: ZoneInfo, week_start: int = 0
) -> Iterator[Span]:
    """The whole periods that overlap the instants [start, end), in order; the first one may
    begin before ``start`` and the last one end after ``end``."""
    first = period_start(period, local_date(start, tz), week_start)
    begin = midnight_ts(first, tz)
    while begin < end:
        first = next_period(period, first)
        finish = midnight_ts(first, tz)
        yield Span(begin, finish)
        begin = finish
