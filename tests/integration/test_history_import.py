"""``salespulse import`` on PostgreSQL and the database's log bus, read by the real KPI consumer:
100,000 historical events (calls and won deals of 40 reps over 60 days, with duplicates and
bad lines) give every KPI an independent computation from the file gives, run twice, and again
from scratch; an interrupted import resumes from its checkpoint; history raises no alert while
a live event still does; a settled contest keeps its standings.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.api.app import create_app
from services.api.contests.settlement import Settlement
from services.api.roster.service import RosterStore
from services.history.command import run_import
from services.history.loader import Progress
from services.kpi.app import build_kpi_service
from shared.bus import OutgoingRecord
from shared.bus.log import LogBus
from shared.db.models import BusLogRecord, kpi_rollups, table
from shared.settings import Settings
from tests.api_support import ADMIN, READ, api_client, floor
from tests.conftest import canonical

REPS = 40
COUNTERS = ("calls_placed", "talk_seconds", "deals_won", "revenue_cents")
Expected = dict[tuple[str, str, str], int]  # (rep, local day, counter) -> value


@dataclass
class Floor:
    settings: Settings
    db: AsyncEngine
    bus: LogBus

    async def drain(self) -> float:
        """Run the KPI consumer until it has read the whole topic; the seconds it took."""
        started = time.perf_counter()
        until = await self.bus.end_offsets(self.settings.activity_topic)
        service = build_kpi_service(self.settings, self.bus, self.db)
        await asyncio.wait_for(service.consumer.run(asyncio.Event(), until=until), 300)
        return time.perf_counter() - started

    async def kpis(self) -> Expected:
        """What the aggregates hold: per rep, local day and counter (day buckets)."""
        columns = [kpi_rollups.c[c] for c in COUNTERS]
        query = select(kpi_rollups.c.subject_id, kpi_rollups.c.bucket_start, *columns).where(
            kpi_rollups.c.scope == "rep", kpi_rollups.c.grain == "day"
        )
        async with self.db.connect() as conn:
            rows = (await conn.execute(query)).all()
        tz = self.settings.tz
        found: Expected = {}
        for rep, start, *values in rows:
            day = datetime.fromtimestamp(int(start), tz).date().isoformat()
            for counter, value in zip(COUNTERS, values, strict=True):
                if value:
                    found[(rep, day, counter)] = int(value)
        return found

    async def records(self) -> int:
        async with self.db.connect() as conn:
            query = select(func.count()).select_from(table(BusLogRecord))
            return int((await conn.execute(query)).scalar_one())

    async def notifications(self) -> list[tuple[str, str]]:
        async with self.db.connect() as conn:
            rows = await conn.execute(text("SELECT alert_id, subject_id FROM notifications"))
            return sorted((str(a), str(s)) for a, s in rows)


@pytest.fixture
async def floor_db(
    pg: AsyncEngine, postgres_url: str, make_settings: Callable[..., Settings]
) -> AsyncIterator[Floor]:
    settings = make_settings(database_url=postgres_url, minute_retention_hours=24 * 800)
    bus = LogBus(pg)
    await bus.start()
    try:
        yield Floor(settings, pg, bus)
    finally:
        await bus.stop()


async def forty_reps(db: AsyncEngine) -> None:
    roster = RosterStore(db)
    await roster.put_team("north", "North")
    await roster.put_team("south", "South")
    for i in range(REPS):
        team = "north" if i % 2 else "south"
        await roster.put_rep(f"rep-{i}", f"Rep {i}", team, [("crm", f"u-{i}")], 0)


async def alert(db: AsyncEngine, alert_id: str, trigger: dict[str, Any]) -> None:
    """An alert as the alerts API stores it (a row, and the alerts version bumped)."""
    async with db.begin() as conn:
        await conn.execute(
            text("INSERT INTO alerts (id, name, channels, enabled, trigger) "
                 "VALUES (:id, :id, '[\"ops\"]', true, :trigger)"),
            {"id": alert_id, "trigger": json.dumps(trigger)},
        )  # fmt: skip
        await conn.execute(text("UPDATE alerts_version SET version = version + 1"))


def history(count: int, rng: random.Random, now: datetime, first: int = 0) -> list[dict[str, Any]]:
    """Calls and won deals of ``REPS`` reps over the 60 days before ``now`` (some today),
    numbered (ids, call and deal ids) from ``first``."""
    bodies = []
    for n in range(first, first + count):
        ago = timedelta(minutes=rng.randrange(1, 240)) if n % 50 == 0 else None
        at = now - (ago or timedelta(seconds=rng.randrange(60, 60 * 86400)))
        body: dict[str, Any] = {
            "specversion": "1.0",
            "id": f"h-{n}",
            "source": "crm://history",
            "time": at.isoformat(),
        }
        actor = {"provider": "crm", "external_id": f"u-{rng.randrange(REPS)}"}
        if rng.random() < 0.85:
            outcome = rng.choice(["connected", "connected", "no_answer"])
            talk = rng.randrange(20, 900) if outcome == "connected" else 0
            body["type"] = "call.placed"
            body["data"] = {"call_id": f"c-{n}", "actor": actor, "outcome": outcome,
                            "talk_seconds": talk}  # fmt: skip
        else:
            amount = f"{rng.randrange(100, 90_000)}.{rng.randrange(100):02d}"
            body["type"] = "deal.updated"
            body["data"] = {"deal_id": f"d-{n}", "actor": actor, "status": "won",
                            "amount": amount, "currency": "EUR"}  # fmt: skip
        bodies.append(body)
    return bodies


def expected(bodies: list[dict[str, Any]], settings: Settings) -> Expected:
    """The KPIs, computed from the events alone: each id once, per rep and local day."""
    sums: dict[tuple[str, str, str], int] = defaultdict(int)
    for body in {b["id"]: b for b in bodies}.values():
        rep = "rep-" + body["data"]["actor"]["external_id"].removeprefix("u-")
        day = datetime.fromisoformat(body["time"]).astimezone(settings.tz).date().isoformat()
        if body["type"] == "call.placed":
            sums[(rep, day, "calls_placed")] += 1
            sums[(rep, day, "talk_seconds")] += body["data"]["talk_seconds"]
        else:
            sums[(rep, day, "deals_won")] += 1
            sums[(rep, day, "revenue_cents")] += int(Decimal(body["data"]["amount"]) * 100)
    return {key: value for key, value in sums.items() if value}


def write_lines(path: Path, bodies: list[dict[str, Any]], rng: random.Random) -> dict[int, str]:
    """The bodies as JSON lines, with some repeated and some bad lines among them: the line
    number of each bad line, with a word its reason must hold."""
    lines: list[bytes] = []
    bad: dict[int, str] = {}
    for body in bodies:
        lines.append(orjson.dumps(body))
        if rng.random() < 0.01:  # the same event again, later in the file
            lines.append(orjson.dumps(rng.choice(bodies[: len(bodies) // 2 + 1])))
        if rng.random() < 0.0005:
            lines.append(b"{not json")
            bad[len(lines)] = "not JSON"
        if rng.random() < 0.0005:
            wrong = {**body, "id": f"bad-{len(lines)}", "time": "yesterday"}
            lines.append(orjson.dumps(wrong))
            bad[len(lines)] = "time"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return bad


async def test_an_import_of_100000_events_run_twice_counts_each_once_and_rings_no_bell(
    floor_db: Floor, tmp_path: Path
) -> None:
    settings, now = floor_db.settings, datetime.now(UTC)
    await forty_reps(floor_db.db)
    await alert(floor_db.db, "won", {"kind": "deal_won"})
    await alert(floor_db.db, "busy", {"kind": "threshold", "metric": "calls_total",
                                      "window": "today", "value": 1})  # fmt: skip
    rng = random.Random(23)
    bodies = history(100_000, rng, now)
    path = tmp_path / "history.jsonl"
    bad = write_lines(path, bodies, rng)
    want = expected(bodies, settings)

    calls_before = business_calls()
    first = await run_import(settings, path, batch_size=2000)
    assert first.published == 100_000
    assert first.duplicates == path.read_bytes().count(b"\n") - 100_000 - len(bad)
    assert first.bad == len(bad)
    assert [(e.line, any(w in e.reason for w in (bad[e.line],))) for e in first.errors] == [
        (line, True) for line in sorted(bad)[:20]
    ]
    drained = await floor_db.drain()
    assert await floor_db.kpis() == want
    assert await floor_db.notifications() == []  # history: no win, no threshold rings
    assert business_calls() == calls_before  # no burst of calls on the operator's dashboards
    print(f"\nimport: {first.published:,} events in {first.seconds:.1f} s, "
          f"{first.rate:,.0f} events/s; KPI consumer caught up in {drained:.1f} s, "
          f"{first.published / drained:,.0f} events/s")  # fmt: skip

    # Run again: the checkpoint says it is all published; nothing is read, published or counted.
    second = await run_import(settings, path, batch_size=2000)
    assert (second.read, second.published, second.skipped) == (0, 0, 100_000)
    assert await floor_db.records() == 100_000
    # From scratch (--restart): all published again, and the KPI service counts none twice.
    again = await run_import(settings, path, restart=True, batch_size=5000)
    assert again.published == 100_000
    await floor_db.drain()
    assert await floor_db.kpis() == want
    assert await floor_db.notifications() == []

    # A live event still rings: the alerts were there all along, history alone was silent.
    live = canonical("deal.updated", actor="u-7", deal_id="live-1", amount="10.00")
    call = canonical("call.placed", actor="u-8")
    records = [OutgoingRecord(b"k", orjson.dumps(body)) for body in (live, call)]
    await floor_db.bus.publish(settings.activity_topic, records)  # no history header: live
    await floor_db.drain()
    # the subjects a live event touched are looked at as they stand (history included)
    today = datetime.now(settings.tz).date().isoformat()
    busy = [("busy", "rep-7")] if want.get(("rep-7", today, "calls_placed")) else []
    assert await floor_db.notifications() == [*busy, ("busy", "rep-8"), ("won", "rep-7")]
    assert business_calls() == calls_before + 1  # the live call counts


def business_calls() -> float:
    """The teams' calls as Prometheus counts them in this process (``salespulse_calls_total``)."""
    return sum(
        sample.value
        for metric in REGISTRY.collect()
        if metric.name == "salespulse_calls"
        for sample in metric.samples
        if sample.name == "salespulse_calls_total"
    )


