"""Aircall's public API v1, as far as SalesPulse reads it: calls and users.

Authentication is HTTP Basic with the API ID and API token (Aircall's dashboard, Integrations &
API). Lists are paged (``page``, ``per_page`` at most 50) and described by ``meta``; the calls
are those a webhook's ``data`` holds, so the webhook adapter translates them. Aircall limits a
company to 60 requests a minute and says so in ``X-AircallApi-*`` headers.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
from pydantic import SecretStr

from services.providers_api.http import ApiClient, Retry, Sleep

PROVIDER = "aircall"
PER_PAGE = 50  # Aircall's maximum
RESET_HEADER = "x-aircallapi-reset"  # epoch seconds when the minute's budget refills


@dataclass(frozen=True, slots=True)
class CallPage:
    calls: list[dict[str, Any]]
    total: int
    next_page: int | None  # None on the last page


def describe(response: httpx.Response) -> str:
    """Aircall's error body (``{error, troubleshoot}``) in one line."""
    try:
        body = response.json()
    except ValueError:
        return response.reason_phrase
    if not isinstance(body, dict):
        return response.reason_phrase
    parts = [str(body.get(k)) for k in ("error", "troubleshoot") if body.get(k)]
    return " ".join(parts) or response.reason_phrase


def http_client(
    base_url: str, api_id: str, api_token: SecretStr, timeout: float = 10.0
) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=base_url.rstrip("/"),
        auth=httpx.BasicAuth(api_id, api_token.get_secret_value()),
        timeout=timeout,
    )


class AircallClient:
    def __init__(
        self,
        client: httpx.AsyncClient,
        api_token: SecretStr,
        retry: Retry = Retry(),
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.api = ApiClient(
            PROVIDER,
            client,
            secrets=[api_token.get_secret_value()],
            retry=retry,
            reset_header=RESET_HEADER,
            describe=describe,
            sleep=sleep,
        )

    async def calls(self, since: datetime, page: int = 1) -> CallPage:
        """Calls started at or after ``since``, oldest first, one page."""
        body = await self.api.get(
            "/v1/calls",
            {
                "from": int(since.timestamp()),
                "order": "asc",
                "page": page,
                "per_page": PER_PAGE,
            },
        )
        meta = body.get("meta") or {}
        more = bool(meta.get("next_page_link"))
        return CallPage(
            list(body.get("calls", [])),
            int(meta.get("total", 0)),
            int(meta.get("current_page", page)) + 1 if more else None,
        )

    async def users(self) -> list[dict[str, Any]]:
        """Every user (id, name, email)."""
        users: list[dict[str, Any]] = []
        page = 1
        while True:
            body = await self.api.get("/v1/users", {"page": page, "per_page": PER_PAGE})
            users += body.get("users", [])
            if not (body.get("meta") or {}).get("next_page_link"):
                return users
            page += 1
