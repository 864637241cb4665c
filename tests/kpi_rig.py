"""A KPI rig on real Kafka and PostgreSQL: topics, a roster, KPI processes, totals."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.api.roster.service import RosterStore
from shared.bus import OutgoingRecord
from shared.bus.kafka import KafkaBus
from shared.catalogue import BASE_COUNTERS
from shared.db.engine import create_engine
from shared.db.migrate import migrate
from shared.db.models import ConsumerOffset, kpi_rollups, table
from shared.settings import Settings
from tests.conftest import canonical

SALESPULSE = Path(sys.executable).with_name("salespulse")
ACTORS = [f"u-{i}" for i in range(20)]  # keys spread over the six partitions


@dataclass
class Rig:
    settings: Settings
    bus: KafkaBus
    db: AsyncEngine
    env: dict[str, str]
    ports: dict[int, int] = field(default_factory=dict)  # process id -> health port

    async def publish(self, bodies: list[dict[str, Any]]) -> None:
        records = [
            OutgoingRecord(f"crm:{b['data']['actor']['external_id']}".encode(), orjson.dumps(b))
            for b in bodies
        ]
        await self.bus.publish(self.settings.activity_topic, records)

    async def totals(self) -> dict[tuple[str, str, str], int]:
        return await day_totals(self.db)

    async def stored_offsets(self) -> dict[int, int]:
        offsets = table(ConsumerOffset)
        query = select(offsets.c.partition, offsets.c.next_offset).where(
            offsets.c.consumer_group == self.settings.kpi_group
        )
        async with self.db.connect() as conn:
            return {int(p): int(o) for p, o in (await conn.execute(query)).all()}

    async def wait_caught_up(self, seconds: float = 60) -> None:
        targets = await self.bus.end_offsets(self.settings.activity_topic)
        for _ in range(int(seconds * 10)):
            stored = await self.stored_offsets()
            if all(stored.get(p, 0) >= o for p, o in targets.items() if o):
                return
            await asyncio.sleep(0.1)
        pytest.fail(f"KPI never caught up: {await self.stored_offsets()} < {targets}")

    def kpi_process(self, log: Path) -> subprocess.Popen[bytes]:
        port = free_port()
        env = {**self.env, "SALESPULSE_KPI_METRICS_PORT": str(port)}
        process = subprocess.Popen(
            [str(SALESPULSE), "kpi"], env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT
        )
        self.ports[process.pid] = port
        return process

    async def until_serving(self, process: subprocess.Popen[bytes]) -> None:
        """Wait until a KPI process answers on its health port (its signal handlers are set)."""
        url = f"http://127.0.0.1:{self.ports[process.pid]}/healthz"
        async with httpx.AsyncClient() as client:
            for _ in range(600):
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get(url)).status_code == 200:
                        return
                assert process.poll() is None, "the KPI process exited at start"
                await asyncio.sleep(0.1)
        pytest.fail("the KPI process never served its health port")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def make_rig(
    kafka_bootstrap: str,
    postgres_url: str,
    topic_prefix: str,
    make_settings: Callable[..., Settings],
) -> AsyncIterator[Rig]:
    """Topics, a database with a roster of ``ACTORS`` in two teams, and the KPI process env."""
    settings = make_settings(
        kafka_bootstrap_servers=kafka_bootstrap,
        database_url=postgres_url,
        topic_prefix=topic_prefix,
        kafka_partitions=6,
        kpi_batch_size=200,
    )
    bus = KafkaBus(kafka_bootstrap, partitions=6)
    await bus.start()
    await bus.ensure_topics([settings.activity_topic, settings.deadletter_topic])
    db = create_engine(postgres_url, pool_pre_ping=True)  # survives a database restart
    await migrate(db)
    roster = RosterStore(db)
    await roster.put_team("north", "North")
    await roster.put_team("south", "South")
    for i, actor in enumerate(ACTORS):
        await roster.put_rep(
            f"rep-{i}", f"Rep {i}", "north" if i % 2 else "south", [("crm", actor)], 0
        )
    env = {
        **os.environ,
        "SALESPULSE_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "SALESPULSE_DATABASE_URL": postgres_url,
        "SALESPULSE_TOPIC_PREFIX": topic_prefix,
        "SALESPULSE_KPI_BATCH_SIZE": "200",
        "SALESPULSE_LOG_LEVEL": "WARNING",
    }
    yield Rig(settings, bus, db, env)
    await bus.stop()
    await db.dispose()


def calls(count: int, rng: random.Random, actors: list[str] = ACTORS) -> list[dict[str, Any]]:
    return [
        canonical("call.placed", actor=rng.choice(actors), talk_seconds=rng.randint(0, 99))
        for _ in range(count)
    ]


def expected_totals(bodies: list[dict[str, Any]]) -> dict[str, int]:
    unique = {b["id"]: b for b in bodies}.values()
    return {
        "calls_placed": len(unique),
        "talk_seconds": sum(b["data"]["talk_seconds"] for b in unique),
    }


def rep_sums(totals: dict[tuple[str, str, str], int]) -> dict[str, int]:
    sums: dict[str, int] = {}
    for (scope, _, metric), value in totals.items():
        if scope == "rep" and metric in ("calls_placed", "talk_seconds"):
            sums[metric] = sums.get(metric, 0) + value
    return sums


async def day_totals(db: AsyncEngine, grain: str = "day") -> dict[tuple[str, str, str], int]:
    """(scope, subject, counter) -> the sum of its buckets of ``grain``, where not zero."""
    counters = [kpi_rollups.c[c] for c in BASE_COUNTERS]
    query = (
        select(kpi_rollups.c.scope, kpi_rollups.c.subject_id, *(func.sum(c) for c in counters))
        .where(kpi_rollups.c.grain == grain)
        .group_by(kpi_rollups.c.scope, kpi_rollups.c.subject_id)
    )
    async with db.connect() as conn:
        rows = (await conn.execute(query)).all()
    return {
        (scope, subject, counter): int(value)
        for scope, subject, *values in rows
        for counter, value in zip(BASE_COUNTERS, values, strict=True)
        if value
    }
