"""The dispatcher's retry policy (pure): exponential backoff with full jitter, capped, never
shorter than the receiver's Retry-After; 24 h after being raised a notification fails."""

from __future__ import annotations

import pytest

from services.worker.dispatcher.backoff import Backoff, after_attempt
from shared.notify.outcome import DeliveryResult

POLICY = Backoff(base_s=1.0, cap_s=3600.0)
RAISED_MS = 1_700_000_000_000
HOUR_MS = 3_600_000


def top(_: float = 0.0) -> float:
    return 0.999999


@pytest.mark.parametrize(("attempts", "ceiling"), [(1, 1), (2, 2), (3, 4), (10, 512), (12, 2048)])
def test_the_delay_doubles_with_each_attempt_up_to_its_ceiling(
    attempts: int, ceiling: float
) -> None:
    assert POLICY.delay_s(attempts, draw=top) == pytest.approx(ceiling, rel=1e-5)
    assert POLICY.delay_s(attempts, draw=lambda: 0.0) == 0.0  # full jitter: from zero


@pytest.mark.parametrize("attempts", [13, 20, 64, 10_000])
def test_the_delay_never_exceeds_the_cap(attempts: int) -> None:
    assert POLICY.delay_s(attempts, draw=top) <= 3600.0


def test_the_jitter_spreads_retries_below_the_ceiling() -> None:
    delays = {round(Backoff(base_s=1.0).delay_s(5), 6) for _ in range(200)}
    assert len(delays) > 150
    assert all(0 <= d < 16 for d in delays)


def test_retry_after_wins_when_longer_and_not_when_shorter() -> None:
    assert POLICY.delay_s(1, retry_after_s=7.0, draw=top) == 7.0
    assert POLICY.delay_s(6, retry_after_s=7.0, draw=top) == pytest.approx(32, rel=1e-5)
    assert POLICY.delay_s(20, retry_after_s=7200.0, draw=top) == 7200.0  # above the cap too


def test_a_delivery_is_final_and_keeps_its_time() -> None:
    row = after_attempt(DeliveryResult("delivered", 200), 3, RAISED_MS, RAISED_MS + 5, POLICY)
    assert (row.status, row.delivered_at, row.next_attempt_at) == ("delivered", RAISED_MS + 5, None)


def test_a_refusal_fails_at_once_with_its_error() -> None:
    refused = DeliveryResult("failed", 404, "http_404 (Not Found)")
    row = after_attempt(refused, 1, RAISED_MS, RAISED_MS + 5, POLICY)
    assert (row.status, row.last_error, row.next_attempt_at) == (
        "failed",
        "http_404 (Not Found)",
        None,
    )


def test_a_retry_is_scheduled_after_the_jittered_delay_or_retry_after() -> None:
    now = RAISED_MS + 1000
    busy = DeliveryResult("retry", 429, "http_429 (Too Many Requests)", retry_after=7.0)
    row = after_attempt(busy, 1, RAISED_MS, now, POLICY, draw=top)
    assert (row.status, row.next_attempt_at, row.last_error) == (
        "pending",
        now + 7000,
        "http_429 (Too Many Requests)",
    )
    broken = DeliveryResult("retry", 500, "http_500 (Internal Server Error)")
    assert after_attempt(broken, 4, RAISED_MS, now, POLICY, draw=top).next_attempt_at == now + 8000


def test_a_notification_still_failing_a_day_after_it_was_raised_fails() -> None:
    timeout = DeliveryResult("retry", error="timeout (ReadTimeout)")
    just_before = after_attempt(timeout, 30, RAISED_MS, RAISED_MS + 24 * HOUR_MS - 1, POLICY)
    assert just_before.status == "pending"
    row = after_attempt(timeout, 31, RAISED_MS, RAISED_MS + 24 * HOUR_MS, POLICY)
    assert row.status == "failed"
    assert row.last_error == "gave up after 24 h: timeout (ReadTimeout)"


def test_an_answer_without_error_text_still_says_what_it_was() -> None:
    row = after_attempt(DeliveryResult("retry", 503), 1, RAISED_MS, RAISED_MS, POLICY)
    assert row.last_error == "http_503 (Service Unavailable)"


def test_a_retry_after_beyond_the_give_up_time_waits_only_until_then() -> None:
    raised, now = 0, 3_600_000  # an hour after it was raised
    days = DeliveryResult("retry", 503, "http_503", retry_after=7 * 86_400)
    row = after_attempt(days, 2, raised, now, POLICY, draw=lambda: 1.0)
    assert row.status == "pending"
    assert row.next_attempt_at == raised + round(POLICY.give_up_after_s * 1000)


def test_a_poller_waits_at_most_its_cap_however_long_the_outage() -> None:
    from shared.runtime import doubled_pause

    assert [doubled_pause(0.5, 30.0, n) for n in (0, 1, 2)] == [0.5, 1.0, 2.0]
    assert doubled_pause(0.5, 30.0, 100_000) == 30.0  # days of failures: no float overflow
