"""``GET /v1/connections`` over what a real ingest server received, on one database (SQLite
and PostgreSQL): configured providers, the URL to paste, the deliveries of the last 24 h and
the last refusal's reason, without its secret."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services.api.app import create_app as create_api
from services.ingest.app import create_app as create_ingest
from services.simulator import signed_headers
from shared.bus.memory import MemoryBus
from shared.db.engine import create_engine
from shared.db.migrate import migrate
from shared.settings import Settings
from tests.api_support import READ, served
from tests.conftest import WEBHOOK_SECRET, canonical, fresh_postgres_database


@pytest.fixture(params=["sqlite", "postgres"])
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    async with AsyncExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite:///{tmp_path / 'c.db'}"
        else:
            admin = request.getfixturevalue("postgres_admin_url")
            url = await stack.enter_async_context(fresh_postgres_database(admin))
        db = create_engine(url)
        await migrate(db)
        yield db
        await db.dispose()


async def test_deliveries_and_refusals_show_per_provider_and_the_route_to_paste(
    make_settings: Callable[..., Settings], database: AsyncEngine
) -> None:
    settings = make_settings(
        aircall_token=None,
        public_base_url="https://sales.example.com",
        connection_tallies_seconds=0.1,
    )
    event = canonical()
    raw = orjson.dumps(event)
    async with httpx.AsyncClient() as client:
        async with served(create_ingest(settings, MemoryBus(), database)) as ingest:
            url = f"{ingest}/webhooks/events"
            for _ in range(2):  # a delivery and its retry: one accepted, one duplicate
                sent = await client.post(
                    url, content=raw, headers=signed_headers(WEBHOOK_SECRET, raw)
                )
                assert sent.status_code == 202
            forged = await client.post(
                url, content=raw, headers=signed_headers("whsec_" + "A" * 32, raw)
            )
            assert forged.status_code == 401
        # the server stopped: its last tallies are written
        async with served(create_api(settings, database)) as api:
            answer = await client.get(f"{api}/v1/connections", headers=READ)
    assert answer.status_code == 200
    body = answer.json()
    assert body["base_url"] == "https://sales.example.com"
    found = {c["provider"]: c for c in body["items"]}
    standard, aircall, hubspot = found["standard"], found["aircall"], found["hubspot"]
    assert standard["configured"] is True
    assert standard["url"] == "https://sales.example.com/webhooks/events"
    assert standard["last_24h"] == {"accepted": 1, "duplicates": 1, "deadlettered": 0, "refused": 1}
    assert standard["last_delivery_at"] is not None
    assert standard["last_refusal_reason"].startswith("bad-signature")
    assert WEBHOOK_SECRET not in answer.text
    assert aircall["configured"] is False
    assert aircall["setting"] == "SALESPULSE_AIRCALL_TOKEN"
    assert aircall["last_24h"]["accepted"] == 0
    assert aircall["last_delivery_at"] is None
    assert hubspot["url"] == "https://sales.example.com/webhooks/hubspot"
    assert any("dealstage" in s["en"] for s in hubspot["subscribe"])
    assert all(set(s) == {"fr", "en"} for c in body["items"] for s in c["subscribe"])


async def test_tallies_kept_while_the_database_is_away_are_written_when_it_is_back(
    tmp_path: Path,
) -> None:
    from services.api.connections.queries import tallies_since
    from services.ingest.deliveries import DeliveryLog, write_once

    log = DeliveryLog()
    log.delivered("aircall", 7200.5, 3, 1, 0)
    missing = create_engine(f"sqlite:///{tmp_path / 'nowhere' / 'x.db'}")  # cannot be opened
    await write_once(missing, log)
    await missing.dispose()
    assert log.failing
    log.delivered("aircall", 7300, 2, 0, 1)
    db = create_engine(f"sqlite:///{tmp_path / 'back.db'}")
    await migrate(db)
    await write_once(db, log)
    async with db.connect() as conn:
        tallies = await tallies_since(conn, 0)
    await db.dispose()
    assert tallies == {"aircall": {"accepted": 5, "duplicates": 1, "deadlettered": 1, "refused": 0}}
    assert not log.failing


async def test_without_a_public_address_the_url_to_paste_is_the_ingests_own(
    make_settings: Callable[..., Settings], database: AsyncEngine
) -> None:
    settings = make_settings(public_base_url=None, ingest_host="127.0.0.1", ingest_port=8001)
    async with httpx.AsyncClient() as client, served(create_api(settings, database)) as api:
        body = (await client.get(f"{api}/v1/connections", headers=READ)).json()
    assert body["public_base_url_set"] is False
    found = {c["provider"]: c["url"] for c in body["items"]}
    assert found["aircall"] == "http://127.0.0.1:8001/webhooks/aircall"  # not the API's port
