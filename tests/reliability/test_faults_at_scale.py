"""Faults at scale (issue 18, item 1): every bulk write path at 10,000 subjects on a real
PostgreSQL, and a flush that fails the same way on a healthy database.

4,096 notifications in one flush once stopped the KPI service for good: the outbox wrote them
in one ``INSERT`` of 8 parameters a row, asyncpg refused more than 32,767 parameters, and its
``InterfaceError`` was taken for an outage, so the same batch was retried for ever, silently.
Here each path runs at 10,000 subjects, under the suite's guard that fails any statement over
the drivers' limit (``shared.db.chunks``, installed on every engine by ``tests/conftest.py``);
and an error that repeats on a healthy database is isolated like bad data, or reported loudly.

Every test seeds its floor with set-based SQL: ``REPS`` reps in 50 teams, each with the
identity ``crm:u-<i>``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import orjson
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.api.app import create_app
from services.api.contests.settlement import Settlement
from services.kpi.app import build_kpi_service
from services.kpi.domain.engine import Engine
from services.kpi.flush import Booking, KpiStore
from services.kpi.service import KpiService
from services.worker.pace_checks import check_pace
from shared import events as ev
from shared import outbox
from shared.alert_reads import window_values
from shared.bus import OutgoingRecord, Record
from shared.bus.memory import MemoryBus
from shared.db.chunks import PARAMETER_LIMIT
from shared.db.retry import is_unavailable
from shared.settings import Settings
from shared.windows import resolve_window
from tests.api_support import ADMIN, api_client
from tests.conftest import canonical
from tests.kpi_rig import day_totals

pytestmark = pytest.mark.postgres
REPS = 10_000
NOW = datetime.now(UTC)


async def run(db: AsyncEngine, *statements: str, **params: Any) -> None:
    async with db.begin() as conn:
        for statement in statements:
            await conn.execute(text(statement), params)


async def scalar(db: AsyncEngine, query: str) -> Any:
    async with db.connect() as conn:
        return (await conn.execute(text(query))).scalar_one()


async def seed_floor(db: AsyncEngine, reps: int = REPS, identities: bool = True) -> None:
    """``reps`` reps ``r<i>`` in 50 teams, each holding ``crm:u-<i>`` (unless not
    ``identities``), in five statements."""
    await run(
        db,
        "INSERT INTO teams (id, name) SELECT 't' || g, 'Team ' || g FROM generate_series(0, 49) g",
        "INSERT INTO reps (id, name) SELECT 'r' || g, 'Rep ' || g FROM generate_series(0, :n) g",
        "INSERT INTO rep_teams (rep_id, effective_from, team_id) "
        "SELECT 'r' || g, 0, 't' || (g % 50) FROM generate_series(0, :n) g",
        "INSERT INTO identities (provider, external_id, rep_id) "
        "SELECT 'crm', 'u-' || g, 'r' || g FROM generate_series(0, :n) g WHERE :identities",
        "UPDATE roster_version SET version = version + 1",
        n=reps - 1,
        identities=identities,
    )


async def watch(db: AsyncEngine, alert_id: str, trigger: dict[str, Any], *channels: str) -> None:
    """An alert as the alerts API stores it (a row, and the alerts version bumped)."""
    await run(
        db,
        "INSERT INTO alerts (id, name, channels, enabled, message, trigger) "
        "VALUES (:id, :id, :channels, true, NULL, :trigger)",
        "UPDATE alerts_version SET version = version + 1",
        id=alert_id,
        channels=json.dumps(list(channels)),
        trigger=json.dumps(trigger),
    )


def one_call_each(reps: int = REPS, at: datetime = NOW) -> list[dict[str, Any]]:
    return [canonical("call.placed", actor=f"u-{i}", time=at, talk_seconds=7) for i in range(reps)]


class Flusher:
    """The KPI service's store and engine, kept across flushes as the service keeps them (so
    a roster change between two flushes is taken up as it is live)."""

    def __init__(self, db: AsyncEngine) -> None:
        self.engine = Engine(Settings().tz, "EUR")
        self.store = KpiStore(db, self.engine, "salespulse-kpi", "t")
        self.offset = 0

    async def __call__(self, bodies: list[dict[str, Any]]) -> None:
        """Flush ``bodies`` as one batch."""
        records = [
            Record("t", 0, self.offset + i, b"k", orjson.dumps(b), 0) for i, b in enumerate(bodies)
        ]
        self.offset += len(records)
        events = [ev.parse_event(r.value) for r in records]
        booked = [(e, self.engine.contributions(e)) for e in events]
        await self.store.flush(Booking(records, booked))


# --- every bulk write path at 10,000 subjects -------------------------------------------


async def test_a_flush_of_one_call_for_each_of_10000_reps(pg: AsyncEngine) -> None:
    await seed_floor(pg)
    await Flusher(pg)(one_call_each())

    totals = await day_totals(pg)
    reps = {s for (scope, s, c) in totals if scope == "rep" and c == "calls_placed"}
    assert reps == {f"r{i}" for i in range(REPS)}
    team_calls = [
        v for (scope, _, c), v in totals.items() if scope == "team" and c == "calls_placed"
    ]
    assert (len(team_calls), sum(team_calls)) == (50, REPS)
    assert await scalar(pg, "SELECT count(*) FROM applied_event_keys") == REPS


async def test_10000_reps_crossing_a_threshold_in_one_flush_are_each_notified_once(
    pg: AsyncEngine,
) -> None:
    """The original repro (4,200 reps): 10,000 notifications, 8 parameters each, and a
    delivery per channel, written with the flush that caused them."""
    await seed_floor(pg)
    await watch(pg, "first-call", {"kind": "threshold", "metric": "calls_total",
                                   "window": "today", "value": 1}, "ops", "slack")  # fmt: skip
    flush = Flusher(pg)
    calls = one_call_each()
    await flush(calls)

    assert await scalar(pg, "SELECT count(DISTINCT subject_id) FROM notifications") == REPS
    assert await scalar(pg, "SELECT count(*) FROM notification_deliveries") == 2 * REPS
    await flush(calls[:5000] + one_call_each(5000))  # duplicates, and second calls: no more
    assert await scalar(pg, "SELECT count(*) FROM notifications") == REPS


async def test_pace_checks_of_10000_subjects_behind_pace(
    pg: AsyncEngine, make_settings: Callable[..., Settings]
) -> None:
    await seed_floor(pg)
    await run(pg, "INSERT INTO targets (scope, subject_id, metric, period, value) "
                  "SELECT 'rep', 'r' || g, 'calls_total', 'day', 100 "
                  "FROM generate_series(0, :n) g", n=REPS - 1)  # fmt: skip
    await watch(pg, "pace", {"kind": "behind_pace", "metric": "calls_total", "period": "day",
                             "below": 0.5}, "ops")  # fmt: skip
    settings = make_settings()
    evening = NOW.astimezone(settings.tz).replace(hour=18, minute=0)

    assert await check_pace(pg, settings, evening) == REPS  # nobody called: all behind
    assert await scalar(pg, "SELECT count(*) FROM notification_deliveries") == REPS
    assert await check_pace(pg, settings, evening) == 0  # once a day


async def test_a_contest_of_10000_tied_reps_settles_with_10000_winners_each_notified(
    pg: AsyncEngine, postgres_url: str, make_settings: Callable[..., Settings]
) -> None:
    await seed_floor(pg)
    start = NOW.replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)
    end = start + timedelta(hours=2)
    await Flusher(pg)(one_call_each(at=start + timedelta(minutes=30)))  # 1 point each: a tie
    app = create_app(make_settings(database_url=postgres_url), pg)
    contest = {"name": "Blitz", "starts_at": start.isoformat(), "ends_at": end.isoformat(),
               "participants": "reps", "score": {"metric": "calls_total"}, "goal": 1}  # fmt: skip
    async with api_client(app) as client:
        saved = await client.put("/v1/contests/blitz", json=contest, headers=ADMIN)
        assert saved.status_code == 200, saved.text
    await watch(pg, "won", {"kind": "contest_won", "contest_id": "blitz"}, "ops")

    assert await Settlement(pg, app.state.settings).settle_due(NOW) == 1
    final = json.loads(await scalar(pg, "SELECT final FROM contests WHERE id = 'blitz'"))
    assert len(final["winners"]) == REPS
    assert {row["score"] for row in final["rows"]} == {1}
    assert all(row["goal_reached_at"] is not None for row in final["rows"])
    assert await scalar(pg, "SELECT count(*) FROM notifications WHERE kind = 'contest_won'") == (
        REPS
    )


async def test_a_roster_import_of_10000_reps_then_again_moving_them_all(
    pg: AsyncEngine, postgres_url: str, make_settings: Callable[..., Settings]
) -> None:
    teams = [{"id": f"t{i}", "name": f"Team {i}"} for i in range(50)]
    reps: list[dict[str, Any]] = [
        {"id": f"r{i}", "name": f"Rep {i}", "team_id": f"t{i % 50}",
         "effective_from": "2020-01-01T00:00:00Z",
         "identities": [{"provider": "crm", "external_id": f"u-{i}"},
                        {"provider": "twilio", "external_id": f"client:r{i}"}]}
        for i in range(REPS)
    ]  # fmt: skip
    app = create_app(make_settings(database_url=postgres_url), pg)
    async with api_client(app) as client:
        first = await _import(client, {"teams": teams, "reps": reps})
        for i, rep in enumerate(reps):  # everyone moves a team along, from this year
            rep["team_id"] = f"t{(i + 1) % 50}"
            rep["effective_from"] = f"{NOW.year}-01-01T00:00:00Z"
        again = await _import(client, {"reps": reps})
    assert first["reps"] == {"created": REPS, "updated": 0, "unchanged": 0, "moved": 0}
    assert (first["identities"], first["team_changes"]) == (2 * REPS, REPS)
    assert again["reps"] == {"created": 0, "updated": REPS, "unchanged": 0, "moved": REPS}
    assert again["team_changes"] == REPS
    assert await scalar(pg, "SELECT count(*) FROM rep_teams") == 2 * REPS


async def _import(client: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    answer = await client.post("/v1/roster/import", json=body, headers=ADMIN)
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


async def test_10000_identities_known_at_once_have_their_unassigned_activity_recredited(
    pg: AsyncEngine,
) -> None:
    await seed_floor(pg, identities=False)  # the reps exist; nobody holds u-<i> yet
    flush = Flusher(pg)
    await flush(one_call_each())  # booked to ("unassigned", "crm:u-<i>"), calls' states too
    assert await scalar(pg, "SELECT count(*) FROM kpi_states WHERE state LIKE "
                            "'%[\"unassigned\",%'") == REPS  # fmt: skip
    await run(pg, "INSERT INTO identities (provider, external_id, rep_id) "
                  "SELECT 'crm', 'u-' || g, 'r' || g FROM generate_series(0, :n) g",
              "UPDATE roster_version SET version = version + 1", n=REPS - 1)  # fmt: skip

    statements: list[str] = []

    def seen(_c: Any, _cur: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    event.listen(pg.sync_engine, "before_cursor_execute", seen)
    try:
        await flush([canonical("call.placed", actor="u-0", time=NOW)])  # takes up the roster
    finally:
        event.remove(pg.sync_engine, "before_cursor_execute", seen)
    scans = [s for s in statements if "FROM kpi_states" in s and "LIKE" in s]
    assert len(scans) == 1  # for the 10,000 identities (one each took 80 s here)

    totals = await day_totals(pg)
    assert not [key for key in totals if key[0] == "unassigned"]
    rep_calls = {
        s: v for (scope, s, c), v in totals.items() if scope == "rep" and c == "calls_placed"
    }
    assert rep_calls == {f"r{i}": 2 if i == 0 else 1 for i in range(REPS)}
    assert await scalar(pg, "SELECT count(*) FROM kpi_states WHERE state LIKE "
                            "'%[\"unassigned\",%'") == 0  # fmt: skip
    assert await scalar(pg, "SELECT count(*) FROM kpi_states WHERE state LIKE "
                            "'%[\"rep\",\"r9999\"]%'") == 1  # fmt: skip


async def test_reads_naming_more_subjects_than_the_limit_are_chunked(pg: AsyncEngine) -> None:
    """An IN list of 40,000 subjects would be one statement over the limit: read in chunks,
    it finds the 10,000 that have figures."""
    await seed_floor(pg)
    await Flusher(pg)(one_call_each())
    asked = [f"r{i}" for i in range(4 * REPS)]
    window = resolve_window("today", now=NOW, tz=Settings().tz)
    values = await _values(pg, asked, window)
    assert len(asked) > PARAMETER_LIMIT
    assert values == {f"r{i}": 1 for i in range(REPS)}


async def _values(db: AsyncEngine, subjects: list[str], window: Any) -> dict[str, Any]:
    async with db.connect() as conn:
        return await window_values(conn, "rep", subjects, "calls_total", window, Settings().tz)


async def test_asyncpg_refuses_a_statement_over_the_limit_with_an_error_that_is_no_outage(
    postgres_url: str,
) -> None:
    """The driver's own refusal, on a healthy database: a bug to fix, not an outage to wait
    out (it was once classified as one, and the KPI service waited for ever)."""
    conn = await asyncpg.connect(postgres_url)
    try:
        listed = ", ".join(f"${i}::int" for i in range(1, PARAMETER_LIMIT + 3))
        with pytest.raises(asyncpg.exceptions.InterfaceError, match="cannot exceed 32767") as e:
            await conn.fetch(f"SELECT 1 WHERE 0 IN ({listed})", *range(PARAMETER_LIMIT + 2))
        assert not is_unavailable(e.value)
        assert await conn.fetchval("SELECT 1") == 1  # the connection is fine
    finally:
        await conn.close()


# --- a flush failing the same way on a healthy database ---------------------------------

FLOOR = 8  # reps of the consumer tests: each makes one call


@pytest.fixture
async def kpi(
    pg: AsyncEngine, postgres_url: str, make_settings: Callable[..., Settings]
) -> tuple[KpiService, MemoryBus, Settings]:
    """A KPI service on the in-memory bus and the real PostgreSQL, a call of each of
    ``FLOOR`` reps waiting on the topic, and an alert on everyone's first call."""
    await seed_floor(pg, FLOOR)
    await watch(pg, "first-call", {"kind": "threshold", "metric": "calls_total",
                                   "window": "today", "value": 1})  # fmt: skip
    settings = make_settings(database_url=postgres_url)
    bus = MemoryBus()
    bodies = one_call_each(FLOOR)
    records = [OutgoingRecord(f"crm:u-{i}".encode(), orjson.dumps(b)) for i, b in enumerate(bodies)]
    await bus.publish(settings.activity_topic, records)
    return build_kpi_service(settings, bus, pg), bus, settings


