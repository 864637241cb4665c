"""End to end: `salespulse ingest`, `kpi`, `api` and `worker` as separate processes on real Kafka
and PostgreSQL; a signed webhook is followed to the leaderboard, and the worker is ready, job by
job."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from services.simulator import signed_headers
from tests.conftest import ADMIN_KEY, READ_KEY, WEBHOOK_SECRET, canonical

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.postgres]
SALESPULSE = Path(sys.executable).with_name("salespulse")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Services:
    ingest: str
    api: str
    kpi: str
    worker: str


NAMES = ("ingest", "kpi", "api", "worker")


@contextmanager
def running(env: dict[str, str], logs: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for name in NAMES:
            log = (logs / f"{name}.log").open("wb")
            procs.append(
                subprocess.Popen(
                    [str(SALESPULSE), name], env=env, stdout=log, stderr=subprocess.STDOUT
                )
            )
        yield procs
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        codes = [proc.wait(timeout=30) for proc in procs]
        assert codes == [0] * len(NAMES), f"services did not stop cleanly: {codes}; logs in {logs}"


@pytest.fixture
async def services(
    kafka_bootstrap: str, postgres_url: str, topic_prefix: str, tmp_path: Path
) -> AsyncIterator[Services]:
    ports = {name: free_port() for name in NAMES}
    env = {
        **os.environ,
        "SALESPULSE_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "SALESPULSE_DATABASE_URL": postgres_url,
        "SALESPULSE_TOPIC_PREFIX": topic_prefix,
        "SALESPULSE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "SALESPULSE_API_KEYS": f"{ADMIN_KEY}:read+admin,{READ_KEY}:read",
        "SALESPULSE_INGEST_PORT": str(ports["ingest"]),
        "SALESPULSE_API_PORT": str(ports["api"]),
        "SALESPULSE_KPI_METRICS_PORT": str(ports["kpi"]),
        "SALESPULSE_WORKER_PORT": str(ports["worker"]),
    }
    urls = Services(*(f"http://127.0.0.1:{ports[n]}" for n in ("ingest", "api", "kpi", "worker")))
    # as the compose file and the Kubernetes manifests do: a one-shot migration first
    migrated = subprocess.run(
        [str(SALESPULSE), "migrate"], env=env, capture_output=True, check=False
    )
    assert migrated.returncode == 0, migrated.stderr.decode()[-2000:]
    with running(env, tmp_path):
        async with httpx.AsyncClient(timeout=5) as client:
            for url in (urls.ingest, urls.api, urls.kpi, urls.worker):
                await wait_ready(client, url, tmp_path)
        yield urls


async def wait_ready(client: httpx.AsyncClient, url: str, logs: Path, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if (await client.get(f"{url}/readyz")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.2)
    pytest.fail(f"{url} not ready in {seconds}s; logs: {log_tails(logs)}")


def log_tails(logs: Path) -> dict[str, str]:
    return {p.name: p.read_text()[-2000:] for p in logs.glob("*.log")}


def post_kwargs(event: dict[str, Any] | None = None, signed: bool = True) -> dict[str, Any]:
    raw = orjson.dumps(event or canonical())
    headers = signed_headers(WEBHOOK_SECRET, raw) if signed else {}
    return {"content": raw, "headers": headers}


async def alice_value(client: httpx.AsyncClient, api: str) -> Any:
    board = await client.get(
        f"{api}/v1/leaderboards/calls_total?window=today",
        headers={"authorization": f"Bearer {READ_KEY}"},
    )
    return {r["rep_id"]: r["value"] for r in board.json()["rows"]}.get("alice")


async def test_signed_webhook_reaches_the_leaderboard_once(services: Services) -> None:
    admin = {"authorization": f"Bearer {ADMIN_KEY}"}
    async with httpx.AsyncClient(timeout=5) as client:
        assert (
            await client.put(
                f"{services.api}/v1/teams/north", json={"name": "North"}, headers=admin
            )
        ).is_success
        rep = {
            "name": "Alice",
            "team_id": "north",
            "effective_from": "2020-01-01T00:00:00Z",
            "identities": [{"provider": "crm", "external_id": "u-1"}],
        }
        assert (
            await client.put(f"{services.api}/v1/reps/alice", json=rep, headers=admin)
        ).is_success
        assert await alice_value(client, services.api) == 0

        event = canonical("call.placed", actor="u-1")
        posted = time.monotonic()
        accepted = await client.post(f"{services.ingest}/webhooks/events", **post_kwargs(event))
        assert accepted.status_code == 202, accepted.text
        while await alice_value(client, services.api) != 1:
            assert time.monotonic() - posted < 15, "event never reached the leaderboard"
            await asyncio.sleep(0.05)

        # The provider's retry of the same delivery counts once (a retry reaching another
        # ingest replica is deduplicated by the KPI service: tests/integration/test_pipeline.py).
        second = await client.post(f"{services.ingest}/webhooks/events", **post_kwargs(event))
        assert (second.json()["accepted"], second.json()["duplicates"]) == (0, 1)
        unsigned = await client.post(
            f"{services.ingest}/webhooks/events", **post_kwargs(signed=False)
        )
        assert unsigned.status_code == 401
        assert unsigned.headers["content-type"] == "application/problem+json"

        marker = canonical("call.placed", actor="u-1")
        await client.post(f"{services.ingest}/webhooks/events", **post_kwargs(marker))
        while await alice_value(client, services.api) != 2:
            assert time.monotonic() - posted < 30, "second event never arrived"
            await asyncio.sleep(0.05)
        assert await alice_value(client, services.api) == 2  # the marker, not the duplicate

        kpi_metrics = (await client.get(f"{services.kpi}/metrics")).text
        applied = re.search(r"^salespulse_kpi_events_applied_total (\S+)$", kpi_metrics, re.M)
        assert applied is not None
        assert float(applied.group(1)) == 2

        # the marker excluded from the API: through Kafka to the KPI process, and back on undo
        excluded = await client.post(
            f"{services.api}/v1/corrections",
            json={"event_id": marker["id"], "action": "exclude", "reason": "a test call"},
            headers=admin,
        )
        assert excluded.status_code in (200, 201), excluded.text
        while await alice_value(client, services.api) != 1:
            assert time.monotonic() - posted < 45, "the correction never reached the board"
            await asyncio.sleep(0.05)
        behind = await client.get(
            f"{services.api}/v1/reps/alice/activity?metric=calls_total&window=today",
            headers={"authorization": f"Bearer {READ_KEY}"},
        )
        assert [i["event_id"] for i in behind.json()["items"]] == [event["id"]]
        undone = await client.delete(
            f"{services.api}/v1/corrections/{excluded.json()['id']}", headers=admin
        )
        assert undone.is_success, undone.text
        while await alice_value(client, services.api) != 2:
            assert time.monotonic() - posted < 60, "the undo never reached the board"
            await asyncio.sleep(0.05)


async def test_the_worker_says_it_is_ready_job_by_job(services: Services) -> None:
    async with httpx.AsyncClient(timeout=5) as client:
        ready = await client.get(f"{services.worker}/readyz")
        metrics = (await client.get(f"{services.worker}/metrics")).text
    assert ready.json() == {
        "ready": True,
        "checks": {"database": True, "dispatcher": True, "settlement": True,
                   "pace_checks": True, "retention": True, "corrections": True},
    }  # fmt: skip
    assert 'salespulse_notifications_delivered_total{kind="webhook"} 0.0' in metrics
