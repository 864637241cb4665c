"""The README's setup guides followed once, end to end, against local servers that answer as
HubSpot's and Aircall's APIs do: ``salespulse serve`` configured as the guides say (a public
address, HubSpot's client secret and access token, Aircall's webhook token and API key), the
roster's emails and no identity typed; then what each guide's "Check" step looks at."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import (
    ADMIN_KEY,
    AIRCALL_TOKEN,
    HUBSPOT_SECRET,
    PIPEDRIVE_PASSWORD,
    PIPEDRIVE_USER,
    READ_KEY,
    TWILIO_TOKEN,
)
from tests.kpi_rig import SALESPULSE
from tests.provider_apis import AircallApi, HubSpotApi, aircall_call
from tests.providers_support import Providers
from tests.reliability.test_serve_crashes import Serve

pytestmark = pytest.mark.e2e
PUBLIC = "https://sales.example.com"
HUBSPOT_TOKEN = "pat-eu1-guide-walkthrough-token"
AIRCALL_ID, AIRCALL_API_TOKEN = "guide-api-id", "guide-api-token"
ADMIN = {"authorization": f"Bearer {ADMIN_KEY}"}
READ = {"authorization": f"Bearer {READ_KEY}"}


def hubspot_won(deal_id: int, at_ms: int) -> dict[str, Any]:
    """HubSpot's webhook for a deal moved to Closed won: its stage, and nothing else."""
    return {
        "eventId": 77,
        "subscriptionId": 2105,
        "portalId": 62515,
        "appId": 54321,
        "occurredAt": at_ms,
        "subscriptionType": "deal.propertyChange",
        "attemptNumber": 0,
        "objectId": deal_id,
        "propertyName": "dealstage",
        "propertyValue": "closedwon",
        "changeSource": "CRM",
        "sourceId": "userId:7",
    }


async def until(check: Any, what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.2)


