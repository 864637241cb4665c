from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import pytest

from services.ingest.app import create_app
from shared.bus.memory import MemoryBus
from shared.settings import Settings
from tests.providers_support import Providers


@dataclass
class Ingest:
    bus: MemoryBus
    send: Providers

    def events(self) -> list[dict[str, Any]]:
        return [orjson.loads(r.value) for r in self.bus.records("sales.activity.v1")]

    def dead_letters(self) -> list[dict[str, Any]]:
        return [orjson.loads(r.value) for r in self.bus.records("sales.deadletter.v1")]


@pytest.fixture
async def ingest(make_settings: Callable[..., Settings]) -> AsyncIterator[Ingest]:
    bus = MemoryBus()
    app = create_app(make_settings(fx_rates="USD:0.9"), bus)
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://internal:8001") as client:
        yield Ingest(bus, Providers(client))


def assert_problem(response: httpx.Response, status: int, detail_part: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert detail_part in response.json()["detail"]
