"""API reads at scale: 10,000 reps, a month of activity in the buckets, p50/p99 per read.

The buckets are written straight into PostgreSQL (what a month of ~10 million events leaves
there: day buckets for 30 days, this month's bucket, hour buckets for 12 hours, minute buckets
for the last hour),
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
from zoneinfo import ZoneInfo

from bench import seed
from bench.load import exchange
from shared.calendar import local_midnight, local_month_start
from shared.db.engine import create_engine
from shared.db.migrate import migrate
from shared.settings import Settings
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


async def fill(database_url: str, now: int, tz: ZoneInfo) -> dict[str, int]:
    """REPS reps in TEAMS teams, and what a month of activity leaves in ``kpi_rollups``: the
    last 30 local days, the last 12 hours, the last 60 minutes, this month (the sum of its
    days), for each rep and team."""
    engine = create_engine(database_url)
    await migrate(engine)
    await engine.dispose()
    conn = await seed.connect(database_url)
    try:
        await seed.roster(conn, REPS, TEAMS)
        today = local_midnight(now, tz)
        days = [local_midnight(today - 86400 * d + 7200, tz) for d in range(30)]
        grains = {
            "day": days,
            "hour": [now - now % 3600 - 3600 * h for h in range(12)],
            "minute": [now - now % 60 - 60 * m for m in range(60)],
        }
        for grain, starts in grains.items():
            await conn.execute(REP_ROWS, grain, starts)
        await conn.execute(MONTH_ROWS, local_month_start(now, tz))
        await conn.execute(TEAM_ROWS)
        await conn.execute("ANALYZE kpi_rollups")
        rows = await conn.fetchval("SELECT count(*) FROM kpi_rollups")
        events = await conn.fetchval(
            "SELECT sum(calls_placed + calls_received + calls_missed + deals_won) "
            "FROM kpi_rollups WHERE scope = 'rep' AND grain = 'day'"
        )
        return {"bucket_rows": int(rows), "events_in_buckets": int(events)}
    finally:
        await conn.close()


_COLUMNS = ", ".join(METRICS)
REP_ROWS = f"""
    INSERT INTO kpi_rollups (scope, grain, bucket_start, subject_id, {_COLUMNS})
    SELECT 'rep', $1, b, 'r' || r, {", ".join("(random() * 20)::int" for _ in METRICS)}
      FROM generate_series(0, {REPS} - 1) r, unnest($2::bigint[]) b"""
MONTH_ROWS = f"""
    INSERT INTO kpi_rollups (scope, grain, bucket_start, subject_id, {_COLUMNS})
    SELECT scope, 'month', $1, subject_id, {", ".join(f"sum({m})" for m in METRICS)}
      FROM kpi_rollups WHERE grain = 'day' AND bucket_start >= $1
     GROUP BY scope, subject_id"""
TEAM_ROWS = f"""
    INSERT INTO kpi_rollups (scope, grain, bucket_start, subject_id, {_COLUMNS})
    SELECT 'team', grain, bucket_start, 't' || (substr(subject_id, 2)::int % {TEAMS}),
           {", ".join(f"sum({m})" for m in METRICS)}
      FROM kpi_rollups WHERE scope = 'rep' GROUP BY 1, 2, 3, 4"""


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
    filled = await fill(database_url, int(time.time()), Settings().tz)
    process = _serve_api(database_url, port)
    try:
        await _ready(port)
        reads = await _reads(port)
        return {**filled, "reps": REPS, **reads, **await _after_flushes(database_url, port)}
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


async def _after_flushes(database_url: str, port: int, samples: int = 40) -> dict[str, Any]:
    """The this_month board recomputed after each flush: the data version moves (as a flush
    moves it, with the stored offsets), so no cached board may answer."""
    conn = await seed.connect(database_url)
    board = "/v1/leaderboards/calls_total?window=this_month"
    latencies: list[float] = []
    try:
        for i in range(samples):
            await conn.execute(
                "INSERT INTO consumer_offsets (consumer_group, topic, partition, next_offset, "
                "updated_at) VALUES ('bench', 'bench', 0, $1, $2) ON CONFLICT (consumer_group, "
                "topic, partition) DO UPDATE SET next_offset = EXCLUDED.next_offset, "
                "updated_at = EXCLUDED.updated_at",
                i + 1,
                int(time.time() * 1000),
            )
            latencies += await get_load(port, [board])
    finally:
        await conn.close()
    return {
        "leaderboard_this_month_after_each_flush": summary(sorted(latencies)),
        "minute_buckets_per_rep_for_movement": minutes_to_the_hour(
            time.time() - Settings().leaderboard_movement_minutes * 60
        ),
    }


def minutes_to_the_hour(then: float) -> int:
    """The minute buckets of each rep that the board then reads (from ``then``, rounded down to
    its minute, to the next hour; hours and days after): a board's previous ranks cost grows
    with them, so after-flush figures compare only at the same count."""
    return (3600 - int(then) // 60 * 60 % 3600) // 60


async def _ready(port: int) -> None:
    for _ in range(300):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            await asyncio.sleep(0.1)
    raise RuntimeError("api did not start")
