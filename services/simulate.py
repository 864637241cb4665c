"""A traffic simulator: a small sales floor posting signed canonical events to an ingest URL.

It sets up its roster through the API (when given an admin key) and then posts Standard-Webhooks
signed events at a steady rate, so the leaderboard moves in the demo.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import orjson
from standardwebhooks import Webhook

log = logging.getLogger(__name__)

TEAMS = {"north": "North Stars", "south": "Southern Cross"}
REPS = [
    ("alice", "Alice Martin", "north"),
    ("bruno", "Bruno Petit", "north"),
    ("chloe", "Chloé Durand", "north"),
    ("david", "David Leroy", "north"),
    ("emma", "Emma Moreau", "south"),
    ("farid", "Farid Haddad", "south"),
    ("gina", "Gina Rossi", "south"),
    ("hugo", "Hugo Bernard", "south"),
]
PROVIDER = "sim"


def signed_headers(secret: str, body: bytes, msg_id: str | None = None) -> dict[str, str]:
    """Standard Webhooks headers for ``body`` (the ``standardwebhooks`` package signs it)."""
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    now = datetime.now(UTC)
    signature = Webhook(secret).sign(msg_id, now, body.decode())
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
        "content-type": "application/json",
    }


@dataclass
class Simulator:
    ingest_url: str
    secret: str
    api_url: str | None = None
    admin_key: str | None = None
    rate: float = 2.0
    seed: int | None = None

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)

    async def setup_roster(self, client: httpx.AsyncClient) -> None:
        if not (self.api_url and self.admin_key):
            return
        auth = {"authorization": f"Bearer {self.admin_key}"}
        for team_id, name in TEAMS.items():
            response = await client.put(
                f"{self.api_url}/v1/teams/{team_id}", json={"name": name}, headers=auth
            )
            response.raise_for_status()
        for rep_id, name, team_id in REPS:
            body = {
                "name": name,
                "team_id": team_id,
                "identities": [{"provider": PROVIDER, "external_id": rep_id}],
                "effective_from": "2020-01-01T00:00:00Z",
            }
            response = await client.put(f"{self.api_url}/v1/reps/{rep_id}", json=body, headers=auth)
            response.raise_for_status()

    def next_event(self) -> dict[str, Any]:
        rep_id = self._random.choice(REPS)[0]
        actor = {"provider": PROVIDER, "external_id": rep_id}
        kind, data = self._random.choices(
            [self._placed, self._received, self._missed, self._won, self._lost, self._meeting],
            weights=[50, 20, 10, 6, 4, 10],
        )[0](actor)
        return {
            "specversion": "1.0",
            "id": f"sim-{uuid.uuid4().hex}",
            "source": "sim://floor",
            "type": kind,
            "time": datetime.now(UTC).isoformat(),
            "data": data,
        }

    def _placed(self, actor: dict[str, str]) -> tuple[str, dict[str, Any]]:
        outcome = self._random.choice(["connected", "connected", "no_answer", "busy", "voicemail"])
        talk = self._random.randint(30, 900) if outcome == "connected" else 0
        return "call.placed", {
            "call_id": uuid.uuid4().hex,
            "actor": actor,
            "outcome": outcome,
            "talk_seconds": talk,
            "counterpart": self._number(),
        }

    def _received(self, actor: dict[str, str]) -> tuple[str, dict[str, Any]]:
        return "call.received", {
            "call_id": uuid.uuid4().hex,
            "actor": actor,
            "talk_seconds": self._random.randint(20, 600),
            "counterpart": self._number(),
        }

    def _missed(self, actor: dict[str, str]) -> tuple[str, dict[str, Any]]:
        return "call.missed", {
            "call_id": uuid.uuid4().hex,
            "actor": actor,
            "counterpart": self._number(),
            "reason": "no_answer",
        }

    def _won(self, actor: dict[str, str]) -> tuple[str, dict[str, Any]]:
        amount = Decimal(self._random.randrange(1_000, 50_000, 250))
        return "deal.updated", {
            "deal_id": f"D-{uuid.uuid4().hex[:8]}",
            "actor": actor,
            "status": "won",
            "amount": str(amount),
            "currency": "EUR",
        }

    def _lost(self, actor: dict[str, str]) -> tuple[str, dict[str, Any]]:
        return "deal.updated", {
            "deal_id": f"D-{uuid.uuid4().hex[:8]}",
            "actor": actor,
            "status": "lost",
        }

    def _meeting(self, actor: dict[str, str]) -> tuple[str, dict[str, Any]]:
        return "meeting.held", {"meeting_id": uuid.uuid4().hex, "actor": actor}

    def _number(self) -> str:
        return f"+3361{self._random.randrange(10**7):07d}"

    async def post(self, client: httpx.AsyncClient, events: list[dict[str, Any]]) -> httpx.Response:
        body = orjson.dumps(events if len(events) > 1 else events[0])
        return await client.post(
            f"{self.ingest_url}/webhooks/events",
            content=body,
            headers=signed_headers(self.secret, body),
        )

    async def run(self, stop: asyncio.Event, count: int | None = None) -> int:
        """Post events until ``stop`` is set or ``count`` were sent; return how many were."""
        sent = 0
        async with httpx.AsyncClient(timeout=10) as client:
            await self._wait_for(client, stop)
            await self.setup_roster(client)
            while not stop.is_set() and (count is None or sent < count):
                response = await self.post(client, [self.next_event()])
                if response.status_code == 202:
                    sent += 1
                else:
                    log.warning(
                        "simulator event refused",
                        extra={"status": response.status_code, "body": response.text[:300]},
                    )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self._random.expovariate(self.rate))
        return sent

    async def _wait_for(self, client: httpx.AsyncClient, stop: asyncio.Event) -> None:
        for url in filter(None, [self.ingest_url, self.api_url]):
            while not stop.is_set():
                try:
                    if (await client.get(f"{url}/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.2)
