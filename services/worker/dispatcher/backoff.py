"""When a delivery is tried again, and what its row becomes after an attempt (pure: no I/O).

Guarantees:

- a retry waits an exponential delay with full jitter (``base * 2**(attempts-1)``, capped,
  drawn uniformly below it), or the receiver's ``Retry-After`` when that is longer;
- a notification raised more than ``give_up_after_s`` ago that is still not delivered fails
  with its last error instead of being retried;
- ``delivered`` and ``failed`` are final; only ``retry`` leaves the row pending.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from shared.notify.outcome import DeliveryResult, status_error

Status = Literal["pending", "delivered", "failed"]
DAY_S = 86400.0


@dataclass(frozen=True, slots=True)
class Backoff:
    base_s: float = 1.0
    cap_s: float = 3600.0
    give_up_after_s: float = DAY_S  # since the notification was raised

    def delay_s(
        self,
        attempts: int,
        retry_after_s: float | None = None,
        draw: Callable[[], float] = random.random,
    ) -> float:
        """How long to wait after the ``attempts``-th attempt failed (1 = the first)."""
        exponent = min(max(0, attempts - 1), 60)  # 2**60 s is past any cap; no float overflow
        ceiling = min(self.cap_s, self.base_s * 2.0**exponent)
        jittered = ceiling * draw()
        return max(jittered, retry_after_s) if retry_after_s is not None else jittered


@dataclass(frozen=True, slots=True)
class Recorded:
    """What a delivery row becomes after one attempt (times in epoch milliseconds)."""

    status: Status
    next_attempt_at: int | None = None  # pending only: when it is due again
    delivered_at: int | None = None
    last_error: str | None = None


def after_attempt(
    result: DeliveryResult,
    attempts: int,
    raised_at_ms: int,
    now_ms: int,
    backoff: Backoff,
    draw: Callable[[], float] = random.random,
) -> Recorded:
    """The row after attempt number ``attempts`` of a notification raised at ``raised_at_ms``."""
    if result.outcome == "delivered":
        return Recorded("delivered", delivered_at=now_ms)
    error = result.error or (status_error(result.status) if result.status else "not_delivered")
    if result.outcome == "failed":
        return Recorded("failed", last_error=error)
    if now_ms - raised_at_ms >= backoff.give_up_after_s * 1000:
        hours = backoff.give_up_after_s / 3600
        return Recorded("failed", last_error=f"gave up after {hours:g} h: {error}")
    wait_ms = round(backoff.delay_s(attempts, result.retry_after, draw) * 1000)
    # No wait past the give-up time (a Retry-After of days): one last try then, then failed.
    last_try = raised_at_ms + round(backoff.give_up_after_s * 1000)
    return Recorded("pending", next_attempt_at=min(now_ms + wait_ms, last_try), last_error=error)
