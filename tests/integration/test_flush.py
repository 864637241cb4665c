"""The exactly-once flush (architecture decision 4) on SQLite and on a real PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest
from sqlalchemy import func, inspect, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.api.kpis.queries import KpiQueries
from services.api.roster.service import RosterStore
from services.kpi.domain.engine import Engine
from services.kpi.flush import Booking, KpiStore
from services.kpi.offsets import OffsetsWentBackwards
from services.kpi.retention import prune
from shared import events as ev
from shared.bus import Record
from shared.db.migrate import migrate
from shared.db.models import AppliedEvent, KpiState, kpi_rollups, table
from shared.settings import Settings
from shared.windows import resolve_window
from tests.conftest import canonical

PARIS = ZoneInfo("Europe/Paris")
TOPIC = "sales.activity.v1"


def records(*bodies: dict[str, Any], partition: int = 0, first_offset: int = 0) -> list[Record]:
    return [
        Record(TOPIC, partition, first_offset + i, b"k", orjson.dumps(body), 0)
        for i, body in enumerate(bodies)
    ]


def booking(kpi: Engine, batch: list[Record]) -> Booking:
    decoded = [ev.parse_event(r.value) for r in batch]
    return Booking(batch, [(e, kpi.contributions(e)) for e in decoded])


async def roster(db: AsyncEngine) -> None:
    store = RosterStore(db)
    await store.put_team("north", "North")
    await store.put_rep("alice", "Alice", "north", [("crm", "u-1")], 0)


async def today_calls(db: AsyncEngine, scope: str = "rep") -> dict[str, dict[str, int]]:
    window = resolve_window("today", now=datetime.now(UTC), tz=PARIS)
    sums = await KpiQueries(db, PARIS).sums(scope, window, ["calls_placed", "talk_seconds"])
    return {
        subject: {m: v for m, v in s.items() if v} for subject, s in sums.items() if any(s.values())
    }


def make_store(db: AsyncEngine) -> tuple[KpiStore, Engine]:
    kpi = Engine(PARIS, "EUR")
    return KpiStore(db, kpi, "salespulse-kpi", TOPIC), kpi


async def test_batch_is_applied_once_with_its_offsets(db: AsyncEngine) -> None:
    await roster(db)
    store, kpi = make_store(db)
    a, b = canonical(event_id="a", talk_seconds=10), canonical(event_id="b", talk_seconds=5)
    result = await store.flush(booking(kpi, records(a, b, a)))
    assert (len(result.applied), result.duplicates) == (2, 1)
    assert result.next_offsets == {0: 3}
    assert await today_calls(db) == {"alice": {"calls_placed": 2, "talk_seconds": 15}}
    assert await today_calls(db, "team") == {"north": {"calls_placed": 2, "talk_seconds": 15}}


async def test_redelivery_after_a_crash_before_acknowledging_counts_nothing(
    db: AsyncEngine,
) -> None:
    await roster(db)
    store, kpi = make_store(db)
    batch = records(canonical(event_id="a"), canonical(event_id="b"))
    await store.flush(booking(kpi, batch))
    restarted, kpi = make_store(db)  # a new process: positions come from the database
    assert await restarted.load_offsets(TOPIC, [0, 1]) == {0: 2}
    again = await restarted.flush(booking(kpi, batch))
    assert (len(again.applied), again.duplicates) == (0, 2)
    assert (await today_calls(db))["alice"]["calls_placed"] == 2


async def test_a_crash_inside_the_transaction_loses_nothing(
    db: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    await roster(db)
    store, kpi = make_store(db)
    batch = records(canonical(event_id="a"), canonical(event_id="b"))

    async def crash(*_: object) -> None:
        raise RuntimeError("process died between upsert and offsets")

    monkeypatch.setattr(store._offsets, "record", crash)
    with pytest.raises(RuntimeError):
        await store.flush(booking(kpi, batch))
    async with db.connect() as conn:
        claimed = await conn.execute(select(func.count()).select_from(table(AppliedEvent)))
        assert claimed.scalar() == 0  # ids, aggregates and offsets rolled back together
    fresh, kpi = make_store(db)
    assert await fresh.load_offsets(TOPIC, [0]) == {}
    result = await fresh.flush(booking(kpi, batch))
    assert len(result.applied) == 2
    assert (await today_calls(db))["alice"]["calls_placed"] == 2


async def test_offsets_only_move_forward(db: AsyncEngine) -> None:
    await roster(db)
    store, kpi = make_store(db)
    await store.flush(booking(kpi, records(canonical(), first_offset=10)))
    with pytest.raises(OffsetsWentBackwards):
        await store.flush(booking(kpi, records(canonical(), first_offset=3)))
    assert await store.load_offsets(TOPIC, [0]) == {0: 11}


async def test_roster_change_is_seen_by_the_next_flush(db: AsyncEngine) -> None:
    store, kpi = make_store(db)
    await store.flush(booking(kpi, records(canonical(actor="u-1"))))
    assert await today_calls(db) == {}
    assert set(await today_calls(db, "unassigned")) == {"crm:u-1"}
    await roster(db)
    await store.flush(booking(kpi, records(canonical(actor="u-1"), first_offset=1)))
    assert (await today_calls(db))["alice"]["calls_placed"] == 2  # the first one re-credited
    assert await today_calls(db, "unassigned") == {}


async def test_pruned_minutes_and_hours_are_answered_from_coarser_buckets(
    db: AsyncEngine,
) -> None:
    await roster(db)
    store, kpi = make_store(db)
    settings = Settings(minute_retention_hours=1, hour_retention_days=1)
    old = datetime.now(UTC) - timedelta(days=3, minutes=17)
    recent = datetime.now(UTC) - timedelta(hours=5, minutes=3)
    await store.flush(booking(kpi, records(canonical(time=old), canonical(time=recent))))
    pruned = await prune(db, *settings.retention_floors(datetime.now(UTC).timestamp()))
    assert pruned > 0
    queries = KpiQueries(db, PARIS, settings.retention_floors)
    since = old - timedelta(seconds=30)  # the window starts inside a pruned minute and hour
    window = resolve_window(None, now=datetime.now(UTC), tz=PARIS, start=since)
    sums = await queries.sums("rep", window, ["calls_placed"])
    assert sums == {"alice": {"calls_placed": 2}}
    async with db.connect() as conn:
        grains = {g for (g,) in await conn.execute(select(kpi_rollups.c.grain).distinct())}
    assert "minute" not in grains


async def test_unassigned_activity_is_re_credited_when_its_identity_joins_the_roster(
    db: AsyncEngine,
) -> None:
    await roster(db)
    store, kpi = make_store(db)
    won = canonical("deal.updated", event_id="w", actor="z", deal_id="D9", amount="100")
    await store.flush(booking(kpi, records(canonical(actor="z", talk_seconds=7), won)))
    assert set(await today_calls(db, "unassigned")) == {"crm:z"}

    await RosterStore(db).put_rep("alice", "Alice", "north", [("crm", "u-1"), ("crm", "z")], 0)
    reopened = canonical("deal.updated", event_id="r", deal_id="D9", status="open")
    await store.flush(booking(kpi, records(reopened, first_offset=2)))
    assert await today_calls(db, "unassigned") == {}
    assert await today_calls(db) == {"alice": {"calls_placed": 1, "talk_seconds": 7}}
    assert await today_calls(db, "team") == {"north": {"calls_placed": 1, "talk_seconds": 7}}
    window = resolve_window("today", now=datetime.now(UTC), tz=PARIS)
    deals = await KpiQueries(db, PARIS).sums("rep", window, ["deals_won", "revenue_cents"])
    # the reopening subtracted from alice, where the win had moved: nothing negative anywhere
    assert deals.get("alice", {}).get("deals_won", 0) == 0
    unassigned = await KpiQueries(db, PARIS).sums("unassigned", window, ["deals_won"])
    assert all(v >= 0 for sums in unassigned.values() for v in sums.values())


async def test_a_database_from_before_a_new_column_gets_it_when_migrated(db: AsyncEngine) -> None:
    async with db.begin() as conn:  # unversioned, the offsets table as the first release made it
        tables = await conn.run_sync(lambda sync: inspect(sync).get_table_names())
        for name in tables:
            await conn.execute(text(f"DROP TABLE {name}"))
    await migrate(db, "0001")
    async with db.begin() as conn:
        await conn.execute(text("DROP TABLE alembic_version"))
        await conn.execute(text("DROP TABLE consumer_offsets"))
        await conn.execute(
            text(
                "CREATE TABLE consumer_offsets (consumer_group VARCHAR(200), topic VARCHAR(200), "
                "partition INTEGER, next_offset BIGINT NOT NULL, "
                "PRIMARY KEY (consumer_group, topic, partition))"
            )
        )
    await migrate(db)
    await roster(db)
    store, kpi = make_store(db)
    await store.flush(booking(kpi, records(canonical())))
    assert await store.load_offsets(TOPIC, [0]) == {0: 1}


async def test_applied_ids_and_call_states_are_pruned_after_their_retention(
    db: AsyncEngine,
) -> None:
    await roster(db)
    store, kpi = make_store(db)
    await store.flush(
        booking(kpi, records(canonical(), canonical("deal.updated", deal_id="D1", status="won")))
    )
    now = int(datetime.now(UTC).timestamp())
    far = now - 10 * 86400
    assert await prune(db, far, far, fact_floor=now - 86400) == 0  # all still young
    assert await prune(db, far, far, fact_floor=now + 60) == 3  # 2 applied ids, 1 call
    async with db.connect() as conn:
        kinds = {k for (k,) in await conn.execute(select(table(KpiState).c.kind))}
        ids = (await conn.execute(select(func.count()).select_from(table(AppliedEvent)))).scalar()
    assert kinds == {"deal"}  # deals are kept: they can change for months
    assert ids == 0
