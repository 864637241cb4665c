"""Webhook routes: one pipeline for every provider.

read (413) -> verify (401) -> translate (400/422) -> validate (422) -> publish events and dead
letters -> 202 once Kafka acknowledged (503 + Retry-After when it cannot).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError

from services.ingest import metrics
from services.ingest.providers import ROUTES, Adapter, Delivery, Translation, Unusable
from services.ingest.publisher import EventPublisher
from shared import events as ev
from shared.bus import BusUnavailable
from shared.deadletter import dead_letter
from shared.problems import NotFound, PayloadTooLarge, Problem, Unavailable, Unprocessable
from shared.problems import validation_errors as field_errors

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


def validate(items: list[dict[str, Any]]) -> list[ev.Event]:
    try:
        return ev.parse_events(items)
    except ValidationError as exc:
        errors = field_errors(exc.errors())
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
        raise Unprocessable(f"invalid event: {detail}", errors=errors) from None


def split_unbookable(
    events: list[ev.Event], rates: dict[str, Any]
) -> tuple[list[ev.Event], list[Unusable]]:
    """Events in a currency without a rate cannot be booked: they go to the dead letters."""
    bookable, unusable = [], []
    for event in events:
        currency = getattr(event.data, "currency", None)
        if currency is not None and currency not in rates:
            unusable.append(
                Unusable(f"currency {currency} has no rate (SALESPULSE_FX_RATES)", event.to_json())
            )
        else:
            bookable.append(event)
    return bookable, unusable


async def receive(request: Request, provider: str) -> JSONResponse:
    adapter: Adapter | None = request.app.state.adapters.get(provider)
    if adapter is None:
        raise NotFound(f"route off: set {ROUTES[provider][1]} to turn it on", slug="route-off")
    try:
        body = await read_body(request)
        delivery = Delivery(
            request.method, public_url(request), request.headers, body, datetime.now(UTC)
        )
        adapter.verify(delivery)
        translation: Translation = adapter.translate(delivery)
        events, unbookable = split_unbookable(validate(translation.events), request.app.state.rates)
    except Problem as problem:
        metrics.REFUSED.labels(provider, problem.slug).inc()
        raise
    letters = [*translation.unusable, *unbookable]
    outcome = await publish(request, provider, events, letters, delivery)
    answer = Accepted(
        accepted=outcome.accepted,
        duplicates=outcome.duplicates,
        ids=outcome.ids,
        ignored=translation.ignored,
        deadlettered=len(letters),
    )
    return JSONResponse(answer.model_dump(), status_code=202)


async def publish(
    request: Request,
    provider: str,
    events: list[ev.Event],
    letters: Sequence[Unusable],
    delivery: Delivery,
) -> Any:
    publisher: EventPublisher = request.app.state.publisher
    headers = {k: delivery.headers[k] for k in HEADERS_OF_INTEREST if k in delivery.headers}
    records = [
        dead_letter(
            provider=provider,
            reason=u.reason,
            body=u.body or delivery.body,
            headers=headers,
            origin=delivery.url,
        )
        for u in letters
    ]
    try:
        if records:
            await publisher.dead_letter(records)
        outcome = await publisher.publish(events)
    except BusUnavailable as exc:
        metrics.PRODUCE_ERRORS.labels(request.app.state.topic).inc()
        raise Unavailable(
            f"events not accepted, retry later: {exc}", headers={"Retry-After": RETRY_AFTER_SECONDS}
        ) from None
    metrics.ACCEPTED.labels(provider).inc(outcome.accepted)
    metrics.DUPLICATES.labels(provider).inc(outcome.duplicates)
    metrics.DEADLETTERED.labels(provider).inc(len(records))
    return outcome


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
