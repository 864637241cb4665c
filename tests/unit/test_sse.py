"""The live leaderboard stream, over a real HTTP server: pushed within a second of a change."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services.api.app import create_app
from shared.settings import Settings
from tests.api_support import READ, book, floor, served
from tests.conftest import canonical


@pytest.fixture
async def server(make_settings: Callable[..., Settings], db: AsyncEngine) -> AsyncIterator[str]:
    async with served(create_app(make_settings(), db)) as url:
        yield url


async def events(response: httpx.Response) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    event_id, data = "", ""
    async for line in response.aiter_lines():
        if line.startswith("id: "):
            event_id = line[4:]
        elif line.startswith("data: "):
            data = line[6:]
        elif line == "" and data:
            yield event_id, json.loads(data)
            event_id, data = "", ""


async def test_a_change_is_pushed_within_a_second_and_last_event_id_is_honoured(
    server: str, db: AsyncEngine
) -> None:
    async with httpx.AsyncClient(base_url=server, timeout=10) as client:
        await floor(client)
        url = "/v1/stream/leaderboards/calls_total?window=today"
        async with client.stream("GET", url, headers=READ) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            stream = events(response)
            first_id, first = await asyncio.wait_for(anext(stream), 5)
            assert {r["rep_id"]: r["value"] for r in first["rows"]}["alice"] == 0
            await book(db, canonical("call.placed", actor="u-1"))
            changed_at = time.monotonic()
            second_id, second = await asyncio.wait_for(anext(stream), 5)
            assert time.monotonic() - changed_at < 1.0
            assert {r["rep_id"]: r["value"] for r in second["rows"]}["alice"] == 1
            assert second_id != first_id
        # A screen reconnecting with the board it has gets nothing until the board changes.
        async with client.stream("GET", url, headers={**READ, "last-event-id": second_id}) as again:
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(anext(events(again)), 1.0)
