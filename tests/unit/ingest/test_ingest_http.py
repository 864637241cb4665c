"""The ingest's HTTP behaviour on the in-memory bus (the Kafka path: tests/integration)."""

from __future__ import annotations

import asyncio
import base64
import re
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI
from standardwebhooks import Webhook

from services.ingest.app import create_app
from services.ingest.metrics import REFUSAL_REASONS
from services.ingest.providers import ROUTES
from services.simulator import signed_headers
from shared.bus import BusUnavailable, OutgoingRecord, build_bus
from shared.bus.kafka import KafkaBus
from shared.bus.memory import MemoryBus
from shared.problems import install_problem_handlers
from shared.settings import Settings
from tests.conftest import WEBHOOK_SECRET, canonical
from tests.paths import ROOT

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


def unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


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


async def test_a_lone_invalid_event_is_422_naming_the_field(
    client: httpx.AsyncClient, bus: MemoryBus
) -> None:
    response = await client.post(URL, **signed(canonical("call.placed", outcome="maybe")))
    assert_problem(response, 422, "data.outcome")
    assert response.json()["errors"][0]["field"] == "data.outcome"
    assert response.json()["errors_total"] == 1
    assert bus.records("sales.activity.v1") == []
    assert bus.records("sales.deadletter.v1") == []  # refused, not kept: the sender fixes it


async def test_an_invalid_item_of_an_array_is_dead_lettered_alone(
    client: httpx.AsyncClient, bus: MemoryBus
) -> None:
    good, bad = canonical(event_id="ok"), canonical("deal.updated", currency="", event_id="bad")
    response = await client.post(URL, **signed([good, bad, 42]))
    assert response.status_code == 202
    assert response.json() == {
        "accepted": 1,
        "duplicates": 0,
        "ids": ["ok"],
        "ignored": 0,
        "deadlettered": 2,
    }
    assert [orjson.loads(r.value)["id"] for r in bus.records("sales.activity.v1")] == ["ok"]
    letters = [orjson.loads(r.value) for r in bus.records("sales.deadletter.v1")]
    reasons = sorted(letter["reason"] for letter in letters)
    assert reasons[0].startswith("invalid_event: data.currency: String should match pattern")
    assert reasons[1].startswith("invalid_event: event: Input should be a valid dictionary")
    bodies = sorted(base64.b64decode(letter["body_base64"]) for letter in letters)
    assert bodies == sorted([orjson.dumps(bad), b"42"])  # each item's own body
    assert "webhook-signature" not in letters[0]["headers"]


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


@pytest.fixture
async def roomy(make_settings: Callable[..., Settings]) -> AsyncIterator[httpx.AsyncClient]:
    """An ingest app with the default body limit (1 MiB)."""
    app = create_app(make_settings(), MemoryBus())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as c:
        yield c


async def test_more_than_1000_items_is_a_422_naming_the_body(roomy: httpx.AsyncClient) -> None:
    response = await roomy.post(URL, **signed([canonical() for _ in range(1001)]))
    assert_problem(response, 422, "at most 1000 items")
    assert response.json()["errors"] == [
        {"field": "body", "message": "at most 1000 items per request, got 1001"}
    ]


async def test_a_signed_mebibyte_of_empty_objects_gets_a_small_answer(
    roomy: httpx.AsyncClient,
) -> None:
    raw = b"[" + b",".join([b"{}"] * 349_000) + b"]"  # just under the 1 MiB limit
    response = await roomy.post(URL, content=raw, headers=signed_headers(WEBHOOK_SECRET, raw))
    assert_problem(response, 422, "at most 1000 items")
    assert len(response.content) < 10_000


async def test_a_thousand_bad_items_are_dead_lettered_with_a_small_answer(
    roomy: httpx.AsyncClient,
) -> None:
    response = await roomy.post(URL, **signed([{}] * 1000))
    assert response.status_code == 202
    assert response.json()["deadlettered"] == 1000
    assert len(response.content) < 10_000


async def test_an_error_response_lists_at_most_20_problems(client: httpx.AsyncClient) -> None:
    event = canonical()
    event["data"].update({f"unknown_{n}": n for n in range(30)})  # 30 forbidden extra fields
    response = await client.post(URL, **signed(event))
    assert_problem(response, 422, "data.unknown_0: Extra inputs are not permitted")
    assert len(response.json()["errors"]) == 20
    assert response.json()["errors_total"] == 30


