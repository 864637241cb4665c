"""Contest standings on a real PostgreSQL equal an independent computation from the events:
across a DST switch, with a rep changing teams inside the box, with deals corrected before and
after the contest settles.

The events are booked by the KPI service's own store and engine (``tests.api_support.book``);
the expected standings are computed here from the events alone.
"""

from __future__ import annotations

import json
import random
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.api.app import create_app
from services.api.contests import scoring
from services.api.contests.repository import ContestRepository
from services.api.contests.settlement import Settlement
from services.kpi.retention import prune
from shared.db.models import kpi_rollups
from shared.settings import Settings
from tests.api_support import ADMIN, READ, api_client, book, fields, floor
from tests.conftest import canonical

IDENTITY = {"u-1": "alice", "u-2": "bob", "u-3": "carol"}
# Carol moves from South to North inside the DST contest: team credit follows the event time.
CAROL_MOVES = datetime(2026, 3, 28, 12, 0, tzinfo=UTC)
# Europe/Paris leaves winter time at 2026-03-29T01:00Z: the box holds the whole local day of
# the 28th (a day bucket), the switch (hours), and ends a minute past a local hour (minutes).
DST_START = datetime(2026, 3, 27, 22, 59, tzinfo=UTC)
DST_END = datetime(2026, 3, 29, 1, 1, tzinfo=UTC)
POINTS = {"calls_placed": 1.0, "revenue": 0.01}


@pytest.fixture
async def api(
    pg: AsyncEngine, postgres_url: str, make_settings: Callable[..., Settings]
) -> AsyncIterator[tuple[httpx.AsyncClient, AsyncEngine, Any]]:
    # Minute buckets of March are kept in this test's database: nothing prunes them.
    settings = make_settings(database_url=postgres_url, minute_retention_hours=24 * 800)
    app = create_app(settings, pg)
    async with api_client(app) as c:
        await floor(c)
        yield c, pg, app


def _events(
    seed: int, start: datetime = DST_START, end: datetime = DST_END
) -> list[dict[str, Any]]:
    """Calls and won deals in and around a box (not after now), from each of the three reps."""
    rng = random.Random(seed)
    first = start - timedelta(hours=3)
    last = min(end + timedelta(hours=3), datetime.now(UTC))
    events = []
    for n in range(120):
        at = first + timedelta(seconds=rng.randrange(int((last - first).total_seconds())))
        actor = rng.choice(list(IDENTITY))
        if rng.random() < 0.75:
            outcome = rng.choice(["connected", "no_answer"])
            events.append(canonical("call.placed", actor=actor, time=at, outcome=outcome))
        else:
            amount = f"{rng.randrange(100, 5000)}.00"
            events.append(canonical("deal.updated", actor=actor, time=at, deal_id=f"D-{n}",
                                    amount=amount))  # fmt: skip
    return events


def _team_of(rep: str, at: datetime) -> str:
    if rep == "carol":
        return "north" if at >= CAROL_MOVES else "south"
    return "north"


def _points(event: dict[str, Any]) -> float:
    if event["type"] == "call.placed":
        return POINTS["calls_placed"]
    return POINTS["revenue"] * float(event["data"]["amount"])


def _minute(at: datetime) -> datetime:
    return at.replace(second=0, microsecond=0)


def _expected(
    events: list[dict[str, Any]],
    who: Callable[[str, datetime], str],
    goal: float,
    start: datetime = DST_START,
    end: datetime = DST_END,
    bucket: Callable[[datetime], datetime] = _minute,
) -> dict[str, tuple[float, datetime | None]]:
    """Per participant: the score in the box, and the start of the bucket (a minute, unless
    ``bucket`` says otherwise) in which its running score first reached ``goal`` (every part
    here only grows, so the first crossing holds)."""
    totals: dict[str, float] = defaultdict(float)
    reached: dict[str, datetime | None] = defaultdict(lambda: None)
    timed = sorted(events, key=lambda e: e["time"])
    for event in timed:
        at = datetime.fromisoformat(event["time"])
        if not start <= at < end:
            continue
        subject = who(IDENTITY[event["data"]["actor"]["external_id"]], at)
        totals[subject] += _points(event)
        if reached[subject] is None and totals[subject] >= goal - 1e-9:
            reached[subject] = bucket(at)
    return {s: (round(t, 6), reached[s]) for s, t in totals.items()}


