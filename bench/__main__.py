"""`make bench`: first measurements, side by side on this machine, written to bench/results/.

1. Ingest throughput: the real ingest (in-memory bus and real Kafka) next to a bare FastAPI
   endpoint under the same uvicorn; the ratio is the figure to watch (machines here are noisy).
2. Webhook -> API latency: `salespulse ingest`, `kpi`, `api` as processes on Kafka + PostgreSQL;
   one signed event at a time, timed from the POST until the leaderboard shows it.
3. With PostgreSQL: KPI throughput, API reads and the roster import at 10,000 reps, and a
   10,000-rep report as JSON, CSV and xlsx (``bench/reports.py``), and ``salespulse import``
   of 100,000 past events (``bench/history_import.py``).
4. ``salespulse serve`` on SQLite and PostgreSQL: events/s end to end, board reads at 40, 400
   and 4,000 reps, the database's growth per million events (``bench/serve.py``).
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import uvloop

from bench import api_reads, history_import, roster_import
from bench import kpi as kpi_bench
from bench import reports as reports_bench
from bench import serve as serve_bench
from bench.load import run_load, signed_requests
from bench.procs import base_env, free_port, process, wait_ready
from services.simulator import signed_headers
from shared.db.engine import create_engine
from shared.db.migrate import migrate
from tests.conftest import ADMIN_KEY, WEBHOOK_SECRET, canonical, fresh_postgres_database

fresh_database = fresh_postgres_database

RESULTS = Path(__file__).parent / "results"
KPI_EVENTS = int(os.environ.get("BENCH_KPI_EVENTS", "200000"))  # the issue's: over 10,000 reps
REQUESTS = int(os.environ.get("BENCH_REQUESTS", "6000"))
LATENCY_SAMPLES = int(os.environ.get("BENCH_LATENCY_SAMPLES", "100"))


async def throughput(name: str, env: dict[str, str]) -> dict[str, Any]:
    port = free_port()
    with process([sys.executable, "-m", "bench.servers", name, str(port)], env):
        await wait_ready(f"http://127.0.0.1:{port}/webhooks/events")
        url = f"http://127.0.0.1:{port}/webhooks/events"
        await run_load(url, signed_requests(WEBHOOK_SECRET, 500))  # warm-up
        result = await run_load(url, signed_requests(WEBHOOK_SECRET, REQUESTS))
    return {
        "server": name,
        "requests": result.requests,
        "errors": result.errors,
        "requests_per_second": round(result.rate, 1),
        "p50_ms": round(result.percentile(0.5), 2),
        "p99_ms": round(result.percentile(0.99), 2),
    }


async def latency(kafka: str, database_url: str) -> dict[str, Any]:
    ports = {"ingest": free_port(), "api": free_port(), "kpi": free_port()}
    env = base_env(
        SALESPULSE_KAFKA_BOOTSTRAP_SERVERS=kafka,
        SALESPULSE_DATABASE_URL=database_url,
        SALESPULSE_TOPIC_PREFIX=f"bench-{uuid.uuid4().hex[:8]}.",
        SALESPULSE_INGEST_PORT=str(ports["ingest"]),
        SALESPULSE_API_PORT=str(ports["api"]),
        SALESPULSE_KPI_METRICS_PORT=str(ports["kpi"]),
    )
    cli = str(Path(sys.executable).with_name("salespulse"))
    ingest, api = (f"http://127.0.0.1:{ports[n]}" for n in ("ingest", "api"))
    db = create_engine(database_url)  # migrated first, as deployments do
    await migrate(db)
    await db.dispose()
    with process([cli, "ingest"], env), process([cli, "kpi"], env), process([cli, "api"], env):
        for url in (ingest, api, f"http://127.0.0.1:{ports['kpi']}"):
            await wait_ready(f"{url}/readyz")
        return await _measure_latency(ingest, api)


async def _measure_latency(ingest: str, api: str) -> dict[str, Any]:
    auth = {"authorization": f"Bearer {ADMIN_KEY}"}
    rep_id = f"bench-{uuid.uuid4().hex[:6]}"
    async with httpx.AsyncClient(timeout=10) as client:
        await _bench_rep(client, api, rep_id, auth)
        samples = [
            await _one_round_trip(client, ingest, api, rep_id, auth, n)
            for n in range(1, LATENCY_SAMPLES + 1)
        ]
    samples.sort()
    return {
        "samples": len(samples),
        "p50_ms": round(samples[len(samples) // 2], 1),
        "p95_ms": round(samples[int(len(samples) * 0.95) - 1], 1),
        "p99_ms": round(samples[min(int(len(samples) * 0.99), len(samples) - 1)], 1),
        "max_ms": round(samples[-1], 1),
    }


async def _bench_rep(
    client: httpx.AsyncClient, api: str, rep_id: str, auth: dict[str, str]
) -> None:
    await client.put(f"{api}/v1/teams/bench", json={"name": "Bench"}, headers=auth)
    await client.put(
        f"{api}/v1/reps/{rep_id}",
        headers=auth,
        json={
            "name": "Bench",
            "team_id": "bench",
            "effective_from": "2020-01-01T00:00:00Z",
            "identities": [{"provider": "bench", "external_id": rep_id}],
        },
    )


async def _one_round_trip(
    client: httpx.AsyncClient, ingest: str, api: str, rep_id: str, auth: dict[str, str], n: int
) -> float:
    """Milliseconds from posting the n-th call to seeing it counted by the API."""
    body = orjson.dumps(canonical("call.placed", provider="bench", actor=rep_id))
    started = time.perf_counter()
    await client.post(
        f"{ingest}/webhooks/events", content=body, headers=signed_headers(WEBHOOK_SECRET, body)
    )
    while True:
        kpis = await client.get(f"{api}/v1/reps/{rep_id}/kpis?metrics=calls_placed", headers=auth)
        if kpis.status_code != 200:
            raise RuntimeError(f"KPI read failed: {kpis.status_code} {kpis.text[:300]}")
        if kpis.json()["metrics"]["calls_placed"] >= n:
            return (time.perf_counter() - started) * 1000
        await asyncio.sleep(0.005)


async def main() -> None:
    kafka = os.environ.get("SALESPULSE_TEST_KAFKA")
    database_url = os.environ.get("SALESPULSE_TEST_DATABASE_URL")
    runs = [await throughput("bare", base_env()), await throughput("ingest-memory", base_env())]
    if kafka:
        env = base_env(
            SALESPULSE_KAFKA_BOOTSTRAP_SERVERS=kafka,
            SALESPULSE_TOPIC_PREFIX=f"bench-{uuid.uuid4().hex[:8]}.",
        )
        runs.append(await throughput("ingest-kafka", env))
    bare = runs[0]["requests_per_second"]
    for run in runs:
        run["ratio_to_bare"] = round(run["requests_per_second"] / bare, 3)
    report: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "load": {
            "requests": REQUESTS,
            "concurrency": 32,
            "client": "raw asyncio keep-alive HTTP/1.1, one process",
        },
        "ingest_throughput": runs,
    }
    if kafka and database_url:
        async with fresh_database(database_url) as url:
            report["webhook_to_api_latency"] = await latency(kafka, url)
        admin = database_url
        report["kpi_throughput"] = await kpi_bench.measure(
            kafka, lambda: fresh_database(admin), KPI_EVENTS
        )
        async with fresh_database(database_url) as url:
            report["api_reads"] = await api_reads.measure(url, free_port())
        report["roster_import"] = await roster_import.run(database_url)
        report["history_import"] = await history_import.run(database_url)
        report["reports"] = await reports_bench.run(database_url, free_port())
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as work:
        report["serve"] = await serve_bench.run(database_url, Path(work))
    report["ratios"] = ratios(report)
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    (RESULTS / f"{stamp}.json").write_text(json.dumps(report, indent=2))
    (RESULTS / "latest.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    print("\nratios (same run):")
    for name, value in report["ratios"].items():
        print(f"  {name:40s} {value}")


def ratios(report: dict[str, Any]) -> dict[str, float]:
    """The figures to watch, as ratios of runs side by side (machines here are noisy)."""
    found = {
        f"{run['server']} / bare endpoint": run["ratio_to_bare"]
        for run in report["ingest_throughput"]
    }
    reports = report.get("reports")
    if reports:
        found["10,000-rep report, slowest format (ms) / 2,000 ms goal"] = round(
            reports["slowest_ms"] / reports_bench.GOAL_MS, 3
        )
    serve = report["serve"]
    found.update(serve.get("ratios", {}))
    if report.get("kpi_throughput"):
        found["serve on SQLite, batched events/s / KPI service on Kafka"] = round(
            serve["sqlite"]["batched"]["events_per_second"]
            / report["kpi_throughput"]["kpi_applied_per_second"],
            3,
        )
    kpi = report.get("kpi_throughput")
    if kpi:
        found["kpi / raw aiokafka consumer + JSON"] = kpi["ratio_to_raw"]
        found["kpi / Quix Streams"] = kpi["ratio_to_quix_streams"]
    return found


if __name__ == "__main__":
    uvloop.run(main())
