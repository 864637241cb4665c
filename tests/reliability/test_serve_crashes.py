"""``salespulse serve`` (one process, no Kafka) SIGKILLed at random instants while signed
batches are in flight, on SQLite and on PostgreSQL.

Four senders post batches of 200 canonical events, 10 % of them duplicates of earlier ones, and
retry a batch until it is answered ``202`` (a provider retries what was not acknowledged). The
process is killed and restarted several times meanwhile. At the end every KPI equals what the
events themselves add up to, computed here independently, and the set of events the KPI
service applied is exactly the set of distinct events sent: none missing, none twice."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import subprocess
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.api.roster.service import RosterStore
from services.simulator import signed_headers
from shared.db.engine import create_engine
from shared.db.migrate import migrate
from shared.db.models import AppliedEvent, BusLogEnd, ConsumerOffset, event_key, table
from tests.conftest import ADMIN_KEY, READ_KEY, WEBHOOK_SECRET, canonical, fresh_postgres_database
from tests.kpi_rig import SALESPULSE, day_totals, free_port

pytestmark = pytest.mark.e2e

BATCHES, BATCH, DUPLICATES = 60, 200, 20  # 12,000 posted, 10,800 distinct
SENDERS, KILLS = 4, 4
REPS = [(f"rep{i:02d}", "north" if i < 6 else "south") for i in range(12)]
SOURCE = "test://suite"


@dataclass
class Stream:
    """What the senders post, and what happened to it."""

    rng: random.Random
    batches: list[list[dict[str, Any]]] = field(default_factory=list)
    unanswered: int = 0  # posts whose answer never came (the process died under them)
    refused: int = 0  # posts answered with something else than 202 (503 while starting...)

    def build(self) -> None:
        sent: list[dict[str, Any]] = []
        for _ in range(BATCHES):
            fresh = [self._event(len(sent) + i) for i in range(BATCH - DUPLICATES)]
            again = self.rng.sample(sent, DUPLICATES) if sent else []
            batch = fresh + again
            self.rng.shuffle(batch)
            self.batches.append(batch)
            sent += fresh

    def _event(self, n: int) -> dict[str, Any]:
        actor = f"u-{self.rng.randrange(len(REPS))}"
        at = datetime.now(UTC)
        if n % 10 == 9:
            return canonical(
                "deal.updated",
                actor=actor,
                time=at,
                deal_id=f"D-{n}",
                amount=f"{self.rng.randrange(100, 5000)}.00",
            )
        return canonical(
            "call.placed", actor=actor, time=at, talk_seconds=self.rng.randrange(0, 600)
        )

    def distinct(self) -> list[dict[str, Any]]:
        return list({e["id"]: e for batch in self.batches for e in batch}.values())


class Serve:
    """One ``salespulse serve`` process at a time, on fixed ports and one database."""

    def __init__(self, database_url: str, logs: Path) -> None:
        self.ingest_port, self.api_port = free_port(), free_port()
        self.env = {
            **os.environ,
            "SALESPULSE_DATABASE_URL": database_url,
            "SALESPULSE_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "SALESPULSE_API_KEYS": f"{ADMIN_KEY}:read+admin,{READ_KEY}:read",
            "SALESPULSE_INGEST_PORT": str(self.ingest_port),
            "SALESPULSE_API_PORT": str(self.api_port),
            "SALESPULSE_LOG_LEVEL": "WARNING",
        }
        self.env.pop("SALESPULSE_KAFKA_BOOTSTRAP_SERVERS", None)
        self.logs = logs
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def ingest(self) -> str:
        return f"http://127.0.0.1:{self.ingest_port}"

    def start(self) -> None:
        log = self.logs.open("ab")
        self.process = subprocess.Popen(
            [str(SALESPULSE), "serve"], env=self.env, stdout=log, stderr=subprocess.STDOUT
        )

    async def until_ready(self, client: httpx.AsyncClient) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.process is not None
            assert self.process.poll() is None, self.logs.read_text()[-3000:]
            with contextlib.suppress(httpx.TransportError):
                ingest = await client.get(f"{self.ingest}/readyz")
                api = await client.get(f"http://127.0.0.1:{self.api_port}/readyz")
                if ingest.status_code == api.status_code == 200:
                    return
            await asyncio.sleep(0.05)
        pytest.fail(f"serve not ready; log: {self.logs.read_text()[-3000:]}")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(30)


async def send(
    client: httpx.AsyncClient, url: str, batches: asyncio.Queue[int], stream: Stream
) -> None:
    """Post each batch until it is acknowledged, as a provider retries."""
    while True:
        try:
            n = batches.get_nowait()
        except asyncio.QueueEmpty:
            return
        raw = orjson.dumps(stream.batches[n])
        while True:
            try:
                answer = await client.post(
                    f"{url}/webhooks/events",
                    content=raw,
                    headers=signed_headers(WEBHOOK_SECRET, raw),
                )
            except httpx.TransportError:
                stream.unanswered += 1
                await asyncio.sleep(0.05)
                continue
            if answer.status_code == 202:
                break
            stream.refused += 1
            await asyncio.sleep(0.05)


async def caught_up(db: AsyncEngine, seconds: float = 120) -> None:
    ends, offsets = table(BusLogEnd), table(ConsumerOffset)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        async with db.connect() as conn:
            end = await conn.scalar(
                select(ends.c.next_offset).where(ends.c.topic == "sales.activity.v1")
            )
            stored = await conn.scalar(
                select(offsets.c.next_offset).where(offsets.c.topic == "sales.activity.v1")
            )
        if end is not None and stored == end:
            return
        await asyncio.sleep(0.2)
    pytest.fail(f"the KPI service never caught up with the log ({stored} < {end})")


def expected(events: list[dict[str, Any]]) -> dict[tuple[str, str, str], int]:
    """Each rep's and team's calls, talk time, deals won and revenue, from the events."""
    team_of = dict(REPS)
    totals: Counter[tuple[str, str, str]] = Counter()
    for event in events:
        rep = REPS[int(event["data"]["actor"]["external_id"].split("-")[1])][0]
        if event["type"] == "call.placed":
            adds = {"calls_placed": 1, "talk_seconds": event["data"]["talk_seconds"]}
        else:
            adds = {"deals_won": 1, "revenue_cents": int(event["data"]["amount"][:-3]) * 100}
        for counter, value in adds.items():
            totals["rep", rep, counter] += value
            totals["team", team_of[rep], counter] += value
    return {key: value for key, value in totals.items() if value}


def measured(totals: dict[tuple[str, str, str], int]) -> dict[tuple[str, str, str], int]:
    wanted = {"calls_placed", "talk_seconds", "deals_won", "revenue_cents"}
    return {k: v for k, v in totals.items() if k[2] in wanted and k[0] in ("rep", "team")}


@pytest.fixture(params=["sqlite", "postgres"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'serve.db'}"
        return
    admin_url = request.getfixturevalue("postgres_admin_url")
    async with fresh_postgres_database(admin_url) as url:
        yield url


async def test_sigkills_at_random_instants_lose_no_accepted_event_and_count_none_twice(
    database_url: str, tmp_path: Path
) -> None:
    db = create_engine(database_url)
    await migrate(db)
    roster = RosterStore(db)
    for team in ("north", "south"):
        await roster.put_team(team, team.title())
    for i, (rep, team) in enumerate(REPS):
        await roster.put_rep(rep, rep.title(), team, [("crm", f"u-{i}")], 0)
    stream = Stream(random.Random(21))
    stream.build()
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in range(BATCHES):
        queue.put_nowait(n)
    serve = Serve(database_url, tmp_path / "serve.log")
    serve.start()
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            await serve.until_ready(client)
            senders = [
                asyncio.create_task(send(client, serve.ingest, queue, stream))
                for _ in range(SENDERS)
            ]
            for _ in range(KILLS):
                await asyncio.sleep(stream.rng.uniform(0.3, 2.0))
                serve.kill()
                serve.start()
            await asyncio.gather(*senders)
            await serve.until_ready(client)
        await caught_up(db)
        assert serve.stop() == 0
        distinct = stream.distinct()
        assert len(distinct) == BATCHES * (BATCH - DUPLICATES)
        assert stream.unanswered > 0  # batches were in flight when it died
        assert measured(await day_totals(db)) == expected(distinct)
        applied = table(AppliedEvent)
        async with db.connect() as conn:
            keys = [k for (k,) in (await conn.execute(select(applied.c.key))).all()]
        assert len(keys) == len(set(keys))
        assert set(keys) == {event_key(SOURCE, e["id"]) for e in distinct}
    finally:
        if serve.process is not None and serve.process.poll() is None:
            serve.process.kill()
        await db.dispose()


async def test_five_acknowledged_batches_survive_a_sigkill_right_after_the_last_answer(
    tmp_path: Path,
) -> None:
    """The report that opened the issue: 5 x 1,000 events answered 202, the process killed at
    once, 1,000 counted after the restart. Now all 5,000 are."""
    url = f"sqlite:///{tmp_path / 'serve.db'}"
    serve = Serve(url, tmp_path / "serve.log")
    serve.start()
    db = create_engine(url)
    try:
        async with httpx.AsyncClient(timeout=30) as client:
            await serve.until_ready(client)
            for _ in range(5):
                raw = orjson.dumps([canonical("call.placed") for _ in range(1000)])
                answer = await client.post(
                    f"{serve.ingest}/webhooks/events",
                    content=raw,
                    headers=signed_headers(WEBHOOK_SECRET, raw),
                )
                assert answer.status_code == 202, answer.text
            serve.kill()
            serve.start()
            await serve.until_ready(client)
        await caught_up(db)
        totals = await day_totals(db)
        assert (
            sum(
                v
                for (scope, _, c), v in totals.items()
                if scope == "unassigned" and c == "calls_placed"
            )
            == 5000
        )
    finally:
        if serve.process is not None and serve.process.poll() is None:
            serve.stop()
        await db.dispose()
