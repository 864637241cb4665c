"""``salespulse backfill`` against local servers answering as Aircall's and HubSpot's APIs:
interrupted mid-way (the provider failing), resumed, run again; every KPI equal to a count made
independently from the seeded data, nothing counted twice, live webhooks included."""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from services.backfill.command import Provider, run_backfill
from services.providers_api.http import Retry, Unreachable
from shared.settings import Settings
from tests.connect_support import Stack, ingest_app, stack
from tests.provider_apis import AircallApi, HubSpotApi, aircall_call
from tests.providers_support import Providers, fixture

API_ID, API_TOKEN = "aircall-api-id-test", "aircall-api-token-0123456789"
HUBSPOT_TOKEN = "pat-eu1-00000000-backfill-token"
SINCE = datetime(2026, 11, 1, tzinfo=UTC)
WINDOW = {"from": "2026-11-01T00:00:00+01:00", "to": "2026-12-08T00:00:00+01:00"}
QUICK = Retry(attempts=2, max_wait=5.0, backoff=0.05)
START = int(datetime(2026, 11, 2, tzinfo=UTC).timestamp())
REPS = {"alice": "456789", "bob": "456790", "carol": "456791"}  # rep -> Aircall user id
OWNERS = {"alice": "7", "bob": "8", "carol": "9"}  # rep -> HubSpot owner id


@pytest.fixture
def aircall() -> Iterator[AircallApi]:
    api = AircallApi(API_ID, API_TOKEN)
    users = [api.add_user(int(uid), rep.title(), f"{rep}@example.com") for rep, uid in REPS.items()]
    rng = random.Random(23)
    for n in range(230):
        user = rng.choice(users)
        inbound = n % 4 == 0
        answered = None if n % 7 == 0 else rng.randint(2, 20)
        api.calls.append(
            aircall_call(
                900_000 + n,
                user,
                START + n * 3000,
                direction="inbound" if inbound else "outbound",
                answered_after=answered,
                duration=rng.randint(10, 900),
            )
        )
    api.calls.append({**aircall_call(999_999, users[0], START + 10), "status": "answered"})
    with api.running():
        yield api


@pytest.fixture
def hubspot() -> Iterator[HubSpotApi]:
    api = HubSpotApi(HUBSPOT_TOKEN)
    for rep, owner in OWNERS.items():
        api.add_owner(owner, f"{rep.title()}@Example.com")
    rng = random.Random(42)
    base = int(datetime(2026, 11, 3, tzinfo=UTC).timestamp() * 1000)
    for n in range(250):
        closed = base + n * 3_600_000
        stage = rng.choice(["closedwon", "closedwon", "closedlost", "appointmentscheduled"])
        api.add_deal(
            str(10_000 + n),
            closed + 60_000,
            amount=f"{rng.randint(100, 90_000)}.{rng.randint(0, 99):02d}",
            deal_currency_code="EUR",
            dealstage=stage,
            hubspot_owner_id=rng.choice(list(OWNERS.values())),
            createdate="2026-10-01T08:00:00.000Z",
            closedate=datetime.fromtimestamp(closed / 1000, UTC).isoformat()[:19] + ".000Z",
        )
    # The deal the live webhooks of ``hubspot_deal_batch`` describe, as the API has it now.
    won = 1795607200000
    api.add_deal(
        "9001",
        won + 500,
        amount="12500.50",
        deal_currency_code="EUR",
        dealstage="closedwon",
        hubspot_owner_id="7",
        createdate="2026-11-25T09:00:00.000Z",
        closedate="2026-11-25T10:06:40.000Z",
    )
    with api.running():
        yield api


@pytest.fixture
async def floor(
    tmp_path: Path,
    make_settings: Callable[..., Settings],
    aircall: AircallApi,
    hubspot: HubSpotApi,
) -> AsyncIterator[Stack]:
    settings = make_settings(
        database_url=f"sqlite:///{tmp_path / 'sp.db'}",
        aircall_api_base=aircall.url,
        aircall_api_id=API_ID,
        aircall_api_token=API_TOKEN,
        hubspot_api_base=hubspot.url,
        hubspot_access_token=HUBSPOT_TOKEN,
    )
    async with stack(tmp_path, settings) as s:
        for rep in REPS:
            await s.rep(rep, ("aircall", REPS[rep]), ("hubspot", OWNERS[rep]))
        yield s


