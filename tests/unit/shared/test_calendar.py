from __future__ import annotations

import itertools
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from shared.calendar import (
    Period,
    Span,
    local_date,
    local_midnight,
    midnight,
    midnight_ts,
    next_local_midnight,
    next_period,
    period_at,
    period_end,
    period_start,
    periods,
)

PARIS = ZoneInfo("Europe/Paris")
HAVANA = ZoneInfo("America/Havana")  # its clocks change at midnight
KOLKATA = ZoneInfo("Asia/Kolkata")  # +05:30: local midnight is at half past a UTC hour
HOUR = 3600


def ts(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp())  # type: ignore[misc,arg-type]


@pytest.mark.parametrize(
    ("day", "start", "hours"),
    [
        (date(2026, 3, 29), ts(2026, 3, 28, 23), 23),  # spring forward: 02:00 -> 03:00
        (date(2026, 10, 25), ts(2026, 10, 24, 22), 25),  # fall back: 03:00 -> 02:00
        (date(2026, 3, 28), ts(2026, 3, 27, 23), 24),
        (date(2026, 10, 26), ts(2026, 10, 25, 23), 24),
    ],
)
def test_a_paris_day_lasts_from_one_local_midnight_to_the_next(
    day: date, start: int, hours: int
) -> None:
    span = period_at("day", start + 12 * HOUR, PARIS)
    assert span == Span(start, start + hours * HOUR)
    assert span.seconds == hours * HOUR
    assert midnight_ts(day, PARIS) == start
    assert next_local_midnight(start, PARIS) == span.end


@pytest.mark.parametrize("day", [date(2026, 3, 29), date(2026, 10, 25)])
def test_every_minute_of_a_dst_day_belongs_to_that_day(day: date) -> None:
    start = midnight_ts(day, PARIS)
    end = next_local_midnight(start, PARIS)
    for instant in range(start, end, 60):
        assert local_midnight(instant, PARIS) == start
        assert local_date(instant, PARIS) == day
    assert local_midnight(start - 1, PARIS) < start
    assert local_midnight(end, PARIS) == end


def test_both_copies_of_the_repeated_hour_belong_to_the_fall_back_day() -> None:
    first, second = ts(2026, 10, 25, 0, 30), ts(2026, 10, 25, 1, 30)  # 02:30 CEST, 02:30 CET
    assert datetime.fromtimestamp(first, PARIS).hour == datetime.fromtimestamp(second, PARIS).hour
    assert local_midnight(first, PARIS) == local_midnight(second, PARIS) == ts(2026, 10, 24, 22)


def test_a_midnight_that_does_not_exist_is_the_first_instant_of_its_day() -> None:
    # Havana, 8 March 2026: 00:00 CST jumps to 01:00 CDT, so the day starts at 01:00 (05:00 UTC)
    assert midnight_ts(date(2026, 3, 8), HAVANA) == ts(2026, 3, 8, 5)
    assert period_at("day", ts(2026, 3, 8, 12), HAVANA).seconds == 23 * HOUR
    assert period_at("day", ts(2026, 3, 7, 12), HAVANA).seconds == 24 * HOUR


def test_a_midnight_that_happens_twice_starts_the_day_at_the_first() -> None:
    # Havana, 1 November 2026: 01:00 CDT falls back to 00:00 CST, so midnight comes twice
    day = period_at("day", ts(2026, 11, 1, 5, 30), HAVANA)  # during the second 00:30
    assert day == Span(ts(2026, 11, 1, 4), ts(2026, 11, 2, 5))
    assert local_midnight(ts(2026, 11, 1, 5, 30), HAVANA) == ts(2026, 11, 1, 4)


def test_a_half_hour_zone_starts_its_day_at_half_past_the_utc_hour() -> None:
    midnight_utc = ts(2026, 11, 25, 18, 30)  # 26 November 00:00 in Kolkata
    assert local_midnight(midnight_utc + 15 * 60, KOLKATA) == midnight_utc
    assert local_midnight(midnight_utc - 15 * 60, KOLKATA) == midnight_utc - 24 * HOUR


@pytest.mark.parametrize(
    ("week_start", "first"),
    [
        (0, date(2026, 11, 23)),  # Monday
        (2, date(2026, 11, 25)),  # Wednesday
        (3, date(2026, 11, 26)),  # Thursday: the day itself
        (4, date(2026, 11, 20)),  # Friday
        (6, date(2026, 11, 22)),  # Sunday
    ],
)
def test_a_week_starts_on_the_configured_day(week_start: int, first: date) -> None:
    thursday = date(2026, 11, 26)
    assert period_start("week", thursday, week_start) == first
    assert period_end("week", thursday, week_start) == date.fromordinal(first.toordinal() + 7)