def sample(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


async def until(condition: Callable[[], Awaitable[bool]], seconds: float = 30) -> None:
    for _ in range(int(seconds * 20)):
        if await condition():
            return
        await asyncio.sleep(0.05)
    pytest.fail("the condition never held")


async def test_a_driver_refusal_on_every_large_flush_stalls_loudly_not_silently(
    kpi: tuple[KpiService, MemoryBus, Settings],
    pg: AsyncEngine,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The outbox as it was: any flush writing more than one notification is refused by the
    driver, each event alone is fine. No event is at fault, so none is dead-lettered; the
    service is not ready, logs an ERROR and sets salespulse_kpi_stalled until the fix."""
    service, bus, settings = kpi
    insert_new = outbox._insert_new

    async def refused_when_many(conn: Any, rows: list[dict[str, Any]]) -> list[str]:
        if len(rows) > 1:
            raise asyncpg.exceptions.InterfaceError(
                "the number of query arguments cannot exceed 32767"
            )
        return await insert_new(conn, rows)

    monkeypatch.setattr(outbox, "_insert_new", refused_when_many)
    failures = sample("salespulse_kpi_systemic_failures_total")
    stop = asyncio.Event()
    caplog.set_level(logging.ERROR, logger="services.kpi.consumer")
    task = asyncio.create_task(service.run(stop))
    try:
        await until(lambda: _stalled(service))
        assert not service.consumer.healthy  # /readyz says not ready
        assert sample("salespulse_kpi_systemic_failures_total") > failures
        assert any("KPI service stalled" in r.getMessage() for r in caplog.records)
        assert await scalar(pg, "SELECT count(*) FROM consumer_offsets") == 0  # nothing skipped
        assert bus.records(settings.deadletter_topic) == []  # nobody's fault

        monkeypatch.setattr(outbox, "_insert_new", insert_new)  # the fix is deployed
        await until(lambda: _notified(pg, FLOOR))
        await until(lambda: _not_stalled(service))
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)
    assert bus.records(settings.deadletter_topic) == []


async def _stalled(service: KpiService) -> bool:
    return sample("salespulse_kpi_stalled") == 1 and not service.consumer.healthy


async def _not_stalled(service: KpiService) -> bool:
    return sample("salespulse_kpi_stalled") == 0 and service.consumer.healthy


async def _notified(db: AsyncEngine, count: int) -> bool:
    return bool(await scalar(db, "SELECT count(*) FROM notifications") == count)


async def test_an_outage_error_repeating_on_a_healthy_database_is_isolated_as_a_bug(
    kpi: tuple[KpiService, MemoryBus, Settings], pg: AsyncEngine
) -> None:
    """One rep's rows make PostgreSQL raise a "connection failure" (SQLSTATE 08006) while it
    answers everything else: classified an outage, it was retried for ever. Repeating
    identically on a healthy database, it is a bug: the event at fault is dead-lettered after
    a few tries, and everyone else's call is booked."""
    await run(
        pg,
        """CREATE FUNCTION refuse_r3() RETURNS trigger LANGUAGE plpgsql AS $$
           BEGIN RAISE EXCEPTION 'refused for r3' USING ERRCODE = '08006'; END $$""",
        """CREATE TRIGGER refuse_r3 BEFORE INSERT ON kpi_rollups FOR EACH ROW
           WHEN (NEW.subject_id = 'r3') EXECUTE FUNCTION refuse_r3()""",
    )
    service, bus, settings = kpi
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    try:
        await until(lambda: _notified(pg, FLOOR - 1))
        await until(lambda: _all_stored(service, FLOOR))
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)
    [letter] = [orjson.loads(r.value) for r in bus.records(settings.deadletter_topic)]
    assert letter["reason"].startswith("engine_error")
    assert "refused for r3" in letter["reason"]
    calls = {s for (scope, s, c) in await day_totals(pg) if scope == "rep" and c == "calls_placed"}
    assert calls == {f"r{i}" for i in range(FLOOR)} - {"r3"}


async def _all_stored(service: KpiService, records: int) -> bool:
    return sum(service.store.stored_offsets().values()) == records
