"""HubSpot's CRM API v3, as far as SalesPulse reads it: deals, owners, the portal's id.

Authentication is a private app's access token (``Authorization: Bearer``), scopes
``crm.objects.deals.read`` and ``crm.objects.owners.read``. Answers are read leniently (unknown
fields ignored); property values are strings, or null when unset.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from services.providers_api.http import ApiClient, Retry, Sleep

PROVIDER = "hubspot"
# The deal properties the KPIs use; HubSpot returns only the properties asked for.
DEAL_PROPERTIES = (
    "dealname",
    "amount",
    "deal_currency_code",
    "dealstage",
    "hubspot_owner_id",
    "closedate",
    "createdate",
    "hs_lastmodifieddate",
)
SEARCH_LIMIT = 100  # the most a search page holds
SEARCH_WINDOW = 10_000  # a search query pages through at most this many results


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Deal(_Lenient):
    id: str
    properties: dict[str, str | None] = Field(default_factory=dict)
    createdAt: datetime | None = None  # HubSpot's names
    updatedAt: datetime | None = None
    archived: bool = False

    def prop(self, name: str) -> str | None:
        value = self.properties.get(name)
        return value if value not in (None, "") else None


class Owner(_Lenient):
    id: str
    email: str | None = None
    firstName: str | None = None
    lastName: str | None = None
    archived: bool = False


@dataclass(frozen=True, slots=True)
class DealPage:
    deals: list[Deal]
    total: int
    after: str | None  # the cursor of the next page, None on the last


def describe(response: httpx.Response) -> str:
    """HubSpot's error body (``{status, message, category, correlationId}``) in one line."""
    try:
        body = response.json()
    except ValueError:
        return response.reason_phrase
    if not isinstance(body, dict):
        return response.reason_phrase
    parts = [str(body.get(k)) for k in ("category", "message") if body.get(k)]
    return " ".join(parts) or response.reason_phrase


def http_client(base_url: str, token: SecretStr, timeout: float = 10.0) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=base_url.rstrip("/"),
        headers={"authorization": f"Bearer {token.get_secret_value()}"},
        timeout=timeout,
    )


class HubSpotClient:
    def __init__(
        self,
        client: httpx.AsyncClient,
        token: SecretStr,
        retry: Retry = Retry(),
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.api = ApiClient(
            PROVIDER,
            client,
            secrets=[token.get_secret_value()],
            retry=retry,
            describe=describe,
            sleep=sleep,
        )

    async def deal(self, deal_id: str) -> Deal:
        body = await self.api.get(
            f"/crm/v3/objects/deals/{deal_id}", {"properties": ",".join(DEAL_PROPERTIES)}
        )
        return Deal.model_validate(body)

    async def owner(self, owner_id: str) -> Owner:
        return Owner.model_validate(await self.api.get(f"/crm/v3/owners/{owner_id}"))

    async def owners(self) -> AsyncIterator[Owner]:
        """Every active owner, page by page."""
        after: str | None = None
        while True:
            params: dict[str, Any] = {"limit": 100, **({"after": after} if after else {})}
            body = await self.api.get("/crm/v3/owners", params)
            for item in body.get("results", []):
                yield Owner.model_validate(item)
            after = _next(body)
            if after is None:
                return

    async def portal_id(self) -> str:
        """The account's id: the ``portalId`` its webhooks carry."""
        body = await self.api.get("/account-info/v3/details")
        return str(body["portalId"])

    async def search_deals(self, since: datetime, after: str | None = None) -> DealPage:
        """Deals last modified at or after ``since``, oldest change first."""
        body = await self.api.post(
            "/crm/v3/objects/deals/search",
            {
                "filterGroups": [
                    {
                        "filters": [
                            {
                                "propertyName": "hs_lastmodifieddate",
                                "operator": "GTE",
                                "value": str(int(since.timestamp() * 1000)),
                            }
                        ]
                    }
                ],
                "sorts": [{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}],
                "properties": list(DEAL_PROPERTIES),
                "limit": SEARCH_LIMIT,
                **({"after": after} if after else {}),
            },
        )
        deals = [Deal.model_validate(item) for item in body.get("results", [])]
        return DealPage(deals, int(body.get("total", len(deals))), _next(body))


def _next(body: Any) -> str | None:
    after = (body.get("paging") or {}).get("next", {}).get("after")
    return str(after) if after not in (None, "") else None
