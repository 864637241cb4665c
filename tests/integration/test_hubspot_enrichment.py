"""A thin HubSpot deal webhook completed from HubSpot's CRM API (a local server answering as
HubSpot's docs describe), through the ingest app, the database log bus and the KPI service."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY

from services.ingest.enrichment import Enricher
from shared.settings import Settings
from tests.connect_support import Stack, ingest_app, stack
from tests.provider_apis import HubSpotApi
from tests.providers_support import Providers

TOKEN = "pat-eu1-00000000-test-hubspot-private-app-token"
WINDOW = {"from": "2026-11-25T00:00:00+01:00", "to": "2026-11-26T00:00:00+01:00"}
WON_AT = 1795607200000  # 2026-11-25T10:06:40Z


def stage_change(deal_id: int = 9001, event_id: int = 1005) -> dict[str, Any]:
    """A deal moved to closedwon: no amount, no currency, no owner."""
    return {
        "eventId": event_id,
        "subscriptionId": 2105,
        "portalId": 62515,
        "appId": 54321,
        "occurredAt": WON_AT,
        "subscriptionType": "deal.propertyChange",
        "attemptNumber": 0,
        "objectId": deal_id,
        "propertyName": "dealstage",
        "propertyValue": "closedwon",
        "changeSource": "CRM",
        "sourceId": "userId:7",
    }


@pytest.fixture
def hubspot() -> Iterator[HubSpotApi]:
    api = HubSpotApi(TOKEN)
    api.add_owner("7", "Alice.Martin@Example.com", "Alice", "Martin")
    api.add_deal(
        "9001",
        WON_AT,
        amount="12500.50",
        deal_currency_code="EUR",
        dealstage="closedwon",
        hubspot_owner_id="7",
        createdate="2026-11-20T09:00:00.000Z",
        dealname="Acme renewal",
    )
    with api.running():
        yield api


@pytest.fixture
async def floor(
    tmp_path: Path, make_settings: Callable[..., Settings], hubspot: HubSpotApi
) -> AsyncIterator[Stack]:
    settings = make_settings(
        database_url=f"sqlite:///{tmp_path / 'sp.db'}",
        hubspot_access_token=TOKEN,
        hubspot_api_base=hubspot.url,
    )
    async with stack(tmp_path, settings) as s:
        await s.rep("alice", ("hubspot", "7"))
        yield s


def enriched(outcome: str) -> float:
    value = REGISTRY.get_sample_value(
        "salespulse_ingest_enrichments_total", {"provider": "hubspot", "outcome": outcome}
    )
    return value or 0.0


async def deliver(floor: Stack, *batches: list[dict[str, Any]]) -> None:
    async with ingest_app(floor) as (app, ingest):
        for batch in batches:
            response = await Providers(ingest).hubspot(batch)
            assert response.status_code == 202, response.text
        enricher: Enricher = app.state.enricher
        await enricher.drained()


async def test_thin_closedwon_ends_up_with_the_amount_and_the_rep(
    floor: Stack, hubspot: HubSpotApi
) -> None:
    before = enriched("enriched")
    await deliver(floor, [stage_change()])

    async def won() -> bool:
        return await floor.kpis("alice", WINDOW, "deals_won", "revenue") == {
            "deals_won": 1,
            "revenue": 12500.5,
        }

    await floor.run_kpi_until(won)
    assert enriched("enriched") == before + 1
    assert "GET /crm/v3/objects/deals/9001" in hubspot.faults.seen[0]
    assert hubspot.faults.seen[1] == "GET /crm/v3/owners/7"


async def test_the_same_webhook_twice_has_one_enrichment_effect(
    floor: Stack, hubspot: HubSpotApi
) -> None:
    # HubSpot retries a delivery it thinks failed; the retry reaches a fresh ingest process.
    await deliver(floor, [stage_change()])
    await deliver(floor, [stage_change()])

    async def won() -> bool:
        return await floor.kpis("alice", WINDOW, "deals_won", "revenue") == {
            "deals_won": 1,
            "revenue": 12500.5,
        }

    await floor.run_kpi_until(won, settle=1.0)
    assert await won()
    # Both enrichments read HubSpot, and made one follow-up event the KPI service counted once.
    assert sum("/objects/deals/9001" in r for r in hubspot.faults.seen) == 2


async def test_a_429_is_waited_out_as_retry_after_says(floor: Stack, hubspot: HubSpotApi) -> None:
    hubspot.faults.throttle_next(2, retry_after=1)
    await deliver(floor, [stage_change()])

    async def won() -> bool:
        return bool((await floor.kpis("alice", WINDOW, "revenue"))["revenue"] == 12500.5)

    await floor.run_kpi_until(won)
    deal_reads = [r for r in hubspot.faults.seen if "/objects/deals/9001" in r]
    assert len(deal_reads) == 3  # two 429s, then the answer
    assert await floor.dead_letters() == []


async def test_an_expired_token_is_a_dead_letter_without_the_token(
    floor: Stack, hubspot: HubSpotApi
) -> None:
    hubspot.expired = True
    before = enriched("deadlettered")
    await deliver(floor, [stage_change()])
    [letter] = await floor.dead_letters()
    assert letter["provider"] == "hubspot"
    assert letter["reason"].startswith("hubspot_enrichment: hubspot GET /crm/v3/objects/deals/9001")
    assert "401" in letter["reason"]
    assert "EXPIRED_AUTHENTICATION" in letter["reason"]
    assert '"deal_id":"9001"' in letter["body"]
    assert TOKEN not in str(letter)
    assert enriched("deadlettered") == before + 1

    async def booked_unassigned() -> bool:  # the thin win still counts, as before enrichment
        return bool((await floor.kpis("alice", WINDOW, "deals_won"))["deals_won"] == 0)

    await floor.run_kpi_until(booked_unassigned)


async def test_an_unknown_deal_is_a_dead_letter(floor: Stack, hubspot: HubSpotApi) -> None:
    await deliver(floor, [stage_change(deal_id=404404)])
    [letter] = await floor.dead_letters()
    assert "404" in letter["reason"]
    assert "OBJECT_NOT_FOUND" in letter["reason"]
