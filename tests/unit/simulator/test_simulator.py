"""The simulator speaks every provider's format, signed so that the real adapters accept it."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from datetime import datetime

import httpx
import orjson
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services.api.app import create_app as create_api
from services.dev import simulator_secrets, with_demo_secrets
from services.ingest.app import create_app
from services.simulator import CONTEST_ROUND, DEMO_CONTEST, REPS, Simulator
from services.simulator.formats import Formats
from shared.bus.memory import MemoryBus
from shared.settings import Settings
from tests.api_support import served

PROVIDERS = ["standard", "twilio", "aircall", "hubspot", "pipedrive"]


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_each_format_is_accepted_by_its_adapter(
    provider: str, make_settings: Callable[..., Settings]
) -> None:
    settings, _ = with_demo_secrets(make_settings(public_base_url=None))
    bus = MemoryBus()
    app = create_app(settings, bus)
    formats = Formats(simulator_secrets(settings), "http://ingest.local", random.Random(7))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app), base_url="http://ingest.local"
    ) as client:
        for rep in REPS:
            path, body, headers = formats.builders[provider](rep)
            response = await client.post(path, content=body, headers=headers)
            assert response.status_code == 202, response.text
            assert response.json()["deadlettered"] == 0
    events = [orjson.loads(r.value) for r in bus.records(settings.activity_topic)]
    assert events
    actors = {e["data"]["actor"]["provider"] for e in events if "actor" in e["data"]}
    assert actors == {"sim" if provider == "standard" else provider}


def test_dev_mode_turns_every_provider_on_and_the_simulator_uses_them(
    make_settings: Callable[..., Settings],
) -> None:
    bare = make_settings(
        webhook_secret=None,
        twilio_auth_token=None,
        aircall_token=None,
        hubspot_client_secret=None,
        pipedrive_user=None,
        pipedrive_password=None,
        api_keys=None,
    )
    settings, admin_key = with_demo_secrets(bare)
    assert admin_key is not None
    assert admin_key.startswith("demo-")
    # named: the console says who signed in, the audit of corrections who made them
    assert [k.name for k in settings.parsed_api_keys()] == ["admin", "wallboard"]
    assert simulator_secrets(settings).providers() == PROVIDERS
    with pytest.raises(ValueError, match="no secret"):
        Simulator("http://x", simulator_secrets(bare))


async def test_the_simulator_runs_the_demo_contest_on_the_api(
    make_settings: Callable[..., Settings], db: AsyncEngine
) -> None:
    settings, admin_key = with_demo_secrets(make_settings(api_keys=None))
    async with served(create_api(settings, db)) as url, httpx.AsyncClient() as client:
        simulator = Simulator("http://ingest.invalid", simulator_secrets(settings), url, admin_key)
        await simulator.setup_roster(client)
        stop = asyncio.Event()
        rounds = asyncio.create_task(simulator.run_contests(client, stop))
        auth = {"authorization": f"Bearer {admin_key}"}
        for _ in range(100):
            got = await client.get(f"{url}/v1/contests/{DEMO_CONTEST}", headers=auth)
            if got.status_code == 200:
                break
            await asyncio.sleep(0.05)
        stop.set()
        await asyncio.wait_for(rounds, 5)
    contest = got.json()
    assert contest["status"] == "active"
    ends, starts = (datetime.fromisoformat(contest[k]) for k in ("ends_at", "starts_at"))
    assert ends - starts == CONTEST_ROUND
    assert contest["rows_total"] == len(REPS)