async def _carol_moves(client: httpx.AsyncClient) -> None:
    body = {
        "name": "Carol",
        "team_id": "north",
        "effective_from": CAROL_MOVES.isoformat(),
        "identities": [{"provider": "crm", "external_id": "u-3"}],
    }
    assert (await client.put("/v1/reps/carol", json=body, headers=ADMIN)).status_code == 200


def _contest(participants: str, goal: float) -> dict[str, Any]:
    return {
        "name": "Spring forward blitz",
        "starts_at": DST_START.isoformat(),
        "ends_at": DST_END.isoformat(),
        "participants": participants,
        "score": {"points": POINTS},
        "goal": goal,
    }


@pytest.mark.parametrize("participants", ["reps", "teams"])
async def test_standings_across_a_dst_switch_equal_the_events_own_sums(
    api: tuple[httpx.AsyncClient, AsyncEngine, Any], participants: str
) -> None:
    client, db, app = api
    await _carol_moves(client)
    events = _events(seed=7)
    await book(db, *events)
    goal = 40.0
    put = await client.put("/v1/contests/spring", json=_contest(participants, goal), headers=ADMIN)
    assert put.status_code == 200, put.text

    got = await client.get("/v1/contests/spring", headers=READ)

    assert got.status_code == 200, got.text
    body = got.json()
    if participants == "reps":
        expected = _expected(events, lambda rep, _: rep, goal)
        key = "rep_id"
    else:
        expected = _expected(events, _team_of, goal)
        key = "team_id"
    rows = {row[key]: row for row in body["rows"]}
    assert set(rows) == set(expected)
    for subject, (score, reached) in expected.items():
        assert rows[subject]["score"] == pytest.approx(score, abs=1e-6), subject
        at = rows[subject]["goal_reached_at"]
        assert (datetime.fromisoformat(at) if at else None) == reached, subject
    scores = sorted((-s for s, _ in expected.values()))
    assert [row["rank"] for row in body["rows"]] == [scores.index(-row["score"]) + 1
                                                     for row in body["rows"]]  # fmt: skip
    # The March contest ended long ago, but a read settles nothing: live standings, "final
    # any moment", until the worker's settlement stores them with their winners.
    assert (body["status"], body["final"], body["winners"]) == ("active", False, [])
    assert datetime.fromisoformat(body["settles_at"]) < datetime.now(UTC)
    assert await Settlement(db, app.state.settings).settle_due(datetime.now(UTC)) == 1
    final = (await client.get("/v1/contests/spring", headers=READ)).json()
    assert (final["status"], final["final"]) == ("completed", True)
    assert final["rows"] == body["rows"]
    assert [w[key] for w in final["winners"]] == [r[key] for r in body["rows"] if r["rank"] == 1]


