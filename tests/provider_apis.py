"""Local stand-ins for the providers' REST APIs, answering as their public docs describe.

Real HTTP servers (Starlette under uvicorn, on 127.0.0.1 and a free port, in a thread of their
own so that both async tests and a command run synchronously can call them). A test seeds the
data (deals, owners, calls, users) and can make the server misbehave as the real one does:
answer 429 with ``Retry-After`` to the next N requests, refuse an expired token, or fail from
the Nth request on (a backfill interrupted mid-way).

- HubSpot CRM v3: ``GET /crm/v3/objects/deals/{id}?properties=...``, ``GET /crm/v3/owners/{id}``,
  ``GET /crm/v3/owners`` (paged by ``after``), ``POST /crm/v3/objects/deals/search``
  (``filterGroups`` on ``hs_lastmodifieddate`` GTE, ``sorts``, ``after``, ``limit`` <= 100,
  ``total``), ``GET /account-info/v3/details``; Bearer token; errors as
  ``{status: "error", message, correlationId, category}``.
- Aircall v1: ``GET /v1/calls?from=&to=&page=&per_page=&order=`` and ``GET /v1/users`` with
  ``meta`` (``count, total, current_page, per_page, next_page_link, previous_page_link``); Basic
  auth ``api_id:api_token``; ``X-AircallApi-Limit / -Remaining / -Reset`` on every answer.
"""

from __future__ import annotations

import asyncio
import base64
import socket
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

Handler = Callable[[Request], Awaitable[Response]]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Faults:
    """How the server misbehaves next; set by the test, read by the server's thread."""

    throttle: int = 0  # answer 429 to this many next requests
    retry_after: int = 1
    fail_after: int | None = None  # answer ``fail_status`` once this many more were served
    fail_status: int = 500
    served: int = 0  # requests answered 2xx
    seen: list[str] = field(default_factory=list)  # "METHOD path?query" of every request

    def throttle_next(self, n: int, retry_after: int = 1) -> None:
        self.throttle, self.retry_after = n, retry_after

    def fail_from(self, n: int | None, status: int = 500) -> None:
        """Answer ``status`` to every request once ``n`` more have been served (None: never)."""
        self.fail_after = None if n is None else self.served + n
        self.fail_status = status


class ProviderApi:
    """A provider's API on a local port; ``with api.running():`` serves it."""

    def __init__(self) -> None:
        self.faults = Faults()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"

    def routes(self) -> list[Route]:
        raise NotImplementedError

    def authorised(self, request: Request) -> Response | None:
        """None when the request's credentials are good, else the provider's 401."""
        raise NotImplementedError

    def throttled(self) -> Response:
        raise NotImplementedError

    def guarded(self, handler: Handler) -> Handler:
        async def serve(request: Request) -> Response:
            faults = self.faults
            query = f"?{request.url.query}" if request.url.query else ""
            faults.seen.append(f"{request.method} {request.url.path}{query}")
            if (refusal := self.authorised(request)) is not None:
                return refusal
            if faults.throttle > 0:
                faults.throttle -= 1
                return self.throttled()
            if faults.fail_after is not None and faults.served >= faults.fail_after:
                return JSONResponse(
                    {"status": "error", "message": "internal error"}, faults.fail_status
                )
            response = await handler(request)
            if response.status_code < 300:
                faults.served += 1
            return response

        return serve

    @contextmanager
    def running(self) -> Iterator[ProviderApi]:
        app = Starlette(routes=self.routes())
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            assert time.monotonic() < deadline, "the provider API did not start"
            time.sleep(0.02)
        try:
            yield self
        finally:
            server.should_exit = True
            thread.join(10)


def _error(status: int, message: str, category: str) -> JSONResponse:
    return JSONResponse(
        {
            "status": "error",
            "message": message,
            "correlationId": str(uuid.uuid4()),
            "category": category,
        },
        status,
    )


