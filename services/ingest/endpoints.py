"""Webhook routes. Each verifies first, then parses, then publishes; answers only after acks."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError

from services.ingest import metrics
from services.ingest.publisher import EventPublisher
from services.ingest.standard_webhooks import StandardWebhookVerifier
from shared import events as ev
from shared.bus import BusUnavailable
from shared.problems import (
    BadRequest,
    NotFound,
    PayloadTooLarge,
    Problem,
    Unavailable,
    Unprocessable,
    validation_errors,
)

router = APIRouter()
RETRY_AFTER_SECONDS = "5"


class Accepted(BaseModel):
    accepted: int
    duplicates: int
    ids: list[str]


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


RawBody = Annotated[bytes, Depends(read_body)]


def _parse_json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"body is not valid JSON: {exc}") from None


def _canonical_events(payload: Any) -> list[ev.Event]:
    if isinstance(payload, list) and not payload:
        raise Unprocessable("an empty array carries no event")
    if not isinstance(payload, dict | list):
        raise Unprocessable("body must be one event object or an array of events")
    try:
        return ev.parse_events(payload)
    except ValidationError as exc:
        errors = validation_errors(exc.errors())
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
        raise Unprocessable(f"invalid event: {detail}", errors=errors) from None


async def publish(request: Request, provider: str, events: list[ev.Event]) -> JSONResponse:
    publisher: EventPublisher = request.app.state.publisher
    try:
        outcome = await publisher.publish(events)
    except BusUnavailable as exc:
        metrics.PRODUCE_ERRORS.labels(request.app.state.topic).inc()
        raise Unavailable(
            f"events not accepted, retry later: {exc}", headers={"Retry-After": RETRY_AFTER_SECONDS}
        ) from None
    metrics.ACCEPTED.labels(provider).inc(outcome.accepted)
    metrics.DUPLICATES.labels(provider).inc(outcome.duplicates)
    body = Accepted(accepted=outcome.accepted, duplicates=outcome.duplicates, ids=outcome.ids)
    return JSONResponse(body.model_dump(), status_code=202)


@router.post(
    "/webhooks/events",
    status_code=202,
    response_model=Accepted,
    summary="Canonical events, one or an array, signed with Standard Webhooks",
)
async def standard_webhook(request: Request, body: RawBody) -> JSONResponse:
    verifier: StandardWebhookVerifier | None = request.app.state.standard_webhooks
    if verifier is None:
        raise NotFound("route off: SALESPULSE_WEBHOOK_SECRET is not configured", slug="route-off")
    try:
        verifier.verify(body, request.headers)
        events = _canonical_events(_parse_json(body))
    except Problem as problem:
        metrics.REFUSED.labels("standard", problem.slug).inc()
        raise
    return await publish(request, "standard", events)