async def test_request_validation_errors_are_capped_too() -> None:
    app = FastAPI()
    install_problem_handlers(app)

    @app.post("/numbers")
    async def numbers(values: list[int]) -> int:
        return len(values)

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as c:
        response = await c.post("/numbers", json=["x" * 5000] * 50)
    assert_problem(response, 422, "body.0: Input should be a valid integer")
    assert (len(response.json()["errors"]), response.json()["errors_total"]) == (20, 50)
    assert len(response.content) < 10_000


async def test_bus_down_answer_names_no_internal_host(
    make_settings: Callable[..., Settings], caplog: pytest.LogCaptureFixture
) -> None:
    port = unused_port()
    bus = KafkaBus(f"127.0.0.1:{port}", publish_timeout_s=0.5)
    app = create_app(make_settings(), bus)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as c:
        response = await c.post(URL, **signed(canonical()))
    await bus.stop()
    assert_problem(response, 503, "retry later")
    assert str(port) not in response.text
    assert "127.0.0.1" not in response.text
    [warning] = [r for r in caplog.records if r.getMessage().startswith("publish failed")]
    assert str(port) in warning.error  # type: ignore[attr-defined]  # the operator sees it


async def test_a_producer_that_never_connects_is_a_503_within_the_publish_timeout(
    make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    async def hangs(_: object) -> None:  # as a start waiting for a producer id that never comes
        await asyncio.sleep(3600)

    monkeypatch.setattr("shared.bus.kafka.AIOKafkaProducer.start", hangs)
    bus = KafkaBus(f"127.0.0.1:{unused_port()}", publish_timeout_s=0.5)
    app = create_app(make_settings(), bus)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as c:
        started = time.monotonic()
        response = await c.post(URL, **signed(canonical()))
        elapsed = time.monotonic() - started
    await bus.stop()
    assert_problem(response, 503, "retry later")
    assert response.headers["retry-after"] == "5"
    assert elapsed < 2.0


def test_the_publish_timeout_is_a_setting(make_settings: Callable[..., Settings]) -> None:
    assert Settings().publish_timeout_seconds == 3.0
    settings = make_settings(kafka_bootstrap_servers="127.0.0.1:1", publish_timeout_seconds=1.5)
    bus = build_bus(settings)
    assert isinstance(bus, KafkaBus)
    assert bus._publish_timeout_s == 1.5


async def test_every_labelled_series_exists_from_the_start(
    make_settings: Callable[..., Settings],
) -> None:
    prefix = f"fresh-{uuid.uuid4().hex[:8]}."
    app = create_app(make_settings(topic_prefix=prefix), MemoryBus())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as c:
        exposition = (await c.get("/metrics")).text
    series = {line.rpartition(" ")[0] for line in exposition.splitlines() if line[:1] != "#"}
    for provider in ROUTES:
        for name in ("accepted", "duplicates", "deadlettered"):
            assert f'salespulse_ingest_{name}_total{{provider="{provider}"}}' in series
        for reason in REFUSAL_REASONS:
            labels = f'provider="{provider}",reason="{reason}"'
            assert f"salespulse_ingest_refused_total{{{labels}}}" in series
    for topic in ("sales.activity.v1", "sales.deadletter.v1"):
        assert f'salespulse_kafka_produce_errors_total{{topic="{prefix}{topic}"}} 0.0' in exposition
    # No test refuses a Pipedrive delivery for a stale timestamp: this one is still 0.
    untouched = 'salespulse_ingest_refused_total{provider="pipedrive",reason="stale-timestamp"} 0.0'
    assert untouched in exposition


def test_the_refusal_reasons_are_every_slug_the_ingest_can_refuse_with() -> None:
    source = "\n".join(p.read_text() for p in (ROOT / "services" / "ingest").rglob("*.py"))
    named = set(re.findall(r'slug="([a-z-]+)"', source))
    defaults = {"malformed-body", "validation-error", "payload-too-large"}  # BadRequest, ...
    assert named | defaults == set(REFUSAL_REASONS)
