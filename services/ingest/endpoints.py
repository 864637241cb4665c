"""Webhook routes: one pipeline for every provider.

read (413) -> verify (401) -> translate (400/422) -> validate each event -> publish the good
ones and dead-letter the others -> 202 once Kafka acknowledged (503 + Retry-After when it cannot).

A batch is never refused for one of its items: an item that is invalid, or cannot be booked, is
dead-lettered with the reason and counted. Only a lone canonical event, whose sender can fix it,
is refused with a 422 naming the field.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError

from services.ingest import metrics
from services.ingest.providers import ROUTES, Adapter, Delivery, Translation, Unusable
from services.ingest.providers.base import item_body, without_fields
from services.ingest.publisher import EventPublisher, Outcome
from shared import events as ev
from shared.bus import BusUnavailable, OutgoingRecord
from shared.deadletter import dead_letter
from shared.problems import (
    NotFound,
    PayloadTooLarge,
    Problem,
    Unavailable,
    describe,
    invalid,
    validation_errors,
)

T = TypeVar("T")
log = logging.getLogger(__name__)
router = APIRouter(tags=["webhooks"])
RETRY_AFTER_SECONDS = "5"
HEADERS_OF_INTEREST = (
    "content-type",
    "user-agent",
    "webhook-id",
    "x-request-id",
    "x-hubspot-request-timestamp",
)


class Accepted(BaseModel):
    accepted: int
    duplicates: int
    ids: list[str]
    ignored: int = 0
    deadlettered: int = 0


@dataclass(slots=True)
class Sorted:
    """A translation sorted out: events to publish, and the rest with the reason."""

    events: list[ev.Event] = field(default_factory=list)
    letters: list[Unusable] = field(default_factory=list)


async def read_body(request: Request) -> bytes:
    """The raw body (signatures are over raw bytes), refused with 413 past the configured size."""
    limit: int = request.app.state.max_body_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"body of {declared} bytes exceeds the {limit}-byte limit")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"body exceeds the {limit}-byte limit")
        chunks.append(chunk)
    return b"".join(chunks)


def public_url(request: Request) -> str:
    """The URL the provider called: behind a proxy, rebuilt from SALESPULSE_PUBLIC_BASE_URL."""
    base: str | None = request.app.state.public_base_url
    if not base:
        return str(request.url)
    query = f"?{request.url.query}" if request.url.query else ""
    return f"{base.rstrip('/')}{request.url.path}{query}"


def event_errors(exc: ValidationError, item: Any) -> list[dict[str, Any]]:
    """Pydantic's errors for one event, located in the event as sent: ``data.currency``, not
    ``0.deal.updated.data.currency`` (the list index and type tag are the validator's own)."""
    tag = item.get("type") if isinstance(item, dict) else None
    located = []
    for error in exc.errors():
        loc = error["loc"][1:]
        if loc and loc[0] == tag:
            loc = loc[1:]
        elif not loc:
            loc = ("type",) if error["type"].startswith("union_tag") else ("event",)
        located.append({**error, "loc": loc})
    return located


def validate(item: Any) -> ev.Event | list[dict[str, Any]]:
    """One canonical event, or its errors."""
    try:
        [event] = ev.parse_events([item])  # a list of one: an item that is a list stays one item
    except ValidationError as exc:
        return event_errors(exc, item)
    return event


def bookable(event: ev.Event, rates: dict[str, Any]) -> str | None:
    """Why a valid event still cannot be booked, if it cannot."""
    currency = getattr(event.data, "currency", None)
    if currency is not None and currency not in rates:
        return f"currency {currency} has no rate (SALESPULSE_FX_RATES)"
    return None


def sort_out(translation: Translation, rates: dict[str, Any]) -> Sorted:
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


def adapter_for(request: Request, provider: str) -> Adapter:
    adapter: Adapter | None = request.app.state.adapters.get(provider)
    if adapter is None:
        raise NotFound(f"route off: set {ROUTES[provider][1]} to turn it on", slug="route-off")
    return adapter


async def receive(request: Request, provider: str) -> JSONResponse:
    try:
        adapter = adapter_for(request, provider)
        body = await read_body(request)
        delivery = Delivery(
            request.method, public_url(request), request.headers, body, datetime.now(UTC)
        )
        adapter.verify(delivery)
        translation = adapter.translate(delivery)
        result = sort_out(translation, request.app.state.rates)
    except Problem as problem:
        metrics.REFUSED.labels(provider, problem.slug).inc()
        raise
    records = dead_letters(provider, result.letters, delivery, adapter)
    outcome = await publish(request, provider, result.events, records)
    answer = Accepted(
        accepted=outcome.accepted,
        duplicates=outcome.duplicates,
        ids=outcome.ids,
        ignored=translation.ignored,
        deadlettered=len(records),
    )
    return JSONResponse(answer.model_dump(), status_code=202)


def dead_letters(
    provider: str, unusable: Sequence[Unusable], delivery: Delivery, adapter: Adapter
) -> list[OutgoingRecord]:
    """Dead-letter records: each item's own body, else the delivery's without its secrets."""
    if not unusable:
        return []
    headers = {k: delivery.headers[k] for k in HEADERS_OF_INTEREST if k in delivery.headers}
    whole = without_fields(delivery.body, adapter.secret_fields)
    return [
        dead_letter(
            provider=provider,
            reason=u.reason,
            body=u.body if u.body is not None else whole,
            headers=headers,
            origin=delivery.url,
        )
        for u in unusable
    ]


async def publish(
    request: Request, provider: str, events: list[ev.Event], records: list[OutgoingRecord]
) -> Outcome:
    publisher: EventPublisher = request.app.state.publisher
    if records:
        await produce(publisher.dead_letter(records), publisher.deadletter_topic)
    outcome = await produce(publisher.publish(events), publisher.topic)
    metrics.ACCEPTED.labels(provider).inc(outcome.accepted)
    metrics.DUPLICATES.labels(provider).inc(outcome.duplicates)
    metrics.DEADLETTERED.labels(provider).inc(len(records))
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


def _route(provider: str) -> Callable[..., Awaitable[JSONResponse]]:
    async def endpoint(request: Request) -> JSONResponse:
        return await receive(request, provider)

    endpoint.__name__ = f"webhook_{provider}"
    return endpoint


for _provider, (_path, _setting) in ROUTES.items():
    router.add_api_route(
        _path,
        _route(_provider),
        methods=["POST"],
        status_code=202,
        response_model=Accepted,
        summary=f"{_provider} webhooks (off unless {_setting} is set)",
        responses={
            401: {"description": "bad signature or credentials"},
            404: {"description": "route off"},
            413: {"description": "body too large"},
            422: {"description": "not understood"},
            503: {"description": "retry later"},
        },
    )
