"""API reads at scale: 10,000 reps, a month of activity in the buckets, p50/p99 per read.

The buckets are written straight into PostgreSQL (what a month of ~10 million events leaves
there: day buckets for the month, hour buckets for today, minute buckets for the last hour),
then `salespulse api` serves reads to a raw keep-alive HTTP client.
"""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

from bench.load import exchange
from shared.db.engine import create_engine
from shared.db.migrate import migrate
from tests.conftest import ADMIN_KEY

REPS = int(os.environ.get("BENCH_REPS", "10000"))
TEAMS = 50
METRICS = (
    "calls_placed",
    "calls_connected",
    "calls_received",
    "calls_missed",
    "talk_seconds",
    "deals_won",
    "deals_lost",
    "revenue_cents",
)


async def fill(database_url: str, day0: int, hour0: int, minute0: int) -> dict[str, int]:
    engine = create_engine(database_url)
    await migrate(engine)
    await engine.dispose()
    dsn = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f"""
            INSERT INTO teams (id, name) SELECT 't' || t, 'Team ' || t
              FROM generate_series(0, {TEAMS} - 1) t;
            INSERT INTO reps (id, name) SELECT 'r' || r, 'Rep ' || r
              FROM generate_series(0, {REPS} - 1) r;
            INSERT INTO rep_teams (rep_id, effective_from, team_id)
              SELECT 'r' || r, 0, 't' || (r % {TEAMS}) FROM generate_series(0, {REPS} - 1) r;
            UPDATE roster_version SET version = version + 1 WHERE id = 1;
            """)
        grains = [("day", day0, 86400, 30), ("hour", hour0, 3600, 12), ("minute", minute0, 60, 60)]
        for grain, first, step, count in grains:
            for metric in METRICS:
                await conn.execute(f"""
                    INSERT INTO kpi_buckets (scope, metric, grain, bucket_start, subject_id, value)
                    SELECT 'rep', '{metric}', '{grain}', {first} + b * {step}, 'r' || r,
                           (random() * 20)::int
                      FROM generate_series(0, {REPS} - 1) r, generate_series(0, {count} - 1) b;
                    INSERT INTO kpi_buckets (scope, metric, grain, bucket_start, subject_id, value)
                    SELECT 'team', metric, grain, bucket_start,
                           't' || (substr(subject_id, 2)::int % {TEAMS}), sum(value)
                      FROM kpi_buckets WHERE scope = 'rep' AND metric = '{metric}'
                       AND grain = '{grain}'
                     GROUP BY 1, 2, 3, 4, 5;
                    """)
        await conn.execute("ANALYZE kpi_buckets")
        rows = await conn.fetchval("SELECT count(*) FROM kpi_buckets")
        events = await conn.fetchval(
            "SELECT sum(value) FROM kpi_buckets WHERE scope = 'rep' AND grain = 'day' "
            "AND metric IN ('calls_placed', 'calls_received', 'calls_missed', 'deals_won')"
        )
        return {"bucket_rows": int(rows), "events_in_buckets": int(events)}
    finally:
        await conn.close()


async def get_load(port: int, paths: list[str], concurrency: int = 1) -> list[float]:
    queue = iter(paths)
    latencies: list[float] = []
    auth = f"authorization: Bearer {ADMIN_KEY}"

    async def worker() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for path in queue:
                request = f"GET {path} HTTP/1.1\r\nhost: 127.0.0.1\r\n{auth}\r\n\r\n".encode()
                started = time.perf_counter()
                status = await exchange(reader, writer, request)
                if status != 200:
                    raise RuntimeError(f"{path}: HTTP {status}")
                latencies.append((time.perf_counter() - started) * 1000)
        finally:
            writer.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return sorted(latencies)


def summary(latencies: list[float]) -> dict[str, float]:
    return {
        "requests": len(latencies),
        "p50_ms": round(latencies[len(latencies) // 2], 2),
        "p99_ms": round(latencies[min(int(len(latencies) * 0.99), len(latencies) - 1)], 2),
    }


async def measure(database_url: str, port: int) -> dict[str, Any]:
    now = int(time.time())
    filled = await fill(
        database_url,
        now - now % 86400 - 29 * 86400,
        now - now % 3600 - 11 * 3600,
        now - now % 60 - 59 * 60,
    )
    process = _serve_api(database_url, port)
    try:
        await _ready(port)
        return {**filled, "reps": REPS, **await _reads(port)}
    finally:
        process.terminate()
        process.wait(20)


def _serve_api(database_url: str, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "SALESPULSE_DATABASE_URL": database_url,
        "SALESPULSE_API_PORT": str(port),
        "SALESPULSE_API_KEYS": f"{ADMIN_KEY}:read+admin",
        "SALESPULSE_LOG_LEVEL": "WARNING",
    }
    cli = str(Path(sys.executable).with_name("salespulse"))
    return subprocess.Popen(
        [cli, "api"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


async def _reads(port: int) -> dict[str, Any]:
    rng = random.Random(5)
    board = "/v1/leaderboards/calls_total?window=this_month"
    cold = await get_load(port, [board], 1)
    month = [f"/v1/reps/r{rng.randrange(REPS)}/kpis?window=this_month" for _ in range(2000)]
    today = [f"/v1/reps/r{rng.randrange(REPS)}/kpis?window=today" for _ in range(2000)]
    teams = ["/v1/team-leaderboards/revenue?window=this_month"] * 500
    return {
        "leaderboard_cold_ms": round(cold[0], 1),
        "leaderboard_this_month": summary(await get_load(port, [board] * 2000)),
        "team_leaderboard_this_month": summary(await get_load(port, teams)),
        "rep_kpis_this_month": summary(await get_load(port, month)),
        "rep_kpis_today": summary(await get_load(port, today)),
    }


async def _ready(port: int) -> None:
    for _ in range(300):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            await asyncio.sleep(0.1)
    raise RuntimeError("api did not start")
