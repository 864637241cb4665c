"""``GET /v1/wins``: the deals won in a window, read from the deals' own states, on SQLite and
PostgreSQL; the wallboard's ticker shows them whatever alerts exist."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.api_support import READ, book, floor
from tests.conftest import canonical


async def test_the_deals_won_today_newest_first_with_their_reps_and_amounts(
    client: httpx.AsyncClient, db: AsyncEngine
) -> None:
    await floor(client)
    now = datetime.now(UTC).replace(microsecond=0)
    midnight = now.astimezone().replace(hour=0, minute=0, second=0)
    early = max(midnight.astimezone(UTC), now - timedelta(hours=3)) + timedelta(seconds=1)
    won = {"type": "deal.updated", "status": "won"}
    await book(
        db,
        canonical(won["type"], actor="u-1", deal_id="D-1", amount="1200.50", time=early),
        canonical(won["type"], actor="u-2", deal_id="D-2", amount="800", time=now),
        # won, then reopened: no win
        canonical(won["type"], actor="u-3", deal_id="D-3", amount="50", time=early),
        canonical(won["type"], actor="u-3", deal_id="D-3", status="open", time=now),
        # won two days ago, its amount edited today: a win of that day, not of today
        canonical(won["type"], actor="u-1", deal_id="D-4", amount="70",
                  time=now - timedelta(days=2)),
        canonical(won["type"], actor="u-1", deal_id="D-4", amount="90", time=now),
        # nobody on the roster owns it: not on the ticker
        canonical(won["type"], actor="stranger", deal_id="D-5", amount="10", time=now),
    )  # fmt: skip
    today = (await client.get("/v1/wins?window=today", headers=READ)).json()
    assert [(w["deal_id"], w["rep_id"], w["name"], w["team_name"], w["amount"])
            for w in today["wins"]] == [
        ("D-2", "bob", "Bob", "North", 800.0),
        ("D-1", "alice", "Alice", "North", 1200.5),
    ]  # fmt: skip
    assert today["window"] == "today"
    assert datetime.fromisoformat(today["wins"][0]["won_at"]) == now
    week = (await client.get("/v1/wins?window=last_7d", headers=READ)).json()
    assert {w["deal_id"] for w in week["wins"]} == {"D-1", "D-2", "D-4"}
    south = (await client.get("/v1/wins?window=last_7d&team=south", headers=READ)).json()
    assert south["wins"] == []
    one = (await client.get("/v1/wins?window=last_7d&limit=1", headers=READ)).json()
    assert [w["deal_id"] for w in one["wins"]] == ["D-2"]
    exported = await client.get("/v1/wins", headers={**READ, "accept": "text/csv"})
    assert [r["deal_id"] for r in csv.DictReader(io.StringIO(exported.text))] == ["D-2", "D-1"]
    assert (await client.get("/v1/wins")).status_code == 401
