from __future__ import annotations

import time

from tests.providers_support import fixture
from tests.unit.providers.conftest import Ingest, assert_problem


async def test_thin_property_changes_become_partial_deal_updates(ingest: Ingest) -> None:
    response = await ingest.send.hubspot(fixture("hubspot_deal_batch"))
    assert response.status_code == 202
    assert (response.json()["accepted"], response.json()["deadlettered"]) == (5, 1)
    by_id = {e["id"]: e["data"] for e in ingest.events()}  # the bus orders by partition
    prefix = "62515-deal.propertyChange-9001"
    assert by_id == {
        "62515-deal.creation-9001--1795597200000": {
            "deal_id": "9001",
            "status": "open",
            "created_at": "2026-11-25T09:00:00Z",
        },
        f"{prefix}-hubspot_owner_id-1795597201000": {
            "deal_id": "9001",
            "actor": {"provider": "hubspot", "external_id": "7"},
        },
        f"{prefix}-amount-1795597202000": {"deal_id": "9001", "amount": "12500.50"},
        f"{prefix}-deal_currency_code-1795597202000": {"deal_id": "9001", "currency": "EUR"},
        f"{prefix}-dealstage-1795607200000": {
            "deal_id": "9001",
            "stage": "closedwon",
            "status": "won",
        },
    }
    [letter] = ingest.dead_letters()
    assert "dealname" in letter["reason"]


async def test_redelivered_batch_yields_the_same_ids(ingest: Ingest) -> None:
    first = await ingest.send.hubspot(fixture("hubspot_deal_batch"))
    again = await ingest.send.hubspot(fixture("hubspot_deal_batch"))
    assert first.json()["ids"] == again.json()["ids"]
    assert again.json()["accepted"] == 0


async def test_stage_map_decides_lost(ingest: Ingest) -> None:
    [stage] = [e for e in fixture("hubspot_deal_batch") if e.get("propertyName") == "dealstage"]
    await ingest.send.hubspot([{**stage, "propertyValue": "closedlost"}])
    assert ingest.events()[0]["data"]["status"] == "lost"


async def test_currency_without_rate_is_dead_lettered(ingest: Ingest) -> None:
    [currency] = [
        e for e in fixture("hubspot_deal_batch") if e.get("propertyName") == "deal_currency_code"
    ]
    response = await ingest.send.hubspot(
        [{**currency, "propertyValue": "JPY"}, {**currency, "propertyValue": "USD", "eventId": 2}]
    )
    assert response.json()["deadlettered"] == 1
    assert [e["data"]["currency"] for e in ingest.events()] == ["USD"]
    assert "JPY has no rate" in ingest.dead_letters()[0]["reason"]


async def test_stale_forged_and_malformed_deliveries_are_refused(ingest: Ingest) -> None:
    batch = fixture("hubspot_deal_batch")
    stale = int(time.time() * 1000) - 6 * 60 * 1000
    assert_problem(await ingest.send.hubspot(batch, timestamp_ms=stale), 401, "5 minutes")
    assert_problem(await ingest.send.hubspot(batch, secret="forged"), 401, "does not match")
    assert_problem(await ingest.send.hubspot({"not": "a list"}), 422, "JSON array")  # type: ignore[arg-type]
    assert_problem(await ingest.send.hubspot([{"portalId": 1}]), 422, "missing objectId")
    assert ingest.events() == []
