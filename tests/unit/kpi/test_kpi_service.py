"""The KPI service on the embedded stack: in-memory bus, a real SQLite file."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import httpx
import orjson
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services.api.kpis.queries import KpiQueries
from services.kpi import app as kpi_app
from services.kpi.app import build_kpi_service
from services.kpi.service import Owned
from shared.bus import OutgoingRecord
from shared.bus.memory import MemoryBus
from shared.db.engine import create_engine
from shared.db.migrate import migrate
from shared.settings import Settings
from shared.windows import resolve_window
from tests.conftest import canonical


class LateBroker(MemoryBus):
    """A broker that is not reachable for the first two attempts."""

    def __init__(self) -> None:
        super().__init__()
        self.attempts = 0

    async def ensure_topics(self, topics: Sequence[str]) -> None:
        self.attempts += 1
        if self.attempts <= 2:
            raise ConnectionError("broker not up yet")
        await super().ensure_topics(topics)


async def test_kpi_waits_for_the_broker_then_books_and_dead_letters(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = make_settings(database_url=f"sqlite:///{tmp_path / 'k.db'}")
    bus, db = LateBroker(), create_engine(settings.database_url)
    await migrate(db)
    service = build_kpi_service(settings, bus, db)
    good = canonical("call.placed", actor="u-1")
    await bus.publish(
        settings.activity_topic,
        [
            OutgoingRecord(b"crm:u-1", orjson.dumps(good)),
            OutgoingRecord(b"crm:u-1", b"{broken"),
            OutgoingRecord(b"crm:u-1", orjson.dumps(good)),  # the same event again
        ],
    )
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    await asyncio.wait_for(service.consumer.flushed.wait(), 10)
    stop.set()
    await asyncio.wait_for(task, 10)
    window = resolve_window("today", now=datetime.now(UTC), tz=settings.tz)
    booked = await KpiQueries(db, settings.tz).sums("unassigned", window, ["calls_placed"])
    await db.dispose()
    assert bus.attempts == 3
    assert booked == {"crm:u-1": {"calls_placed": 1}}  # the repeat was skipped
    [letter] = bus.records(settings.deadletter_topic)
    body = orjson.loads(letter.value)
    assert body["reason"].startswith("invalid_event")
    assert body["origin"].startswith(settings.activity_topic)
    assert body["origin"].endswith("/1")  # the broken record's offset
    assert base64.b64decode(body["body_base64"]) == b"{broken"


async def test_business_counters_per_team_and_per_rep_only_when_enabled(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    from prometheus_client import REGISTRY

    from services.api.roster.service import RosterStore

    settings = make_settings(database_url=f"sqlite:///{tmp_path / 'b.db'}")
    bus, db = MemoryBus(), create_engine(settings.database_url)
    await migrate(db)
    roster = RosterStore(db)
    await roster.put_team("north", "North")
    await roster.put_rep("alice", "Alice", "north", [("crm", "u-1")], 0)

    def sample(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    before = (
        sample("salespulse_calls_total", team="north", direction="placed"),
        sample("salespulse_revenue_total", team="north"),
        sample("salespulse_rep_calls_total", rep="alice", direction="placed"),
    )
    await bus.publish(
        settings.activity_topic,
        [
            OutgoingRecord(b"k", orjson.dumps(canonical("call.placed", actor="u-1"))),
            OutgoingRecord(
                b"k",
                orjson.dumps(
                    canonical("deal.updated", actor="u-1", deal_id="D", status="won", amount="12.5")
                ),
            ),
        ],
    )
    service = build_kpi_service(settings, bus, db)
    await service.consumer.run(
        asyncio.Event(), until=await bus.end_offsets(settings.activity_topic)
    )
    await db.dispose()
    after = (
        sample("salespulse_calls_total", team="north", direction="placed"),
        sample("salespulse_revenue_total", team="north"),
        sample("salespulse_rep_calls_total", rep="alice", direction="placed"),
    )
    assert after[0] - before[0] == 1
    assert after[1] - before[1] == 12.5
    assert after[2] == before[2]  # per rep is off by default


class WatchedBus(MemoryBus):
    """An in-memory bus that says whether it was started and stopped."""

    def __init__(self, partitions: int = 6) -> None:
        super().__init__(partitions)
        self.calls: list[str] = []

    async def start(self) -> None:
        self.calls.append("start")

    async def stop(self) -> None:
        self.calls.append("stop")


async def test_the_kpi_service_built_from_settings_alone_opens_and_closes_its_bus_and_database(
    make_settings: Callable[..., Settings], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(
        database_url=f"sqlite:///{tmp_path / 'own.db'}", kafka_bootstrap_servers=None
    )
    schema = create_engine(settings.database_url)
    await migrate(schema)
    await schema.dispose()
    bus = WatchedBus()
    monkeypatch.setattr(kpi_app, "build_bus", lambda settings, client_id, db: bus)
    disposed: list[AsyncEngine] = []
    dispose = AsyncEngine.dispose

    async def watched_dispose(engine: AsyncEngine, close: bool = True) -> None:
        disposed.append(engine)
        await dispose(engine, close)

    monkeypatch.setattr(AsyncEngine, "dispose", watched_dispose)
    async with build_kpi_service(settings) as service:
        assert service.owned == Owned(bus=True, db=True)
        assert bus.calls == ["start"]
        await bus.publish(
            settings.activity_topic,
            [OutgoingRecord(b"crm:u-1", orjson.dumps(canonical("call.placed", actor="u-1")))],
        )
        stop = asyncio.Event()
        task = asyncio.create_task(service.run(stop))
        await asyncio.wait_for(service.consumer.flushed.wait(), 10)
        transport = httpx.ASGITransport(app=service.health)
        async with httpx.AsyncClient(transport=transport, base_url="http://kpi") as client:
            ready = await client.get("/readyz")
        stop.set()
        await asyncio.wait_for(task, 10)
    assert ready.json()["checks"] == {"database": True, "bus": True, "consuming": True}
    assert bus.calls == ["start", "stop"]
    assert disposed == [service.db]


async def test_a_kpi_service_given_its_bus_and_database_leaves_them_to_their_owner(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = make_settings(database_url=f"sqlite:///{tmp_path / 'shared.db'}")
    bus, db = WatchedBus(), create_engine(settings.database_url)
    await migrate(db)
    async with build_kpi_service(settings, bus, db) as service:
        assert service.owned == Owned(bus=False, db=False)
    assert bus.calls == []
    today = resolve_window("today", now=datetime.now(UTC), tz=settings.tz)
    still_open = await KpiQueries(db, settings.tz).sums("rep", today, ["calls_placed"])
    assert still_open == {}  # the database still answers
    await db.dispose()
