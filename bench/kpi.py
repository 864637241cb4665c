"""KPI throughput: events applied per second by one KPI consumer on PostgreSQL, next to a raw
aiokafka consumer reading the same topic (the ceiling: fetching and decoding, nothing else) and
to Quix Streams doing a simpler job on it (``bench/quix_peer.py``: the peer a user would pick)."""

from __future__ import annotations

import asyncio
import json
import os
import random
import resource
import statistics
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer

from bench import seed
from services.kpi.app import build_kpi_service
from shared.bus import OutgoingRecord
from shared.bus.kafka import KafkaBus
from shared.db.engine import create_engine
from shared.db.migrate import migrate
from shared.runtime import tune_gc_for_batches
from shared.settings import Settings
from tests.conftest import canonical

REPS = 10_000
TEAMS = 20
QUIX_STREAMS = "quixstreams==3.28.1"  # the peer, pinned (bench only, never a project dependency)


def activity(count: int, rng: random.Random) -> list[dict[str, Any]]:
    """The issue's shape: calls of a 10,000-rep floor (placed, received and missed, to numbers
    that sometimes repeat so that callbacks pair up)."""
    events = []
    for _ in range(count):
        body = canonical(
            rng.choice(["call.placed", "call.received", "call.missed"]),
            actor=f"u-{rng.randrange(REPS)}",
            counterpart=f"+3361{rng.randrange(10**6):07d}",
        )
        if body["type"] == "call.placed":
            body["data"]["talk_seconds"] = rng.randint(0, 900)
        events.append(body)
    return events


async def publish(bus: KafkaBus, topic: str, events: list[dict[str, Any]]) -> None:
    for start in range(0, len(events), 5000):
        chunk = events[start : start + 5000]
        await bus.publish(
            topic,
            [
                OutgoingRecord(f"crm:{e['data']['actor']['external_id']}".encode(), orjson.dumps(e))
                for e in chunk
            ],
        )


async def raw_rate(servers: str, topic: str, count: int) -> float:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=servers,
        group_id=f"raw-{uuid.uuid4()}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )
    await consumer.start()
    try:
        seen, started = 0, time.perf_counter()  # fetching is part of reading
        while seen < count:
            batches = await consumer.getmany(timeout_ms=1000, max_records=2000)
            for batch in batches.values():
                for message in batch:
                    orjson.loads(message.value)  # decoded, as any consumer must
                seen += len(batch)
        return count / (time.perf_counter() - started)
    finally:
        await consumer.stop()


async def quix_rate(servers: str, topic: str, count: int) -> float:
    """Quix Streams' events per second on the topic, in a process of its own."""
    # An environment of its own, made by uv: Quix pins pydantic below the project's own.
    process = await asyncio.create_subprocess_exec(
        os.environ.get("SALESPULSE_BENCH_UV", "uv"),
        "run",
        "--no-project",
        "--python",
        "python3",
        "--with",
        QUIX_STREAMS,
        "python",
        str(Path(__file__).with_name("quix_peer.py")),
        servers,
        topic,
        str(count),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 600)
    if process.returncode != 0:
        raise RuntimeError(f"quix peer failed: {err.decode()[-2000:]}")
    return float(json.loads(out.decode().splitlines()[-1])["per_second"])


def rss_mib() -> float:
    """Resident memory of this process now (Linux)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() / 2**20


async def kpi_rate(
    settings: Settings, bus: KafkaBus, topic: str, record: bool = True
) -> tuple[float, list[float]]:
    """Events applied per second, and the memory at each tenth of the run (flat = no growth).
    ``record=False`` skips the activity record's write (the flush's step 4a), which is what the
    record costs on the hot path besides the engine's ledger."""
    db = create_engine(settings.database_url)
    await migrate(db)
    conn = await seed.connect(settings.database_url)
    try:
        await seed.roster(conn, REPS, TEAMS)
    finally:
        await conn.close()
    service = build_kpi_service(settings, bus, db)
    if not record:
        service.store._record = _skip_record  # type: ignore[method-assign,assignment]
    tune_gc_for_batches()  # as `salespulse kpi` does
    targets = await bus.end_offsets(topic)
    total = sum(targets.values())
    memory: list[float] = []

    async def sample() -> None:
        while True:
            done = sum(service.store.stored_offsets().values())
            if done >= total * len(memory) / 10:
                memory.append(round(rss_mib(), 1))
            await asyncio.sleep(0.05)

    sampler = asyncio.create_task(sample())
    started = time.perf_counter()
    await service.consumer.run(asyncio.Event(), until=targets)
    elapsed = time.perf_counter() - started
    sampler.cancel()
    memory.append(round(rss_mib(), 1))
    await db.dispose()
    return total / elapsed, memory


async def _skip_record(*_: Any) -> None:
    return None


async def measure(
    servers: str, fresh: Callable[[], AbstractAsyncContextManager[str]], count: int
) -> dict[str, Any]:
    """The KPI consumer's rate with and without the activity record, alternating, each run on
    its own database (``fresh``) and the same topic; the median of each side."""
    prefix = f"bench-kpi-{uuid.uuid4().hex[:8]}."
    settings = Settings(kafka_bootstrap_servers=servers, topic_prefix=prefix)
    bus = KafkaBus(servers, partitions=6)
    await bus.start()
    topic = settings.activity_topic
    await bus.ensure_topics([topic, settings.deadletter_topic])
    await publish(bus, topic, activity(count, random.Random(11)))
    raw = await raw_rate(servers, topic, count)
    quix = await quix_rate(servers, topic, count)
    runs: dict[bool, list[float]] = {True: [], False: []}
    memory: list[float] = []
    for record in (True, False, True, False, True, False):
        async with fresh() as url:
            run = settings.model_copy(update={"database_url": url})
            rate, sampled = await kpi_rate(run, bus, topic, record)
            runs[record].append(rate)
            memory = sampled if record else memory
    applied, unrecorded = (statistics.median(runs[r]) for r in (True, False))
    # each run with the record next to the run without it that follows (the machine's load
    # drifts: pairs side by side are the fair comparison)
    paired = [1 - w / wo for w, wo in zip(runs[True], runs[False], strict=True)]
    await bus.stop()
    return {
        "events": count,
        "raw_consumer_per_second": round(raw),
        "quix_streams_per_second": round(quix),
        "kpi_applied_per_second": round(applied),
        "ratio_to_raw": round(applied / raw, 3),
        "ratio_to_quix_streams": round(applied / quix, 3),
        "kpi_without_activity_record_per_second": round(unrecorded),
        "activity_record_cost": round(statistics.median(paired), 3),
        "activity_record_cost_each_pair": [round(c, 3) for c in paired],
        "kpi_runs_per_second": {
            "with_record": [round(r) for r in runs[True]],
            "without_record": [round(r) for r in runs[False]],
        },
        "rss_mib_each_tenth_of_the_run": memory,
        "batch_size": settings.kpi_batch_size,
    }