class HubSpotApi(ProviderApi):
    def __init__(self, token: str, portal_id: int = 62515) -> None:
        super().__init__()
        self.token = token
        self.portal_id = portal_id
        self.deals: dict[str, dict[str, Any]] = {}  # id -> object as the API answers it
        self.owners: dict[str, dict[str, Any]] = {}
        self.expired = False  # the token was revoked or rotated

    def add_owner(self, owner_id: str, email: str, first: str = "", last: str = "") -> None:
        now = "2026-01-05T09:00:00.000Z"
        self.owners[owner_id] = {
            "id": owner_id,
            "email": email,
            "type": "PERSON",
            "firstName": first,
            "lastName": last,
            "userId": int(owner_id) + 1000,
            "createdAt": now,
            "updatedAt": now,
            "archived": False,
            "teams": [],
        }

    def add_deal(self, deal_id: str, modified_ms: int, **properties: str | None) -> None:
        """A deal; ``properties`` as HubSpot names them (strings), ``hs_lastmodifieddate`` set."""
        created = properties.get("createdate") or _iso(modified_ms)
        props = {
            "hs_object_id": deal_id,
            "createdate": created,
            "hs_lastmodifieddate": _iso(modified_ms),
            **properties,
        }
        self.deals[deal_id] = {
            "id": deal_id,
            "properties": props,
            "createdAt": created,
            "updatedAt": _iso(modified_ms),
            "archived": False,
        }

    def routes(self) -> list[Route]:
        g = self.guarded
        return [
            Route("/crm/v3/objects/deals/search", g(self._search), methods=["POST"]),
            Route("/crm/v3/objects/deals/{deal_id}", g(self._deal)),
            Route("/crm/v3/owners/{owner_id}", g(self._owner)),
            Route("/crm/v3/owners", g(self._owners)),
            Route("/account-info/v3/details", g(self._account)),
        ]

    def authorised(self, request: Request) -> Response | None:
        header = request.headers.get("authorization", "")
        if not header.startswith("Bearer "):
            return _error(
                401,
                "Authentication credentials not found. This API supports OAuth 2.0 "
                "authentication and you can find more details at "
                "https://developers.hubspot.com/docs/methods/auth/oauth-overview",
                "INVALID_AUTHENTICATION",
            )
        if header.removeprefix("Bearer ") != self.token or self.expired:
            return _error(
                401,
                "The OAuth token used to make this call expired 5 minute(s) ago.",
                "EXPIRED_AUTHENTICATION",
            )
        return None

    def throttled(self) -> Response:
        response = _error(429, "You have reached your secondly limit.", "RATE_LIMITS")
        response.headers["retry-after"] = str(self.faults.retry_after)
        return response

    async def _deal(self, request: Request) -> Response:
        deal = self.deals.get(request.path_params["deal_id"])
        if deal is None:
            return _error(404, "Object not found.", "OBJECT_NOT_FOUND")
        wanted = request.query_params.get("properties")
        return JSONResponse(_with_properties(deal, wanted.split(",") if wanted else None))

    async def _owner(self, request: Request) -> Response:
        owner = self.owners.get(request.path_params["owner_id"])
        if owner is None:
            return _error(404, "Owner not found.", "OBJECT_NOT_FOUND")
        return JSONResponse(owner)

    async def _owners(self, request: Request) -> Response:
        limit = min(int(request.query_params.get("limit", "100")), 500)
        start = int(request.query_params.get("after", "0"))
        owners = list(self.owners.values())
        page = owners[start : start + limit]
        body: dict[str, Any] = {"results": page}
        if start + limit < len(owners):
            after = str(start + limit)
            body["paging"] = {
                "next": {"after": after, "link": f"{self.url}/crm/v3/owners?after={after}"}
            }
        return JSONResponse(body)

    async def _account(self, request: Request) -> Response:
        return JSONResponse(
            {
                "portalId": self.portal_id,
                "accountType": "STANDARD",
                "timeZone": "Europe/Paris",
                "companyCurrency": "EUR",
                "additionalCurrencies": [],
                "utcOffset": "+01:00",
                "utcOffsetMilliseconds": 3600000,
                "uiDomain": "app.hubspot.com",
                "dataHostingLocation": "eu1",
            }
        )

    async def _search(self, request: Request) -> Response:
        body = await request.json()
        limit = int(body.get("limit", 10))
        if not 1 <= limit <= 100:
            return _error(400, "limit must be between 1 and 100", "VALIDATION_ERROR")
        since = _gte(body)
        matching = sorted(
            (
                d
                for d in self.deals.values()
                if _ms(d["properties"]["hs_lastmodifieddate"]) >= since
            ),
            key=lambda d: (_ms(d["properties"]["hs_lastmodifieddate"]), int(d["id"])),
        )
        start = int(body.get("after") or 0)
        if start >= 10_000:
            return _error(400, "paging beyond 10000 results is not supported", "VALIDATION_ERROR")
        page = matching[start : start + limit]
        answer: dict[str, Any] = {
            "total": len(matching),
            "results": [_with_properties(d, body.get("properties")) for d in page],
        }
        if start + limit < len(matching):
            answer["paging"] = {"next": {"after": str(start + limit), "link": ""}}
        return JSONResponse(answer)


def _with_properties(deal: dict[str, Any], wanted: list[str] | None) -> dict[str, Any]:
    """The deal with the properties asked for (unset ones as null), as HubSpot answers."""
    props = deal["properties"]
    names = wanted or ["amount", "closedate", "createdate", "dealname", "dealstage"]
    names = [*names, "hs_object_id", "createdate", "hs_lastmodifieddate"]
    return {**deal, "properties": {n: props.get(n) for n in names}}


