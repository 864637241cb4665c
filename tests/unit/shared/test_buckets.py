from __future__ import annotations

import itertools
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from shared.buckets import BucketRange, bucket_starts, coarsen, tile
from shared.calendar import local_midnight, local_month_start

PARIS = ZoneInfo("Europe/Paris")


def ts(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp())  # type: ignore[misc,arg-type]


def test_bucket_starts_minute_hour_local_day_and_local_month() -> None:
    instant = ts(2026, 11, 25, 23, 30, 15)  # 00:30 on the 26th in Paris
    assert dict(bucket_starts(instant, PARIS)) == {
        "minute": ts(2026, 11, 25, 23, 30),
        "hour": ts(2026, 11, 25, 23),
        "day": ts(2026, 11, 25, 23),  # local midnight of 26 November
        "month": ts(2026, 10, 31, 23),  # local midnight of 1 November (winter time)
    }
    first_of_april = ts(2026, 3, 31, 22, 0, 0)  # 00:00 on 1 April in Paris (summer time)
    assert dict(bucket_starts(first_of_april, PARIS))["month"] == first_of_april
    assert dict(bucket_starts(first_of_april - 1, PARIS))["month"] == ts(2026, 2, 28, 23)


def test_tile_uses_whole_months_then_days_at_the_edges() -> None:
    ranges = tile(ts(2026, 2, 27, 9, 0), ts(2026, 5, 2, 10), PARIS)  # the March switch inside
    assert ranges == [
        BucketRange("hour", ts(2026, 2, 27, 9), ts(2026, 2, 27, 23)),
        BucketRange("day", ts(2026, 2, 27, 23), ts(2026, 2, 28, 23)),
        BucketRange("month", ts(2026, 2, 28, 23), ts(2026, 4, 30, 22)),  # March and April
        BucketRange("day", ts(2026, 4, 30, 22), ts(2026, 5, 1, 22)),
        BucketRange("hour", ts(2026, 5, 1, 22), ts(2026, 5, 2, 10)),
    ]
    this_month = tile(ts(2026, 10, 31, 23), ts(2026, 11, 30, 23), PARIS)
    assert this_month == [BucketRange("month", ts(2026, 10, 31, 23), ts(2026, 11, 30, 23))]


def test_day_of_the_october_switch_has_25_hours() -> None:
    start = local_midnight(ts(2026, 10, 25, 12), PARIS)
    end = local_midnight(ts(2026, 10, 26, 12), PARIS)
    assert start == ts(2026, 10, 24, 22)
    assert end - start == 25 * 3600


def test_tile_uses_days_inside_hours_and_minutes_at_the_edges() -> None:
    ranges = tile(ts(2026, 10, 24, 21, 30), ts(2026, 10, 26, 10, 15), PARIS)
    assert ranges == [
        BucketRange("minute", ts(2026, 10, 24, 21, 30), ts(2026, 10, 24, 22)),
        BucketRange("day", ts(2026, 10, 24, 22), ts(2026, 10, 25, 23)),
        BucketRange("hour", ts(2026, 10, 25, 23), ts(2026, 10, 26, 10)),
        BucketRange("minute", ts(2026, 10, 26, 10), ts(2026, 10, 26, 10, 15)),
    ]


def test_tile_of_a_short_window_is_minutes_only_and_rounds_outwards() -> None:
    assert tile(ts(2026, 1, 1, 10, 5, 30), ts(2026, 1, 1, 10, 20, 1), PARIS) == [
        BucketRange("minute", ts(2026, 1, 1, 10, 5), ts(2026, 1, 1, 10, 21)),
    ]


def test_tiles_cover_the_window_exactly_once() -> None:
    start, end = ts(2026, 1, 28, 17, 43, 10), ts(2026, 4, 2, 8, 7, 30)  # the March switch inside
    covered: list[tuple[int, int]] = []
    for r in tile(start, end, PARIS):
        if r.grain == "month":
            month = r.lo
            while month < r.hi:
                after = local_month_start(month + 32 * 86400, PARIS)
                covered.append((month, after))
                month = after
        elif r.grain == "day":
            day = r.lo
            while day < r.hi:
                after = local_midnight(day + 26 * 3600, PARIS)
                covered.append((day, after))
                day = after
        else:
            step = 60 if r.grain == "minute" else 3600
            covered.extend((t, t + step) for t in range(r.lo, r.hi, step))
    covered.sort()
    assert covered[0][0] == start - start % 60
    assert covered[-1][1] == end - end % 60 + 60
    assert all(a[1] == b[0] for a, b in itertools.pairwise(covered))


def test_empty_window_has_no_tiles() -> None:
    assert tile(ts(2026, 1, 1), ts(2026, 1, 1), PARIS) == []


def test_coarsen_answers_expired_minutes_from_their_hour_and_hours_from_their_day() -> None:
    ranges = tile(ts(2026, 10, 24, 21, 30), ts(2026, 10, 26, 10, 15), PARIS)
    assert coarsen(ranges, PARIS) == ranges  # nothing expired
    minutes_gone = coarsen(ranges, PARIS, minute_floor=ts(2026, 10, 26))
    assert minutes_gone == [
        BucketRange("minute", ts(2026, 10, 26, 10), ts(2026, 10, 26, 10, 15)),  # still kept
        BucketRange("hour", ts(2026, 10, 24, 21), ts(2026, 10, 24, 22)),  # widened outwards
        BucketRange("hour", ts(2026, 10, 25, 23), ts(2026, 10, 26, 10)),
        BucketRange("day", ts(2026, 10, 24, 22), ts(2026, 10, 25, 23)),
    ]
    hours_gone = coarsen(ranges, PARIS, minute_floor=ts(2026, 10, 27), hour_floor=ts(2026, 10, 27))
    assert hours_gone == [
        BucketRange("day", ts(2026, 10, 24, 22), ts(2026, 10, 25, 23)),
        BucketRange("day", ts(2026, 10, 23, 22), ts(2026, 10, 24, 22)),
        BucketRange("day", ts(2026, 10, 25, 23), ts(2026, 10, 26, 23)),
    ]


def test_coarsen_never_counts_a_bucket_twice() -> None:
    ranges = tile(ts(2026, 3, 28, 17, 43, 10), ts(2026, 4, 2, 8, 7, 30), PARIS)
    for floor in range(ts(2026, 3, 28), ts(2026, 4, 3), 5 * 3600):
        result = coarsen(ranges, PARIS, minute_floor=floor, hour_floor=floor - 86400)
        spans: list[tuple[int, int]] = []
        for r in result:
            step = {"minute": 60, "hour": 3600}.get(r.grain)
            if step:
                spans += [(t, t + step) for t in range(r.lo, r.hi, step)]
            else:
                spans.append((r.lo, r.hi))  # a run of whole days: disjoint from the rest
        spans.sort()
        assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))
