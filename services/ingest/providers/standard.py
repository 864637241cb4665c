"""Standard Webhooks: our generic door for canonical events (``/webhooks/events``)."""

from __future__ import annotations

import binascii
from typing import Any

from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from services.ingest.providers.base import Delivery, Translation
from shared.problems import Unauthorized, Unprocessable


class StandardWebhooksAdapter:
    provider = "standard"
    path = "/webhooks/events"

    def __init__(self, secret: str) -> None:
        self._webhook = Webhook(secret)

    def verify(self, delivery: Delivery) -> None:
        """id, timestamp (+-5 min) and signature must all check (``standardwebhooks``)."""
        wanted = {k: v for k, v in delivery.headers.items() if k.lower().startswith("webhook-")}
        try:
            self._webhook.verify(delivery.body, wanted, json_parse=False)
        except WebhookVerificationError as exc:
            raise Unauthorized(f"webhook signature rejected: {exc}", slug="bad-signature") from None
        except (ValueError, binascii.Error):
            raise Unauthorized(
                "webhook signature rejected: malformed webhook-signature header or body encoding",
                slug="bad-signature",
            ) from None

    def translate(self, delivery: Delivery) -> Translation:
        """The body already is canonical: one event or an array (validated by the caller)."""
        payload = delivery.json()
        if isinstance(payload, list) and not payload:
            raise Unprocessable("an empty array carries no event")
        if not isinstance(payload, dict | list):
            raise Unprocessable("body must be one event object or an array of events")
        items: list[Any] = payload if isinstance(payload, list) else [payload]
        return Translation(events=items)
