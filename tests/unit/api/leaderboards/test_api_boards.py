"""The read API for wallboards and apps: conditional reads, fair boards, CSV, timeseries."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncEngine

from services.api.app import create_app
from services.api.kpis.queries import KpiQueries, PointIndex
from shared.buckets import BucketRange, coarsen, tile
from shared.catalogue import BASE_COUNTERS
from shared.db.models import kpi_rollups
from shared.settings import Settings
from shared.windows import Window
from tests.api_support import ADMIN, READ, assert_problem, book, floor
from tests.conftest import canonical

PARIS = ZoneInfo("Europe/Paris")


async def test_reads_carry_an_etag_and_a_match_is_304_until_the_data_changes(
    client: httpx.AsyncClient, db: AsyncEngine
) -> None:
    await floor(client)
    await client.put("/v1/targets/rep/alice/revenue/day", json={"value": 5}, headers=ADMIN)
    first = await client.get("/v1/leaderboards/calls_total", headers=READ)
    assert first.headers["cache-control"] == "no-cache"
    tag = first.headers["etag"]
    again = await client.get("/v1/leaderboards/calls_total", headers={**READ, "if-none-match": tag})
    assert again.status_code == 304
    assert again.content == b""
    await book(db, canonical("call.placed", actor="u-1"))
    changed = await client.get(
        "/v1/leaderboards/calls_total", headers={**READ, "if-none-match": tag}
    )
    assert changed.status_code == 200
    assert changed.headers["etag"] != tag
    for path in (
        "/v1/reps/alice/kpis",
        "/v1/teams/north/kpis",
        "/v1/unassigned",
        "/v1/reps/alice/timeseries/calls_total",
        "/v1/metrics",
        "/v1/team-leaderboards/calls_total",
        "/v1/reps/alice",
        "/v1/teams/north",
        "/v1/targets/rep/alice/revenue/day",
    ):
        assert "etag" in (await client.get(path, headers=READ)).headers, path


async def test_team_board_ranks_teams_by_summed_parts_not_averaged_ratios(
    client: httpx.AsyncClient, db: AsyncEngine
) -> None:
    await floor(client)
    # alice 2/2 answered, bob 0/3 answered: north answers 2 of 5, not (100% + 0%) / 2
    await book(
        db,
        canonical("call.received", actor="u-1"),
        canonical("call.received", actor="u-1"),
        *(canonical("call.missed", actor="u-2") for _ in range(3)),
        *(canonical("call.received", actor="u-3") for _ in range(4)),
        canonical("call.missed", actor="u-3"),
    )
    board = (await client.get("/v1/team-leaderboards/answer_rate", headers=READ)).json()
    assert [(r["team_id"], r["rank"], r["value"]) for r in board["rows"]] == [
        ("south", 1, 0.8),
        ("north", 2, 0.4),
    ]


async def test_ratio_below_its_minimum_volume_is_listed_unranked(
    client: httpx.AsyncClient, db: AsyncEngine
) -> None:
    await floor(client)
    await book(
        db,
        *(canonical("deal.updated", actor="u-1", deal_id=f"A{i}", status="won") for i in range(5)),
        canonical("deal.updated", actor="u-2", deal_id="B1", status="won"),
    )
    board = (await client.get("/v1/leaderboards/win_rate", headers=READ)).json()
    rows = {r["rep_id"]: (r["rank"], r["value"], r["volume"]) for r in board["rows"]}
    assert rows["alice"] == (1, 1.0, 5)
    assert rows["bob"] == (None, 1.0, 1)  # a perfect rate on one deal does not outrank


async def test_previous_rank_and_movement_against_the_board_an_hour_ago(
    client: httpx.AsyncClient, db: AsyncEngine
) -> None:
    await floor(client)
    earlier = datetime.now(UTC) - timedelta(hours=2)
    await book(
        db,
        *(canonical("call.placed", actor="u-1", time=earlier) for _ in range(2)),
        canonical("call.placed", actor="u-2", time=earlier),
        *(canonical("call.placed", actor="u-2") for _ in range(3)),
    )
    board = (await client.get("/v1/leaderboards/calls_total?window=last_24h", headers=READ)).json()
    rows = {r["rep_id"]: (r["rank"], r["previous_rank"], r["movement"]) for r in board["rows"]}
    assert rows["bob"] == (1, 2, 1)
    assert rows["alice"] == (2, 1, -1)


async def test_rank_by_attainment_lets_different_quotas_compete(
    client: httpx.AsyncClient, db: AsyncEngine
) -> None:
    await floor(client)
    await client.put("/v1/targets/rep/alice/revenue/month", json={"value": 100_000}, headers=ADMIN)
    await client.put("/v1/targets/rep/bob/revenue/month", json={"value": 10_000}, headers=ADMIN)
    await book(
        db,
        canonical("deal.updated", actor="u-1", deal_id="A", amount="30000"),
        canonical("deal.updated", actor="u-2", deal_id="B", amount="6000"),
    )
    by_value = (await client.get("/v1/leaderboards/revenue?window=this_month", headers=READ)).json()
    assert by_value["rows"][0]["rep_id"] == "alice"
    by_attainment = (
        await client.get(
            "/v1/leaderboards/revenue?window=this_month&rank_by=attainment", headers=READ
        )
    ).json()
    assert [(r["rep_id"], r["rank"], r["attainment"]) for r in by_attainment["rows"]] == [
        ("bob", 1, 0.6),
        ("alice", 2, 0.3),
        ("carol", None, None),
    ]


async def test_timeseries_points_add_up_to_the_windows_value(
    client: httpx.AsyncClient, db: AsyncEngine
) -> None:
    await floor(client)
    now = datetime.now(UTC)
    await book(
        db,
        *(
            canonical("call.placed", actor="u-1", time=now - timedelta(hours=h))
            for h in (0, 1, 1, 5, 30)
        ),
    )
    total = (
        await client.get("/v1/reps/alice/kpis?window=last_7d&metrics=calls_total", headers=READ)
    ).json()["metrics"]["calls_total"]
    for interval in ("hour", "day", "week"):
        series = (
            await client.get(
                f"/v1/reps/alice/timeseries/calls_total?window=last_7d&interval={interval}",
                headers=READ,
            )
        ).json()
        assert sum(p["value"] for p in series["points"]) == total == 5, interval
    minutes = await client.get(
        "/v1/reps/alice/timeseries/calls_total?window=this_month&interval=minute", headers=READ
    )
    assert_problem(minutes, 400, "at most 1500")
    assert minutes.json()["errors"][0]["field"] == "interval"


async def test_more_points_than_the_limit_is_a_400_stated_in_the_openapi_description(
    client: httpx.AsyncClient,
) -> None:
    await floor(client)
    for path in ("/v1/reps/alice/timeseries/calls_total", "/v1/teams/north/timeseries/calls_total"):
        too_many = await client.get(f"{path}?window=last_7d&interval=minute", headers=READ)
        assert_problem(too_many, 400, "more than 1500 points")
        assert too_many.json()["type"].endswith("/too-many-points")
        fits = await client.get(f"{path}?window=last_24h&interval=minute", headers=READ)
        assert len(fits.json()["points"]) >= 1440
    spec = (await client.get("/openapi.json")).json()
    for path in (
        "/v1/reps/{rep_id}/timeseries/{metric}",
        "/v1/teams/{team_id}/timeseries/{metric}",
    ):
        operation = spec["paths"][path]["get"]
        assert "at most 1500 points" in operation["description"]
        assert "400" in operation["responses"]
        interval = next(p for p in operation["parameters"] if p["name"] == "interval")
        assert "1500" in interval["description"]


def naive_point(tilings: list[list[BucketRange]], grain: str, start: int) -> int | None:
    """What the series did before: each bucket against every point's tiling, first match."""
    for index, tiling in enumerate(tilings):
        if any(r.grain == grain and r.lo <= start < r.hi for r in tiling):
            return index
    return None


