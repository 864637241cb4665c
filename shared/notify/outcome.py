"""What one delivery attempt means for a retrying dispatcher (pure).

Guarantees: 2xx is ``delivered``; 408, 429 and 5xx are ``retry``, with ``Retry-After`` (delay
seconds or an HTTP date) read into seconds from now when present and valid; any other answer
(4xx, and 1xx/3xx: redirects are not followed) is ``failed``. A timeout or a connection error is
``retry``; a destination the SSRF guard refuses is ``failed``. Error texts never carry the
channel's secret or URL (``scrubbed``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Literal

Outcome = Literal["delivered", "retry", "failed"]
RETRY_STATUSES = frozenset({408, 429})
MAX_ERROR_CHARS = 300


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    outcome: Outcome
    status: int | None = None  # the HTTP status, None when there was no answer
    error: str | None = None  # why it was not delivered, for GET /v1/notifications
    retry_after: float | None = None  # seconds the receiver asked us to wait (Retry-After)


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """``Retry-After`` as seconds from ``now`` (never negative), or None if absent or bad."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        return float(int(text))
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def outcome_of_status(status: int) -> Outcome:
    if 200 <= status < 300:
        return "delivered"
    if status in RETRY_STATUSES or 500 <= status < 600:
        return "retry"
    return "failed"


def scrubbed(text: str, hidden: Iterable[str | None]) -> str:
    """``text`` with each of ``hidden`` (the secret, the URL) replaced, then clipped."""
    for value in hidden:
        if value:
            text = text.replace(value, "***")
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 3] + "..."


def answered(
    status: int, reason: str, body: str, retry_after: str | None, now: datetime
) -> DeliveryResult:
    """The result of an HTTP answer (``body``: the start of the receiver's answer)."""
    outcome = outcome_of_status(status)
    if outcome == "delivered":
        return DeliveryResult("delivered", status)
    detail = f"HTTP {status} {reason}".strip() + (f": {body.strip()}" if body.strip() else "")
    wait = retry_after_seconds(retry_after, now) if outcome == "retry" else None
    return DeliveryResult(outcome, status, detail, wait)
