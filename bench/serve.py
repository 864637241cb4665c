"""Where one process ends: ``salespulse serve`` on SQLite and on PostgreSQL, side by side.

1. Events per second, sustained, end to end: signed events posted to ingest (one event per
   webhook, 32 at a time; then batches of 100, 8 at a time), timed from the first post until
   the KPI service has stored the position of the last one (so the figure is what the whole
   process books, not what ingest accepts).
2. The database's growth per million events: the database's size before and after, the log's
   share apart (the log is kept ``LOG_RETENTION_HOURS``; the rest stays).
3. Board reads at 40, 400 and 4,000 reps: a month of activity in the buckets (as the API bench
   writes it), ``serve`` running, the ``this_month`` board read after each flush (the data
   version moved, no cache may answer) and again while nothing changes (cached).
"""

from __future__ import annotations

import asyncio
import os
import random
import sys
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import func, insert, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.api_reads import METRICS, get_load, summary
from bench.load import run_load
from bench.procs import base_env, free_port, process, wait_ready
from services.simulator import signed_headers
from shared.calendar import local_midnight, local_month_start
from shared.db.engine import create_engine
from shared.db.migrate import migrate
from shared.db.models import (
    BusLogEnd,
    ConsumerOffset,
    Identity,
    Rep,
    RepTeam,
    RosterVersion,
    Team,
    kpi_rollups,
    table,
)
from shared.settings import Settings
from tests.conftest import WEBHOOK_SECRET, canonical, fresh_postgres_database

SINGLE = int(os.environ.get("BENCH_SERVE_SINGLE", "10000"))  # one event per webhook
BATCHED = int(os.environ.get("BENCH_SERVE_BATCHED", "100000"))  # in batches of 100
BOARD_SIZES = (40, 400, 4000)
TEAMS = 10
THROUGHPUT_REPS = 400
CLI = str(Path(sys.executable).with_name("salespulse"))


async def run(database_url: str | None, work: Path) -> dict[str, Any]:
    """Both databases (PostgreSQL if ``database_url``), each measured the same way."""
    found: dict[str, Any] = {}
    async with _database("sqlite", work, database_url) as url:
        found["sqlite"] = await _throughput(url, work / "sqlite-serve.log")
    for reps in BOARD_SIZES:
        async with _database("sqlite", work, database_url) as url:
            found["sqlite"][f"board_{reps}_reps"] = await _boards(url, reps, work)
    if database_url:
        async with _database("postgres", work, database_url) as url:
            found["postgres"] = await _throughput(url, work / "pg-serve.log")
        for reps in BOARD_SIZES:
            async with _database("postgres", work, database_url) as url:
                found["postgres"][f"board_{reps}_reps"] = await _boards(url, reps, work)
        found["ratios"] = {
            "sqlite / postgres, batched events/s": round(
                found["sqlite"]["batched"]["events_per_second"]
                / found["postgres"]["batched"]["events_per_second"],
                3,
            )
        }
    return found


@asynccontextmanager
async def _database(kind: str, work: Path, admin_url: str | None) -> Any:
    if kind == "sqlite":
        yield f"sqlite:///{work / f'serve-{time.monotonic_ns()}.db'}"  # the run's temp dir
        return
    assert admin_url is not None
    async with fresh_postgres_database(admin_url) as url:
        yield url


# -- throughput and growth ----------------------------------------------------------------


async def _throughput(url: str, log: Path) -> dict[str, Any]:
    db = create_engine(url)
    try:
        await migrate(db)
        await seed_roster(db, THROUGHPUT_REPS)
        before = await size(db)
        async with _serving(url, log) as (ingest, _):
            single = await _single_events(db, ingest)
            batched = await _batches(db, ingest)
        after = await size(db)
    finally:
        await db.dispose()
    events = SINGLE + BATCHED
    return {
        "single": single,
        "batched": batched,
        "growth": {
            "events": events,
            "mb_per_million_events": round((after["total"] - before["total"]) / events, 1),
            "of_which_log_mb_per_million": round((after["log"] - before["log"]) / events, 1),
        },
    }


