"""One delivery of one notification to one channel: ``deliver``.

Guarantees:

- a webhook delivery is signed the Standard Webhooks way by the ``standardwebhooks`` package:
  ``webhook-id`` is the notification's id (the same on every attempt), ``webhook-timestamp``
  the attempt's time, ``webhook-signature`` over id, timestamp and the exact body bytes sent;
- nothing raises for a failed attempt: every outcome is a ``DeliveryResult`` (see ``outcome``);
- nothing is logged, and no error text carries the channel's secret or its URL (a Slack or
  Teams URL is a credential).

The client is the caller's (one per dispatcher, for its connection pool and timeouts): use
``guard.guarded_client`` so that every connection passes the SSRF guard.
"""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
from standardwebhooks import Webhook

from shared.notify.guard import DestinationRefused
from shared.notify.messages import BODIES, Channel, Notification
from shared.notify.outcome import DeliveryResult, answered, scrubbed

USER_AGENT = "SalesPulse-Notifications/1"
MAX_ANSWER_CHARS = 200  # of a refusing receiver's answer, kept in the error


def signed_headers(channel: Channel, notification: Notification, body: bytes, at: datetime) -> (
    dict[str, str]
):  # fmt: skip
    if channel.secret is None:
        raise ValueError(f"webhook channel {channel.id!r} has no secret")
    signature = Webhook(channel.secret).sign(notification.id, at, body.decode())
    return {
        "webhook-id": notification.id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signature,
    }


def request_headers(channel: Channel, notification: Notification, body: bytes, at: datetime) -> (
    dict[str, str]
):  # fmt: skip
    headers = {"content-type": "application/json", "user-agent": USER_AGENT}
    if channel.kind == "webhook":
        headers.update(signed_headers(channel, notification, body, at))
    return headers


async def deliver(
    client: httpx.AsyncClient,
    channel: Channel,
    notification: Notification,
    now: datetime | None = None,
) -> DeliveryResult:
    """POST ``notification`` to ``channel`` once, and say what came of it."""
    at = now or datetime.now(UTC)
    body = BODIES[channel.kind](notification)
    hidden = (channel.secret, channel.url)
    try:
        headers = request_headers(channel, notification, body, at)
        async with client.stream("POST", channel.url, content=body, headers=headers) as response:
            start = await _start_of(response)
    except DestinationRefused as exc:
        return DeliveryResult("failed", error=scrubbed(f"destination refused: {exc}", hidden))
    except httpx.UnsupportedProtocol as exc:  # a TransportError, but retrying cannot help
        return DeliveryResult("failed", error=scrubbed(_what(exc, "unsupported URL"), hidden))
    except httpx.TimeoutException as exc:
        return DeliveryResult("retry", error=scrubbed(_what(exc, "timed out"), hidden))
    except httpx.TransportError as exc:  # connection refused, reset, protocol errors
        return DeliveryResult("retry", error=scrubbed(_what(exc, "connection failed"), hidden))
    except (httpx.InvalidURL, ValueError) as exc:
        return DeliveryResult("failed", error=scrubbed(_what(exc, "invalid channel"), hidden))
    result = answered(
        response.status_code,
        response.reason_phrase,
        start,
        response.headers.get("retry-after"),
        at,
    )
    return _scrubbed(result, hidden)


async def _start_of(response: httpx.Response) -> str:
    """The first characters of the answer: enough for an error, never a huge body in memory."""
    if 200 <= response.status_code < 300:
        return ""
    read = b""
    async for chunk in response.aiter_bytes():
        read += chunk
        if len(read) >= MAX_ANSWER_CHARS:
            break
    return read[:MAX_ANSWER_CHARS].decode(errors="replace")


def _what(exc: Exception, fallback: str) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else f"{type(exc).__name__}: {fallback}"


def _scrubbed(result: DeliveryResult, hidden: tuple[str | None, ...]) -> DeliveryResult:
    if result.error is None:
        return result
    return DeliveryResult(
        result.outcome, result.status, scrubbed(result.error, hidden), result.retry_after
    )
