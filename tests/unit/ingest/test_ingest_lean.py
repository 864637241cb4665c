"""The ingest's lean per-request path keeps what the full one did: a body streamed in chunks,
the answer's schema, the counters, the dead letter's origin, the currency check."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from decimal import Decimal

import httpx
import orjson
import pytest
from prometheus_client import REGISTRY

from services.ingest.app import create_app
from services.ingest.routes import WebhookRoute
from services.ingest.schemas import Accepted
from services.ingest.service import bookable
from services.simulator import signed_headers
from shared import events as ev
from shared.bus.memory import MemoryBus
from shared.fx import unrated_currency
from shared.settings import Settings
from tests.conftest import PUBLIC_BASE_URL, WEBHOOK_SECRET, canonical
from tests.unit.ingest.test_ingest_http import bus, client

__all__ = ["bus", "client"]  # the ingest's fixtures (a 4 KiB body limit), shared

URL = "/webhooks/events"


def in_chunks(raw: bytes, size: int) -> AsyncIterator[bytes]:
    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it comes
        for start in range(0, len(raw), size):
            yield raw[start : start + size]

    return chunks()


def counted(name: str) -> float:
    return REGISTRY.get_sample_value(name, {"provider": "standard"}) or 0.0


async def test_a_body_streamed_in_chunks_is_read_whole_and_its_signature_checked(
    client: httpx.AsyncClient, bus: MemoryBus
) -> None:
    raw = orjson.dumps([canonical(event_id="c1"), canonical(event_id="c2")])
    headers = signed_headers(WEBHOOK_SECRET, raw)
    response = await client.post(URL, content=in_chunks(raw, 7), headers=headers)
    assert response.status_code == 202, response.text
    assert [orjson.loads(r.value)["id"] for r in bus.records("sales.activity.v1")] == ["c1", "c2"]


async def test_a_streamed_body_past_the_limit_is_413(
    client: httpx.AsyncClient, bus: MemoryBus
) -> None:
    raw = orjson.dumps([canonical(note="x" * 100) for _ in range(60)])
    headers = signed_headers(WEBHOOK_SECRET, raw)
    response = await client.post(URL, content=in_chunks(raw, 1000), headers=headers)
    assert response.status_code == 413
    assert "4096-byte limit" in response.json()["detail"]
    assert bus.records("sales.activity.v1") == []


async def test_the_answer_is_the_accepted_schema_as_json(client: httpx.AsyncClient) -> None:
    raw = orjson.dumps(canonical(event_id="s1"))
    response = await client.post(URL, content=raw, headers=signed_headers(WEBHOOK_SECRET, raw))
    assert response.status_code == 202
    assert response.headers["content-type"] == "application/json"
    answer = Accepted.model_validate_json(response.content)
    assert answer == Accepted(accepted=1, duplicates=0, ids=["s1"], ignored=0, deadlettered=0)


async def test_the_counters_count_what_each_delivery_became(client: httpx.AsyncClient) -> None:
    names = ("accepted", "duplicates", "deadlettered")
    before = [counted(f"salespulse_ingest_{n}_total") for n in names]
    first, second = canonical(event_id="n1"), canonical(event_id="n2")
    raw = orjson.dumps([first, second, first, 42])
    response = await client.post(URL, content=raw, headers=signed_headers(WEBHOOK_SECRET, raw))
    assert response.json()["deadlettered"] == 1
    after = [counted(f"salespulse_ingest_{n}_total") for n in names]
    assert [b - a for a, b in zip(before, after, strict=True)] == [2, 1, 1]


async def test_a_dead_letter_names_the_public_url_the_provider_called(
    client: httpx.AsyncClient, bus: MemoryBus
) -> None:
    raw = orjson.dumps([canonical(), 42])
    query = "?attempt=2"
    response = await client.post(
        URL + query, content=raw, headers=signed_headers(WEBHOOK_SECRET, raw)
    )
    assert response.json()["deadlettered"] == 1
    [letter] = [orjson.loads(r.value) for r in bus.records("sales.deadletter.v1")]
    assert letter["origin"] == f"{PUBLIC_BASE_URL}{URL}{query}"


async def test_a_refusal_is_a_problem_counted_under_the_route_with_its_status(
    client: httpx.AsyncClient,
) -> None:
    labels = {"service": "ingest", "method": "POST", "route": URL, "status": "401"}
    before = REGISTRY.get_sample_value("salespulse_http_requests_total", labels) or 0.0
    response = await client.post(URL, content=orjson.dumps(canonical()))  # unsigned
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"].endswith("Missing required headers")
    after = REGISTRY.get_sample_value("salespulse_http_requests_total", labels)
    assert after == before + 1


def test_the_webhook_routes_are_lean_and_still_described(
    make_settings: Callable[..., Settings],
) -> None:
    app = create_app(make_settings(), MemoryBus())
    lean = [r for r in app.routes if isinstance(r, WebhookRoute)]
    assert {r.path for r in lean} >= {URL, "/webhooks/twilio/voice", "/webhooks/hubspot"}
    spec = app.openapi()
    answer = spec["paths"][URL]["post"]["responses"]["202"]["content"]["application/json"]
    assert answer["schema"] == {"$ref": "#/components/schemas/Accepted"}


RATES = {"USD": Decimal("0.92"), "EUR": Decimal(1)}


@pytest.mark.parametrize(
    "body",
    [
        canonical("deal.updated", deal_id="D", amount="5", currency="JPY"),
        canonical("deal.updated", deal_id="D", amount="5", currency="USD"),
        canonical("deal.updated", deal_id="D", amount="5", currency=None),
        canonical("proposal.sent", proposal_id="P", amount="5", currency="GBP"),
        canonical("call.placed"),
        canonical("call.missed", queue="sales"),
        canonical("meeting.held"),
        canonical("lead.created"),
    ],
)
def test_ingest_sets_aside_exactly_the_events_in_a_currency_without_a_rate(
    body: dict[str, object],
) -> None:
    event = ev.parse_event_object(body)
    unrated = unrated_currency(event, RATES)
    expected = None if unrated is None else f"currency {unrated} has no rate (SALESPULSE_FX_RATES)"
    assert bookable(event, RATES) == expected
