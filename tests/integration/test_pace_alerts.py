"""``behind_pace`` alerts on a real PostgreSQL: checked on working days from midday, once per
subject and day, against the subject's own target."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.api.app import create_app
from services.worker.pace_checks import check_pace
from shared.settings import Settings
from tests.api_support import ADMIN, api_client, book, floor, put_targets
from tests.conftest import canonical


@pytest.fixture
async def db(
    pg: AsyncEngine, postgres_url: str, make_settings: Callable[..., Settings]
) -> AsyncEngine:
    app = create_app(make_settings(database_url=postgres_url), pg)
    async with api_client(app) as c:
        await floor(c)
        await put_targets(c, "reps", "calls_total", "day", alice=40, bob=4)
        trigger = {"kind": "behind_pace", "metric": "calls_total", "period": "day", "below": 0.5}
        body: dict[str, Any] = {"name": "Pace", "channels": [], "trigger": trigger}
        assert (await c.put("/v1/alerts/pace", json=body, headers=ADMIN)).status_code == 200
    return pg


async def raised(db: AsyncEngine) -> list[tuple[str, dict[str, Any]]]:
    async with db.connect() as conn:
        rows = await conn.execute(text("SELECT subject_id, data FROM notifications"))
        return [(subject, json.loads(data)) for subject, data in rows]


async def test_behind_pace_fires_from_midday_once_per_subject_and_day(
    db: AsyncEngine, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings()
    today = datetime.now(UTC).astimezone(settings.tz)
    morning, evening = today.replace(hour=10, minute=0), today.replace(hour=18, minute=0)
    await book(db, canonical("call.placed", actor="u-1"),
               *(canonical("call.placed", actor="u-2") for _ in range(4)))  # fmt: skip

    assert await check_pace(db, settings, morning) == 0  # too early to tell
    other_days = ",".join(d for i, d in enumerate(("mon", "tue", "wed", "thu", "fri", "sat",
                                                   "sun")) if i != today.weekday())  # fmt: skip
    assert await check_pace(db, make_settings(workdays=other_days), evening) == 0  # a day off
    assert await check_pace(db, settings, evening) == 1
    assert await check_pace(db, settings, evening) == 0  # once a day

    (subject, data), *more = await raised(db)
    assert (subject, more) == ("alice", [])  # Bob is ahead, Carol has no target
    share = 18 / 24  # of a 24-hour day (no DST switch today for this check to matter)
    assert data["expected"] == pytest.approx(40 * share, rel=0.05)
    assert data["text"] == "Alice est en retard sur son rythme : 1 sur 40 (appels, aujourd'hui)"
