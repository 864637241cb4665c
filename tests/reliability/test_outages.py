"""The KPI process through outages, as an operator runs it (`salespulse kpi`, real Kafka and
PostgreSQL): it never exits because a dependency is down, says so on /readyz, and resumes by
itself without losing or doubling anything."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from services.api.app import create_app as create_api
from services.ingest.app import create_app as create_ingest
from services.simulator import signed_headers
from shared.settings import Settings
from tests.api_support import READ, served
from tests.conftest import WEBHOOK_SECRET, canonical, fresh_postgres_database
from tests.kpi_rig import Rig, calls, expected_totals, make_rig, rep_sums
from tests.reliability.conftest import Server

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.e2e]


async def until(check: Callable[[], Awaitable[bool]], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.2)


async def readiness(rig: Rig, pid: int) -> tuple[int, dict[str, Any]]:
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.get(f"http://127.0.0.1:{rig.ports[pid]}/readyz")
    return response.status_code, response.json()


async def kpi_counter(rig: Rig, pid: int, name: str) -> float:
    async with httpx.AsyncClient(timeout=10) as client:
        text = (await client.get(f"http://127.0.0.1:{rig.ports[pid]}/metrics")).text
    for line in text.splitlines():
        if line.startswith(f"salespulse_kpi_{name}_total "):
            return float(line.split()[1])
    raise AssertionError(f"salespulse_kpi_{name}_total not exposed")


@contextlib.asynccontextmanager
async def sse(url: str, path: str) -> AsyncIterator[asyncio.Queue[tuple[str, Any]]]:
    """(event name, data) of a live SSE stream, as they come."""
    queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

    async def read() -> None:
        async with (
            httpx.AsyncClient(base_url=url, timeout=120) as client,  # > the heartbeat
            client.stream("GET", path, headers=READ) as response,
        ):
            name, data = "message", ""
            async for line in response.aiter_lines():
                if line.startswith("event: "):
                    name = line[7:]
                elif line.startswith("data: "):
                    data = line[6:]
                elif line == "" and data:
                    await queue.put((name, json.loads(data)))
                    name, data = "message", ""

    task = asyncio.create_task(read())
    try:
        yield queue
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def next_matching(
    queue: asyncio.Queue[tuple[str, Any]], wanted: Callable[[str, Any], bool], seconds: float
) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        name, data = await asyncio.wait_for(queue.get(), max(deadline - time.monotonic(), 0.01))
        if wanted(name, data):
            return data


def board_total(name: str, data: Any) -> int | None:
    if name != "leaderboard":
        return None
    return sum(int(row["value"] or 0) for row in data["rows"])


async def test_a_postgres_restart_during_a_stream_loses_nothing_and_the_live_board_resumes(
    own_postgres: tuple[Server, str],
    kafka_bootstrap: str,
    topic_prefix: str,
    make_settings: Callable[..., Settings],
    tmp_path: Path,
) -> None:
    server, admin_url = own_postgres
    rng = random.Random(21)
    first, second = calls(200, rng), calls(200, rng)
    async with (
        fresh_postgres_database(admin_url) as url,
        make_rig(kafka_bootstrap, url, topic_prefix, make_settings) as rig,
    ):
        process = rig.kpi_process(tmp_path / "kpi.log")
        try:
            await rig.until_serving(process)
            await rig.publish(first)
            await rig.wait_caught_up()
            async with (
                served(create_api(rig.settings)) as api,
                sse(api, "/v1/stream/leaderboards/calls_placed?window=today") as stream,
            ):
                assert await next_matching(stream, lambda n, d: board_total(n, d) == 200, 10)
                server.stop()
                await rig.publish(second)  # accepted by Kafka while the database is down
                await next_matching(stream, lambda n, d: n == "status" and not d["live"], 20)
                await until(
                    lambda: _not_ready(rig, process.pid), 30, "the KPI service to say not ready"
                )
                await asyncio.sleep(2)
                assert process.poll() is None, "the KPI process exited while PostgreSQL was down"
                server.start()
                await rig.wait_caught_up(90)
                assert await next_matching(stream, lambda n, d: board_total(n, d) == 400, 30)
            assert rep_sums(await rig.totals()) == expected_totals(first + second)
            await until(lambda: _ready(rig, process.pid), 30, "the KPI service to be ready")
        finally:
            server.start()  # whatever happened, the next test finds it up
            process.send_signal(signal.SIGTERM)
            process.wait(20)


async def _ready(rig: Rig, pid: int) -> bool:
    return (await readiness(rig, pid))[0] == 200


async def _not_ready(rig: Rig, pid: int) -> bool:
    return (await readiness(rig, pid))[0] == 503


async def test_a_broker_restart_loses_nothing_and_ingest_answers_503_in_time(
    own_kafka: tuple[Server, str],
    postgres_url: str,
    topic_prefix: str,
    make_settings: Callable[..., Settings],
    tmp_path: Path,
) -> None:
    server, bootstrap = own_kafka
    rng = random.Random(22)
    first, second = calls(200, rng), calls(200, rng)
    async with make_rig(bootstrap, postgres_url, topic_prefix, make_settings) as rig:
        process = rig.kpi_process(tmp_path / "kpi.log")
        try:
            await rig.until_serving(process)
            await rig.publish(first)
            await rig.wait_caught_up()
            async with served(create_ingest(rig.settings)) as ingest:
                server.stop()
                await until(lambda: _not_ready(rig, process.pid), 30, "not ready on /readyz")
                await _refused_in_time(ingest, bootstrap)
                assert process.poll() is None, "the KPI process exited while Kafka was down"
                server.start()
            await _publish_when_back(rig, second)
            await rig.wait_caught_up(90)
            assert rep_sums(await rig.totals()) == expected_totals(first + second)
            await until(lambda: _ready(rig, process.pid), 30, "the KPI service to be ready")
        finally:
            server.start()
            process.send_signal(signal.SIGTERM)
            process.wait(20)


async def _refused_in_time(ingest: str, bootstrap: str) -> None:
    """A webhook while the broker is down: 503 + Retry-After before a provider's 5 s timeout,
    and nothing about our hosts in the answer."""
    body = orjson.dumps(canonical("call.placed", actor="u-1"))
    started = time.monotonic()
    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.post(
            f"{ingest}/webhooks/events", content=body, headers=signed_headers(WEBHOOK_SECRET, body)
        )
    assert time.monotonic() - started < 5.0
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"]
    assert bootstrap not in response.text
    assert "127.0.0.1" not in response.text


async def _publish_when_back(rig: Rig, bodies: list[dict[str, Any]]) -> None:
    for _ in range(60):
        try:
            await rig.publish(bodies)
            return
        except Exception:  # the producer is still reconnecting
            await asyncio.sleep(0.5)
    pytest.fail("could not publish after the broker came back")


async def test_sigkill_between_the_flush_and_the_acknowledgement_doubles_nothing(
    rig: Rig, tmp_path: Path
) -> None:
    rng = random.Random(23)
    first, second = calls(300, rng), calls(100, rng)
    process = rig.kpi_process(tmp_path / "kpi.log")
    try:
        await rig.until_serving(process)
        await rig.publish(first)
        await rig.wait_caught_up()
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        # Killed after its flushes committed: whatever it had acknowledged to Kafka is lost
        # with it. Rewind the group's Kafka offsets to the start to stand for that loss.
        await _rewind_group(rig)
        process = rig.kpi_process(tmp_path / "kpi.log")
        await rig.until_serving(process)
        await rig.publish(second)
        await rig.wait_caught_up()
        assert await kpi_counter(rig, process.pid, "events_applied") == len(second)
        assert await kpi_counter(rig, process.pid, "duplicates_skipped") == 0
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(20)
    assert rep_sums(await rig.totals()) == expected_totals(first + second)


async def _rewind_group(rig: Rig) -> None:
    """Commit offset 0 for every partition under the KPI group (retried while the killed
    member's session has not expired yet)."""
    topic = rig.settings.activity_topic
    servers = rig.settings.kafka_bootstrap_servers
    partitions = sorted(await rig.bus.end_offsets(topic))
    for _ in range(60):
        consumer = AIOKafkaConsumer(
            bootstrap_servers=servers, group_id=rig.settings.kpi_group, enable_auto_commit=False
        )
        await consumer.start()
        try:
            tps = [TopicPartition(topic, p) for p in partitions]
            consumer.assign(tps)
            await consumer.commit(dict.fromkeys(tps, 0))
            return
        except KafkaError:
            await asyncio.sleep(1)
        finally:
            await consumer.stop()
    pytest.fail("could not rewind the KPI group's offsets in Kafka")
