"""Signed provider deliveries for tests. Signatures come from the providers' own libraries
(twilio's RequestValidator, hubspot-api-client's Signature, standardwebhooks) so that a
misreading of a provider's spec in our code cannot hide behind the same misreading here."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import orjson
from hubspot.utils.signature import Signature
from twilio.request_validator import RequestValidator

from services.simulator import signed_headers
from tests.conftest import (
    AIRCALL_TOKEN,
    HUBSPOT_SECRET,
    PIPEDRIVE_PASSWORD,
    PIPEDRIVE_USER,
    PUBLIC_BASE_URL,
    TWILIO_TOKEN,
    WEBHOOK_SECRET,
)

FIXTURES = Path(__file__).parent / "fixtures" / "providers"


def fixture(name: str) -> Any:
    text = (FIXTURES / f"{name}.json").read_text().replace("@TOKEN@", AIRCALL_TOKEN)
    return json.loads(text)


class Providers:
    """Posts deliveries the way each provider does, to an ingest app behind PUBLIC_BASE_URL."""

    def __init__(self, client: httpx.AsyncClient, public_base: str = PUBLIC_BASE_URL) -> None:
        self.client = client
        self.public_base = public_base

    async def twilio(
        self, params: dict[str, str], *, token: str = TWILIO_TOKEN, signed_url: str | None = None
    ) -> httpx.Response:
        path = "/webhooks/twilio/voice"
        url = signed_url or f"{self.public_base}{path}"
        signature = RequestValidator(token).compute_signature(url, params)
        return await self.client.post(
            path,
            content=urlencode(params),
            headers={
                "content-type": "application/x-www-form-urlencoded",
                "x-twilio-signature": signature,
            },
        )

    async def aircall(self, payload: dict[str, Any]) -> httpx.Response:
        return await self.aircall_body(orjson.dumps(payload))

    async def aircall_body(self, body: bytes) -> httpx.Response:
        return await self.client.post(
            "/webhooks/aircall", content=body, headers={"content-type": "application/json"}
        )

    async def hubspot(
        self,
        events: list[dict[str, Any]],
        *,
        secret: str = HUBSPOT_SECRET,
        timestamp_ms: int | None = None,
    ) -> httpx.Response:
        return await self.hubspot_body(
            orjson.dumps(events), secret=secret, timestamp_ms=timestamp_ms
        )

    async def hubspot_body(
        self, body: bytes, *, secret: str = HUBSPOT_SECRET, timestamp_ms: int | None = None
    ) -> httpx.Response:
        """Any body (UTF-8), signed as HubSpot signs it."""
        path = "/webhooks/hubspot"
        stamp = str(timestamp_ms if timestamp_ms is not None else int(time.time() * 1000))
        signature = Signature.get_signature(
            secret, body.decode(), "v3", f"{self.public_base}{path}", "POST", stamp
        )
        return await self.client.post(
            path,
            content=body,
            headers={
                "content-type": "application/json",
                "x-hubspot-signature-v3": signature,
                "x-hubspot-request-timestamp": stamp,
            },
        )

    async def pipedrive(
        self,
        payload: dict[str, Any],
        *,
        user: str = PIPEDRIVE_USER,
        password: str = PIPEDRIVE_PASSWORD,
    ) -> httpx.Response:
        return await self.pipedrive_body(orjson.dumps(payload), user=user, password=password)

    async def pipedrive_body(
        self, body: bytes, *, user: str = PIPEDRIVE_USER, password: str = PIPEDRIVE_PASSWORD
    ) -> httpx.Response:
        credentials = base64.b64encode(f"{user}:{password}".encode()).decode()
        return await self.client.post(
            "/webhooks/pipedrive",
            content=body,
            headers={"content-type": "application/json", "authorization": f"Basic {credentials}"},
        )

    async def standard(self, events: Any, *, secret: str = WEBHOOK_SECRET) -> httpx.Response:
        return await self.standard_body(orjson.dumps(events), secret=secret)

    async def standard_body(self, body: bytes, *, secret: str = WEBHOOK_SECRET) -> httpx.Response:
        """Any body (UTF-8), signed with Standard Webhooks."""
        return await self.client.post(
            "/webhooks/events", content=body, headers=signed_headers(secret, body)
        )
