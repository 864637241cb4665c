"""Pace against a target: the elapsed share in working time, DST-exact; the pace block of KPI
responses, for a rep and for a team (its own target, else its reps' summed)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services.api.app import create_app
from shared.pacing import elapsed_share, pace, parse_workdays, working_seconds
from shared.settings import Settings
from shared.windows import resolve_window
from tests.api_support import READ, api_client, book, floor, put_targets
from tests.conftest import canonical

PARIS = ZoneInfo("Europe/Paris")
WEEKDAYS = parse_workdays("mon,tue,wed,thu,fri")


def ts(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp())


def test_the_day_clocks_go_forward_counts_23_hours() -> None:
    # Sunday 2026-03-29 in Paris: local midnight is 23:00Z the day before, and it lasts 23 h.
    start, end = ts("2026-03-28T23:00:00+00:00"), ts("2026-03-29T22:00:00+00:00")
    assert working_seconds(start, end, PARIS, None) == 23 * 3600
    noon = ts("2026-03-29T12:00:00+02:00")  # 11 hours after midnight
    assert elapsed_share(start, end, noon, PARIS, None) == pytest.approx(11 / 23)


def test_only_working_days_count_when_workdays_are_set() -> None:
    week = resolve_window(
        "this_week", now=datetime(2026, 3, 25, 12, tzinfo=PARIS), tz=PARIS, week_start=0
    )
    start, end = week.start_ts, week.end_ts  # Monday 23rd to Monday 30th, over the switch
    wednesday_noon = ts("2026-03-25T12:00:00+01:00")
    assert elapsed_share(start, end, wednesday_noon, PARIS, WEEKDAYS) == pytest.approx(2.5 / 5)
    saturday = ts("2026-03-28T10:00:00+01:00")
    sunday_after_switch = ts("2026-03-29T10:00:00+02:00")
    assert elapsed_share(start, end, saturday, PARIS, WEEKDAYS) == 1.0
    assert elapsed_share(start, end, sunday_after_switch, PARIS, WEEKDAYS) == 1.0
    # Every day counting: the week lasts 167 hours; by Saturday 10:00, 5 days and 10 hours.
    assert elapsed_share(start, end, saturday, PARIS, None) == pytest.approx(130 / 167)
    weekend = ts("2026-03-28T00:00:00+01:00"), ts("2026-03-30T00:00:00+02:00")
    assert elapsed_share(*weekend, saturday, PARIS, WEEKDAYS) is None


def test_pace_is_value_over_expected_and_projects_the_end() -> None:
    got = pace(30, 100.0, 0.25)
    assert (got.expected, got.pace, got.projected) == (25.0, 1.2, 120.0)
    start = pace(0, 100.0, 0.0)
    assert (start.expected, start.pace, start.projected) == (0.0, None, None)
    assert pace(5, 100.0, None).expected is None


def test_unknown_workdays_are_refused() -> None:
    with pytest.raises(ValueError, match="funday"):
        parse_workdays("mon,funday")
    assert parse_workdays("Monday, tue") == frozenset({0, 1})
    assert parse_workdays("") is None


def expected_share(now: datetime, tz: ZoneInfo) -> float:
    """Today's elapsed share, counted here from the calendar alone."""
    local = now.astimezone(tz)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    after = (midnight + timedelta(days=1, hours=3)).replace(hour=0)  # next local midnight
    # In UTC: Python subtracts two times of one zone as wall clocks, blind to a DST switch.
    first, last = midnight.astimezone(UTC), after.astimezone(UTC)
    return (now - first).total_seconds() / (last - first).total_seconds()


async def test_kpi_responses_carry_the_pace_of_metrics_with_targets(
    make_settings: Callable[..., Settings], db: AsyncEngine
) -> None:
    settings = make_settings()
    app = create_app(settings, db)
    async with api_client(app) as c:
        await floor(c)
        await put_targets(c, "reps", "calls_total", "day", alice=40, bob=20)
        now = datetime.now(UTC)
        await book(db, *(canonical("call.placed", actor="u-1", time=now) for _ in range(3)))

        rep = (await c.get("/v1/reps/alice/kpis?window=today", headers=READ)).json()
        team = (await c.get("/v1/teams/north/kpis?window=today", headers=READ)).json()
        south = (await c.get("/v1/teams/south/kpis?window=today", headers=READ)).json()

    share = expected_share(now, settings.tz)
    assert set(rep["pace"]) == {"calls_total"}  # the only metric with a target
    alice = rep["pace"]["calls_total"]
    assert alice["target"] == 40
    assert alice["expected"] == pytest.approx(40 * share, rel=1e-3)
    assert alice["pace"] == pytest.approx(3 / (40 * share), rel=1e-3)
    assert alice["projected"] == pytest.approx(3 / share, rel=1e-3)
    # North has no target of its own: its reps' targets, summed, against its summed calls.
    north = team["pace"]["calls_total"]
    assert north["target"] == 60
    assert north["pace"] == pytest.approx(3 / (60 * share), rel=1e-3)
    assert south["pace"] == {}  # Carol has no target


async def test_boards_carry_team_names_and_pace_and_rank_by_pace(
    client: httpx.AsyncClient, db: AsyncEngine
) -> None:
    await floor(client)
    await put_targets(client, "reps", "calls_total", "day", alice=40, bob=4)
    now = datetime.now(UTC)
    actors = [*(("u-1",) * 3), *(("u-2",) * 2), *(("u-3",) * 5)]
    await book(db, *(canonical("call.placed", actor=a, time=now) for a in actors))

    by_value = await client.get("/v1/leaderboards/calls_total?window=today", headers=READ)
    by_pace = await client.get("/v1/leaderboards/calls_total?window=today&rank_by=pace",
                               headers=READ)  # fmt: skip
    teams = await client.get("/v1/team-leaderboards/calls_total?window=today", headers=READ)
    ratio = await client.get("/v1/leaderboards/win_rate?rank_by=pace", headers=READ)

    rows = by_value.json()["rows"]
    assert [(r["rep_id"], r["team_name"]) for r in rows] == [
        ("carol", "South"), ("alice", "North"), ("bob", "North"),
    ]  # fmt: skip
    assert rows[0]["pace"] is None  # Carol has no target
    assert rows[1]["pace"]["target"] == 40
    # Bob made 2 of 4, Alice 3 of 40: Bob is far ahead on pace; Carol, without target, unranked.
    paced_rows = by_pace.json()["rows"]
    assert [(r["rep_id"], r["rank"]) for r in paced_rows] == [
        ("bob", 1), ("alice", 2), ("carol", None),
    ]  # fmt: skip
    assert paced_rows[0]["pace"]["pace"] == pytest.approx(
        2 / paced_rows[0]["pace"]["expected"], rel=1e-6
    )
    north = {r["team_id"]: r for r in teams.json()["rows"]}["north"]
    assert north["pace"]["target"] == 44  # its reps' targets, summed
    assert ratio.status_code == 422
    assert ratio.json()["errors"][0]["field"] == "query.rank_by"
