"""Webhook routes: one pipeline for every provider.

read (413) -> verify (401) -> translate (400/422) -> validate each event -> publish the good
ones and dead-letter the others -> 202 once Kafka acknowledged (503 + Retry-After when it cannot).
The HTTP edge is here; what happens to the events is in ``service.py``.

The hot path is lean: a webhook route hands the request straight to its endpoint (nothing for
FastAPI to solve or validate per request), the answer is encoded once by orjson, and what the
routes need of the app is one object built at start (``Ingest``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
from fastapi import FastAPI, Request, Response
from fastapi.routing import APIRoute
from starlette.types import Receive, Scope, Send

from services.ingest import metrics
from services.ingest.deliveries import DeliveryLog
from services.ingest.enrichment import Enricher
from services.ingest.providers import ROUTES, Adapter, Delivery
from services.ingest.publisher import EventPublisher
from services.ingest.schemas import Accepted
from services.ingest.service import dead_letters, publish, sort_out
from shared.problems import NotFound, Problem, read_body

JSON = "application/json"
Endpoint = Callable[[Request], Coroutine[Any, Any, Response]]


@dataclass(frozen=True, slots=True)
class Ingest:
    """What the webhook routes need, built once per app."""

    adapters: dict[str, Adapter]
    publisher: EventPublisher
    rates: dict[str, Decimal]
    max_body_bytes: int
    public_base_url: str | None
    deliveries: DeliveryLog = field(default_factory=DeliveryLog)  # for /v1/connections
    # Completes thin HubSpot deals in the background (HUBSPOT_ACCESS_TOKEN set), else None.
    enricher: Enricher | None = None


class WebhookRoute(APIRoute):
    """A route whose endpoint takes the request and returns the response itself, served as is.

    FastAPI would wrap each request in exit stacks for dependencies with ``yield``, solve
    dependencies, check the body's content type and validate the answer against the response
    model; a webhook endpoint has none of those to do (it reads the raw body: the signature is
    over it). Exceptions go up to the app's handlers, as from any route. The route stays an
    ``APIRoute``: routing, metrics by route template and the OpenAPI description are unchanged.
    """

    def __init__(self, path: str, endpoint: Endpoint, **options: Any) -> None:
        super().__init__(path, endpoint, **options)
        self.app = self.serve

    async def serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self.endpoint(Request(scope, receive, send))
        await response(scope, receive, send)


def public_url(request: Request, base: str | None) -> str:
    """The URL the provider called: behind a proxy, rebuilt from SALESPULSE_PUBLIC_BASE_URL."""
    if not base:
        return str(request.url)
    query = f"?{request.url.query}" if request.url.query else ""
    return f"{base.rstrip('/')}{request.url.path}{query}"


def adapter_for(ingest: Ingest, provider: str) -> Adapter:
    adapter = ingest.adapters.get(provider)
    if adapter is None:
        raise NotFound(f"route off: set {ROUTES[provider][1]} to turn it on", slug="route-off")
    return adapter


def accepted(answer: dict[str, Any]) -> Response:
    """202 with the ``Accepted`` body, encoded once."""
    return Response(orjson.dumps(answer), status_code=202, media_type=JSON)


async def receive(request: Request, provider: str, ingest: Ingest) -> Response:
    try:
        adapter = adapter_for(ingest, provider)
        body = await read_body(request, ingest.max_body_bytes)
        delivery = Delivery(
            request.method,
            lambda: public_url(request, ingest.public_base_url),
            request.headers,
            body,
            datetime.now(UTC),
        )
        adapter.verify(delivery)
        translation = adapter.translate(delivery)
        result = sort_out(translation, ingest.rates)
    except Problem as problem:
        metrics.REFUSED.labels(provider, problem.slug).inc()
        if problem.slug != "route-off":  # a provider not connected has no deliveries to show
            ingest.deliveries.refused(provider, time.time(), problem.slug, problem.summary())
        raise
    records = dead_letters(provider, result.letters, delivery, adapter)
    outcome = await publish(ingest.publisher, provider, result.events, records)
    ingest.deliveries.delivered(
        provider, time.time(), outcome.accepted, outcome.duplicates, len(records)
    )
    if ingest.enricher is not None and provider == "hubspot":
        ingest.enricher.offer(result.events)  # after the thin events are safe; never waits
    return accepted(
        {
            "accepted": outcome.accepted,
            "duplicates": outcome.duplicates,
            "ids": outcome.ids,
            "ignored": translation.ignored,
            "deadlettered": len(records),
        }
    )


def _endpoint(provider: str, ingest: Ingest) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        return await receive(request, provider, ingest)

    endpoint.__name__ = f"webhook_{provider}"
    return endpoint


def add_webhook_routes(app: FastAPI, ingest: Ingest) -> None:
    """One route a provider, on the app itself (an included router is one more layer to match
    through on every request), matched before the documentation routes FastAPI made: they take
    nearly all the traffic, and no path of one is a path of another."""
    for provider, (path, setting) in ROUTES.items():
        app.router.add_api_route(
            path,
            _endpoint(provider, ingest),
            methods=["POST"],
            status_code=202,
            response_model=Accepted,
            tags=["webhooks"],
            summary=f"{provider} webhooks (off unless {setting} is set)",
            responses={
                401: {"description": "bad signature or credentials"},
                404: {"description": "route off"},
                413: {"description": "body too large"},
                422: {"description": "not understood"},
                503: {"description": "retry later"},
            },
            route_class_override=WebhookRoute,
        )
    routes = app.router.routes
    routes.sort(key=lambda route: not isinstance(route, WebhookRoute))  # stable: order kept