def _gte(body: dict[str, Any]) -> int:
    for group in body.get("filterGroups", []):
        for f in group.get("filters", []):
            if f.get("propertyName") == "hs_lastmodifieddate" and f.get("operator") == "GTE":
                return int(f["value"])
    return 0


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def _ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso).timestamp() * 1000)


class AircallApi(ProviderApi):
    LIMIT = 60  # requests a minute

    def __init__(self, api_id: str, api_token: str) -> None:
        super().__init__()
        self.api_id, self.api_token = api_id, api_token
        self.calls: list[dict[str, Any]] = []  # as a webhook's ``data`` holds them
        self.users: list[dict[str, Any]] = []

    def add_user(self, user_id: int, name: str, email: str) -> dict[str, Any]:
        user = {
            "id": user_id,
            "direct_link": f"https://api.aircall.io/v1/users/{user_id}",
            "name": name,
            "email": email,
            "available": True,
            "availability_status": "available",
            "created_at": "2026-01-05T09:00:00.000Z",
            "time_zone": "Europe/Paris",
            "language": "fr-FR",
        }
        self.users.append(user)
        return user

    def routes(self) -> list[Route]:
        return [
            Route("/v1/calls", self.guarded(self._calls)),
            Route("/v1/users", self.guarded(self._users)),
        ]

    def authorised(self, request: Request) -> Response | None:
        expected = base64.b64encode(f"{self.api_id}:{self.api_token}".encode()).decode()
        if request.headers.get("authorization") != f"Basic {expected}":
            return JSONResponse(
                {"error": "Unauthorized", "troubleshoot": "Check your api_id and api_token"},
                401,
            )
        return None

    def _rate_headers(self, remaining: int) -> dict[str, str]:
        return {
            "x-aircallapi-limit": str(self.LIMIT),
            "x-aircallapi-remaining": str(remaining),
            "x-aircallapi-reset": str(int(time.time()) + self.faults.retry_after),
        }

    def throttled(self) -> Response:
        return JSONResponse(
            {"error": "Too Many Requests", "troubleshoot": "Rate limit: 60 requests a minute"},
            429,
            headers={**self._rate_headers(0), "retry-after": str(self.faults.retry_after)},
        )

    async def _calls(self, request: Request) -> Response:
        q = request.query_params
        since, until = int(q.get("from", "0")), int(q.get("to", str(2**62)))
        calls = sorted(
            (c for c in self.calls if since <= c["started_at"] <= until),
            key=lambda c: (c["started_at"], c["id"]),
            reverse=q.get("order", "asc") == "desc",
        )
        return self._page(request, "calls", calls)

    async def _users(self, request: Request) -> Response:
        return self._page(request, "users", self.users)

    def _page(self, request: Request, name: str, items: list[dict[str, Any]]) -> Response:
        q = request.query_params
        page, per_page = int(q.get("page", "1")), min(int(q.get("per_page", "20")), 50)
        chunk = items[(page - 1) * per_page : page * per_page]

        def link(n: int) -> str | None:
            if n < 1 or (n - 1) * per_page >= len(items):
                return None
            return str(request.url.include_query_params(page=n))

        meta = {
            "count": len(chunk),
            "total": len(items),
            "current_page": page,
            "per_page": per_page,
            "next_page_link": link(page + 1),
            "previous_page_link": link(page - 1),
        }
        headers = self._rate_headers(self.LIMIT - 1)
        return JSONResponse({name: chunk, "meta": meta}, headers=headers)


def aircall_call(
    call_id: int,
    user: dict[str, Any] | None,
    started_at: int,
    *,
    direction: str = "outbound",
    answered_after: int | None = 5,
    duration: int = 60,
) -> dict[str, Any]:
    """A finished call, as Aircall's API and its webhooks' ``data`` hold it."""
    answered = started_at + answered_after if answered_after is not None else None
    ended = (answered or started_at) + duration
    return {
        "id": call_id,
        "direct_link": f"https://api.aircall.io/v1/calls/{call_id}",
        "status": "done",
        "direction": direction,
        "started_at": started_at,
        "answered_at": answered,
        "ended_at": ended,
        "duration": ended - started_at,
        "missed_call_reason": None if answered else "no_available_agent",
        "raw_digits": "+33 1 23 45 67 89",
        "voicemail": None,
        "user": user,
        "number": {"id": 1234, "digits": "+33 1 00 00 00 00", "name": "Sales"},
        "tags": [],
        "comments": [],
    }
