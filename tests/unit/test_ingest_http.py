"""The ingest's HTTP behaviour on the in-memory bus (the Kafka path: tests/integration)."""

from __future__ import annotations

import base64
import time
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest
from standardwebhooks import Webhook

from services.ingest.app import create_app
from services.simulator import signed_headers
from shared.bus import BusUnavailable, OutgoingRecord
from shared.bus.memory import MemoryBus
from shared.settings import Settings
from tests.conftest import WEBHOOK_SECRET, canonical

URL = "/webhooks/events"


class FlakyBus(MemoryBus):
    """Refuses the first publish, as a broker that is down for a moment."""

    def __init__(self) -> None:
        super().__init__()
        self.down = True

    async def publish(self, topic: str, records: Sequence[OutgoingRecord]) -> None:
        if self.down:
            self.down = False
            raise BusUnavailable("broker unreachable")
        await super().publish(topic, records)


@pytest.fixture
def bus() -> MemoryBus:
    return MemoryBus()


@pytest.fixture
async def client(
    make_settings: Callable[..., Settings], bus: MemoryBus
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(make_settings(max_body_bytes=4096), bus)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as c:
        yield c


def signed(body: Any, secret: str = WEBHOOK_SECRET, msg_id: str | None = None) -> dict[str, Any]:
    raw = orjson.dumps(body)
    return {"content": raw, "headers": signed_headers(secret, raw, msg_id)}


def assert_problem(response: httpx.Response, status: int, detail_part: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == status
    assert problem["title"]
    assert problem["type"]
    assert detail_part in problem["detail"]


async def test_signed_event_is_accepted_after_the_bus_took_it(
    client: httpx.AsyncClient, bus: MemoryBus
) -> None:
    event = canonical("call.placed", event_id="evt-1", actor="u-7")
    response = await client.post(URL, **signed(event))
    assert response.status_code == 202
    assert response.json() == {
        "accepted": 1,
        "duplicates": 0,
        "ids": ["evt-1"],
        "ignored": 0,
        "deadlettered": 0,
    }
    [record] = bus.records("sales.activity.v1")
    assert record.key == b"crm:u-7"
    assert orjson.loads(record.value)["id"] == "evt-1"
    assert dict(record.headers)["content-type"].startswith(b"application/cloudevents+json")


async def test_array_with_a_repeated_event_and_a_redelivery_count_duplicates(
    client: httpx.AsyncClient, bus: MemoryBus
) -> None:
    first, second = canonical(event_id="a"), canonical(event_id="b")
    response = await client.post(URL, **signed([first, second, first]))
    assert response.json()["accepted"] == 2
    assert response.json()["duplicates"] == 1
    assert response.json()["ids"] == ["a", "b", "a"]
    again = await client.post(URL, **signed([first]))
    assert (again.json()["accepted"], again.json()["duplicates"]) == (0, 1)
    assert len(bus.records("sales.activity.v1")) == 2


async def test_unsigned_delivery_is_refused(client: httpx.AsyncClient, bus: MemoryBus) -> None:
    response = await client.post(URL, content=orjson.dumps(canonical()))
    assert_problem(response, 401, "Missing required headers")
    assert bus.records("sales.activity.v1") == []


async def test_forged_signature_is_refused(client: httpx.AsyncClient) -> None:
    forged = "whsec_" + base64.b64encode(b"not-the-secret-at-all").decode()
    assert_problem(await client.post(URL, **signed(canonical(), forged)), 401, "No matching")


async def test_tampered_body_is_refused(client: httpx.AsyncClient) -> None:
    request = signed(canonical(event_id="x"))
    request["content"] = request["content"].replace(b'"x"', b'"y"')
    assert_problem(await client.post(URL, **request), 401, "signature")


async def test_stale_timestamp_is_refused(client: httpx.AsyncClient) -> None:
    raw = orjson.dumps(canonical())
    old = int(time.time()) - 600
    signature = Webhook(WEBHOOK_SECRET).sign(
        "msg_1", datetime.fromtimestamp(old, UTC), raw.decode()
    )
    headers = {"webhook-id": "msg_1", "webhook-timestamp": str(old), "webhook-signature": signature}
    assert_problem(await client.post(URL, content=raw, headers=headers), 401, "too old")


async def test_garbage_signature_header_is_a_401_not_a_500(client: httpx.AsyncClient) -> None:
    headers = {
        "webhook-id": "m",
        "webhook-timestamp": str(int(time.time())),
        "webhook-signature": "nonsense",
    }
    assert_problem(await client.post(URL, content=b"{}", headers=headers), 401, "malformed")


async def test_malformed_json_is_400(client: httpx.AsyncClient) -> None:
    raw = b'{"specversion": '
    response = await client.post(URL, content=raw, headers=signed_headers(WEBHOOK_SECRET, raw))
    assert_problem(response, 400, "not valid JSON")


async def test_schema_violation_is_422_naming_the_field(
    client: httpx.AsyncClient, bus: MemoryBus
) -> None:
    good, bad = canonical(event_id="ok"), canonical("call.placed", outcome="maybe")
    response = await client.post(URL, **signed([good, bad]))
    assert_problem(response, 422, "1.call.placed.data.outcome")
    assert response.json()["errors"][0]["field"] == "1.call.placed.data.outcome"
    assert bus.records("sales.activity.v1") == []  # all or nothing


async def test_empty_array_is_422(client: httpx.AsyncClient) -> None:
    assert_problem(await client.post(URL, **signed([])), 422, "empty array")


async def test_too_large_body_is_413(client: httpx.AsyncClient) -> None:
    events = [canonical(note="x" * 100) for _ in range(60)]
    assert_problem(await client.post(URL, **signed(events)), 413, "4096-byte limit")
    exposition = (await client.get("/metrics")).text
    assert 'salespulse_ingest_refused_total{provider="standard",reason="payload-too-large"}' in (
        exposition
    )


async def test_route_is_off_without_a_secret(make_settings: Callable[..., Settings]) -> None:
    app = create_app(make_settings(webhook_secret=None), MemoryBus())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as c:
        assert_problem(await c.post(URL, **signed(canonical())), 404, "route off")


async def test_bus_down_is_503_with_retry_after_and_the_retry_is_accepted(
    make_settings: Callable[..., Settings],
) -> None:
    bus = FlakyBus()
    app = create_app(make_settings(), bus)
    event = canonical(event_id="r")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as c:
        response = await c.post(URL, **signed(event))
        assert_problem(response, 503, "retry later")
        assert response.headers["retry-after"] == "5"
        retry = await c.post(URL, **signed(event))  # the provider's retry, after the outage
        assert retry.status_code == 202
        assert retry.json()["accepted"] == 1
    assert len(bus.records("sales.activity.v1")) == 1


async def test_health_and_metrics(client: httpx.AsyncClient) -> None:
    await client.post(URL, **signed(canonical()))
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    assert (await client.get("/readyz")).json()["ready"] is True
    metrics = (await client.get("/metrics")).text
    assert 'salespulse_ingest_accepted_total{provider="standard"}' in metrics
    assert 'route="/webhooks/events"' in metrics


async def test_an_unexpected_error_is_a_problem_not_a_stack_trace(
    make_settings: Callable[..., Settings],
) -> None:
    class BrokenBus(MemoryBus):
        async def publish(self, topic: str, records: Sequence[OutgoingRecord]) -> None:
            raise RuntimeError("secret internals")

    app = create_app(make_settings(), BrokenBus())
    transport = httpx.ASGITransport(app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        response = await c.post(URL, **signed(canonical()))
    assert_problem(response, 500, "unexpected error")
    assert "secret internals" not in response.text
