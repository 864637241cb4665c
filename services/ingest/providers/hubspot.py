"""HubSpot webhooks (``/webhooks/hubspot``), v3 signatures; a JSON array of up to 100 events.

Payloads are thin: a stage change carries neither amount nor owner. Each tracked property change
becomes a partial ``deal.updated`` carrying only that field; the KPI service merges them into the
deal's state by event time. A configurable stage map says which stages mean won and lost.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from services.ingest.providers.base import (
    Delivery,
    Translation,
    Unusable,
    bounded_items,
    canonical_event,
    clip,
    epoch,
    item_body,
    require,
    same_secret,
)
from shared.problems import Problem, Unauthorized

PROVIDER = "hubspot"
MAX_AGE_MS = 5 * 60 * 1000
# HubSpot's v3 recipe decodes these escapes in the URI before signing it.
_URI_DECODE = {
    "%3A": ":",
    "%2F": "/",
    "%3F": "?",
    "%40": "@",
    "%21": "!",
    "%24": "$",
    "%27": "'",
    "%28": "(",
    "%29": ")",
    "%2A": "*",
    "%2C": ",",
    "%3B": ";",
}


def signature_v3(secret: str, method: str, uri: str, body: bytes, timestamp: str) -> str:
    """base64(HMAC-SHA256(client secret, METHOD + URI + raw body + timestamp))."""
    for escaped, char in _URI_DECODE.items():
        uri = uri.replace(escaped, char).replace(escaped.lower(), char)
    message = method.encode() + uri.encode() + body + timestamp.encode()
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()


class HubSpotAdapter:
    provider = PROVIDER
    path = "/webhooks/hubspot"
    secret_fields: tuple[str, ...] = ()

    def __init__(
        self,
        client_secret: str,
        won: frozenset[str],
        lost: frozenset[str],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._secret = client_secret
        self._won, self._lost = won, lost
        self._clock = clock

    @property
    def won(self) -> frozenset[str]:
        return self._won

    @property
    def lost(self) -> frozenset[str]:
        return self._lost

    def verify(self, delivery: Delivery) -> None:
        presented = delivery.headers.get("x-hubspot-signature-v3")
        stamp = delivery.headers.get("x-hubspot-request-timestamp", "")
        if not presented or not stamp:
            raise Unauthorized(
                "missing X-HubSpot-Signature-v3 or X-HubSpot-Request-Timestamp",
                slug="bad-signature",
            )
        if not stamp.isdigit() or abs(self._clock() * 1000 - int(stamp)) > MAX_AGE_MS:
            raise Unauthorized(
                "X-HubSpot-Request-Timestamp is more than 5 minutes off", slug="stale-timestamp"
            )
        expected = signature_v3(self._secret, delivery.method, delivery.url, delivery.body, stamp)
        if not same_secret(presented, expected):
            raise Unauthorized(
                f"X-HubSpot-Signature-v3 does not match a signature of POST {delivery.url}",
                slug="bad-signature",
            )

    def translate(self, delivery: Delivery) -> Translation:
        """Each item on its own: a bad one is dead-lettered, never a reason to refuse the rest."""
        result = Translation()
        for item in bounded_items(delivery.json(), "hubspot"):
            result.add(self._item(item), item)
        return result

    def item(self, item: Any) -> dict[str, Any] | Unusable:
        """One webhook item's event (a backfill makes items from the CRM API's deals, so that
        its events are the webhooks' own)."""
        return self._item(item)

    def _item(self, item: Any) -> dict[str, Any] | Unusable:
        if not isinstance(item, dict):
            return Unusable("invalid_event: item: must be a JSON object", item_body(item))
        try:
            return self._event(item)
        except Problem as problem:  # e.g. a missing field or an unreadable time: this item only
            return Unusable(f"invalid_event: {problem.summary()}", item_body(item))

    def _event(self, item: dict[str, Any]) -> dict[str, Any] | Unusable:
        require(item, "portalId", "objectId", "occurredAt", "subscriptionType", where="hubspot")
        kind = item["subscriptionType"]
        if kind == "deal.creation":
            return _deal(
                item,
                {
                    "status": "open",
                    "created_at": epoch(
                        item["occurredAt"], millis=True, field="hubspot.occurredAt"
                    ).isoformat(),
                },
            )
        if kind != "deal.propertyChange":
            return Unusable(
                f"hubspot subscription {clip(repr(kind))} is not tracked", item_body(item)
            )
        fields = self._fields(item.get("propertyName"), item.get("propertyValue"))
        if isinstance(fields, str):
            return Unusable(fields, item_body(item))
        return _deal(item, fields)

    def _fields(self, name: Any, value: Any) -> dict[str, Any] | str:
        """The deal fields one property change sets, or why it cannot be booked."""
        value = "" if value is None else str(value)
        if name == "dealstage":
            status = "won" if value in self._won else "lost" if value in self._lost else "open"
            return {"stage": value, "status": status}
        if name == "amount":
            try:
                return {"amount": str(Decimal(value or "0"))}
            except InvalidOperation:
                return f"hubspot amount {clip(repr(value))} is not a number"
        if name == "deal_currency_code":
            return {"currency": value.upper()}
        if name == "hubspot_owner_id":
            if not value:
                return "hubspot deal owner removed; the deal keeps its last owner"
            return {"actor": {"provider": PROVIDER, "external_id": value}}
        return f"hubspot property {clip(repr(name))} is not tracked"


def _deal(item: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
    dedupe = "-".join(
        str(item.get(k, ""))
        for k in ("portalId", "subscriptionType", "objectId", "propertyName", "occurredAt")
    )
    return canonical_event(
        event_id=dedupe,
        source=f"hubspot://{item['portalId']}",
        type_="deal.updated",
        time=epoch(item["occurredAt"], millis=True, field="hubspot.occurredAt"),
        data={"deal_id": str(item["objectId"]), **fields},
    )
