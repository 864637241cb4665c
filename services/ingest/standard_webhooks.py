"""Standard Webhooks verification for ``/webhooks/events`` (the ``standardwebhooks`` package)."""

from __future__ import annotations

import binascii
from collections.abc import Mapping

from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from shared.problems import Unauthorized


class StandardWebhookVerifier:
    def __init__(self, secret: str) -> None:
        self._webhook = Webhook(secret)

    def verify(self, body: bytes, headers: Mapping[str, str]) -> None:
        """Raise ``Unauthorized`` (401) unless id, timestamp (+-5 min) and signature all check."""
        wanted = {k: v for k, v in headers.items() if k.lower().startswith("webhook-")}
        try:
            self._webhook.verify(body, wanted, json_parse=False)
        except WebhookVerificationError as exc:
            raise Unauthorized(f"webhook signature rejected: {exc}", slug="bad-signature") from None
        except (ValueError, binascii.Error):
            raise Unauthorized(
                "webhook signature rejected: malformed webhook-signature header or body encoding",
                slug="bad-signature",
            ) from None
