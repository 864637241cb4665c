"""A ``serve``-shaped stack for the connection tests: one SQLite database, its log bus, the
ingest app (its lifespan run, so that enrichment runs), the API, and the KPI service run until
what it booked is visible."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
from sqlalchemy.ext.asyncio import AsyncEngine

from services.api.app import create_app as create_api
from services.ingest.app import create_app as create_ingest
from services.kpi.app import build_kpi_service
from shared.bus import Bus, build_bus
from shared.db.engine import create_engine
from shared.db.migrate import migrate
from shared.settings import Settings
from tests.conftest import ADMIN_KEY
from tests.kpi_support import run_kpi_until

AUTH = {"authorization": f"Bearer {ADMIN_KEY}"}


async def _nothing_stored(_: str, __: list[int]) -> dict[int, int]:
    return {}


@dataclass
class Stack:
    settings: Settings
    db: AsyncEngine
    bus: Bus
    api: httpx.AsyncClient

    async def rep(self, rep_id: str, *identities: tuple[str, str], team: str = "north") -> None:
        await self.api.put(f"/v1/teams/{team}", json={"name": team.title()}, headers=AUTH)
        body = {
            "name": rep_id.title(),
            "team_id": team,
            "effective_from": "2020-01-01T00:00:00Z",
            "identities": [{"provider": p, "external_id": x} for p, x in identities],
        }
        response = await self.api.put(f"/v1/reps/{rep_id}", json=body, headers=AUTH)
        assert response.is_success, response.text

    async def kpis(self, rep_id: str, window: dict[str, str], *metrics: str) -> dict[str, Any]:
        response = await self.api.get(
            f"/v1/reps/{rep_id}/kpis",
            headers=AUTH,
            params={**window, "metrics": ",".join(metrics)},
        )
        assert response.status_code == 200, response.text
        found: dict[str, Any] = response.json()["metrics"]
        return found

    async def run_kpi_until(
        self, done: Callable[[], Awaitable[bool]], settle: float = 0.5, seconds: float = 30
    ) -> None:
        service = build_kpi_service(self.settings, self.bus, self.db)
        await run_kpi_until(service, done, seconds=seconds, settle=settle)

    async def dead_letters(self) -> list[dict[str, Any]]:
        """Every dead letter on the log, decoded (``body`` as text)."""
        consumer = self.bus.consumer(self.settings.deadletter_topic, "test-reader", _nothing_stored)
        await consumer.start()
        letters: list[dict[str, Any]] = []
        try:
            while batch := await consumer.getmany(100, 200):
                for record in batch:
                    letter = orjson.loads(record.value)
                    letter["body"] = base64.b64decode(letter["body_base64"]).decode()
                    letters.append(letter)
        finally:
            await consumer.stop()
        return letters


@asynccontextmanager
async def stack(tmp_path: Path, settings: Settings) -> AsyncIterator[Stack]:
    db = create_engine(settings.database_url)
    await migrate(db)
    bus = build_bus(settings, db=db)
    await bus.start()
    await bus.ensure_topics([settings.activity_topic, settings.deadletter_topic])
    api = httpx.AsyncClient(
        transport=httpx.ASGITransport(create_api(settings, db, bus=bus)), base_url="http://api"
    )
    try:
        yield Stack(settings, db, bus, api)
    finally:
        await api.aclose()
        await bus.stop()
        await db.dispose()


@asynccontextmanager
async def ingest_app(stack: Stack) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    """The ingest app with its lifespan running (the enrichment task lives there)."""
    app = create_ingest(stack.settings, stack.bus)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://internal") as c,
    ):
        yield app, c