async def _single_events(db: AsyncEngine, ingest: str) -> dict[str, Any]:
    requests = [
        (body, signed_headers(WEBHOOK_SECRET, body))
        for body in (orjson.dumps(_event(i)) for i in range(SINGLE))
    ]
    start = await _stored(db)
    started = time.perf_counter()
    load = await run_load(f"{ingest}/webhooks/events", requests, concurrency=32)
    await _caught_up(db, start + SINGLE)
    seconds = time.perf_counter() - started
    return {
        "events": SINGLE,
        "errors": load.errors,
        "accepted_per_second": round(load.rate, 1),
        "events_per_second": round(SINGLE / seconds, 1),
        "post_p99_ms": round(load.percentile(0.99), 1),
    }


async def _batches(db: AsyncEngine, ingest: str) -> dict[str, Any]:
    bodies = [
        orjson.dumps([_event(SINGLE + n * 100 + i) for i in range(100)])
        for n in range(BATCHED // 100)
    ]
    requests = [(body, signed_headers(WEBHOOK_SECRET, body)) for body in bodies]
    start = await _stored(db)
    started = time.perf_counter()
    load = await run_load(f"{ingest}/webhooks/events", requests, concurrency=8)
    accepted_s = time.perf_counter() - started
    await _caught_up(db, start + BATCHED)
    seconds = time.perf_counter() - started
    return {
        "events": BATCHED,
        "errors": load.errors,
        "accepted_per_second": round(BATCHED / accepted_s, 1),
        "events_per_second": round(BATCHED / seconds, 1),
        "post_p99_ms": round(load.percentile(0.99), 1),
    }


def _event(n: int) -> dict[str, Any]:
    return canonical(
        "call.placed", event_id=f"bench-{n}", actor=f"u-{n % THROUGHPUT_REPS}", talk_seconds=n % 300
    )


async def _stored(db: AsyncEngine) -> int:
    offsets = table(ConsumerOffset)
    async with db.connect() as conn:
        stored = await conn.scalar(
            select(func.coalesce(func.max(offsets.c.next_offset), 0)).where(
                offsets.c.topic == "sales.activity.v1"
            )
        )
    return int(stored or 0)


async def _caught_up(db: AsyncEngine, target: int, seconds: float = 900) -> None:
    ends = table(BusLogEnd)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if await _stored(db) >= target:
            return
        await asyncio.sleep(0.05)
    async with db.connect() as conn:
        end = await conn.scalar(select(ends.c.next_offset))
    raise RuntimeError(f"the KPI service did not catch up: {await _stored(db)} of {target} ({end})")


async def size(db: AsyncEngine) -> dict[str, int]:
    """The database's bytes in use, and the log's (table and key)."""
    async with db.connect() as conn:
        if db.dialect.name == "postgresql":
            total = await conn.scalar(text("SELECT pg_database_size(current_database())"))
            log = await conn.scalar(text("SELECT pg_total_relation_size('bus_log')"))
        else:
            page = await conn.scalar(text("PRAGMA page_size"))
            pages = await conn.scalar(text("PRAGMA page_count"))
            free = await conn.scalar(text("PRAGMA freelist_count"))
            total = (pages - free) * page
            log = await conn.scalar(
                text(
                    "SELECT sum(pgsize) FROM dbstat WHERE name IN "
                    "('bus_log', 'sqlite_autoindex_bus_log_1')"
                )
            )
    return {"total": int(total or 0), "log": int(log or 0)}


# -- board reads ---------------------------------------------------------------------------


async def _boards(url: str, reps: int, work: Path) -> dict[str, Any]:
    db = create_engine(url)
    try:
        await migrate(db)
        await seed_roster(db, reps)
        await seed_month(db, reps, int(time.time()), Settings().tz)
        async with _serving(url, work / f"boards-{reps}.log") as (_, api_port):
            board = "/v1/leaderboards/calls_total?window=this_month"
            await get_load(api_port, [board] * 20)  # warm
            fresh: list[float] = []
            for i in range(100):
                await _bump_version(db, i + 1)
                fresh += await get_load(api_port, [board])
            cached = await get_load(api_port, [board] * 1000, concurrency=8)
    finally:
        await db.dispose()
    return {"after_each_flush": summary(sorted(fresh)), "cached_8_clients": summary(cached)}


async def _bump_version(db: AsyncEngine, n: int) -> None:
    """What a flush does to the boards' data version: the stored offsets move."""
    offsets = table(ConsumerOffset)
    dialect_insert = postgresql.insert if db.dialect.name == "postgresql" else sqlite.insert
    row = {
        "consumer_group": "bench",
        "topic": "bench",
        "partition": 0,
        "next_offset": n,
        "updated_at": int(time.time() * 1000),
    }
    statement = dialect_insert(offsets).values(**row)
    async with db.begin() as conn:
        await conn.execute(
            statement.on_conflict_do_update(
                index_elements=["consumer_group", "topic", "partition"],
                set_={"next_offset": n, "updated_at": row["updated_at"]},
            )
        )


# -- seeding, through SQLAlchemy so both databases get the same ----------------------------


async def seed_roster(db: AsyncEngine, reps: int) -> None:
    """Reps ``r<i>`` in ``TEAMS`` teams, each with the identity ``crm:u-<i>``."""
    async with db.begin() as conn:
        await conn.execute(
            insert(table(Team)), [{"id": f"t{t}", "name": f"Team {t}"} for t in range(TEAMS)]
        )
        await conn.execute(
            insert(table(Rep)), [{"id": f"r{r}", "name": f"Rep {r}"} for r in range(reps)]
        )
        await conn.execute(
            insert(table(RepTeam)),
            [
                {"rep_id": f"r{r}", "effective_from": 0, "team_id": f"t{r % TEAMS}"}
                for r in range(reps)
            ],
        )
        await conn.execute(
            insert(table(Identity)),
            [{"provider": "crm", "external_id": f"u-{r}", "rep_id": f"r{r}"} for r in range(reps)],
        )
        versions = table(RosterVersion)
        await conn.execute(versions.update().values(version=versions.c.version + 1))


async def seed_month(db: AsyncEngine, reps: int, now: int, tz: Any) -> None:
    """What a month of activity leaves in the buckets, as ``bench.api_reads`` writes it: 30
    local days, this month, 12 hours, 60 minutes, for each rep and team."""
    rng = random.Random(7)
    today = local_midnight(now, tz)
    grains = {
        "day": [local_midnight(today - 86400 * d + 7200, tz) for d in range(30)],
        "hour": [now - now % 3600 - 3600 * h for h in range(12)],
        "minute": [now - now % 60 - 60 * m for m in range(60)],
    }
    month = local_month_start(now, tz)
    rows: list[dict[str, Any]] = []
    teams: dict[tuple[str, int, str], dict[str, int]] = {}
    for grain, starts in grains.items():
        for start in starts:
            for r in range(reps):
                values = {m: rng.randrange(20) for m in METRICS}
                rows.append(
                    {
                        "scope": "rep",
                        "grain": grain,
                        "bucket_start": start,
                        "subject_id": f"r{r}",
                        **values,
                    }
                )
                for key in ((grain, start, f"t{r % TEAMS}"),) + (
                    (("month", month, f"r{r}"), ("month", month, f"t{r % TEAMS}"))
                    if grain == "day" and start >= month
                    else ()
                ):
                    total = teams.setdefault(key, dict.fromkeys(METRICS, 0))
                    for m, v in values.items():
                        total[m] += v
    for (grain, start, subject), values in teams.items():
        scope = "team" if subject.startswith("t") else "rep"
        rows.append(
            {"scope": scope, "grain": grain, "bucket_start": start, "subject_id": subject, **values}
        )
    async with db.begin() as conn:
        for first in range(0, len(rows), 5000):
            await conn.execute(insert(kpi_rollups), rows[first : first + 5000])


@asynccontextmanager
async def _serving(url: str, log: Path) -> Any:
    ingest_port, api_port = free_port(), free_port()
    env = base_env(
        SALESPULSE_DATABASE_URL=url,
        SALESPULSE_INGEST_PORT=str(ingest_port),
        SALESPULSE_API_PORT=str(api_port),
    )
    env.pop("SALESPULSE_KAFKA_BOOTSTRAP_SERVERS", None)
    with process([CLI, "serve"], env, log):
        await wait_ready(f"http://127.0.0.1:{ingest_port}/readyz")
        await wait_ready(f"http://127.0.0.1:{api_port}/readyz")
        yield f"http://127.0.0.1:{ingest_port}", api_port
