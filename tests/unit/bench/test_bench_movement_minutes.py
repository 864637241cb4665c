"""The api-reads bench says how many minute buckets a rep's board then read, so that its
after-flush figures are compared at the same count (they grow with it)."""

from __future__ import annotations

from bench.api_reads import minutes_to_the_hour


def test_the_board_then_reads_minutes_from_then_to_the_next_hour() -> None:
    hour = 7200
    assert minutes_to_the_hour(hour) == 60
    assert minutes_to_the_hour(hour + 59) == 60  # a bucket is indivisible: from its minute
    assert minutes_to_the_hour(hour + 60) == 59
    assert minutes_to_the_hour(hour + 3599) == 1
