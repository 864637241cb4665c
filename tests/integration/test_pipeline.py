"""Ingest -> real Kafka -> KPI consumer group -> real PostgreSQL -> API, in one test process."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import pytest
from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import AsyncEngine

from services.api.app import create_app as create_api
from services.ingest.app import create_app as create_ingest
from services.kpi.app import build_kpi_service
from services.simulator import signed_headers
from shared.bus import OutgoingRecord
from shared.bus.kafka import KafkaBus
from shared.db.engine import create_engine
from shared.db.migrate import migrate
from shared.settings import Settings
from tests.conftest import ADMIN_KEY, WEBHOOK_SECRET, canonical
from tests.kpi_support import run_kpi_until

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]
AUTH = {"authorization": f"Bearer {ADMIN_KEY}"}


@dataclass
class Stack:
    settings: Settings
    bus: KafkaBus
    db: AsyncEngine
    ingest: httpx.AsyncClient
    api: httpx.AsyncClient

    async def post(self, *events: dict[str, Any]) -> httpx.Response:
        raw = orjson.dumps(list(events))
        return await self.ingest.post(
            "/webhooks/events", content=raw, headers=signed_headers(WEBHOOK_SECRET, raw)
        )

    async def board(self, metric: str = "calls_total") -> dict[str, Any]:
        response = await self.api.get(f"/v1/leaderboards/{metric}?window=today", headers=AUTH)
        return {r["rep_id"]: r["value"] for r in response.json()["rows"]}


@pytest.fixture
async def stack(
    kafka_bootstrap: str,
    postgres_url: str,
    topic_prefix: str,
    make_settings: Callable[..., Settings],
) -> AsyncIterator[Stack]:
    settings = make_settings(
        kafka_bootstrap_servers=kafka_bootstrap,
        database_url=postgres_url,
        topic_prefix=topic_prefix,
        kafka_partitions=6,
    )
    bus = KafkaBus(kafka_bootstrap, partitions=6)
    await bus.start()
    await bus.ensure_topics([settings.activity_topic, settings.deadletter_topic])
    db = create_engine(postgres_url)
    await migrate(db)
    transport = httpx.ASGITransport
    async with (
        httpx.AsyncClient(
            transport=transport(create_ingest(settings, bus)), base_url="http://i"
        ) as ingest,
        httpx.AsyncClient(
            transport=transport(create_api(settings, db)), base_url="http://a"
        ) as api,
    ):
        for rep_id, ident in (("alice", "u-1"), ("bob", "u-2")):
            await api.put("/v1/teams/north", json={"name": "North"}, headers=AUTH)
            body = {
                "name": rep_id.title(),
                "team_id": "north",
                "effective_from": "2020-01-01T00:00:00Z",
                "identities": [{"provider": "crm", "external_id": ident}],
            }
            assert (await api.put(f"/v1/reps/{rep_id}", json=body, headers=AUTH)).is_success
        yield Stack(settings, bus, db, ingest, api)
    await bus.stop()
    await db.dispose()


async def test_events_flow_to_the_leaderboard_once_even_when_delivered_twice(stack: Stack) -> None:
    events = [canonical("call.placed", actor="u-1") for _ in range(3)]
    events.append(canonical("call.received", actor="u-2"))
    response = await stack.post(*events)
    assert response.status_code == 202
    assert response.json()["accepted"] == 4
    # the same deliveries again, through a second ingest process that remembers nothing
    other_ingest = create_ingest(stack.settings, stack.bus)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(other_ingest), base_url="http://i2"
    ) as second:
        raw = orjson.dumps(events)
        again = await second.post(
            "/webhooks/events", content=raw, headers=signed_headers(WEBHOOK_SECRET, raw)
        )
        assert again.json()["accepted"] == 4  # on Kafka twice; the KPI service dedupes

    service = build_kpi_service(stack.settings, stack.bus, stack.db)

    async def caught_up() -> bool:
        return await stack.board() == {"alice": 3, "bob": 1}

    # settle while still running: anything still to come (there should be nothing) lands
    await run_kpi_until(service, caught_up, settle=1.0)
    assert await stack.board() == {"alice": 3, "bob": 1}


async def test_restarted_kpi_resumes_from_database_offsets(stack: Stack) -> None:
    await stack.post(*(canonical("call.placed", actor="u-1") for _ in range(5)))
    first = build_kpi_service(stack.settings, stack.bus, stack.db)

    async def five() -> bool:
        return (await stack.board()).get("alice") == 5

    await run_kpi_until(first, five)
    await stack.post(*(canonical("call.placed", actor="u-2") for _ in range(2)))
    second = build_kpi_service(stack.settings, stack.bus, stack.db)
    applied, skipped = _counter("events_applied"), _counter("duplicates_skipped")

    async def seven() -> bool:
        return await stack.board() == {"alice": 5, "bob": 2}

    await run_kpi_until(second, seven, settle=0.5)
    # It read only what came after the stored offsets: re-reading the topic from the start
    # would have met the first five again (as duplicates) before the new two.
    assert _counter("events_applied") - applied == 2
    assert _counter("duplicates_skipped") - skipped == 0


def _counter(name: str) -> float:
    return REGISTRY.get_sample_value(f"salespulse_kpi_{name}_total") or 0.0


async def test_invalid_record_on_the_topic_is_dead_lettered_not_dropped(stack: Stack) -> None:
    await stack.bus.publish(
        stack.settings.activity_topic, [OutgoingRecord(b"x", b'{"not": "an event"}')]
    )
    await stack.post(canonical("call.placed", actor="u-1"))
    service = build_kpi_service(stack.settings, stack.bus, stack.db)

    async def one() -> bool:
        return (await stack.board()).get("alice") == 1

    await run_kpi_until(service, one)
    consumer = stack.bus.consumer(stack.settings.deadletter_topic, "dlq-reader", _no_offsets)
    await consumer.start()
    try:
        letters = []
        for _ in range(40):
            letters += await consumer.getmany(500, 10)
            if letters:
                break
    finally:
        await consumer.stop()
    letter = orjson.loads(letters[0].value)
    assert letter["provider"] == "kpi"
    assert letter["reason"].startswith("invalid_event")


async def _no_offsets(_: str, __: list[int]) -> dict[int, int]:
    return {}
