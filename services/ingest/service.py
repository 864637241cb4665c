"""What ingest does with a translated delivery, whatever the provider: validate each event on
its own, set aside what cannot be booked, publish the rest.

A batch is never refused for one of its items: an item that is invalid, or cannot be booked, is
dead-lettered with the reason and counted. Only a lone canonical event, whose sender can fix it,
is refused with a 422 naming the field.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TypeVar

from pydantic import ValidationError

from services.ingest import metrics
from services.ingest.providers import Adapter, Delivery, Translation, Unusable
from services.ingest.providers.base import item_body, without_fields
from services.ingest.publisher import EventPublisher, Outcome
from shared import events as ev
from shared.bus import BusUnavailable, OutgoingRecord
from shared.deadletter import dead_letter
from shared.fx import unrated_currency
from shared.problems import Unavailable, describe, invalid, validation_errors

T = TypeVar("T")
log = logging.getLogger(__name__)
RETRY_AFTER_SECONDS = "5"
HEADERS_OF_INTEREST = (
    "content-type",
    "user-agent",
    "webhook-id",
    "x-request-id",
    "x-hubspot-request-timestamp",
)


@dataclass(slots=True)
class Sorted:
    """A translation sorted out: events to publish, and the rest with the reason."""

    events: list[ev.Event] = field(default_factory=list)
    letters: list[Unusable] = field(default_factory=list)


def event_errors(exc: ValidationError, item: Any) -> list[dict[str, Any]]:
    """Pydantic's errors for one event, located in the event as sent: ``data.currency``, not
    ``deal.updated.data.currency`` (the type tag is the validator's own)."""
    tag = item.get("type") if isinstance(item, dict) else None
    located = []
    for error in exc.errors():
        loc = error["loc"]
        if loc and loc[0] == tag:
            loc = loc[1:]
        elif not loc:
            loc = ("type",) if error["type"].startswith("union_tag") else ("event",)
        located.append({**error, "loc": loc})
    return located


def validate(item: Any) -> ev.Event | list[dict[str, Any]]:
    """One canonical event, or its errors."""
    try:
        event = ev.parse_event_object(item)
    except ValidationError as exc:
        return event_errors(exc, item)
    return event


def bookable(event: ev.Event, rates: Mapping[str, Decimal]) -> str | None:
    """Why a valid event still cannot be booked, if it cannot."""
    if (currency := unrated_currency(event, rates)) is not None:
        return f"currency {currency} has no rate (SALESPULSE_FX_RATES)"
    return None


def sort_out(translation: Translation, rates: Mapping[str, Decimal]) -> Sorted:
    """Validate each event on its own: the good are published, the others dead-lettered."""
    result = Sorted(letters=list(translation.unusable))
    for index, item in enumerate(translation.events):
        checked = validate(item)
        if isinstance(checked, list):
            if translation.refuse_invalid:
                raise invalid(checked, "invalid event: ")
            origin = translation.origins[index] if translation.origins else None
            body = item_body(origin) if origin is not None else None
            reason = describe(validation_errors(checked))
            result.letters.append(Unusable(f"invalid_event: {reason}", body))
        elif (why := bookable(checked, rates)) is not None:
            result.letters.append(Unusable(why, checked.to_json()))
        else:
            result.events.append(checked)
    return result


def dead_letters(
    provider: str, unusable: Sequence[Unusable], delivery: Delivery, adapter: Adapter
) -> list[OutgoingRecord]:
    """Dead-letter records: each item's own body, else the delivery's without its secrets."""
    if not unusable:
        return []
    headers = {k: delivery.headers[k] for k in HEADERS_OF_INTEREST if k in delivery.headers}
    whole = without_fields(delivery.body, adapter.secret_fields)
    origin = delivery.url
    return [
        dead_letter(
            provider=provider,
            reason=u.reason,
            body=u.body if u.body is not None else whole,
            headers=headers,
            origin=origin,
        )
        for u in unusable
    ]


async def publish(
    publisher: EventPublisher, provider: str, events: list[ev.Event], records: list[OutgoingRecord]
) -> Outcome:
    """Dead letters first, then the events; returns once Kafka acknowledged them all."""
    if records:
        await produce(publisher.dead_letter(records), publisher.deadletter_topic)
    outcome = await produce(publisher.publish(events), publisher.topic)
    metrics.published(provider).count(outcome.accepted, outcome.duplicates, len(records))
    return outcome


async def produce(publishing: Awaitable[T], topic: str) -> T:
    """Await a publish; a bus that cannot take it is a 503 that names no internal host."""
    try:
        return await publishing
    except BusUnavailable as exc:
        metrics.PRODUCE_ERRORS.labels(topic).inc()
        # The cause (brokers, error) is for the operator's log, not for whoever called us.
        log.warning("publish failed; answering 503", extra={"topic": topic, "error": str(exc)})
        raise Unavailable(
            "events not accepted: the event bus is unavailable, retry later",
            headers={"Retry-After": RETRY_AFTER_SECONDS},
        ) from None
