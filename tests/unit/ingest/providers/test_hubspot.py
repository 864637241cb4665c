from __future__ import annotations

import base64
import time
from typing import Any

import orjson
import pytest

from tests.providers_support import fixture
from tests.unit.ingest.providers.conftest import Ingest, assert_problem


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
    assert ingest.events() == []


def change(name: str, value: Any, event_id: int) -> dict[str, Any]:
    [template] = [e for e in fixture("hubspot_deal_batch") if e.get("propertyName") == "amount"]
    return {
        **template,
        "propertyName": name,
        "propertyValue": value,
        "eventId": event_id,
        "occurredAt": template["occurredAt"] + event_id,
    }


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (change("deal_currency_code", "", 1), "data.currency: String should match pattern"),
        (change("amount", "-12.50", 1), "data.amount: Input should be greater than or equal to 0"),
        (change("amount", "1.23456", 1), "data.amount: Decimal input should have no more than 4"),
        ({**change("amount", "1", 1), "portalId": None}, "hubspot.portalId: required"),
        ({**change("amount", "1", 1), "objectId": ""}, "hubspot.objectId: required"),
        ({**change("amount", "1", 1), "occurredAt": None}, "hubspot.occurredAt: required"),
        ({**change("amount", "1", 1), "subscriptionType": None}, "subscriptionType: required"),
        ({**change("amount", "1", 1), "occurredAt": "soon"}, "hubspot.occurredAt: not a time"),
        ({**change("amount", "1", 1), "occurredAt": 2**63 - 1}, "hubspot.occurredAt: not a time"),
        ("not an object", "item: must be a JSON object"),
    ],
)
async def test_one_bad_item_is_dead_lettered_alone_and_the_rest_published(
    ingest: Ingest, bad: Any, reason: str
) -> None:
    good = [change("amount", "10.00", 2), change("deal_currency_code", "USD", 3)]
    response = await ingest.send.hubspot([good[0], bad, good[1]])
    assert response.status_code == 202, response.text
    assert (response.json()["accepted"], response.json()["deadlettered"]) == (2, 1)
    assert sorted(e["data"].get("amount", "-") for e in ingest.events()) == ["-", "10.00"]
    [letter] = ingest.dead_letters()
    assert letter["reason"].startswith("invalid_event: ")
    assert reason in letter["reason"]
    assert orjson.loads(base64.b64decode(letter["body_base64"])) == bad  # the item, as sent
    assert not any(h.startswith("x-hubspot-signature") for h in letter["headers"])


async def test_a_batch_of_more_than_1000_items_is_refused_naming_the_body(
    ingest: Ingest,
) -> None:
    response = await ingest.send.hubspot([change("amount", "1", n) for n in range(1001)])
    assert_problem(response, 422, "at most 1000 items")
    assert response.json()["errors"][0]["field"] == "body"