class Interrupted(Exception):
    pass


async def test_an_interrupted_import_resumes_from_its_checkpoint(
    floor_db: Floor, tmp_path: Path
) -> None:
    settings = floor_db.settings
    await forty_reps(floor_db.db)
    rng = random.Random(5)
    bodies = history(5000, rng, datetime.now(UTC))
    path = tmp_path / "history.jsonl"
    path.write_bytes(b"".join(orjson.dumps(b) + b"\n" for b in bodies))
    batches: list[Progress] = []

    def stop_after_three(progress: Progress) -> None:
        batches.append(progress)
        if len(batches) == 3:
            raise Interrupted  # as a Ctrl-C between two batches would

    with pytest.raises(Interrupted):
        await run_import(settings, path, batch_size=400, progress=stop_after_three)
    assert await floor_db.records() == 1200

    resumed = await run_import(settings, path, batch_size=400)
    assert (resumed.resumed_from, resumed.skipped) == (1200, 1200)
    assert (resumed.read, resumed.published) == (3800, 3800)
    assert await floor_db.records() == 5000  # nothing published twice
    await floor_db.drain()
    assert await floor_db.kpis() == expected(bodies, settings)

    # The file changed since (past its first 64 KiB, by which its checkpoint is found): the
    # checkpoint no longer holds, and it starts over.
    edited = history(1, random.Random(7), datetime.now(UTC), first=9000)  # a call, not a deal
    changed = bodies[:4000] + edited + bodies[4001:]
    path.write_bytes(b"".join(orjson.dumps(b) + b"\n" for b in changed))
    over = await run_import(settings, path, batch_size=400)
    assert (over.started_over, over.published, over.skipped) == (True, 5000, 0)
    # More lines appended to a file imported whole: only they are read.
    more = history(30, random.Random(6), datetime.now(UTC), first=10_000)
    with path.open("ab") as file:
        file.write(b"".join(orjson.dumps(b) + b"\n" for b in more))
    appended = await run_import(settings, path)
    assert (appended.resumed_from, appended.read, appended.published) == (5000, 30, 30)
    await floor_db.drain()
    assert await floor_db.kpis() == expected(bodies + edited + more, settings)  # all ever sent