async def test_the_setup_guides_followed_against_provider_shaped_servers(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    hubspot, aircall = HubSpotApi(HUBSPOT_TOKEN), AircallApi(AIRCALL_ID, AIRCALL_API_TOKEN)
    hubspot.add_owner("7", "alice.martin@example.com", "Alice", "Martin")
    won_ms = int((now - timedelta(hours=1)).timestamp() * 1000)
    hubspot.add_deal(
        "9001",
        won_ms,
        amount="12500.50",
        deal_currency_code="EUR",
        dealstage="closedwon",
        hubspot_owner_id="7",
    )
    bob = aircall.add_user(4242, "Bob Durand", "Bob.Durand@example.com")
    started = int((now - timedelta(hours=2)).timestamp())
    aircall.calls.extend(aircall_call(8800 + i, bob, started + 600 * i) for i in range(3))

    serve = Serve(f"sqlite:///{tmp_path / 'sp.db'}", tmp_path / "serve.log")
    serve.env.update(
        {  # the guides' settings
            "SALESPULSE_PUBLIC_BASE_URL": PUBLIC,
            "SALESPULSE_HUBSPOT_CLIENT_SECRET": HUBSPOT_SECRET,
            "SALESPULSE_HUBSPOT_ACCESS_TOKEN": HUBSPOT_TOKEN,
            "SALESPULSE_HUBSPOT_API_BASE": hubspot.url,
            "SALESPULSE_AIRCALL_TOKEN": AIRCALL_TOKEN,
            "SALESPULSE_AIRCALL_API_ID": AIRCALL_ID,
            "SALESPULSE_AIRCALL_API_TOKEN": AIRCALL_API_TOKEN,
            "SALESPULSE_AIRCALL_API_BASE": aircall.url,
            "SALESPULSE_TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
            "SALESPULSE_PIPEDRIVE_USER": PIPEDRIVE_USER,
            "SALESPULSE_PIPEDRIVE_PASSWORD": PIPEDRIVE_PASSWORD,
            "SALESPULSE_CONNECTION_TALLIES_SECONDS": "0.5",
        }
    )
    api = f"http://127.0.0.1:{serve.api_port}"
    with hubspot.running(), aircall.running():
        serve.start()
        try:
            async with httpx.AsyncClient(timeout=10) as client:
                await serve.until_ready(client)
                # the roster: emails, no identity typed
                await client.put(f"{api}/v1/teams/paris", json={"name": "Paris"}, headers=ADMIN)
                for rep, email in (
                    ("alice", "alice.martin@example.com"),
                    ("bob", "bob.durand@example.com"),
                ):
                    body = {
                        "name": rep.title(),
                        "team_id": "paris",
                        "email": email,
                        "effective_from": "2020-01-01T00:00:00Z",
                    }
                    put = await client.put(f"{api}/v1/reps/{rep}", json=body, headers=ADMIN)
                    assert put.is_success, put.text

                # what to paste where, before anything was sent
                listed = (await client.get(f"{api}/v1/connections", headers=READ)).json()
                found = {c["provider"]: c for c in listed["items"]}
                assert found["hubspot"]["url"] == f"{PUBLIC}/webhooks/hubspot"
                assert found["aircall"]["url"] == f"{PUBLIC}/webhooks/aircall"
                assert found["hubspot"]["configured"]
                assert found["aircall"]["configured"]

                # HubSpot's check: a deal moved to Closed won, its webhook thin
                providers = Providers(httpx.AsyncClient(base_url=serve.ingest), PUBLIC)
                sent = await providers.hubspot([hubspot_won(9001, won_ms)])
                assert sent.status_code == 202, sent.text

                async def kpis(rep: str) -> dict[str, Any]:
                    answer = await client.get(
                        f"{api}/v1/reps/{rep}/kpis?window=last_7d"
                        "&metrics=deals_won,revenue,calls_total",
                        headers=READ,
                    )
                    return dict(answer.json()["metrics"])

                async def alice_won() -> bool:
                    return bool((await kpis("alice"))["revenue"] == 12500.5)

                await until(alice_won, "the thin win completed from HubSpot's API")

                # Aircall's check: a call ended by a user whose email is Bob's
                webhook = {
                    "resource": "call",
                    "event": "call.ended",
                    "token": AIRCALL_TOKEN,
                    "timestamp": started + 3000,
                    "data": aircall_call(8799, bob, started - 600),
                }
                assert (await providers.aircall(webhook)).status_code == 202

                async def bob_called() -> bool:
                    return bool((await kpis("bob"))["calls_total"] == 1)

                await until(bob_called, "the Aircall call matched by email")
                shown = (await client.get(f"{api}/v1/reps/bob", headers=READ)).json()
                assert {
                    (i["provider"], i["external_id"], i["learned_from"])
                    for i in shown["identities"]
                } == {("aircall", "4242", "email")}

                # Twilio's guide: Carol's Voice SDK identity, a status callback signed over the
                # public URL (PUBLIC_BASE_URL) although the ingest is called on 127.0.0.1
                carol = {
                    "name": "Carol",
                    "team_id": "paris",
                    "effective_from": "2020-01-01T00:00:00Z",
                    "identities": [{"provider": "twilio", "external_id": "client:carol"}],
                }
                assert (
                    await client.put(f"{api}/v1/reps/carol", json=carol, headers=ADMIN)
                ).is_success
                callback = {
                    "CallSid": "CA" + "7" * 32,
                    "CallStatus": "completed",
                    "CallDuration": "95",
                    "Direction": "outbound-api",
                    "From": "client:carol",
                    "To": "+33612345678",
                    "SequenceNumber": "3",
                    "Timestamp": format_datetime(now - timedelta(minutes=30)),
                    "AccountSid": "AC" + "0" * 32,
                }
                assert (await providers.twilio(callback, token=TWILIO_TOKEN)).status_code == 202

                # Pipedrive's guide: a deal won, HTTP Basic; its owner given as an identity
                dana = {
                    "name": "Dana",
                    "team_id": "paris",
                    "effective_from": "2020-01-01T00:00:00Z",
                    "identities": [{"provider": "pipedrive", "external_id": "18487521"}],
                }
                assert (
                    await client.put(f"{api}/v1/reps/dana", json=dana, headers=ADMIN)
                ).is_success
                won_at = (now - timedelta(minutes=20)).strftime("%Y-%m-%dT%H:%M:%SZ")
                deal = {
                    "meta": {
                        "action": "change",
                        "entity": "deal",
                        "version": "2.0",
                        "id": "6b1f0b52-9c55-4f55-8a77-1d1a2b3c4d5e",
                        "entity_id": 501,
                        "timestamp": int(now.timestamp()) - 1200,
                    },
                    "data": {
                        "id": 501,
                        "value": 3200,
                        "currency": "EUR",
                        "status": "won",
                        "owner_id": 18487521,
                        "won_time": won_at,
                        "update_time": won_at,
                    },
                    "previous": {"status": "open"},
                }
                assert (await providers.pipedrive(deal)).status_code == 202

                async def carol_and_dana() -> bool:
                    return bool(
                        (await kpis("carol"))["calls_total"] == 1
                        and (await kpis("dana"))["revenue"] == 3200
                    )

                await until(carol_and_dana, "Twilio's call and Pipedrive's deal")

                # a forged delivery: refused, and said why
                forged = await providers.hubspot([hubspot_won(9002, won_ms)], secret="wrong")
                assert forged.status_code == 401

                # history: Aircall's API backfilled, the live call not counted twice
                backfill = subprocess.run(
                    [
                        str(SALESPULSE),
                        "backfill",
                        "aircall",
                        "--since",
                        (now - timedelta(days=1)).date().isoformat(),
                    ],
                    env={**os.environ, **serve.env},
                    capture_output=True,
                    timeout=120,
                )
                assert backfill.returncode == 0, backfill.stderr.decode()[-2000:]

                async def bob_backfilled() -> bool:
                    return bool((await kpis("bob"))["calls_total"] == 4)

                await until(bob_backfilled, "the backfilled calls")

                async def tallied() -> bool:
                    listed = (await client.get(f"{api}/v1/connections", headers=READ)).json()
                    by = {c["provider"]: c for c in listed["items"]}
                    return bool(
                        by["hubspot"]["last_24h"]["accepted"] >= 1
                        and by["hubspot"]["last_24h"]["refused"] == 1
                        and by["aircall"]["last_24h"]["accepted"] == 1
                        and by["twilio"]["last_24h"]["accepted"] == 1
                        and by["pipedrive"]["last_24h"]["accepted"] == 1
                    )

                await until(tallied, "the deliveries in /v1/connections")
                listed = (await client.get(f"{api}/v1/connections", headers=READ)).json()
                hub = {c["provider"]: c for c in listed["items"]}["hubspot"]
                assert hub["last_refusal_reason"].startswith("bad-signature")
                assert HUBSPOT_SECRET not in str(listed)
                assert HUBSPOT_TOKEN not in str(listed)
        finally:
            assert serve.stop() == 0
    assert HUBSPOT_TOKEN not in serve.logs.read_text()
