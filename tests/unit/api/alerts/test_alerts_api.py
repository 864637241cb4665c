"""Alerts over the API: saved by admins when their channels (and contest) exist, each refusal a
422 naming its field, every change counted in alerts_version; notifications listed newest first
with their deliveries (JSON and CSV); and the live stream of notifications over a real server,
which sends each new one once and replays after a Last-Event-ID."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.api.alerts.hub import NotificationHub, Seen
from services.api.alerts.repository import NotificationRepository, NotificationRow
from services.api.alerts.service import MAX_ALERTS
from services.api.app import create_app
from shared.settings import Settings
from tests.api_support import ADMIN, READ, events, fields, next_event, served

PUBLIC = "https://93.184.216.34/hook"  # an IP literal: no DNS, and public
THRESHOLD = {"kind": "threshold", "metric": "calls_total", "window": "today", "value": 50}
INSERT_NOTIFICATION = text(
    "INSERT INTO notifications (id, alert_id, kind, scope, subject_id, occurrence, data,"
    " raised_at) VALUES (:id, :alert_id, :kind, :scope, :subject_id, :occurrence, :data,"
    " :raised_at)"
)


def alert(**changes: Any) -> dict[str, Any]:
    return {"name": "50 calls", "channels": ["ops"], "trigger": THRESHOLD, **changes}


async def channel(client: httpx.AsyncClient, channel_id: str = "ops") -> None:
    body = {"kind": "webhook", "url": PUBLIC}
    saved = await client.put(f"/v1/channels/{channel_id}", json=body, headers=ADMIN)
    assert saved.status_code == 200, saved.text


async def alerts_version(db: AsyncEngine) -> int:
    async with db.connect() as conn:
        return int((await conn.execute(text("SELECT version FROM alerts_version"))).scalar_one())


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


async def notify(
    db: AsyncEngine,
    notification_id: str,
    raised_at: datetime,
    *,
    alert_id: str = "calls",
    deliveries: dict[str, str] | None = None,
    **data: Any,
) -> None:
    """A notification and its deliveries, as the KPI flush writes them (and the dispatcher
    updates them): ``deliveries`` maps channel id to status."""
    payload = {
        "alert_id": alert_id,
        "kind": "threshold",
        "subject": {"scope": "rep", "id": "alice", "name": "Alice"},
        "window": "today",
        "metric": "calls_total",
        "value": 50,
        "text": "Alice reached 50 calls_total (today)",
        **data,
    }
    row = {
        "id": notification_id,
        "alert_id": alert_id,
        "kind": "threshold",
        "scope": "rep",
        "subject_id": "alice",
        "occurrence": notification_id,
        "data": json.dumps(payload),
        "raised_at": ms(raised_at),
    }
    async with db.begin() as conn:
        await conn.execute(INSERT_NOTIFICATION, row)
        for channel_id, status in (deliveries or {}).items():
            await conn.execute(
                text(
                    "INSERT INTO notification_deliveries (notification_id, channel_id, status,"
                    " attempts, last_error, next_attempt_at, delivered_at) VALUES (:n, :c, :s,"
                    " :a, :e, :next, :done)"
                ),
                {
                    "n": notification_id,
                    "c": channel_id,
                    "s": status,
                    "a": 0 if status == "pending" else (1 if status == "delivered" else 3),
                    "e": "HTTP 410" if status == "failed" else None,
                    "next": ms(raised_at + timedelta(seconds=30)),
                    "done": ms(raised_at + timedelta(seconds=1)) if status == "delivered" else None,
                },
            )


async def notify_three(db: AsyncEngine) -> None:
    """n1 (delivered to ops, failed to slack), n2 a minute later (pending to ops), n3 another
    minute later (of another alert, without deliveries)."""
    at = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
    await notify(db, "n1", at, deliveries={"ops": "delivered", "slack": "failed"})
    await notify(db, "n2", at + timedelta(minutes=1), deliveries={"ops": "pending"})
    await notify(db, "n3", at + timedelta(minutes=2), alert_id="deals")


# --- alerts -------------------------------------------------------------------------------


async def test_an_alert_is_saved_read_listed_and_deleted_each_change_counted(
    client: httpx.AsyncClient, db: AsyncEngine
) -> None:
    await channel(client)
    before = await alerts_version(db)
    saved = await client.put("/v1/alerts/calls", json=alert(message="{subject}!"), headers=ADMIN)
    assert saved.status_code == 200, saved.text
    expected = {
        "id": "calls",
        "name": "50 calls",
        "channels": ["ops"],
        "enabled": True,
        "message": "{subject}!",
        "trigger": {**THRESHOLD, "scope": "rep", "op": ">=", "value": 50.0},
    }
    assert saved.json() == expected
    assert (await client.get("/v1/alerts/calls", headers=READ)).json() == expected
    assert await alerts_version(db) == before + 1

    changed = await client.put("/v1/alerts/calls", json=alert(enabled=False), headers=ADMIN)
    assert (changed.json()["enabled"], changed.json()["message"]) == (False, None)
    deal = alert(name="Big deal", channels=[], trigger={"kind": "deal_won", "min_amount": 10000})
    assert (await client.put("/v1/alerts/big", json=deal, headers=ADMIN)).status_code == 200
    listed = (await client.get("/v1/alerts", headers=READ)).json()["alerts"]
    assert [(a["id"], a["enabled"]) for a in listed] == [("big", True), ("calls", False)]
    assert await alerts_version(db) == before + 3

    assert (await client.delete("/v1/alerts/calls", headers=ADMIN)).status_code == 204
    assert (await client.get("/v1/alerts/calls", headers=READ)).status_code == 404
    assert (await client.delete("/v1/alerts/calls", headers=ADMIN)).status_code == 404
    assert await alerts_version(db) == before + 4


async def test_alerts_are_capped_and_a_new_one_beyond_the_cap_is_a_problem(
    client: httpx.AsyncClient, db: AsyncEngine
) -> None:
    """3,000 alerts once made every flush slow: beyond MAX_ALERTS a new one is refused,
    while those that exist can still be replaced, and a deletion makes room."""
    async with db.begin() as conn:  # all but one of the cap, as earlier PUTs left them
        await conn.execute(
            text("INSERT INTO alerts (id, name, channels, enabled, message, trigger) "
                 "VALUES (:id, :id, '[]', true, NULL, :trigger)"),
            [{"id": f"a{i:04}", "trigger": json.dumps(THRESHOLD)} for i in range(MAX_ALERTS - 1)],
        )  # fmt: skip
    body = alert(channels=[])
    assert (await client.put("/v1/alerts/last", json=body, headers=ADMIN)).status_code == 200
    before = await alerts_version(db)
    for attempt in range(MAX_ALERTS, 3000, 500):  # on the way to 3,000: each one refused
        refused = await client.put(f"/v1/alerts/b{attempt}", json=body, headers=ADMIN)
        assert refused.status_code == 422, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
        problem = refused.json()
        assert problem["type"].endswith("/too-many-alerts")
        assert f"at most {MAX_ALERTS} alerts" in problem["detail"]
        assert problem["limit"] == MAX_ALERTS
    assert await alerts_version(db) == before  # nothing was counted as a change
    assert len((await client.get("/v1/alerts", headers=READ)).json()["alerts"]) == MAX_ALERTS

    replaced = await client.put("/v1/alerts/a0001", json=alert(channels=[], name="New name"),
                                headers=ADMIN)  # fmt: skip
    assert replaced.status_code == 200, replaced.text
    assert (await client.delete("/v1/alerts/a0002", headers=ADMIN)).status_code == 204
    assert (await client.put("/v1/alerts/b1", json=body, headers=ADMIN)).status_code == 200


async def test_unknown_channels_are_named_and_listed(client: httpx.AsyncClient) -> None:
    await channel(client)
    refused = await client.put(
        "/v1/alerts/calls", json=alert(channels=["ops", "nowhere", "void"]), headers=ADMIN
    )
    assert fields(refused) == ["body.channels"]
    assert "'nowhere', 'void'" in refused.json()["detail"]
    assert "'ops'" not in refused.json()["detail"]
    assert (await client.get("/v1/alerts/calls", headers=READ)).status_code == 404


async def test_an_unknown_placeholder_is_refused_naming_the_message(
    client: httpx.AsyncClient,
) -> None:
    await channel(client)
    refused = await client.put(
        "/v1/alerts/calls", json=alert(message="{subject} hit {quota}"), headers=ADMIN
    )
    assert fields(refused) == ["body.message"]
    assert "quota" in refused.json()["detail"]


async def test_a_contest_won_alert_needs_an_existing_contest(client: httpx.AsyncClient) -> None:
    await channel(client)
    won = alert(trigger={"kind": "contest_won", "contest_id": "blitz"})
    assert fields(await client.put("/v1/alerts/won", json=won, headers=ADMIN)) == [
        "body.trigger.contest_id"
    ]
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    contest = {
        "name": "Call blitz",
        "starts_at": (now - timedelta(hours=1)).isoformat(),
        "ends_at": (now + timedelta(hours=1)).isoformat(),
        "score": {"metric": "calls_total"},
    }
    assert (await client.put("/v1/contests/blitz", json=contest, headers=ADMIN)).status_code == 200
    assert (await client.put("/v1/alerts/won", json=won, headers=ADMIN)).status_code == 200
    any_contest = alert(trigger={"kind": "contest_won"})
    saved = await client.put("/v1/alerts/any", json=any_contest, headers=ADMIN)
    assert saved.json()["trigger"] == {"kind": "contest_won", "contest_id": None}


async def test_unknown_channels_and_contest_are_refused_together(
    client: httpx.AsyncClient,
) -> None:
    both = alert(channels=["nowhere"], trigger={"kind": "contest_won", "contest_id": "blitz"})
    refused = await client.put("/v1/alerts/won", json=both, headers=ADMIN)
    assert fields(refused) == ["body.channels", "body.trigger.contest_id"]


async def test_a_read_key_cannot_change_alerts(client: httpx.AsyncClient, db: AsyncEngine) -> None:
    await channel(client)
    assert (await client.put("/v1/alerts/calls", json=alert(), headers=ADMIN)).status_code == 200
    before = await alerts_version(db)
    assert (await client.put("/v1/alerts/calls", json=alert(), headers=READ)).status_code == 403
    assert (await client.delete("/v1/alerts/calls", headers=READ)).status_code == 403
    assert (await client.get("/v1/alerts/calls")).status_code == 401
    assert (await client.get("/v1/alerts/calls", headers=READ)).status_code == 200
    assert await alerts_version(db) == before


# --- notifications ------------------------------------------------------------------------


async def test_notifications_are_listed_newest_first_with_their_deliveries(
    client: httpx.AsyncClient, db: AsyncEngine
) -> None:
    await notify_three(db)
    answer = await client.get("/v1/notifications", headers=READ)
    assert answer.status_code == 200, answer.text
    shown = answer.json()["notifications"]
    assert [n["id"] for n in shown] == ["n3", "n2", "n1"]
    assert shown[2] == {
        "id": "n1",
        "alert_id": "calls",
        "kind": "threshold",
        "subject": {"scope": "rep", "id": "alice"},
        "raised_at": "2026-11-26T09:00:00Z",
        "data": {
            "alert_id": "calls",
            "kind": "threshold",
            "subject": {"scope": "rep", "id": "alice", "name": "Alice"},
            "window": "today",
            "metric": "calls_total",
            "value": 50,
            "text": "Alice reached 50 calls_total (today)",
        },
        "deliveries": [
            {
                "channel_id": "ops",
                "status": "delivered",
                "attempts": 1,
                "last_error": None,
                "next_attempt_at": None,
                "delivered_at": "2026-11-26T09:00:01Z",
            },
            {
                "channel_id": "slack",
                "status": "failed",
                "attempts": 3,
                "last_error": "HTTP 410",
                "next_attempt_at": None,
                "delivered_at": None,
            },
        ],
    }
    pending = shown[1]["deliveries"][0]
    assert (pending["status"], pending["next_attempt_at"]) == ("pending", "2026-11-26T09:01:30Z")
    assert shown[0]["deliveries"] == []


async def test_notifications_are_filtered_by_alert_and_delivery_status_and_limited(
    client: httpx.AsyncClient, db: AsyncEngine
) -> None:
    await notify_three(db)

    async def ids(query: str) -> list[str]:
        answer = await client.get(f"/v1/notifications?{query}", headers=READ)
        assert answer.status_code == 200, answer.text
        return [n["id"] for n in answer.json()["notifications"]]

    assert await ids("alert=calls") == ["n2", "n1"]
    assert await ids("status=failed") == ["n1"]
    assert await ids("status=pending") == ["n2"]
    assert await ids("alert=deals&status=delivered") == []
    assert await ids("limit=2") == ["n3", "n2"]
    bad = await client.get("/v1/notifications?status=lost&limit=1001", headers=READ)
    assert sorted(fields(bad)) == ["query.limit", "query.status"]


async def test_notifications_export_as_csv_one_row_each(
    client: httpx.AsyncClient, db: AsyncEngine
) -> None:
    at = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
    failed_twice = {"ops": "delivered", "slack": "failed", "teams": "failed"}
    await notify(db, "n1", at, deliveries=failed_twice)
    await notify(db, "n2", at + timedelta(minutes=1), text="=HYPERLINK(evil)")
    answer = await client.get("/v1/notifications", headers={**READ, "accept": "text/csv"})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert list(rows[0]) == [
        "id",
        "alert_id",
        "kind",
        "subject.scope",
        "subject.id",
        "raised_at",
        "data.window",
        "data.metric",
        "data.value",
        "data.text",
        "channels.pending",
        "channels.delivered",
        "channels.failed",
        "last_error",
    ]
    assert [r["id"] for r in rows] == ["n2", "n1"]
    assert rows[0]["data.text"] == "'=HYPERLINK(evil)"  # inert in a spreadsheet
    assert rows[1] | {"data.text": ""} == {
        "id": "n1",
        "alert_id": "calls",
        "kind": "threshold",
        "subject.scope": "rep",
        "subject.id": "alice",
        "raised_at": "2026-11-26T09:00:00Z",
        "data.window": "today",
        "data.metric": "calls_total",
        "data.value": "50",
        "data.text": "",
        "channels.pending": "",
        "channels.delivered": "ops",
        "channels.failed": "slack teams",
        "last_error": "HTTP 410",
    }


# --- the stream ---------------------------------------------------------------------------


@pytest.fixture
def app(make_settings: Callable[..., Settings], db: AsyncEngine) -> FastAPI:
    app = create_app(make_settings(), db)
    app.state.notification_hub = NotificationHub(db, poll_s=0.05, heartbeat_s=0.5)
    return app


@pytest.fixture
async def server(app: FastAPI) -> AsyncIterator[str]:
    async with served(app) as url:
        yield url


STREAM = "/v1/stream/notifications"


async def test_a_notification_raised_while_connected_arrives_once_with_its_id(
    server: str, db: AsyncEngine, app: FastAPI
) -> None:
    old = datetime.now(UTC) - timedelta(minutes=1)
    await notify(db, "before", old)
    async with (
        httpx.AsyncClient(base_url=server, timeout=10) as client,
        client.stream("GET", STREAM, headers=READ) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        stream = events(response)
        await notify(db, "fresh", datetime.now(UTC), deliveries={"ops": "pending"})
        raised = time.monotonic()
        kind, event_id, data = await next_event(stream)
        assert time.monotonic() - raised < 1.0
        assert (kind, event_id, data["id"]) == ("notification", "fresh", "fresh")
        assert data["subject"] == {"scope": "rep", "id": "alice"}
        assert data["data"]["text"] == "Alice reached 50 calls_total (today)"
        with pytest.raises(TimeoutError):  # sent once; "before" never
            await next_event(stream, 0.6)
        hub: NotificationHub = app.state.notification_hub
        assert (hub.listeners, hub.polling) == (1, True)


async def test_a_notification_committed_late_with_an_earlier_stamp_is_still_sent(
    server: str, db: AsyncEngine
) -> None:
    async with (
        httpx.AsyncClient(base_url=server, timeout=10) as client,
        client.stream("GET", STREAM, headers=READ) as response,
    ):
        stream = events(response)
        await asyncio.sleep(0.2)
        await notify(db, "b-later", datetime.now(UTC))
        assert (await next_event(stream))[1] == "b-later"
        # Stamped before "b-later" inside a flush that committed after it.
        await notify(db, "a-earlier", datetime.now(UTC) - timedelta(seconds=2))
        assert (await next_event(stream))[1] == "a-earlier"


async def test_last_event_id_replays_only_the_notifications_raised_after_it(
    server: str, db: AsyncEngine
) -> None:
    at = datetime.now(UTC) - timedelta(minutes=10)
    for i in range(1, 5):
        await notify(db, f"n{i}", at + timedelta(minutes=i))
    async with httpx.AsyncClient(base_url=server, timeout=10) as client:
        headers = {**READ, "last-event-id": "n2"}
        async with client.stream("GET", STREAM, headers=headers) as response:
            stream = events(response)
            assert [(await next_event(stream))[1] for _ in range(2)] == ["n3", "n4"]
            await notify(db, "n5", datetime.now(UTC))
            assert (await next_event(stream))[1] == "n5"
            with pytest.raises(TimeoutError):
                await next_event(stream, 0.6)
        unknown = {**READ, "last-event-id": "never-was"}
        async with client.stream("GET", STREAM, headers=unknown) as response:
            with pytest.raises(TimeoutError):  # nothing old for an id it does not know
                await next_event(events(response), 0.6)


async def test_the_stream_sends_heartbeats_and_the_poller_stops_with_the_last_listener(
    server: str, app: FastAPI
) -> None:
    hub: NotificationHub = app.state.notification_hub
    async with (
        httpx.AsyncClient(base_url=server, timeout=10) as client,
        client.stream("GET", STREAM, headers=READ) as response,
    ):
        lines = response.aiter_lines()
        assert await asyncio.wait_for(anext(lines), 2) == ": heartbeat"
        assert hub.polling
    deadline = time.monotonic() + 5
    while hub.polling or hub.listeners:
        assert time.monotonic() < deadline, "the poller outlived its listeners"
        await asyncio.sleep(0.05)


async def test_a_read_key_in_the_query_string_may_listen(server: str) -> None:
    key = READ["authorization"].removeprefix("Bearer ")
    async with (
        httpx.AsyncClient(base_url=server, timeout=10) as client,
        client.stream("GET", f"{STREAM}?key={key}") as response,
    ):
        assert response.status_code == 200


# --- what the poller remembers --------------------------------------------------------------


def row(notification_id: str, raised_at: int) -> NotificationRow:
    return NotificationRow(notification_id, "a", "deal_won", "rep", "alice", {}, raised_at)


def test_old_rows_are_remembered_not_sent_and_late_ones_are_sent_once() -> None:
    seen = Seen(cutoff_ms=10_000, lookback_ms=1_000)
    assert seen.floor_ms() == 9_000
    first = seen.take([row("old", 9_500), row("new", 10_100)], batch=10)
    assert [r.id for r in first] == ["new"]
    late = seen.take([row("old", 9_500), row("late", 9_900), row("new", 10_100)], batch=10)
    assert [r.id for r in late] == ["late"]
    assert seen.take([row("new", 10_100)], batch=10) == []
    assert seen.floor_ms() == 9_100


def test_only_the_look_back_window_is_remembered_and_a_full_batch_reads_on() -> None:
    seen = Seen(cutoff_ms=0, lookback_ms=1_000)
    seen.take([row("a", 100), row("b", 5_000)], batch=10)
    assert set(seen.ids) == {"b"}  # "a" fell out of the window: it will not be read again
    seen.take([row("c", 6_000), row("d", 7_000)], batch=2)
    assert (seen.catching_up, seen.floor_ms()) == (True, 7_000)
    assert set(seen.ids) == {"c", "d"}  # the look-back window, read again once caught up


async def test_the_stream_pages_past_a_full_batch_raised_at_one_instant(db: AsyncEngine) -> None:
    """One pace check or settlement stamps all its notifications with one instant: a poll that
    fills its batch among them must page on past its last id, not read the same rows again."""
    instant = 1_800_000_000_000
    rows = [
        {
            "id": f"ntf_{i:04d}",
            "alert_id": "a",
            "kind": "behind_pace",
            "scope": "rep",
            "subject_id": f"r{i}",
            "occurrence": "d",
            "data": "{}",
            "raised_at": instant,
        }
        for i in range(12)
    ]
    late = {**rows[0], "id": "ntf_late", "subject_id": "x", "raised_at": instant + 5}
    rows.append(late)
    async with db.begin() as conn:
        await conn.execute(INSERT_NOTIFICATION, rows)
    seen, taken = Seen(cutoff_ms=instant - 1), []
    for _ in range(6):
        async with db.connect() as conn:
            after = seen.high_id if seen.catching_up else None
            page = await NotificationRepository(conn).raised_since(seen.floor_ms(), 5, after)
        taken += [row.id for row in seen.take(page, 5)]
    assert taken == [r["id"] for r in rows]