@settings(max_examples=60, deadline=None)
@given(
    first=st.integers(0, 60 * 24 * 40),
    widths=st.lists(st.sampled_from([60, 900, 3600, 86400, 7 * 86400]), min_size=1, max_size=12),
    retention_hours=st.integers(1, 72),
    retention_days=st.integers(1, 30),
    probes=st.lists(st.integers(-86400, 60 * 86400), min_size=1, max_size=40),
)
def test_point_index_finds_the_point_the_naive_scan_found(
    first: int, widths: list[int], retention_hours: int, retention_days: int, probes: list[int]
) -> None:
    # Tilings past a retention are rounded outwards, so neighbouring points can overlap.
    origin = int(datetime(2026, 3, 1, tzinfo=UTC).timestamp()) + first * 60
    now = origin + 40 * 86400
    floors = (now - retention_hours * 3600, now - retention_days * 86400)
    edges = [origin]
    for width in widths:
        edges.append(edges[-1] + width)
    tilings = [coarsen(tile(lo, hi, PARIS), PARIS, *floors) for lo, hi in pairwise(edges)]
    index = PointIndex(tilings)
    for probe in probes:
        for grain, step in (("minute", 60), ("hour", 3600)):
            start = origin + probe - (origin + probe) % step
            assert index.of(grain, start) == naive_point(tilings, grain, start)
        for tiling in tilings:
            for r in tiling:
                assert index.of(r.grain, r.lo) == naive_point(tilings, r.grain, r.lo)