async def test_history_inside_a_settled_contest_leaves_its_standings_alone(
    floor_db: Floor, tmp_path: Path
) -> None:
    settings, db = floor_db.settings, floor_db.db
    async with api_client(create_app(settings, db)) as client:
        await floor(client)  # alice (u-1), bob (u-2), carol (u-3)
        end = (datetime.now(UTC) - timedelta(days=9)).replace(second=0, microsecond=0)
        start = end - timedelta(hours=4)
        contest = {"name": "Spring push", "starts_at": start.isoformat(),
                   "ends_at": end.isoformat(), "score": {"metric": "revenue"}}  # fmt: skip
        put = await client.put("/v1/contests/push", json=contest, headers=ADMIN)
        assert put.status_code == 200
        won = [
            canonical("deal.updated", actor="u-1", time=start + timedelta(minutes=30),
                      deal_id="A", amount="1000.00"),
            canonical("deal.updated", actor="u-2", time=start + timedelta(hours=1),
                      deal_id="B", amount="800.00"),
        ]  # fmt: skip
        records = [OutgoingRecord(b"k", orjson.dumps(b)) for b in won]
        await floor_db.bus.publish(settings.activity_topic, records)
        await floor_db.drain()
        assert await Settlement(db, settings).settle_due(datetime.now(UTC)) == 1
        settled = (await client.get("/v1/contests/push", headers=READ)).json()
        assert settled["final"] is True
        assert [w["rep_id"] for w in settled["winners"]] == ["alice"]

        # Carol's deals of that afternoon, imported now: she would win by far.
        past = [canonical("deal.updated", actor="u-3", time=start + timedelta(minutes=m),
                          deal_id=f"C-{m}", amount="5000.00") for m in (10, 70, 130)]  # fmt: skip
        path = tmp_path / "carol.jsonl"
        path.write_bytes(b"".join(orjson.dumps(b) + b"\n" for b in past))
        assert (await run_import(settings, path)).published == 3
        await floor_db.drain()

        after = (await client.get("/v1/contests/push", headers=READ)).json()
        assert after["rows"] == settled["rows"]
        assert after["winners"] == settled["winners"]
        # The history is booked all the same: the revenue board of the same box shows it.
        board = await client.get(
            "/v1/leaderboards/revenue",
            params={"from": start.isoformat(), "to": end.isoformat()},
            headers=READ,
        )
        values = {r["rep_id"]: r["value"] for r in board.json()["rows"]}
        assert values["carol"] == 15000
        assert Counter(r["rep_id"] for r in settled["rows"])["carol"] == 1
