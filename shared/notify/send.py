"""One delivery of one notification to one channel: ``deliver``.

Guarantees:

- a webhook delivery is signed the Standard Webhooks way by the ``standardwebhooks`` package:
  ``webhook-id`` is the notification's id (the same on every attempt), ``webhook-timestamp``
  the attempt's time, ``webhook-signature`` over id, timestamp and the exact body bytes sent;
- nothing raises for a failed attempt: every outcome is a ``DeliveryResult`` (see ``outcome``);
- nothing is logged, and an error is classified (``outcome``): it never carries the receiver's
  answer, the channel's secret, nor its URL beyond the host (a Slack or Teams URL is a
  credential, and a receiver's 404 may echo it). The answer's body is never read.

The client is the caller's (one per dispatcher, for its connection pool and timeouts): use
``guard.guarded_client`` so that every connection passes the SSRF guard.
"""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
from standardwebhooks import Webhook

from shared.notify.guard import DestinationRefused
from shared.notify.messages import BODIES, Channel, Notification
from shared.notify.outcome import (
    CONNECTION_FAILED,
    DESTINATION_REFUSED,
    INVALID_CHANNEL,
    TIMEOUT,
    DeliveryResult,
    answered,
    classified,
    scrubbed,
)

USER_AGENT = "SalesPulse-Notifications/1"


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
            pass  # the status is all that counts: the body (closed unread) is not ours to keep
    except DestinationRefused as exc:  # the guard's reason names a host, never an address
        error = classified(DESTINATION_REFUSED, scrubbed(str(exc), hidden))
        return DeliveryResult("failed", error=error)
    except httpx.UnsupportedProtocol as exc:  # a TransportError, but retrying cannot help
        return DeliveryResult("failed", error=classified(INVALID_CHANNEL, type(exc).__name__))
    except httpx.TimeoutException as exc:
        return DeliveryResult("retry", error=classified(TIMEOUT, type(exc).__name__))
    except httpx.TransportError as exc:  # connection refused, reset, protocol errors
        return DeliveryResult("retry", error=classified(CONNECTION_FAILED, type(exc).__name__))
    except (httpx.InvalidURL, ValueError) as exc:
        return DeliveryResult("failed", error=classified(INVALID_CHANNEL, type(exc).__name__))
    return answered(response.status_code, response.headers.get("retry-after"), at)
