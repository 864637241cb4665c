"""Webhook routes: one pipeline for every provider.

read (413) -> verify (401) -> translate (400/422) -> validate each event -> publish the good
ones and dead-letter the others -> 202 once Kafka acknowledged (503 + Retry-After when it cannot).
The HTTP edge is here; what happens to the events is in ``service.py``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from services.ingest import metrics
from services.ingest.providers import ROUTES, Adapter, Delivery
from services.ingest.schemas import Accepted
from services.ingest.service import dead_letters, publish, sort_out
from shared.problems import NotFound, PayloadTooLarge, Problem

router = APIRouter(tags=["webhooks"])


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
    outcome = await publish(request.app.state.publisher, provider, result.events, records)
    answer = Accepted(
        accepted=outcome.accepted,
        duplicates=outcome.duplicates,
        ids=outcome.ids,
        ignored=translation.ignored,
        deadlettered=len(records),
    )
    return JSONResponse(answer.model_dump(), status_code=202)


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