async def test_a_long_series_costs_rows_plus_points_not_their_product(db: AsyncEngine) -> None:
    # 1500 one-minute points over 9000 bucket rows: the scan of every point for every row took
    # about 3 s here; an index over the points takes a few hundredths of a second.
    end = datetime(2026, 3, 10, tzinfo=UTC)
    start = end - timedelta(minutes=1500)
    counters = list(BASE_COUNTERS[:6])
    rows = [
        {
            "scope": "rep",
            "subject_id": "alice",
            "grain": "minute",
            "bucket_start": int(start.timestamp()) + 60 * i,
            **dict.fromkeys(counters, 1),
        }
        for i in range(1500)
    ]
    async with db.begin() as conn:
        await conn.execute(kpi_rollups.insert(), rows)
    cuts = [
        Window("custom", start + timedelta(minutes=i), start + timedelta(minutes=i + 1))
        for i in range(1500)
    ]
    began = time.perf_counter()
    series = await KpiQueries(db, PARIS).sums_per_window("rep", "alice", cuts, counters)
    assert time.perf_counter() - began < 1.0
    assert all(point == dict.fromkeys(counters, 1) for point in series)


async def test_board_is_computed_once_per_change_however_many_ask(
    client: httpx.AsyncClient, db: AsyncEngine
) -> None:
    await floor(client)
    app = client._transport.app  # type: ignore[attr-defined]
    before = app.state.boards.computed
    for _ in range(20):
        await client.get("/v1/leaderboards/calls_total", headers=READ)
    assert app.state.boards.computed == before + 1


@pytest.fixture
async def cors_client(
    make_settings: Callable[..., Settings], db: AsyncEngine
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(make_settings(cors_origins="https://wall.example.com"), db)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as c:
        yield c


async def test_cors_origins_are_configurable(cors_client: httpx.AsyncClient) -> None:
    allowed = await cors_client.get(
        "/v1/metrics", headers={**READ, "origin": "https://wall.example.com"}
    )
    assert allowed.headers["access-control-allow-origin"] == "https://wall.example.com"
    other = await cors_client.get("/v1/metrics", headers={**READ, "origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers


async def test_movement_on_a_calendar_board_from_the_sums_less_the_last_interval(
    client: httpx.AsyncClient, db: AsyncEngine
) -> None:
    earlier = datetime.now(UTC) - timedelta(hours=2)
    if earlier.year != datetime.now(UTC).year:
        pytest.skip("the first two hours of the year have no earlier board this year")
    await floor(client)
    await book(
        db,
        *(canonical("call.placed", actor="u-1", time=earlier) for _ in range(2)),
        canonical("call.placed", actor="u-2", time=earlier),
        *(canonical("call.placed", actor="u-2") for _ in range(3)),
    )
    board = (await client.get("/v1/leaderboards/calls_total?window=this_year", headers=READ)).json()
    rows = {r["rep_id"]: (r["rank"], r["previous_rank"], r["movement"]) for r in board["rows"]}
    assert rows["bob"] == (1, 2, 1)
    assert rows["alice"] == (2, 1, -1)
    assert rows["carol"] == (3, None, None)  # nothing then: no position to move from


async def test_a_board_says_when_its_previous_ranks_stood_and_none_before_there_was_one(
    client: httpx.AsyncClient, db: AsyncEngine
) -> None:
    """In the first movement interval of a window there is no earlier board: compared_to is
    null and so is every movement (the wallboard shows nothing, not a dot per rep)."""
    await floor(client)
    await book(db, canonical("call.placed", actor="u-1"))
    began = (datetime.now(UTC) - timedelta(minutes=10)).isoformat()
    fresh = (
        await client.get("/v1/leaderboards/calls_total", params={"from": began}, headers=READ)
    ).json()
    assert fresh["compared_to"] is None
    assert {r["movement"] for r in fresh["rows"]} == {None}
    assert fresh["rows_total"] == 3
    day = await client.get("/v1/leaderboards/calls_total?window=last_24h&limit=1", headers=READ)
    assert day.json()["compared_to"] is not None
    assert (len(day.json()["rows"]), day.json()["rows_total"]) == (1, 3)
