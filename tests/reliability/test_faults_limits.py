"""Faults at scale (issue 18): what one setting or one request could do to a process, and the
operator's view of it. Each test reproduces a fault that was seen, then shows it fixed."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from services.api.app import create_app
from services.api.roster.service import RosterStore
from services.dev import with_demo_secrets
from services.kpi.app import build_kpi_service
from shared.bus import OutgoingRecord
from shared.bus.kafka import KafkaBus
from shared.db.engine import create_engine
from shared.db.migrate import migrate
from shared.settings import Settings
from tests.api_support import api_client
from tests.conftest import READ_KEY

# --- item 11: an explicit setting beats the demo defaults ---------------------------------


def test_the_dev_mode_keeps_an_explicit_refusal_of_private_channels(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SALESPULSE_ALLOW_PRIVATE_CHANNELS", "0")
    assert with_demo_secrets(Settings())[0].allow_private_channels is False
    monkeypatch.setenv("SALESPULSE_ALLOW_PRIVATE_CHANNELS", "1")
    assert with_demo_secrets(Settings())[0].allow_private_channels is True
    monkeypatch.delenv("SALESPULSE_ALLOW_PRIVATE_CHANNELS")
    assert with_demo_secrets(Settings())[0].allow_private_channels is True  # unset: demo value


# --- item 13: a page that takes ?key= gives no referrer -----------------------------------


async def test_every_answer_of_the_api_forbids_the_referrer(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    db = create_engine(f"sqlite:///{tmp_path / 'pages.db'}")
    await migrate(db)
    try:
        async with api_client(create_app(make_settings(), db)) as client:
            for path in (
                f"/wallboard?key={READ_KEY}",
                f"/wallboard?key={READ_KEY}&contest=demo",
                f"/v1/leaderboards/calls_total?key={READ_KEY}",
                "/v1/leaderboards/calls_total?key=wrong",  # a refusal too
                "/docs",
            ):
                answer = await client.get(path)
                assert answer.headers["referrer-policy"] == "no-referrer", path
                assert answer.headers["x-content-type-options"] == "nosniff", path
    finally:
        await db.dispose()


# --- item 12: dashboards show 0, not "No data" --------------------------------------------


def _sample(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


@pytest.mark.kafka
@pytest.mark.postgres
async def test_a_team_added_while_the_kpi_service_runs_has_its_series_at_once(
    kafka_bootstrap: str,
    postgres_url: str,
    topic_prefix: str,
    make_settings: Callable[..., Settings],
) -> None:
    """Its business counters exist (at 0) within a few seconds, before any booking; and the
    consumer-lag gauge has every assigned partition with its backlog from the assignment."""
    settings = make_settings(
        kafka_bootstrap_servers=kafka_bootstrap,
        database_url=postgres_url,
        topic_prefix=topic_prefix,
        kafka_partitions=3,
    )
    db = create_engine(postgres_url)
    await migrate(db)
    service = build_kpi_service(settings, db=db)
    service.teams_every_s = 0.2
    stop = asyncio.Event()
    team = f"late-{topic_prefix.strip('.')}"
    try:
        async with service:
            running = asyncio.create_task(service.run(stop))
            for _ in range(300):
                if _sample("salespulse_kpi_consumer_lag", partition="2") is not None:
                    break
                await asyncio.sleep(0.1)
            assert _sample("salespulse_kpi_consumer_lag", partition="2") == 0
            assert _sample("salespulse_deals_won_total", team=team) is None
            await RosterStore(db).put_team(team, "Late team")
            for _ in range(100):
                if _sample("salespulse_deals_won_total", team=team) is not None:
                    break
                await asyncio.sleep(0.1)
            assert _sample("salespulse_deals_won_total", team=team) == 0
            assert _sample("salespulse_calls_total", team=team, direction="missed") == 0
            stop.set()
            await running
    finally:
        await db.dispose()


@pytest.mark.kafka
async def test_the_lag_of_each_partition_is_known_from_its_assignment(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    bus = KafkaBus(kafka_bootstrap, partitions=3)
    topic = f"{topic_prefix}lag"
    await bus.ensure_topics([topic])
    await bus.start()
    try:
        await bus.publish(topic, [OutgoingRecord(f"k{i}".encode(), b"v") for i in range(60)])
        ends = await bus.end_offsets(topic)
    finally:
        await bus.stop()

    async def stored(_: str, partitions: list[int]) -> dict[int, int]:
        return {}  # a new consumer group: every partition is read from its start

    consumer = bus.consumer(topic, f"{topic_prefix}g", stored)
    await consumer.start()
    try:
        for _ in range(200):
            if len(consumer.lag()) == 3:
                break
            await asyncio.sleep(0.05)
        assert consumer.lag() == ends  # before any fetch: the whole backlog of each
    finally:
        await consumer.stop()
