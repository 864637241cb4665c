"""The contests API on a real SQLite file: what it refuses (a 422 naming the field), listing
by status, deletion, the CSV export, and the standings stream."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services.api.app import create_app
from services.api.contests import scoring
from services.api.contests.settlement import Settlement
from shared.settings import Settings
from tests.api_support import (
    ADMIN,
    READ,
    api_client,
    book,
    events,
    fields,
    floor,
    next_event,
    served,
)
from tests.conftest import canonical

NOW = datetime.now(UTC).replace(second=0, microsecond=0)


def contest(**changes: Any) -> dict[str, Any]:
    return {
        "name": "Call blitz",
        "starts_at": (NOW - timedelta(hours=1)).isoformat(),
        "ends_at": (NOW + timedelta(hours=1)).isoformat(),
        "score": {"metric": "calls_total"},
        **changes,
    }


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"ends_at": (NOW - timedelta(hours=1)).isoformat()}, "body.ends_at"),
        ({"ends_at": (NOW - timedelta(hours=2)).isoformat()}, "body.ends_at"),
        ({"starts_at": (NOW + timedelta(seconds=30)).isoformat()}, "body.starts_at"),
        ({"score": {"metric": "calls_tot"}}, "body.score.metric"),
        ({"score": {"points": {}}}, "body.score.points"),
        ({"score": {"points": {"calls_total": 0}}}, "body.score.points.calls_total"),
        ({"score": {"points": {"calls_total": -2}}}, "body.score.points.calls_total"),
        ({"score": {"points": {"win_rate": 1}}}, "body.score.points.win_rate"),
        ({"score": {"points": {"nope": 1}}}, "body.score.points.nope"),
        ({"score": {}}, "body.score"),
        ({"score": {"metric": "revenue", "points": {"revenue": 1}}}, "body.score"),
        ({"team_ids": ["north", "atlantis"]}, "body.team_ids"),
        ({"goal": 0}, "body.goal"),
        ({"participants": "everyone"}, "body.participants"),
    ],
)
async def test_bad_contests_are_refused_naming_the_field(
    client: httpx.AsyncClient, changes: dict[str, Any], field: str
) -> None:
    await floor(client)
    response = await client.put("/v1/contests/c1", json=contest(**changes), headers=ADMIN)
    assert field in fields(response)
    assert (await client.get("/v1/contests/c1", headers=READ)).status_code == 404


async def test_unknown_team_ids_are_named(client: httpx.AsyncClient) -> None:
    await floor(client)
    response = await client.put(
        "/v1/contests/c1", json=contest(team_ids=["north", "atlantis"]), headers=ADMIN
    )
    assert "atlantis" in response.json()["detail"]


async def test_a_contest_reaching_back_past_the_kept_minutes_starts_on_the_hour(
    client: httpx.AsyncClient,
) -> None:
    long_ago = NOW.replace(minute=30) - timedelta(days=5)
    response = await client.put(
        "/v1/contests/old",
        json=contest(starts_at=long_ago.isoformat(), ends_at=NOW.isoformat()),
        headers=ADMIN,
    )
    assert fields(response) == ["body.starts_at"]
    on_the_hour = long_ago.replace(minute=0)
    response = await client.put(
        "/v1/contests/old",
        json=contest(starts_at=on_the_hour.isoformat(), ends_at=NOW.isoformat()),
        headers=ADMIN,
    )
    assert response.status_code == 200, response.text


async def test_contests_are_listed_by_status_and_deleted(client: httpx.AsyncClient) -> None:
    await floor(client)
    later = contest(
        starts_at=(NOW + timedelta(days=1)).isoformat(),
        ends_at=(NOW + timedelta(days=2)).isoformat(),
    )
    for contest_id, body in (("now", contest()), ("later", later)):
        put = await client.put(f"/v1/contests/{contest_id}", json=body, headers=ADMIN)
        assert put.status_code == 200, put.text
    assert put.json()["status"] == "scheduled"

    async def listed(status: str | None = None) -> list[str]:
        params = {"status": status} if status else {}
        got = await client.get("/v1/contests", params=params, headers=READ)
        return [c["id"] for c in got.json()["contests"]]

    assert await listed() == ["now", "later"]
    assert await listed("active") == ["now"]
    assert await listed("scheduled") == ["later"]
    assert await listed("completed") == []
    assert fields(await client.get("/v1/contests?status=over", headers=READ)) == ["query.status"]
    assert (await client.delete("/v1/contests/later", headers=ADMIN)).status_code == 204
    assert (await client.delete("/v1/contests/later", headers=ADMIN)).status_code == 404
    assert await listed() == ["now"]
    assert (await client.put("/v1/contests/x", json=contest(), headers=READ)).status_code == 403


async def test_standings_export_as_csv_with_a_column_per_part(
    client: httpx.AsyncClient, db: AsyncEngine
) -> None:
    await floor(client)
    body = contest(score={"points": {"calls_placed": 2, "meetings_held": 5}})
    assert (await client.put("/v1/contests/c1", json=body, headers=ADMIN)).status_code == 200
    await book(
        db,
        canonical("call.placed", actor="u-2", time=NOW - timedelta(minutes=5)),
        canonical("meeting.held", actor="u-1", time=NOW - timedelta(minutes=4)),
    )
    got = await client.get("/v1/contests/c1", headers={**READ, "accept": "text/csv"})
    assert got.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(got.text)))
    assert [(r["rep_id"], r["rank"], r["score"], r["team_name"]) for r in rows] == [
        ("alice", "1", "5.0", "North"),
        ("bob", "2", "2.0", "North"),
        ("carol", "3", "0.0", "South"),
    ]
    assert rows[0]["parts.meetings_held"] == "1"


async def test_standings_are_pushed_when_they_change(
    make_settings: Callable[..., Settings], db: AsyncEngine
) -> None:
    app = create_app(make_settings(), db)
    async with served(app) as url, httpx.AsyncClient(base_url=url, timeout=10) as client:
        await floor(client)
        assert (
            await client.put("/v1/contests/c1", json=contest(), headers=ADMIN)
        ).status_code == 200
        async with client.stream("GET", "/v1/stream/contests/c1", headers=READ) as response:
            stream = events(response)
            kind, _, first = await next_event(stream)
            assert kind == "standings"
            assert {r["rep_id"]: r["score"] for r in first["rows"]}["bob"] == 0
            await book(db, canonical("call.placed", actor="u-2", time=NOW - timedelta(minutes=1)))
            kind, _, second = await next_event(stream)
            assert {r["rep_id"]: r["score"] for r in second["rows"]}["bob"] == 1
            assert second["rows"][0]["rep_id"] == "bob"


async def test_unknown_contests_are_404s_and_leave_nothing_behind(
    make_settings: Callable[..., Settings], db: AsyncEngine
) -> None:
    app = create_app(make_settings(), db)
    async with api_client(app) as c:
        for path in ("/v1/stream/contests/nope", "/v1/contests/nope", "/v1/contests/nope2"):
            got = await c.get(path, headers=READ)
            assert got.status_code == 404
            assert got.headers["content-type"] == "application/problem+json"
    assert app.state.standings._locks == {}


def test_a_ratio_score_ranks_only_on_its_minimum_volume_and_ties_share_a_rank() -> None:
    score = scoring.Score(metric="connect_rate")
    box = scoring.Contest("c", "c", 0, 60, "reps", None, score, None, 0)
    who = [scoring.Contender(r, r.title(), "north") for r in ("ann", "bea", "cid", "dan")]
    sums = {
        "ann": {"calls_placed": 10, "calls_connected": 5},
        "bea": {"calls_placed": 4, "calls_connected": 4},  # 100 %, on 4 calls only
        "cid": {"calls_placed": 6, "calls_connected": 3},
    }
    ranked = scoring.standings(box, who, sums, {}, 5, {})
    assert [(s.contender.id, s.rank, s.score) for s in ranked] == [
        ("ann", 1, 0.5),
        ("cid", 1, 0.5),
        ("bea", None, 1.0),
        ("dan", None, None),
    ]


async def test_nobody_wins_a_contest_nobody_scored_in(
    client: httpx.AsyncClient, db: AsyncEngine, make_settings: Callable[..., Settings]
) -> None:
    await floor(client)
    over = contest(
        starts_at=(NOW - timedelta(hours=2)).isoformat(),
        ends_at=(NOW - timedelta(hours=1)).isoformat(),
    )
    assert (await client.put("/v1/contests/quiet", json=over, headers=ADMIN)).status_code == 200
    assert await Settlement(db, make_settings()).settle_due(datetime.now(UTC)) == 1
    body = (await client.get("/v1/contests/quiet", headers=READ)).json()
    assert body["status"] == "completed"
    assert [r["rank"] for r in body["rows"]] == [1, 1, 1]  # all tied at 0
    assert body["winners"] == []