async def test_a_correction_counts_until_the_contest_settles_and_not_after(
    api: tuple[httpx.AsyncClient, AsyncEngine, Any],
) -> None:
    client, db, app = api
    now = datetime.now(UTC)
    end = now.replace(second=0, microsecond=0) - timedelta(minutes=1)
    start = end - timedelta(hours=2)
    contest = {
        "name": "Revenue push",
        "starts_at": start.isoformat(),
        "ends_at": end.isoformat(),
        "score": {"metric": "revenue"},
    }
    assert (await client.put("/v1/contests/push", json=contest, headers=ADMIN)).status_code == 200
    won = [
        canonical("deal.updated", actor="u-1", time=start + timedelta(minutes=10), deal_id="A",
                  amount="1000.00"),
        canonical("deal.updated", actor="u-2", time=start + timedelta(minutes=20), deal_id="B",
                  amount="800.00"),
        canonical("deal.updated", actor="u-1", time=end + timedelta(seconds=10), deal_id="C",
                  amount="5000.00"),  # won after the end: not in the contest
    ]  # fmt: skip
    await book(db, *won)

    def standings(body: dict[str, Any]) -> dict[str, tuple[int | None, float]]:
        return {r["rep_id"]: (r["rank"], r["score"]) for r in body["rows"]}

    first = (await client.get("/v1/contests/push", headers=READ)).json()
    assert first["status"] == "active"
    assert first["final"] is False
    assert standings(first) == {"alice": (1, 1000.0), "bob": (2, 800.0), "carol": (3, 0.0)}

    # Alice's deal is reopened after the end, before the contest settles: it leaves the box.
    reopened = end + timedelta(seconds=30)
    await book(db, canonical("deal.updated", actor="u-1", time=reopened, deal_id="A",
                             status="open"))  # fmt: skip
    second = (await client.get("/v1/contests/push", headers=READ)).json()
    assert standings(second) == {"bob": (1, 800.0), "alice": (2, 0.0), "carol": (2, 0.0)}

    # A contest_won alert watches it (as the alerts API stores one).
    async with db.begin() as conn:
        await conn.execute(text(
            "INSERT INTO alerts (id, name, channels, enabled, trigger) VALUES ('won', 'Won', "
            "'[\"ops\"]', true, '{\"kind\": \"contest_won\", \"contest_id\": \"push\"}')"
        ))  # fmt: skip
    # Settled (as the settler does once CONTEST_SETTLE_SECONDS have passed): final.
    later = now + timedelta(seconds=app.state.settings.contest_settle_seconds + 60)
    settlement = Settlement(db, app.state.settings)
    assert await settlement.settle_due(later) == 1
    assert await settlement.settle_due(later) == 0  # once
    # The winner's notification was written with the standings, once.
    async with db.connect() as conn:
        notified = (await conn.execute(text(
            "SELECT subject_id, data FROM notifications WHERE alert_id = 'won'"
        ))).all()  # fmt: skip
    assert [(subject, json.loads(data)["text"]) for subject, data in notified] == [
        ("bob", "Bob remporte Revenue push")
    ]

    # Bob's deal is reopened after settlement: the stored standings do not move.
    await book(db, canonical("deal.updated", actor="u-2", time=datetime.now(UTC), deal_id="B",
                             status="open"))  # fmt: skip
    third = (await client.get("/v1/contests/push", headers=READ)).json()
    assert third["status"] == "completed"
    assert third["final"] is True
    assert standings(third) == standings(second)
    assert [w["rep_id"] for w in third["winners"]] == ["bob"]
    # The live figures did move: the revenue board for the same box says 0 for Bob now.
    board = await client.get(
        "/v1/leaderboards/revenue",
        params={"from": start.isoformat(), "to": end.isoformat()},
        headers=READ,
    )
    assert {r["rep_id"]: r["value"] for r in board.json()["rows"]}["bob"] == 0
    # A completed contest is final: redefining it is refused, the same definition is not.
    changed = {**contest, "name": "Revenue push, again"}
    assert (await client.put("/v1/contests/push", json=changed, headers=ADMIN)).status_code == 409
    assert (await client.put("/v1/contests/push", json=contest, headers=ADMIN)).status_code == 200


