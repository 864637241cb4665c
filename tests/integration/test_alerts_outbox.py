"""Alerts decided in the KPI flush, on a real PostgreSQL: a crossing is written once (with a
pending delivery per channel) in the transaction of the aggregates that caused it, whatever is
duplicated, reordered, corrected or replayed afterwards."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.api.app import create_app
from shared.settings import Settings
from tests.api_support import api_client, book, floor, put_targets
from tests.conftest import canonical

NOW = datetime.now(UTC)


@pytest.fixture
async def db(
    pg: AsyncEngine, postgres_url: str, make_settings: Callable[..., Settings]
) -> AsyncEngine:
    app = create_app(make_settings(database_url=postgres_url), pg)
    async with api_client(app) as c:
        await floor(c)
        await put_targets(c, "teams", "revenue", "month", north=3000)
    return pg


async def alert(db: AsyncEngine, alert_id: str, trigger: dict[str, Any], **more: Any) -> None:
    """An alert as the alerts API stores it (a row, and the alerts version bumped)."""
    async with db.begin() as conn:
        await conn.execute(
            text("INSERT INTO alerts (id, name, channels, enabled, message, trigger) "
                 "VALUES (:id, :name, :channels, true, :message, :trigger)"),
            {"id": alert_id, "name": more.get("name", alert_id), "message": more.get("message"),
             "channels": json.dumps(more.get("channels", ["ops"])), "trigger": json.dumps(trigger)},
        )  # fmt: skip
        await conn.execute(text("UPDATE alerts_version SET version = version + 1"))


async def raised(db: AsyncEngine) -> list[dict[str, Any]]:
    async with db.connect() as conn:
        rows = await conn.execute(text(
            "SELECT n.id, n.alert_id, n.subject_id, n.data, count(d.channel_id) AS deliveries "
            "FROM notifications n LEFT JOIN notification_deliveries d ON d.notification_id = n.id "
            "GROUP BY n.id ORDER BY n.raised_at, n.id"
        ))  # fmt: skip
        return [
            {"alert": a, "subject": s, "data": json.loads(d), "deliveries": n, "id": i}
            for i, a, s, d, n in rows
        ]


def calls(actor: str, n: int, at: datetime = NOW) -> list[dict[str, Any]]:
    return [canonical("call.placed", actor=actor, time=at) for _ in range(n)]


async def test_a_threshold_fires_once_per_subject_and_day_whatever_comes_after(
    db: AsyncEngine,
) -> None:
    await alert(db, "fifty", {"kind": "threshold", "metric": "calls_total", "window": "today",
                              "value": 3}, message="{subject} made {value} calls",
                channels=["ops", "slack"])  # fmt: skip
    first = calls("u-1", 2)
    await book(db, *first)
    assert await raised(db) == []

    third = calls("u-1", 1)
    await book(db, *third)
    once = await raised(db)
    assert [(n["alert"], n["subject"], n["deliveries"]) for n in once] == [("fifty", "alice", 2)]
    assert once[0]["data"]["text"] == "Alice made 3 calls"
    assert once[0]["data"]["subject"] == {"scope": "rep", "id": "alice", "name": "Alice"}

    # Duplicates, reordered, then more calls the same day: still one notification.
    await book(db, *reversed(first + third))
    await book(db, *calls("u-1", 4))
    assert [n["id"] for n in await raised(db)] == [once[0]["id"]]
    # Bob crosses too: his own notification.
    await book(db, *calls("u-2", 3))
    assert [n["subject"] for n in await raised(db)] == ["alice", "bob"]


async def test_deal_won_fires_once_per_win_at_or_above_the_amount(db: AsyncEngine) -> None:
    await alert(db, "big", {"kind": "deal_won", "min_amount": 15000})
    won = canonical("deal.updated", actor="u-2", time=NOW - timedelta(minutes=5), deal_id="D-9",
                    amount="15000.00")  # fmt: skip
    small = canonical("deal.updated", actor="u-1", time=NOW, deal_id="D-1", amount="900.00")
    await book(db, won, small)
    first = await raised(db)
    assert [(n["subject"], n["data"]["amount"]) for n in first] == [("bob", 15000.0)]
    assert (
        first[0]["data"]["text"] == "Bob a conclu une affaire de 15\u202f000\xa0€"
    )  # LOCALE fr-FR

    edit = canonical("deal.updated", actor="u-2", time=NOW - timedelta(minutes=4), deal_id="D-9",
                     amount="16000.00", status=None)  # fmt: skip
    await book(db, won, edit)  # a duplicate, then an edit of the amount: not a new win
    assert len(await raised(db)) == 1

    reopened = canonical("deal.updated", actor="u-2", time=NOW - timedelta(minutes=3),
                         deal_id="D-9", status="open")  # fmt: skip
    again = canonical("deal.updated", actor="u-2", time=NOW - timedelta(minutes=2), deal_id="D-9",
                      amount="16000.00")  # fmt: skip
    await book(db, reopened)
    await book(db, again)  # won again, at a new time: a new win
    assert [n["data"]["amount"] for n in await raised(db)] == [15000.0, 16000.0]


async def test_a_team_reaching_its_monthly_target_and_a_new_leader(db: AsyncEngine) -> None:
    await alert(db, "quota", {"kind": "target_reached", "metric": "revenue", "period": "month",
                              "scope": "team"})  # fmt: skip
    await alert(db, "leader", {"kind": "new_leader", "metric": "calls_total",
                               "window": "today"})  # fmt: skip
    deal = canonical("deal.updated", actor="u-1", time=NOW, deal_id="D-1", amount="2000.00")
    await book(db, deal, *calls("u-1", 2))
    assert [(n["alert"], n["subject"]) for n in await raised(db)] == [("leader", "alice")]

    more = canonical("deal.updated", actor="u-2", time=NOW, deal_id="D-2", amount="1000.00")
    await book(db, more, *calls("u-3", 2))  # North reaches 3,000; Carol ties Alice: no leader
    assert [(n["alert"], n["subject"]) for n in await raised(db)] == [
        ("leader", "alice"), ("quota", "north"),
    ]  # fmt: skip
    await book(db, *calls("u-3", 1))  # Carol leads alone now
    found = await raised(db)
    assert [(n["alert"], n["subject"]) for n in found][-1] == ("leader", "carol")
    assert found[1]["data"]["target"] == 3000


async def test_a_long_deal_id_and_a_stale_alert_stop_nothing(db: AsyncEngine) -> None:
    await alert(db, "wins", {"kind": "deal_won"})
    await alert(db, "stale", {"kind": "threshold", "metric": "no_longer_a_metric",
                              "window": "today", "value": 1})  # fmt: skip
    long_id = "D-" + "x" * 250
    won = canonical("deal.updated", actor="u-1", time=NOW, deal_id=long_id, amount="500.00")
    await book(db, won, *calls("u-1", 2))
    found = await raised(db)
    assert [(n["alert"], n["data"]["deal_id"]) for n in found] == [("wins", long_id)]


async def test_alerts_watching_one_scope_and_window_share_one_read(db: AsyncEngine) -> None:
    """Sixty thresholds and targets on the reps' day, of several metrics: one statement reads
    the values for all of them (one per alert once made 3,000 alerts cost 1.6 s a flush),
    and each alert still fires on its own metric and value."""
    metrics = ["calls_total", "calls_placed", "talk_seconds"]
    for i in range(60):
        await alert(db, f"t{i:02}", {"kind": "threshold", "metric": metrics[i % 3],
                                     "window": "today", "value": i})  # fmt: skip
    await alert(db, "quota", {"kind": "target_reached", "metric": "calls_total", "period": "day"})
    async with db.begin() as conn:  # Alice's day target: 3 calls
        await conn.execute(text("INSERT INTO targets (scope, subject_id, metric, period, value) "
                                "VALUES ('rep', 'alice', 'calls_total', 'day', 3)"))  # fmt: skip
    statements: list[str] = []

    def seen(_c: Any, _cur: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    event.listen(db.sync_engine, "before_cursor_execute", seen)
    try:
        await book(db, *calls("u-1", 3, NOW), canonical("call.placed", actor="u-1", time=NOW,
                                                         talk_seconds=40))  # fmt: skip
    finally:
        event.remove(db.sync_engine, "before_cursor_execute", seen)
    reads = [s for s in statements if "FROM kpi_rollups" in s and "GROUP BY" in s]
    assert len(reads) == 1, reads  # the reps' today: every alert's counters side by side
    fired = {n["alert"] for n in await raised(db)}
    # Alice now has 4 calls, all placed, and 3 x 60 + 40 = 220 seconds of talk.
    expected = {f"t{i:02}" for i in range(60) if i <= (4, 4, 220)[i % 3]}
    assert fired == expected | {"quota"}
