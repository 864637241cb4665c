"""Ingest's bounds on a real Apache Kafka: nothing a sender sends becomes a 503 loop."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import httpx
import orjson
import pytest

from services.ingest.app import create_app
from shared.bus import Record
from shared.bus.kafka import KafkaBus
from shared.deadletter import MAX_BODY_BYTES
from shared.settings import Settings
from tests.conftest import AIRCALL_TOKEN
from tests.providers_support import Providers, fixture

pytestmark = [pytest.mark.kafka]


async def no_offsets(_: str, __: list[int]) -> dict[int, int]:
    return {}


async def read_topic(bus: KafkaBus, topic: str, count: int, seconds: float = 15) -> list[Record]:
    """The first ``count`` records of ``topic`` (fewer if they do not come in time)."""
    consumer = bus.consumer(topic, f"{topic}.reader", no_offsets)
    await consumer.start()
    got: list[Record] = []
    try:
        deadline = asyncio.get_running_loop().time() + seconds
        while len(got) < count and asyncio.get_running_loop().time() < deadline:
            got += await consumer.getmany(500, 100)
    finally:
        await consumer.stop()
    return got


Ingest = tuple[Settings, KafkaBus, Providers]


@asynccontextmanager
async def kafka_ingest(settings: Settings) -> AsyncIterator[Ingest]:
    """An ingest app on its own KafkaBus, with its topics created."""
    assert settings.kafka_bootstrap_servers
    bus = KafkaBus(settings.kafka_bootstrap_servers, partitions=1)
    await bus.start()
    await bus.ensure_topics([settings.activity_topic, settings.deadletter_topic])
    transport = httpx.ASGITransport(create_app(settings, bus))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://internal") as client:
            yield settings, bus, Providers(client)
    finally:
        await bus.stop()


@pytest.fixture
def kafka_settings(
    kafka_bootstrap: str, topic_prefix: str, make_settings: Callable[..., Settings]
) -> Callable[..., Settings]:
    def build(**overrides: object) -> Settings:
        return make_settings(
            kafka_bootstrap_servers=kafka_bootstrap, topic_prefix=topic_prefix, **overrides
        )

    return build


async def test_an_untracked_delivery_of_a_mebibyte_is_dead_lettered_truncated(
    kafka_settings: Callable[..., Settings],
) -> None:
    payload = fixture("aircall_contact_created")
    payload["data"]["notes"] = ""
    async with kafka_ingest(kafka_settings()) as (settings, bus, send):
        room = settings.max_body_bytes - len(orjson.dumps(payload)) - 16
        payload["data"]["notes"] = "n" * room  # the body just under SALESPULSE_MAX_BODY_BYTES
        response = await send.aircall(payload)
        [record] = await read_topic(bus, settings.deadletter_topic, 1)
    assert response.status_code == 202, response.text
    assert response.json()["deadlettered"] == 1
    letter = orjson.loads(record.value)
    assert letter["truncated"] is True
    assert letter["body_bytes"] > MAX_BODY_BYTES
    body = base64.b64decode(letter["body_base64"])
    assert len(body) == MAX_BODY_BYTES
    assert AIRCALL_TOKEN.encode() not in body
    assert "contact.created" in letter["reason"]