async def test_pruning_keeps_only_the_edge_minutes_of_a_contest_until_it_settles(
    pg: AsyncEngine, postgres_url: str, make_settings: Callable[..., Settings]
) -> None:
    """A contest that ended 50 hours ago, announced before it started: past the 48 h minute
    retention, the pruning keeps its minutes only in the partial hours at its edges (its
    standings need no others); its goal is then timed to the hour inside, to the minute at
    the edges. Once settled, nothing is kept for it."""
    settings = make_settings(database_url=postgres_url)  # minutes kept for 48 h
    app = create_app(settings, pg)
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=50)
    end = hour + timedelta(minutes=23)
    start = end - timedelta(hours=5, minutes=41)  # neither edge on the hour
    first_hour, last_hour = start.replace(minute=0) + timedelta(hours=1), end.replace(minute=0)
    events = _events(seed=3, start=start, end=end)
    points = scoring.Score(points=tuple(sorted(POINTS.items())))
    box = int(start.timestamp()), int(end.timestamp())
    old = scoring.Contest("old", "Old blitz", *box, "reps", None, points, 10.0, box[0])
    async with api_client(app) as client:
        await floor(client)
        await book(pg, *events)
        async with pg.begin() as conn:  # saved when it was announced: its minutes were kept
            await ContestRepository(conn).save(old)

        floors = settings.retention_floors(time.time())
        await prune(pg, *floors)

        async with pg.connect() as conn:
            kept = (
                await conn.execute(
                    text(
                        "SELECT DISTINCT bucket_start FROM kpi_rollups WHERE grain = 'minute' "
                        "AND bucket_start < :floor"
                    ),
                    {"floor": floors[0]},
                )
            ).scalars()
            minutes = sorted(datetime.fromtimestamp(m, UTC) for m in kept)  # fmt: skip
        assert minutes, "the edges held events"
        assert all(start <= m < first_hour or last_hour <= m < end for m in minutes)

        def bucket(at: datetime) -> datetime:
            inside = first_hour <= at < last_hour
            return at.replace(minute=0, second=0, microsecond=0) if inside else _minute(at)

        body = (await client.get("/v1/contests/old", headers=READ)).json()
        rows = {r["rep_id"]: r for r in body["rows"]}
        for rep, (score, reached) in _expected(events, lambda r, _: r, 10.0, start, end,
                                               bucket).items():  # fmt: skip
            assert rows[rep]["score"] == pytest.approx(score, abs=1e-6), rep
            at = rows[rep]["goal_reached_at"]
            assert (datetime.fromisoformat(at) if at else None) == reached, rep
        assert body["status"] == "active"  # long due, but a read settles nothing

        assert await Settlement(pg, settings).settle_due(datetime.now(UTC)) == 1
        await prune(pg, *floors)

        async with pg.connect() as conn:
            left = (await conn.execute(text(
                "SELECT count(*) FROM kpi_rollups WHERE grain = 'minute' "
                "AND bucket_start < :floor"), {"floor": floors[0]})).scalar()  # fmt: skip
        assert left == 0


def _running_oracle(
    score: scoring.Score,
    buckets: list[tuple[int, dict[str, int]]],
    target: float | None,
    goal: float,
    minimum: int,
) -> int | None:
    """The first bucket after which the running score holds ``goal``, by the catalogue's own
    evaluation of the running sums (an independent computation of ``goal_reached``)."""
    running: dict[str, int] = defaultdict(int)
    targets = dict.fromkeys(("revenue", "calls_total"), target) if target else {}
    for start, counters in sorted(buckets, key=lambda b: b[0]):
        for name, amount in counters.items():
            running[name] += amount
        value = score.value(score.parts(running, targets))
        facts = score.volume(running)
        if value is not None and value >= goal and (facts is None or facts >= minimum):
            return start
    return None


SCORES = {
    "points": (scoring.Score(points=(("calls_placed", 1.5), ("revenue", 0.01))), 32.0),
    "count": (scoring.Score(metric="calls_total"), 20.0),
    "money": (scoring.Score(metric="revenue"), 1234.5),
    "ratio": (scoring.Score(metric="connect_rate"), 0.5),
    "attainment": (scoring.Score(metric="quota_attainment"), 0.8),
}


