"""Helpers for the API's tests: an API on a real SQLite file, a small floor, booked events."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import orjson
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from services.api.common.freshness import DataVersion, data_version
from services.api.live.hub import BoardHub
from services.kpi.domain.engine import Engine
from services.kpi.flush import Booking, KpiStore
from services.runner import serve
from shared import events as ev
from shared.bus import Record
from shared.settings import Settings
from tests.conftest import ADMIN_KEY, READ_KEY

ADMIN = {"authorization": f"Bearer {ADMIN_KEY}"}
READ = {"authorization": f"Bearer {READ_KEY}"}
Event = tuple[str, str, dict[str, Any]]  # (event type, id, data)


@asynccontextmanager
async def api_client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client calling ``app`` in-process."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as c:
        yield c


async def book(db: AsyncEngine, *bodies: dict[str, Any]) -> None:
    """What the KPI service does with these events (the same store and engine)."""
    engine = Engine(Settings().tz, "EUR")
    store = KpiStore(db, engine, "g", "t")
    offset = (await store.load_offsets("t", [0])).get(0, 0)
    records = [Record("t", 0, offset + i, b"k", orjson.dumps(b), 0) for i, b in enumerate(bodies)]
    events = [ev.parse_event(r.value) for r in records]
    await store.flush(Booking(records, [(e, engine.contributions(e)) for e in events]))


async def floor(client: httpx.AsyncClient) -> None:
    for team_id, name in (("north", "North"), ("south", "South")):
        assert (
            await client.put(f"/v1/teams/{team_id}", json={"name": name}, headers=ADMIN)
        ).status_code == 200
    for rep_id, name, team, ident in (
        ("alice", "Alice", "north", "u-1"),
        ("bob", "Bob", "north", "u-2"),
        ("carol", "Carol", "south", "u-3"),
    ):
        body = {
            "name": name,
            "team_id": team,
            "effective_from": "2020-01-01T00:00:00Z",
            "identities": [{"provider": "crm", "external_id": ident}],
        }
        assert (await client.put(f"/v1/reps/{rep_id}", json=body, headers=ADMIN)).status_code == 200


async def put_targets(
    client: httpx.AsyncClient, scope: str, metric: str, period: str, **values: float
) -> None:
    """A target of ``metric`` per ``period`` for each subject of ``scope`` (``reps`` or
    ``teams``) named in ``values``, one PUT each."""
    for subject, value in values.items():
        path = f"/v1/targets/{scope}/{subject}/{metric}/{period}"
        put = await client.put(path, json={"value": value}, headers=ADMIN)
        assert put.status_code == 200


def fields(response: httpx.Response) -> list[str]:
    """The fields a 422 problem names."""
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    return [e["field"] for e in response.json()["errors"]]


def assert_problem(response: httpx.Response, status: int, detail_part: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert detail_part in response.json()["detail"]


@asynccontextmanager
async def served(app: FastAPI) -> AsyncIterator[str]:
    """``app`` on a real HTTP server on 127.0.0.1 (a free port), until the block ends."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    stop = asyncio.Event()
    task = asyncio.create_task(serve(app, "127.0.0.1", port, stop))
    url = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient() as client:
        for _ in range(200):
            with contextlib.suppress(httpx.TransportError):
                if (await client.get(f"{url}/healthz")).status_code == 200:
                    break
            await asyncio.sleep(0.05)
    try:
        yield url
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


async def events(response: httpx.Response) -> AsyncIterator[Event]:
    """The server-sent events of a streamed ``response``, as they come."""
    kind, event_id, data = "message", "", ""
    async for line in response.aiter_lines():
        if line.startswith("id: "):
            event_id = line[4:]
        elif line.startswith("event: "):
            kind = line[7:]
        elif line.startswith("data: "):
            data = line[6:]
        elif line == "" and data:
            yield kind, event_id, json.loads(data)
            kind, event_id, data = "message", "", ""


async def next_event(stream: AsyncIterator[Event], within_s: float = 5) -> Event:
    return await asyncio.wait_for(anext(stream), within_s)


class FlakyVersion:
    """The data version as the live boards read it, with a switch that makes the database
    refuse connections (as asyncpg does while PostgreSQL restarts)."""

    def __init__(self, db: AsyncEngine) -> None:
        self.db, self.down, self.calls = db, False, 0

    async def __call__(self) -> DataVersion:
        self.calls += 1
        if self.down:
            raise ConnectionRefusedError("connection refused: the database is down")
        return await data_version(self.db)


def flaky_hub(app: FastAPI, db: AsyncEngine, **options: Any) -> FlakyVersion:
    """Give ``app`` live boards that poll fast and read the version through a switch."""
    flaky = FlakyVersion(db)
    settings: dict[str, Any] = {"poll_s": 0.05, "heartbeat_s": 0.5, "max_backoff_s": 0.2}
    app.state.board_hub = BoardHub(app.state.boards, db, **{**settings, **options}, version=flaky)
    return flaky
