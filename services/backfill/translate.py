"""A provider's REST objects as the canonical events its webhooks make. Pure: no I/O.

Aircall: a call of ``GET /v1/calls`` has the shape of a ``call.ended`` webhook's ``data``; the
adapter makes its event (``call-{id}``, source ``aircall://calls``): a call the webhook already
delivered is the same event, deduplicated by the KPI service.

HubSpot: a deal of the search API becomes the webhook items that would have described it (a
``deal.creation`` at its creation, then property changes for its owner, amount, currency and
stage) and the adapter makes their events, ids included. The changes are dated when the deal
was closed (``closedate``, for a won or lost stage) or last modified: HubSpot's search does not
say when each property changed, so an id may differ from the live webhook's by its time. The
KPI service keeps one state per deal (source and deal id), so such a deal is still one deal,
won once; the ids only make a second backfill of an unchanged deal a no-op.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from services.ingest.providers.base import Unusable
from services.ingest.providers.hubspot import HubSpotAdapter
from services.providers_api.hubspot import Deal

# deal property -> the webhook's propertyName (the same names)
CHANGES = ("hubspot_owner_id", "amount", "deal_currency_code", "dealstage")


def millis(value: str | datetime | None) -> int | None:
    """An ISO time (HubSpot's dates) or an epoch in milliseconds, as epoch milliseconds."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return int(value.timestamp() * 1000)
    if value.isdigit():
        return int(value)
    try:
        return int(datetime.fromisoformat(value).timestamp() * 1000)
    except ValueError:
        return None


def changed_at(deal: Deal, closed: frozenset[str]) -> int | None:
    """When the deal's current values were set, as far as the search API says: its close date
    for a closed stage (never after its last change: a close date can be typed in ahead), else
    its last change."""
    modified = millis(deal.prop("hs_lastmodifieddate")) or millis(deal.updatedAt)
    if deal.prop("dealstage") in closed:
        close = millis(deal.prop("closedate"))
        if close is not None:
            return min(close, modified) if modified is not None else close
    return modified


def deal_items(deal: Deal, portal_id: str, closed: frozenset[str]) -> list[dict[str, Any]]:
    """The webhook items that describe ``deal`` as it stands."""
    base = {"portalId": portal_id, "objectId": deal.id, "attemptNumber": 0}
    items: list[dict[str, Any]] = []
    created = millis(deal.createdAt) or millis(deal.prop("createdate"))
    if created is not None:
        items.append({**base, "subscriptionType": "deal.creation", "occurredAt": created})
    at = changed_at(deal, closed)
    for name in CHANGES:
        value = deal.prop(name)
        if value is not None and at is not None:
            items.append(
                {
                    **base,
                    "subscriptionType": "deal.propertyChange",
                    "occurredAt": at,
                    "propertyName": name,
                    "propertyValue": value,
                }
            )
    return items


def deal_events(
    adapter: HubSpotAdapter,
    deal: Deal,
    portal_id: str,
    emails: Mapping[str, str],
) -> list[dict[str, Any] | Unusable]:
    """The deal's canonical events (or why one cannot be made), owners with their emails."""
    closed = adapter.won | adapter.lost
    made: list[dict[str, Any] | Unusable] = []
    for item in deal_items(deal, portal_id, closed):
        event = adapter.item(item)
        if not isinstance(event, Unusable):
            actor = event["data"].get("actor")
            if actor is not None and (email := emails.get(actor["external_id"])):
                actor["email"] = email.lower()
        made.append(event)
    return made