def call_counts(calls: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """What each rep's call KPIs must be, counted here from the seeded calls."""
    by_user = {uid: rep for rep, uid in REPS.items()}
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for call in calls:
        if call["status"] != "done":
            continue
        rep = by_user[str(call["user"]["id"])]
        answered = call["answered_at"]
        if call["direction"] == "outbound":
            counts[rep]["calls_placed"] += 1
        elif answered:
            counts[rep]["calls_received"] += 1
        else:
            counts[rep]["calls_missed"] += 1
        if answered:
            counts[rep]["talk_seconds"] += call["ended_at"] - answered
    metrics = ("calls_placed", "calls_received", "calls_missed", "talk_seconds")
    return {rep: {m: counts[rep][m] for m in metrics} for rep in REPS}


def deal_counts(deals: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    by_owner = {owner: rep for rep, owner in OWNERS.items()}
    won: Counter[str] = Counter()
    lost: Counter[str] = Counter()
    revenue: dict[str, Decimal] = defaultdict(Decimal)
    for deal in deals.values():
        props = deal["properties"]
        rep = by_owner[props["hubspot_owner_id"]]
        if props["dealstage"] == "closedwon":
            won[rep] += 1
            revenue[rep] += Decimal(props["amount"])
        elif props["dealstage"] == "closedlost":
            lost[rep] += 1
    return {
        rep: {"deals_won": won[rep], "deals_lost": lost[rep], "revenue": float(revenue[rep])}
        for rep in OWNERS
    }


async def all_kpis(floor: Stack, metrics: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    return {rep: await floor.kpis(rep, WINDOW, *metrics) for rep in REPS}


async def test_an_aircall_backfill_interrupted_and_resumed_counts_every_call_once(
    floor: Stack, aircall: AircallApi
) -> None:
    aircall.faults.throttle_next(1, retry_after=1)  # a 429 on the first page, waited out
    aircall.faults.fail_from(3)  # Aircall fails after three pages of 50
    with pytest.raises(Unreachable):
        await run_backfill(floor.settings, Provider.aircall, SINCE, batch_size=40, retry=QUICK)
    assert aircall.faults.seen[0] == aircall.faults.seen[1]  # the throttled page, asked again

    aircall.faults.fail_from(None)
    resumed = await run_backfill(floor.settings, Provider.aircall, SINCE, batch_size=40)
    assert resumed.resumed_from > 0
    assert resumed.skipped == 120  # three batches of 40 made it before the failure
    assert resumed.skipped + resumed.published == 230  # the call still going is left out
    again = await run_backfill(floor.settings, Provider.aircall, SINCE, batch_size=40)
    assert again.published == 0

    expected = call_counts(aircall.calls)
    metrics = tuple(next(iter(expected.values())))

    async def counted() -> bool:
        return await all_kpis(floor, metrics) == expected

    await floor.run_kpi_until(counted, settle=1.0)
    assert await all_kpis(floor, metrics) == expected


async def test_a_hubspot_backfill_resumed_after_live_webhooks_counts_every_deal_once(
    floor: Stack, hubspot: HubSpotApi
) -> None:
    async with ingest_app(floor) as (_, ingest):  # deal 9001 came live, before the backfill
        assert (await Providers(ingest).hubspot(fixture("hubspot_deal_batch"))).is_success
    hubspot.faults.fail_from(3, status=503)  # account, owners, one page of 100 deals; then 503
    with pytest.raises(Unreachable):
        await run_backfill(floor.settings, Provider.hubspot, SINCE, batch_size=60, retry=QUICK)
    hubspot.faults.fail_from(None)
    resumed = await run_backfill(floor.settings, Provider.hubspot, SINCE, batch_size=60)
    assert resumed.resumed_from > 0
    assert resumed.bad == 0
    again = await run_backfill(floor.settings, Provider.hubspot, SINCE, batch_size=60)
    assert again.published == 0

    expected = deal_counts(hubspot.deals)
    metrics = ("deals_won", "deals_lost", "revenue")

    async def counted() -> bool:
        got = await all_kpis(floor, metrics)
        return all(
            got[r]["deals_won"] == e["deals_won"]
            and got[r]["deals_lost"] == e["deals_lost"]
            and round(got[r]["revenue"], 2) == round(e["revenue"], 2)
            for r, e in expected.items()
        )

    await floor.run_kpi_until(counted, settle=1.0)
    assert await counted()
    searches = [r for r in hubspot.faults.seen if r.startswith("POST /crm/v3/objects/deals/search")]
    assert len(searches) >= 4  # three pages, one of them asked again after the failure
