from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.db.engine import create_engine
from shared.db.migrate import alembic_config, migrate
from shared.targets import Standing, window_target
from shared.windows import Window, resolve_window
from tests.api_support import ADMIN, READ, book, floor
from tests.conftest import canonical

PARIS = ZoneInfo("Europe/Paris")
NOW = datetime(2026, 11, 12, 15, 0, tzinfo=UTC)  # mid-month; November has 30 days


def window(name: str, **custom: datetime) -> Window:
    return resolve_window(name, now=NOW, tz=PARIS, **custom)  # type: ignore[arg-type]


def test_calendar_window_is_measured_against_the_whole_periods_target() -> None:
    assert window_target({"month": ((0, 3000.0),)}, window("this_month"), PARIS) == 3000.0
    assert window_target({"week": ((0, 500.0),)}, window("this_week"), PARIS) == 500.0


def test_rolling_window_pro_rates_each_period_it_overlaps() -> None:
    month: Standing = {"month": ((0, 3000.0),)}
    assert window_target(month, window("last_7d"), PARIS) == pytest.approx(700.0)
    across = window(
        "custom",
        start=datetime(2026, 10, 31, tzinfo=PARIS),
        end=datetime(2026, 11, 2, tzinfo=PARIS),
    )
    # 24 of October's 745 hours (it holds the DST switch) and one of November's 30 days
    expected = 3100.0 * 24 / (31 * 24 + 1) + 3100.0 / 30
    assert window_target({"month": ((0, 3100.0),)}, across, PARIS) == pytest.approx(expected)


def test_a_window_without_its_own_period_uses_another_pro_rated() -> None:
    month_from_days = window_target({"day": ((0, 100.0),)}, window("this_month"), PARIS)
    assert month_from_days == pytest.approx(3000.0)
    assert window_target({}, window("today"), PARIS) is None


async def test_quota_attainment_through_the_api(client: httpx.AsyncClient, db: AsyncEngine) -> None:
    await floor(client)
    put = await client.put("/v1/targets/rep/alice/revenue/day", json={"value": 2000}, headers=ADMIN)
    assert put.status_code == 200
    assert put.json() == {
        "value": 2000.0,
        "scope": "rep",
        "id": "alice",
        "metric": "revenue",
        "period": "day",
        "history": [{"starting": None, "starts_at": None, "value": 2000.0}],
    }
    assert (
        await client.put("/v1/targets/rep/alice/revenue/day", json={"value": 1}, headers=READ)
    ).status_code == 403
    await client.put("/v1/targets/team/north/calls_total/day", json={"value": 4}, headers=ADMIN)
    await book(
        db,
        canonical("deal.updated", actor="u-1", deal_id="D1", amount="500"),
        canonical("call.placed", actor="u-2"),
    )
    rep = await client.get(
        "/v1/reps/alice/kpis?window=today&metrics=revenue,quota_attainment", headers=READ
    )
    assert rep.json()["metrics"] == {"revenue": 500.0, "quota_attainment": 0.25}
    team = await client.get("/v1/teams/north/kpis?metrics=activity_attainment", headers=READ)
    assert team.json()["metrics"] == {"activity_attainment": 0.25}
    board = await client.get("/v1/leaderboards/quota_attainment", headers=READ)
    assert next((r["rep_id"], r["value"]) for r in board.json()["rows"]) == ("alice", 0.25)
    assert (await client.get("/v1/targets/rep/alice/revenue/day", headers=READ)).json()[
        "value"
    ] == 2000.0
    assert (
        await client.put("/v1/targets/rep/alice/happiness/day", json={"value": 1}, headers=ADMIN)
    ).status_code == 404
    bad_period = await client.put(
        "/v1/targets/rep/alice/revenue/fortnight", json={"value": 1}, headers=ADMIN
    )
    assert bad_period.status_code == 422
    assert (
        await client.delete("/v1/targets/rep/alice/revenue/day", headers=ADMIN)
    ).status_code == 204


async def test_the_targets_path_takes_the_plural_like_the_rest_of_the_api(
    client: httpx.AsyncClient,
) -> None:
    await floor(client)
    for kind, subject in (("rep", "alice"), ("team", "north")):
        plural = f"/v1/targets/{kind}s/{subject}/revenue/month"
        singular = f"/v1/targets/{kind}/{subject}/revenue/month"
        put = await client.put(plural, json={"value": 3000}, headers=ADMIN)
        assert put.status_code == 200, put.text
        expected = {
            "value": 3000.0,
            "scope": kind,
            "id": subject,
            "metric": "revenue",
            "period": "month",
            "history": [{"starting": None, "starts_at": None, "value": 3000.0}],
        }
        assert put.json() == expected
        assert (await client.get(plural, headers=READ)).json() == expected
        assert (await client.get(singular, headers=READ)).json() == expected
        assert (await client.put(singular, json={"value": 10}, headers=ADMIN)).status_code == 200
        assert (await client.get(plural, headers=READ)).json()["value"] == 10.0
        assert (await client.delete(plural, headers=ADMIN)).status_code == 204
        assert (await client.get(singular, headers=READ)).status_code == 404
    refused = await client.get("/v1/targets/people/alice/revenue/month", headers=READ)
    assert refused.status_code == 422


async def test_a_target_edit_moves_etags_and_boards_but_not_the_roster_version(
    client: httpx.AsyncClient, db: AsyncEngine
) -> None:
    await floor(client)
    await book(db, canonical("deal.updated", actor="u-1", deal_id="D1", amount="500"))
    board_path = "/v1/leaderboards/quota_attainment"
    before = await client.get(board_path, headers=READ)
    assert before.json()["rows"][0]["value"] is None  # no target yet: nothing to attain
    roster_before = await roster_version(db)
    put = await client.put(
        "/v1/targets/reps/alice/revenue/day", json={"value": 1000}, headers=ADMIN
    )
    assert put.status_code == 200
    assert await roster_version(db) == roster_before  # the KPI service need not reload
    after = await client.get(board_path, headers={**READ, "if-none-match": before.headers["etag"]})
    assert after.status_code == 200
    assert after.headers["etag"] != before.headers["etag"]
    assert next(r["value"] for r in after.json()["rows"] if r["rep_id"] == "alice") == 0.5


async def roster_version(db: AsyncEngine) -> int:
    async with db.connect() as conn:
        return int((await conn.execute(text("SELECT version FROM roster_version"))).scalar_one())


async def test_a_database_at_the_baseline_upgrades_to_a_targets_version_of_its_own(
    tmp_path: Path,
) -> None:
    db = create_engine(f"sqlite:///{tmp_path / 'baseline.db'}")
    try:
        async with db.begin() as conn:
            await conn.run_sync(lambda sync: command.upgrade(alembic_config(sync), "0001"))
            await conn.execute(text("INSERT INTO roster_version (id, version) VALUES (1, 7)"))
            await conn.execute(
                text("INSERT INTO targets VALUES ('rep', 'alice', 'revenue', 'month', 900.0)")
            )
        await migrate(db)
        async with db.connect() as conn:
            versions = await conn.execute(
                text("SELECT r.version, t.version FROM roster_version r, targets_version t")
            )
            assert versions.one() == (7, 7)  # targets were versioned by the roster's number
            kept = await conn.execute(text("SELECT subject_id, value FROM targets"))
            assert kept.all() == [("alice", 900.0)]
    finally:
        await db.dispose()