@pytest.mark.parametrize(
    ("week_start", "start", "hours"),
    [
        (0, ts(2026, 3, 22, 23), 7 * 24 - 1),  # Monday 23 March .. Monday 30 March: spring
        (6, ts(2026, 3, 28, 23), 7 * 24 - 1),  # Sunday 29 March .. Sunday 5 April
        (6, ts(2026, 10, 24, 22), 7 * 24 + 1),  # Sunday 25 October .. Sunday 1 November: fall
        (0, ts(2026, 10, 25, 23), 7 * 24),  # Monday 26 October: after the switch
    ],
)
def test_a_week_holding_a_dst_change_is_an_hour_shorter_or_longer(
    week_start: int, start: int, hours: int
) -> None:
    span = period_at("week", start + 36 * HOUR, PARIS, week_start)
    assert span == Span(start, start + hours * HOUR)


@pytest.mark.parametrize(
    ("period", "day", "start", "after"),
    [
        ("day", date(2026, 12, 31), date(2026, 12, 31), date(2027, 1, 1)),
        ("week", date(2026, 12, 31), date(2026, 12, 28), date(2027, 1, 4)),
        ("month", date(2026, 12, 15), date(2026, 12, 1), date(2027, 1, 1)),
        ("month", date(2026, 2, 28), date(2026, 2, 1), date(2026, 3, 1)),
        ("quarter", date(2026, 2, 15), date(2026, 1, 1), date(2026, 4, 1)),
        ("quarter", date(2026, 6, 30), date(2026, 4, 1), date(2026, 7, 1)),
        ("quarter", date(2026, 11, 26), date(2026, 10, 1), date(2027, 1, 1)),
        ("year", date(2026, 7, 4), date(2026, 1, 1), date(2027, 1, 1)),
    ],
)
def test_period_start_and_end_roll_over_months_quarters_and_years(
    period: Period, day: date, start: date, after: date
) -> None:
    assert period_start(period, day) == start
    assert period_end(period, day) == after
    assert next_period(period, start) == after


@pytest.mark.parametrize(
    ("period", "start", "count", "expected"),
    [
        ("day", date(2027, 1, 1), -1, date(2026, 12, 31)),
        ("week", date(2027, 1, 4), -1, date(2026, 12, 28)),
        ("month", date(2027, 1, 1), -1, date(2026, 12, 1)),
        ("month", date(2026, 11, 1), 14, date(2028, 1, 1)),
        ("quarter", date(2027, 1, 1), -1, date(2026, 10, 1)),
        ("quarter", date(2026, 10, 1), 2, date(2027, 4, 1)),
        ("year", date(2026, 1, 1), -1, date(2025, 1, 1)),
    ],
)
def test_next_period_counts_forwards_and_backwards_across_years(
    period: Period, start: date, count: int, expected: date
) -> None:
    assert next_period(period, start, count) == expected


def test_periods_are_cut_at_local_midnight_in_the_zone() -> None:
    # 23:30 UTC on 31 December is already 1 January in Paris: the new year, quarter and month
    new_year = ts(2026, 12, 31, 23, 30)
    assert period_at("year", new_year, PARIS).start == ts(2026, 12, 31, 23)
    assert period_at("quarter", new_year, PARIS) == Span(ts(2026, 12, 31, 23), ts(2027, 3, 31, 22))
    march = period_at("month", ts(2026, 3, 15), PARIS)
    assert march.seconds == (31 * 24 - 1) * HOUR
    assert period_at("year", ts(2026, 6, 1), PARIS).seconds == 365 * 24 * HOUR


def test_periods_list_every_period_overlapping_a_range_in_order() -> None:
    days = list(periods("day", ts(2026, 3, 28, 10), ts(2026, 3, 30, 1), PARIS))
    assert [d.seconds // HOUR for d in days] == [24, 23, 24]
    assert days[0].start == ts(2026, 3, 27, 23)
    assert all(a.end == b.start for a, b in itertools.pairwise(days))
    quarters = list(periods("quarter", ts(2026, 8, 1), ts(2027, 2, 1), PARIS))
    assert [local_date(q.start, PARIS) for q in quarters] == [
        date(2026, 7, 1),
        date(2026, 10, 1),
        date(2027, 1, 1),
    ]
    weeks = list(periods("week", ts(2026, 11, 22, 12), ts(2026, 11, 30, 12), PARIS, 6))
    assert [local_date(w.start, PARIS) for w in weeks] == [date(2026, 11, 22), date(2026, 11, 29)]


def test_a_range_ending_at_a_period_start_does_not_reach_into_that_period() -> None:
    start = midnight_ts(date(2026, 11, 26), PARIS)
    assert list(periods("day", start, start, PARIS)) == []
    assert list(periods("day", start - 1, start, PARIS)) == [Span(start - 24 * HOUR, start)]


def test_midnight_is_an_aware_time_in_the_zone() -> None:
    assert midnight(date(2026, 3, 29), PARIS) == datetime(2026, 3, 29, tzinfo=PARIS)
    assert midnight(date(2026, 3, 29), PARIS).tzinfo is PARIS


def test_memoised_local_midnight_agrees_with_the_direct_computation() -> None:
    zones = (PARIS, HAVANA, KOLKATA, ZoneInfo("Asia/Kathmandu"), ZoneInfo("Australia/Lord_Howe"))
    for zone in zones:
        for instant in range(ts(2026, 1, 1), ts(2027, 1, 1), 7 * HOUR + 13 * 60 + 7):
            assert local_midnight(instant, zone) == midnight_ts(local_date(instant, zone), zone)
