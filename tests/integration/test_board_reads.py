"""What a board reads, on SQLite and on a real PostgreSQL: the totals of several windows from
one scan, and its contenders once per roster version."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncEngine

from services.api.kpis.queries import KpiQueries
from services.api.live.contenders import Contender, Contenders
from services.api.roster.repository import RosterRepository
from shared.db.models import kpi_rollups
from shared.windows import Window

PARIS = ZoneInfo("Europe/Paris")
NOW = datetime(2026, 3, 18, 15, 40, tzinfo=UTC)


async def test_totals_of_overlapping_windows_from_one_scan_match_their_sums(
    db: AsyncEngine,
) -> None:
    start = int(NOW.timestamp()) - 3 * 3600
    rows = [
        {"grain": "minute", "bucket_start": start + 60 * m, "subject_id": s, **counts}
        for m in range(0, 180, 7)
        for s, counts in (
            ("alice", {"calls_placed": 2, "calls_received": 1}),
            ("bob", {"calls_placed": 3_000_000_000, "calls_received": 0}),  # past 32 bits
        )
    ] + [
        {
            "grain": "hour",
            "bucket_start": start - 3600,
            "subject_id": "carol",
            "calls_placed": 4,
            "calls_received": 0,
        },
    ]
    async with db.begin() as conn:
        await conn.execute(kpi_rollups.insert(), [{"scope": "rep", **r} for r in rows])
    queries = KpiQueries(db, PARIS)
    counters = ["calls_placed", "calls_received"]
    windows = [
        Window("custom", NOW - timedelta(hours=4), NOW),
        Window("custom", NOW - timedelta(minutes=50), NOW),
        Window("custom", NOW - timedelta(hours=5), NOW - timedelta(hours=2, minutes=30)),
        Window("custom", NOW + timedelta(hours=1), NOW + timedelta(hours=2)),  # nothing there
    ]
    found = await queries.totals_per_window("rep", windows, counters)
    for window, totals in zip(windows, found, strict=True):
        sums = await queries.sums("rep", window, counters)
        assert totals == {s: sum(own.values()) for s, own in sums.items()}
        assert await queries.totals("rep", window, counters) == totals
    assert found[1]["bob"] == 7 * 3_000_000_000  # his minutes 14:53 .. 15:35, past 32 bits
    assert "carol" not in found[1]  # no bucket of hers in the window: not there, not 0
    assert found[3] == {}
    assert await queries.totals_per_window("rep", windows, []) == [{}, {}, {}, {}]


async def test_contenders_are_read_once_per_roster_version(db: AsyncEngine) -> None:
    at = int(NOW.timestamp())
    async with db.begin() as conn:
        roster = RosterRepository(conn)
        await roster.save_team("north", "North")
        await roster.save_rep("alice", "Alice")
        await roster.join_team("alice", "north", 0)
    contenders = Contenders()
    async with db.connect() as conn:
        assert await contenders.of(RosterRepository(conn), "rep", 1, at) == [
            Contender("alice", "Alice", "north")
        ]
    async with db.begin() as conn:
        await RosterRepository(conn).save_rep("bob", "Bob")
    async with db.connect() as conn:
        roster = RosterRepository(conn)
        assert [c.id for c in await contenders.of(roster, "rep", 1, at + 60)] == ["alice"]
        assert [c.id for c in await contenders.of(roster, "rep", 2, at + 60)] == ["alice", "bob"]
        assert await contenders.of(roster, "team", 2, at) == [Contender("north", "North", "north")]


async def test_a_reps_team_follows_the_clock_within_one_roster_version(db: AsyncEngine) -> None:
    at = int(NOW.timestamp())
    async with db.begin() as conn:
        roster = RosterRepository(conn)
        for team in ("north", "south"):
            await roster.save_team(team, team.title())
        await roster.save_rep("alice", "Alice")
        await roster.join_team("alice", "north", 0)
        await roster.join_team("alice", "south", at + 3600)  # a move planned for later
    contenders = Contenders()
    async with db.connect() as conn:
        roster = RosterRepository(conn)
        teams = [(await contenders.of(roster, "rep", 7, t))[0].team_id for t in (at, at + 3600)]
        assert teams == ["north", "south"]
        assert (await contenders.of(roster, "rep", 7, at + 3599))[0].team_id == "north"
