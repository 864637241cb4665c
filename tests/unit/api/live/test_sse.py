"""The live leaderboard stream, over a real HTTP server: pushed within a second of a change,
honest about a database it cannot read, and holding nothing once its screens have gone."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from services.api.app import create_app
from services.api.leaderboards.service import BoardSpec
from services.api.live.hub import BoardHub
from shared.settings import Settings
from tests.api_support import (
    READ,
    assert_problem,
    book,
    events,
    flaky_hub,
    floor,
    next_event,
    served,
)
from tests.conftest import canonical

URL = "/v1/stream/leaderboards/calls_total?window=today"
TODAY = BoardSpec("rep", "calls_total", "today")


@pytest.fixture
def app(make_settings: Callable[..., Settings], db: AsyncEngine) -> FastAPI:
    return create_app(make_settings(), db)


@pytest.fixture
async def server(app: FastAPI) -> AsyncIterator[str]:
    async with served(app) as url:
        yield url


def values(board: dict[str, Any]) -> dict[str, Any]:
    return {r["rep_id"]: r["value"] for r in board["rows"]}


async def test_a_change_is_pushed_within_a_second_and_last_event_id_is_honoured(
    server: str, db: AsyncEngine
) -> None:
    async with httpx.AsyncClient(base_url=server, timeout=10) as client:
        await floor(client)
        async with client.stream("GET", URL, headers=READ) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            stream = events(response)
            kind, first_id, first = await next_event(stream)
            assert kind == "leaderboard"
            assert values(first)["alice"] == 0
            await book(db, canonical("call.placed", actor="u-1"))
            changed_at = time.monotonic()
            _, second_id, second = await next_event(stream)
            assert time.monotonic() - changed_at < 1.0
            assert values(second)["alice"] == 1
            assert second_id != first_id
        # A screen reconnecting with the board it has gets nothing until the board changes.
        async with client.stream("GET", URL, headers={**READ, "last-event-id": second_id}) as again:
            with pytest.raises(TimeoutError):
                await next_event(events(again), 1.0)


async def test_a_database_failure_is_announced_and_the_stream_resumes_when_it_heals(
    app: FastAPI, db: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    flaky = flaky_hub(app, db)
    async with served(app) as url, httpx.AsyncClient(base_url=url, timeout=10) as client:
        await floor(client)
        async with client.stream("GET", URL, headers=READ) as response:
            stream = events(response)
            kind, first_id, _ = await next_event(stream)
            assert kind == "leaderboard"
            with caplog.at_level(logging.WARNING, logger="services.api.live.hub"):
                flaky.down = True
                assert await next_event(stream) == (
                    "status",
                    "",  # no id: the screen's Last-Event-ID stays its board's
                    {"live": False, "reason": "database unavailable"},
                )
                failed_at = flaky.calls
                await book(db, canonical("call.placed", actor="u-1"))
                await asyncio.sleep(1.0)  # retried with a backoff, not given up
                assert flaky.calls - failed_at >= 3
            assert "live boards cannot refresh; retrying" in caplog.text
            flaky.down = False
            assert await next_event(stream) == ("status", "", {"live": True})
            kind, board_id, board = await next_event(stream)
            assert (kind, values(board)["alice"]) == ("leaderboard", 1)
            assert board_id != first_id
            await book(db, canonical("call.placed", actor="u-1"))  # and it goes on
            assert values((await next_event(stream))[2])["alice"] == 2


async def test_a_board_that_cannot_be_computed_is_not_live_until_it_can(
    app: FastAPI, db: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    flaky_hub(app, db)
    boards = app.state.boards
    compute = boards.board

    async def failing(*args: Any, **kwargs: Any) -> Any:
        raise ConnectionResetError("connection lost while reading the buckets")

    async with served(app) as url, httpx.AsyncClient(base_url=url, timeout=10) as client:
        await floor(client)
        monkeypatch.setattr(boards, "board", failing)
        async with client.stream("GET", URL, headers=READ) as response:
            stream = events(response)
            assert await next_event(stream) == (
                "status",
                "",
                {"live": False, "reason": "database unavailable"},
            )
            monkeypatch.setattr(boards, "board", compute)
            assert await next_event(stream) == ("status", "", {"live": True})
            assert (await next_event(stream))[0] == "leaderboard"


async def test_the_hub_keeps_nothing_for_a_board_once_its_last_screen_leaves(
    app: FastAPI, db: AsyncEngine
) -> None:
    flaky = flaky_hub(app, db)
    hub: BoardHub[BoardSpec] = app.state.board_hub
    async with served(app) as url, httpx.AsyncClient(base_url=url, timeout=10) as client:
        await floor(client)
        async with (
            client.stream("GET", URL, headers=READ) as one,
            client.stream("GET", URL, headers=READ) as two,
        ):
            # Each reader kept: dropping one closes its connection.
            readers = [events(one), events(two)]
            for reader in readers:
                await next_event(reader)
            assert hub.holds(TODAY)
            assert (hub.streams, hub.polling) == (1, True)
        await until(lambda: not hub.holds(TODAY) and not hub.polling)
        assert hub.streams == 0
        calls = flaky.calls
        await asyncio.sleep(0.3)
        assert flaky.calls == calls  # nobody listens: the database is not polled


async def test_one_poller_serves_every_distinct_board(app: FastAPI, db: AsyncEngine) -> None:
    flaky = flaky_hub(app, db, poll_s=0.1)
    hub: BoardHub[BoardSpec] = app.state.board_hub
    async with served(app) as url, httpx.AsyncClient(base_url=url, timeout=10) as client:
        await floor(client)
        async with (
            client.stream("GET", f"{URL}&limit=1", headers=READ) as one,
            client.stream("GET", f"{URL}&limit=2", headers=READ) as two,
            client.stream("GET", f"{URL}&team=north", headers=READ) as three,
        ):
            readers = [events(response) for response in (one, two, three)]
            for reader in readers:
                await next_event(reader)
            assert hub.streams == 3
            pollers = [t for t in asyncio.all_tasks() if t.get_name() == "board-hub-poller"]
            assert len(pollers) == 1
            calls, began = flaky.calls, time.monotonic()
            await asyncio.sleep(1.0)
            polls = (time.monotonic() - began) / 0.1
            assert flaky.calls - calls <= polls + 2  # one version query per interval, not three


async def test_distinct_live_boards_are_capped_with_a_503_and_retry_after(
    app: FastAPI, db: AsyncEngine
) -> None:
    flaky_hub(app, db, max_streams=2)
    async with served(app) as url, httpx.AsyncClient(base_url=url, timeout=10) as client:
        await floor(client)
        async with (
            client.stream("GET", f"{URL}&limit=1", headers=READ) as one,
            client.stream("GET", f"{URL}&limit=2", headers=READ) as two,
        ):
            readers = [events(response) for response in (one, two)]
            for reader in readers:
                await next_event(reader)
            refused = await client.get(f"{URL}&limit=3", headers=READ)
            assert_problem(refused, 503, "2 distinct live boards")
            assert refused.headers["retry-after"] == "30"
            async with client.stream("GET", f"{URL}&limit=2", headers=READ) as same_board:
                assert (await next_event(events(same_board)))[0] == "leaderboard"


async def until(condition: Callable[[], bool], within_s: float = 5.0) -> None:
    deadline = time.monotonic() + within_s
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)
