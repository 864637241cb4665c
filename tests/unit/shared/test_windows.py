from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from shared.windows import EARLIEST, LATEST, WindowError, resolve_window

PARIS = ZoneInfo("Europe/Paris")
NOW = datetime(2026, 11, 25, 23, 30, tzinfo=UTC)  # Thursday 26 Nov 00:30 in Paris


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=PARIS)  # type: ignore[misc,arg-type]


@pytest.mark.parametrize(
    ("name", "start", "end"),
    [
        ("today", local(2026, 11, 26), local(2026, 11, 27)),
        ("yesterday", local(2026, 11, 25), local(2026, 11, 26)),
        ("this_week", local(2026, 11, 23), local(2026, 11, 30)),
        ("last_week", local(2026, 11, 16), local(2026, 11, 23)),
        ("this_month", local(2026, 11, 1), local(2026, 12, 1)),
        ("last_month", local(2026, 10, 1), local(2026, 11, 1)),
        ("this_quarter", local(2026, 10, 1), local(2027, 1, 1)),
        ("last_quarter", local(2026, 7, 1), local(2026, 10, 1)),
        ("this_year", local(2026, 1, 1), local(2027, 1, 1)),
    ],
)
def test_calendar_windows_are_cut_in_the_organisations_zone(
    name: str, start: datetime, end: datetime
) -> None:
    window = resolve_window(name, now=NOW, tz=PARIS)
    assert (window.start, window.end) == (start, end)


def test_week_start_is_configurable() -> None:
    window = resolve_window("this_week", now=NOW, tz=PARIS, week_start=6)  # sunday
    assert window.start == local(2026, 11, 22)


def test_rolling_window_ends_now() -> None:
    window = resolve_window("last_15m", now=NOW, tz=PARIS)
    assert window.end - window.start == timedelta(minutes=15)
    assert window.end == NOW


def test_custom_range_wins_and_naive_times_are_local() -> None:
    window = resolve_window(
        "today", now=NOW, tz=PARIS, start=datetime(2026, 11, 1, 8), end=datetime(2026, 11, 2, 8)
    )
    assert window.name == "custom"
    assert window.start == local(2026, 11, 1, 8)


@pytest.mark.parametrize(
    ("name", "start", "end", "message"),
    [
        ("fortnight", None, None, "unknown window"),
        (None, None, NOW, "needs 'from'"),
        (None, NOW, NOW - timedelta(hours=1), "must be after"),
    ],
)
def test_bad_windows_are_refused(
    name: str | None, start: datetime | None, end: datetime | None, message: str
) -> None:
    with pytest.raises(WindowError, match=message):
        resolve_window(name, now=NOW, tz=PARIS, start=start, end=end)


@pytest.mark.parametrize(
    ("start", "end", "field"),
    [
        (datetime(9999, 12, 30, tzinfo=UTC), datetime(9999, 12, 31, 23, 59, tzinfo=UTC), "from"),
        (datetime(1, 1, 1), datetime(1, 1, 2), "from"),  # naive: local time of year 1
        (datetime(1999, 12, 31, 23, 59, 59, tzinfo=UTC), NOW, "from"),
        (NOW, datetime(9999, 12, 31, 23, 59, tzinfo=UTC), "to"),
        (NOW, datetime(2100, 1, 1, 0, 0, 1, tzinfo=UTC), "to"),
        (datetime(2099, 12, 31, tzinfo=UTC), None, "from"),  # ends now: before it began
    ],
)
def test_custom_windows_outside_the_documented_range_name_the_field(
    start: datetime, end: datetime | None, field: str
) -> None:
    with pytest.raises(WindowError) as refused:
        resolve_window(None, now=NOW, tz=PARIS, start=start, end=end)
    assert refused.value.field == field


def test_custom_windows_may_touch_both_bounds() -> None:
    first = resolve_window(None, now=NOW, tz=PARIS, start=EARLIEST, end=EARLIEST + timedelta(1))
    last = resolve_window(None, now=NOW, tz=PARIS, start=LATEST - timedelta(1), end=LATEST)
    assert (first.start, last.end) == (EARLIEST, LATEST)
