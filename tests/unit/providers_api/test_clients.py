"""The provider API clients against local servers answering as HubSpot's and Aircall's do."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from services.providers_api import aircall, hubspot
from services.providers_api.http import RateLimited, Refused, Retry, retry_after
from tests.provider_apis import AircallApi, HubSpotApi

TOKEN = "pat-eu1-unit-test-token-abcdef"


@pytest.fixture
def hub() -> Iterator[HubSpotApi]:
    api = HubSpotApi(TOKEN)
    for n in range(1, 231):
        api.add_owner(str(n), f"owner{n}@example.com")
    with api.running():
        yield api


def test_retry_after_reads_seconds_dates_and_reset_headers() -> None:
    now = 1_800_000_000.0
    assert retry_after({"retry-after": "7"}, now, None) == 7
    date = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(now + 30))
    assert retry_after({"retry-after": date}, now, None) == 30
    assert retry_after({"x-aircallapi-reset": str(int(now) + 12)}, now, "x-aircallapi-reset") == 12
    assert retry_after({}, now, "x-aircallapi-reset") is None


async def test_owners_are_paged_through(hub: HubSpotApi) -> None:
    async with hubspot.http_client(hub.url, SecretStr(TOKEN)) as http:
        owners = [o async for o in hubspot.HubSpotClient(http, SecretStr(TOKEN)).owners()]
    assert len(owners) == 230
    assert sum(r.startswith("GET /crm/v3/owners") for r in hub.faults.seen) == 3


async def test_a_retry_after_longer_than_accepted_is_not_waited(hub: HubSpotApi) -> None:
    hub.faults.throttle_next(1, retry_after=3600)
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    async with hubspot.http_client(hub.url, SecretStr(TOKEN)) as http:
        client = hubspot.HubSpotClient(http, SecretStr(TOKEN), Retry(max_wait=30), sleep)
        with pytest.raises(RateLimited, match="429"):
            await client.owner("1")
    assert slept == []


async def test_a_wrong_token_is_refused_without_showing_it(hub: HubSpotApi) -> None:
    wrong = SecretStr("pat-eu1-wrong-token-123456")
    async with hubspot.http_client(hub.url, wrong) as http:
        with pytest.raises(Refused) as refused:
            await hubspot.HubSpotClient(http, wrong).owner("1")
    assert refused.value.status == 401
    assert "pat-eu1" not in str(refused.value)


async def test_aircall_basic_auth_and_pages() -> None:
    api = AircallApi("id", "secret-token")
    for n in range(120):
        api.add_user(n, f"User {n}", f"u{n}@example.com")
    with api.running():
        async with aircall.http_client(api.url, "id", SecretStr("secret-token")) as http:
            users = await aircall.AircallClient(http, SecretStr("secret-token")).users()
        async with aircall.http_client(api.url, "id", SecretStr("nope")) as http:
            with pytest.raises(Refused, match="401"):
                await aircall.AircallClient(http, SecretStr("nope")).users()
    assert [u["id"] for u in users] == list(range(120))
