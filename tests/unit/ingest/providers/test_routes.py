from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from services.ingest.app import create_app
from services.ingest.providers import ROUTES
from shared.bus.memory import MemoryBus
from shared.settings import Settings
from tests.unit.ingest.providers.conftest import assert_problem


@pytest.mark.parametrize("provider", sorted(ROUTES))
async def test_a_provider_without_secret_has_its_route_off(
    provider: str, make_settings: Callable[..., Settings]
) -> None:
    off = {
        "webhook_secret": None,
        "twilio_auth_token": None,
        "aircall_token": None,
        "hubspot_client_secret": None,
        "pipedrive_user": None,
        "pipedrive_password": None,
    }
    app = create_app(make_settings(**off), MemoryBus())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as c:
        response = await c.post(ROUTES[provider][0], content=b"{}")
    assert_problem(response, 404, "route off")


async def test_per_provider_metrics(make_settings: Callable[..., Settings]) -> None:
    app = create_app(make_settings(), MemoryBus())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as c:
        await c.post("/webhooks/aircall", content=b'{"token": "wrong", "event": "call.ended"}')
        exposition = (await c.get("/metrics")).text
    assert 'salespulse_ingest_refused_total{provider="aircall",reason="bad-token"}' in exposition
