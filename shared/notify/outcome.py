"""What one delivery attempt means for a retrying dispatcher (pure).

Guarantees: 2xx is ``delivered``; 408, 429 and 5xx are ``retry``, with ``Retry-After`` (delay
seconds or an HTTP date) read into seconds from now when present and valid; any other answer
(4xx, and 1xx/3xx: redirects are not followed) is ``failed``. A timeout or a connection error is
``retry``; a destination the SSRF guard refuses is ``failed``.

An error is stored in ``last_error`` (which read keys see) and logged, so it is *classified*,
never the receiver's words: its class first (``http_404``, ``timeout``, ``connection_failed``,
``destination_refused``, ``invalid_channel``, ``channel_deleted``), then at most the standard
reason of the status (``http_404 (Not Found)``: the phrase of the status code, not the one the
receiver sent), the type of a transport error, or the guard's reason (a host, never an
address). Never the receiver's body, which may echo a token of the URL; and, in case a URL
still finds its way in, every URL is cut after its host and the channel's secret and URL are
replaced (``scrubbed``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from typing import Literal

Outcome = Literal["delivered", "retry", "failed"]
RETRY_STATUSES = frozenset({408, 429})
MAX_ERROR_CHARS = 300
# The classes of a delivery error (an HTTP answer's is ``http_<status>``)
TIMEOUT = "timeout"
CONNECTION_FAILED = "connection_failed"
DESTINATION_REFUSED = "destination_refused"
INVALID_CHANNEL = "invalid_channel"
CHANNEL_DELETED = "channel_deleted"
# scheme://authority, then whatever follows up to a space or a quote: cut after the authority
_URL = re.compile(r"""([a-zA-Z][a-zA-Z0-9+.-]*://[^/?#\s"'<>]*)[^\s"'<>]*""")


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


def urls_cut(text: str) -> str:
    """``text`` with every URL cut after its host: ``https://h/T/B/tok`` becomes ``https://h/…``
    (the user and password of an authority dropped too)."""

    def cut(found: re.Match[str]) -> str:
        scheme, _, authority = found.group(1).partition("://")
        origin = f"{scheme}://{authority.rpartition('@')[2]}"
        return origin + ("/…" if found.group(0) != found.group(1) else "")

    return _URL.sub(cut, text)


def scrubbed(text: str, hidden: Iterable[str | None]) -> str:
    """``text`` with each of ``hidden`` (the secret, the URL) replaced and every URL cut after
    its host, then clipped."""
    for value in hidden:
        if value:
            text = text.replace(value, "***")
    text = urls_cut(text)
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 3] + "..."


def classified(kind: str, detail: str | None = None) -> str:
    """An error as stored: its class, and a short detail in parentheses."""
    return f"{kind} ({detail})" if detail else kind


def status_error(status: int) -> str:
    """``http_404 (Not Found)``: the class and the standard reason of ``status``."""
    try:
        phrase: str | None = HTTPStatus(status).phrase
    except ValueError:
        phrase = None
    return classified(f"http_{status}", phrase)


def answered(status: int, retry_after: str | None, now: datetime) -> DeliveryResult:
    """The result of an HTTP answer: its status decides; nothing the receiver wrote is kept
    (``Retry-After`` aside, read into seconds)."""
    outcome = outcome_of_status(status)
    if outcome == "delivered":
        return DeliveryResult("delivered", status)
    wait = retry_after_seconds(retry_after, now) if outcome == "retry" else None
    return DeliveryResult(outcome, status, status_error(status), wait)
