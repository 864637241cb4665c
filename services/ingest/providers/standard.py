"""Standard Webhooks: our generic door for canonical events (``/webhooks/events``)."""

from __future__ import annotations

import binascii

from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from services.ingest.providers.base import Delivery, Translation, bounded_items
from shared.problems import Unauthorized, Unprocessable


class StandardWebhooksAdapter:
    provider = "standard"
    path = "/webhooks/events"
    secret_fields: tuple[str, ...] = ()

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
        """The body already is canonical: one event, or an array validated item by item."""
        payload = delivery.json()
        if isinstance(payload, dict):
            return Translation(events=[payload], refuse_invalid=True)
        if not isinstance(payload, list):
            raise Unprocessable(
                "body must be one event object or an array of events",
                errors=[{"field": "body", "message": "not an object or an array"}],
            )
        items = bounded_items(payload, "events")
        if not items:
            raise Unprocessable(
                "an empty array carries no event",
                errors=[{"field": "body", "message": "empty array"}],
            )
        return Translation(events=list(items), origins=list(items))