@pytest.mark.parametrize("kind", sorted(SCORES))
async def test_the_database_finds_when_each_running_score_first_held_the_goal(
    db: AsyncEngine, kind: str
) -> None:
    """Random buckets of many reps, some counters going down (a reopened deal): the statement
    agrees with the catalogue's evaluation of every running sum, for every kind of score."""
    score, goal = SCORES[kind]
    rng = random.Random(kind)
    base, minimum = 1_700_000_000 - 1_700_000_000 % 3600, 4
    buckets: dict[str, list[tuple[int, dict[str, int]]]] = defaultdict(list)
    rows = []
    for rep in (f"r{i}" for i in range(60)):
        for minute in sorted(rng.sample(range(120), 12)):
            counters = {
                "calls_placed": rng.randrange(0, 3),
                "calls_connected": rng.randrange(0, 2),
                "calls_received": rng.randrange(0, 2),
                "revenue_cents": rng.choice([0, 0, 25_000, 50_050, -25_000]),
            }
            start = base + minute * 60
            buckets[rep].append((start, counters))
            rows.append({"scope": "rep", "grain": "minute", "bucket_start": start,
                         "subject_id": rep, **counters})  # fmt: skip
    async with db.begin() as conn:
        await conn.execute(kpi_rollups.insert(), rows)
    targets = {rep: float(rng.choice([1000, 2500])) for rep in buckets}
    test = scoring.goal_test(score, goal, minimum)
    factors = {rep: targets[rep] if test.per_target else 1.0 for rep in buckets}
    async with db.connect() as conn:
        found = await ContestRepository(conn).goal_reached(
            "rep", factors, test, [("minute", base, base + 7200)]
        )
    expected = {
        rep: _running_oracle(score, own, targets[rep], goal, minimum)
        for rep, own in buckets.items()
    }
    assert found == {rep: at for rep, at in expected.items() if at is not None}
    assert 5 < len(found) < 60, "some reach the goal, some do not"


async def test_contests_are_listed_a_page_at_a_time_with_their_winners(
    client: httpx.AsyncClient, db: AsyncEngine, make_settings: Callable[..., Settings]
) -> None:
    """250 contests: pages of 100 in start order, each once; the status filter pages too; a
    settled contest shows its winners (read alone from its stored standings)."""
    await floor(client)
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    await book(db, canonical("call.placed", actor="u-1", time=now - timedelta(hours=5)))
    for n in range(250):
        starts = now + timedelta(hours=n - 6)
        body = {"name": f"Blitz {n}", "starts_at": starts.isoformat(),
                "ends_at": (starts + timedelta(minutes=30)).isoformat(),
                "score": {"metric": "calls_total"}}  # fmt: skip
        put = await client.put(f"/v1/contests/c{n:03d}", json=body, headers=ADMIN)
        assert put.status_code == 200, put.text
    settled = await Settlement(db, make_settings()).settle("c001", int(now.timestamp()))
    assert settled is not None  # c000 to c005 are due; c001 alone is settled here
    assert (await client.get("/v1/contests/c001", headers=READ)).json()["status"] == "completed"

    async def every(**params: Any) -> tuple[list[dict[str, Any]], int]:
        found, pages, cursor = [], 0, None
        while True:
            page = await client.get(
                "/v1/contests", params={**params, **({"cursor": cursor} if cursor else {})},
                headers=READ,
            )  # fmt: skip
            assert page.status_code == 200, page.text
            found += page.json()["contests"]
            pages += 1
            cursor = page.json()["next_cursor"]
            if cursor is None:
                return found, pages

    listed, pages = await every(limit=100)
    assert pages == 3
    assert [c["id"] for c in listed] == [f"c{n:03d}" for n in range(250)]
    scheduled, _ = await every(limit=7, status="scheduled")
    assert [c["id"] for c in scheduled] == [f"c{n:03d}" for n in range(7, 250)]
    completed, _ = await every(status="completed")
    assert [(c["id"], [w["rep_id"] for w in c["winners"]]) for c in completed] == [
        ("c001", ["alice"])
    ]
    bad = await client.get("/v1/contests", params={"cursor": "not-ours"}, headers=READ)
    assert fields(bad) == ["query.cursor"]
    assert fields(await client.get("/v1/contests?limit=1001", headers=READ)) == ["query.limit"]
