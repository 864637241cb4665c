"""KPI throughput: events applied per second by one KPI consumer on PostgreSQL, next to a raw
aiokafka consumer reading the same topic (the floor: fetching and nothing else)."""

from __future__ import annotations

import asyncio
import random
import resource
import time
import uuid
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer

from services.api.roster_store import RosterStore
from services.kpi.app import build_kpi_service
from shared.bus import OutgoingRecord
from shared.bus.kafka import KafkaBus
from shared.db.engine import create_engine, create_schema
from shared.settings import Settings
from tests.conftest import canonical

REPS = 200


def activity(count: int, rng: random.Random) -> list[dict[str, Any]]:
    """A sales floor's mix: mostly calls, some meetings, leads and deal updates."""
    events = []
    for _ in range(count):
        actor = f"u-{rng.randrange(REPS)}"
        kind = rng.random()
        if kind < 0.75:
            body = canonical(
                rng.choice(["call.placed", "call.received", "call.missed"]),
                actor=actor,
                counterpart=f"+3361{rng.randrange(10**7):07d}",
            )
            if body["type"] == "call.placed":
                body["data"]["talk_seconds"] = rng.randint(0, 900)
        elif kind < 0.9:
            body = canonical(rng.choice(["meeting.held", "lead.created"]), actor=actor)
        else:
            body = canonical(
                "deal.updated",
                actor=actor,
                deal_id=f"D-{rng.randrange(5000)}",
                status=rng.choice(["open", "won", "lost"]),
                amount=str(rng.randrange(100, 90_000)),
            )
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
        seen, started = 0, None
        while seen < count:
            batches = await consumer.getmany(timeout_ms=1000, max_records=2000)
            if started is None and batches:
                started = time.perf_counter()
            seen += sum(len(b) for b in batches.values())
        return count / (time.perf_counter() - (started or time.perf_counter()))
    finally:
        await consumer.stop()


async def kpi_rate(settings: Settings, bus: KafkaBus, topic: str) -> tuple[float, int]:
    db = create_engine(settings.database_url)
    await create_schema(db)
    roster = RosterStore(db)
    await roster.put_team("t", "T")
    for i in range(REPS):
        await roster.put_rep(f"r{i}", f"Rep {i}", "t", [("crm", f"u-{i}")], 0)
    service = build_kpi_service(settings, bus, db)
    targets = await bus.end_offsets(topic)
    started = time.perf_counter()
    await service.consumer.run(asyncio.Event(), until=targets)
    elapsed = time.perf_counter() - started
    await db.dispose()
    return sum(targets.values()) / elapsed, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


async def measure(servers: str, database_url: str, count: int) -> dict[str, Any]:
    prefix = f"bench-kpi-{uuid.uuid4().hex[:8]}."
    settings = Settings(
        kafka_bootstrap_servers=servers, database_url=database_url, topic_prefix=prefix
    )
    bus = KafkaBus(servers, partitions=6)
    await bus.start()
    topic = settings.activity_topic
    await bus.ensure_topics([topic, settings.deadletter_topic])
    await publish(bus, topic, activity(count, random.Random(11)))
    raw = await raw_rate(servers, topic, count)
    applied, max_rss_kib = await kpi_rate(settings, bus, topic)
    await bus.stop()
    return {
        "events": count,
        "raw_consumer_per_second": round(raw),
        "kpi_applied_per_second": round(applied),
        "ratio_to_raw": round(applied / raw, 3),
        "max_rss_mib": round(max_rss_kib / 1024, 1),
        "batch_size": settings.kpi_batch_size,
    }
