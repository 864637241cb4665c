"""Each provider's deliveries, sent twice, through real Kafka and PostgreSQL to the rep's KPIs."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from services.api.app import create_app as create_api
from services.ingest.app import create_app as create_ingest
from services.kpi.app import build_kpi_service
from shared.bus.kafka import KafkaBus
from shared.db.engine import create_engine
from shared.db.migrate import migrate
from shared.settings import Settings
from tests.conftest import ADMIN_KEY
from tests.kpi_support import run_kpi_until
from tests.providers_support import Providers, fixture

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]
AUTH = {"authorization": f"Bearer {ADMIN_KEY}"}
WINDOW = {"from": "2026-11-25T00:00:00+01:00", "to": "2026-11-26T00:00:00+01:00"}
ALICE = [
    ("twilio", "client:alice"),
    ("aircall", "456789"),
    ("hubspot", "7"),
    ("pipedrive", "18487521"),
]


async def deliver_twilio(send: Providers) -> None:
    for name in (
        "twilio_outbound_ringing",
        "twilio_outbound_completed",
        "twilio_inbound_parent_completed",
        "twilio_child_no_answer",
    ):
        assert (await send.twilio(fixture(name))).status_code == 202


async def deliver_aircall(send: Providers) -> None:
    for name in (
        "aircall_call_hungup",
        "aircall_call_ended_inbound_answered",
        "aircall_call_ended_inbound_missed",
        "aircall_call_ended_outbound",
    ):
        assert (await send.aircall(fixture(name))).status_code == 202


async def deliver_hubspot(send: Providers) -> None:
    assert (await send.hubspot(fixture("hubspot_deal_batch"))).status_code == 202


async def deliver_pipedrive(send: Providers) -> None:
    for name in (
        "pipedrive_deal_created",
        "pipedrive_deal_won",
        "pipedrive_deal_renamed",
        "pipedrive_activity_call_done",
    ):
        assert (await send.pipedrive(fixture(name))).status_code == 202


CASES: dict[str, tuple[Callable[[Providers], Any], dict[str, Any]]] = {
    "twilio": (
        deliver_twilio,
        {
            "calls_placed": 1,
            "calls_connected": 1,
            "calls_missed": 1,
            "calls_received": 0,
            "talk_seconds": 125,
        },
    ),
    "aircall": (
        deliver_aircall,
        {"calls_placed": 1, "calls_received": 1, "calls_missed": 1, "talk_seconds": 438},
    ),
    "hubspot": (deliver_hubspot, {"deals_won": 1, "revenue": 12500.5}),
    "pipedrive": (
        deliver_pipedrive,
        {"deals_won": 1, "revenue": 3200.0, "calls_placed": 1, "talk_seconds": 720},
    ),
}


@pytest.fixture
async def clients(
    kafka_bootstrap: str,
    postgres_url: str,
    topic_prefix: str,
    make_settings: Callable[..., Settings],
) -> AsyncIterator[tuple[Settings, KafkaBus, Any, httpx.AsyncClient, httpx.AsyncClient]]:
    settings = make_settings(
        kafka_bootstrap_servers=kafka_bootstrap,
        database_url=postgres_url,
        topic_prefix=topic_prefix,
    )
    bus = KafkaBus(kafka_bootstrap)
    await bus.start()
    await bus.ensure_topics([settings.activity_topic, settings.deadletter_topic])
    db = create_engine(postgres_url)
    await migrate(db)
    transport = httpx.ASGITransport
    async with (
        httpx.AsyncClient(
            transport=transport(create_ingest(settings, bus)), base_url="http://internal"
        ) as ingest,
        httpx.AsyncClient(
            transport=transport(create_api(settings, db)), base_url="http://api"
        ) as api,
    ):
        await api.put("/v1/teams/north", json={"name": "North"}, headers=AUTH)
        rep = {
            "name": "Alice",
            "team_id": "north",
            "effective_from": "2020-01-01T00:00:00Z",
            "identities": [{"provider": p, "external_id": x} for p, x in ALICE],
        }
        assert (await api.put("/v1/reps/alice", json=rep, headers=AUTH)).is_success
        yield settings, bus, db, ingest, api
    await bus.stop()
    await db.dispose()


@pytest.mark.parametrize("provider", sorted(CASES))
async def test_provider_deliveries_sent_twice_count_once_in_the_reps_kpis(
    provider: str, clients: tuple[Settings, KafkaBus, Any, httpx.AsyncClient, httpx.AsyncClient]
) -> None:
    settings, bus, db, ingest, api = clients
    deliver, expected = CASES[provider]
    await deliver(Providers(ingest))
    # The retries reach another ingest replica, which remembers nothing: Kafka gets them twice.
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(create_ingest(settings, bus)), base_url="http://internal"
    ) as replica:
        await deliver(Providers(replica))

    async def kpis() -> dict[str, Any]:
        response = await api.get(
            "/v1/reps/alice/kpis", headers=AUTH, params={**WINDOW, "metrics": ",".join(expected)}
        )
        metrics: dict[str, Any] = response.json()["metrics"]
        return metrics

    async def counted_once() -> bool:
        return await kpis() == expected

    await run_kpi_until(build_kpi_service(settings, bus, db), counted_once, settle=1.0)
    assert await kpis() == expected  # a double count, if any, would have landed by now
