"""A traffic simulator: a sales floor of 36 reps in three teams posting signed deliveries to an
ingest URL.

It sets up its roster through the API (when given an admin key), then posts activity at a steady
rate in the formats of the providers it has secrets for (Standard Webhooks, Twilio, Aircall,
HubSpot, Pipedrive), so the demo and the benchmarks exercise the real adapters.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import httpx

from services.simulator.formats import Formats, Rep, Secrets, signed_headers

log = logging.getLogger(__name__)

TEAMS = {"paris": "Paris Grands Comptes", "lyon": "Lyon PME", "nantes": "Nantes Inbound"}
_FIRST = ("Alice", "Bruno", "Chloé", "David", "Emma", "Farid", "Gina", "Hugo", "Inès", "Jules",
          "Karim", "Léa", "Mathis", "Nora", "Oscar", "Pauline", "Quentin", "Rose", "Samir",
          "Théa", "Ugo", "Valentine", "William", "Yasmine", "Zoé", "Adrien", "Bérénice",
          "Clément", "Diane", "Étienne", "Fanny", "Gaspard", "Hélène", "Ilyes", "Jeanne",
          "Kévin")  # fmt: skip
_LAST = ("Martin", "Petit", "Durand", "Leroy", "Moreau", "Haddad", "Rossi", "Bernard", "Fontaine",
         "Lambert", "Benali", "Girard", "Roux", "Chevalier", "Mercier", "Blanc", "Guérin",
         "Faure", "Mansouri", "Robin", "Colin", "Vidal", "Caron", "Aubert", "Lemaire",
         "Perrin", "Morel", "Giraud", "Mathieu", "Clément", "Gauthier", "Dumont", "Lopez",
         "Fournier", "Nicolas", "Henry")  # fmt: skip
# A floor of 36 reps in three teams: what the demo and its wallboard show.
REPS = [
    Rep(_FIRST[i].lower().replace("é", "e").replace("è", "e").replace("É", "e"),
        f"{_FIRST[i]} {_LAST[i]}", list(TEAMS)[i % len(TEAMS)], i + 1)
    for i in range(len(_FIRST))
]  # fmt: skip
CALLS_A_DAY = 40  # each rep's daily calls target: the wallboard's ?show=pace has bars

DEMO_CONTEST = "demo-blitz"  # the id the banner's contest wallboard shows
CONTEST_ROUND = timedelta(minutes=10)
WINNERS_SHOWN = timedelta(minutes=2)

__all__ = ["REPS", "TEAMS", "Rep", "Secrets", "Simulator", "signed_headers"]


@dataclass
class Simulator:
    ingest_url: str
    secrets: Secrets
    api_url: str | None = None
    admin_key: str | None = None
    rate: float = 2.0
    providers: list[str] | None = None  # default: every provider with a secret
    seed: int | None = None
    _rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._formats = Formats(self.secrets, self.ingest_url, self._rng)
        available = self.secrets.providers()
        self._providers = [p for p in (self.providers or available) if p in available]
        if not self._providers:
            raise ValueError("the simulator has no secret for any of the requested providers")

    async def setup_roster(self, client: httpx.AsyncClient) -> None:
        """The floor in one roster import, a monthly revenue target per team and a daily calls
        target per rep."""
        if not (self.api_url and self.admin_key):
            return
        auth = {"authorization": f"Bearer {self.admin_key}"}
        roster = {
            "teams": [{"id": t, "name": n} for t, n in TEAMS.items()],
            "reps": [
                {"id": r.rep_id, "name": r.name, "team_id": r.team_id,
                 "identities": r.identities(), "effective_from": "2020-01-01T00:00:00Z"}
                for r in REPS
            ],
        }  # fmt: skip
        response = await client.post(f"{self.api_url}/v1/roster/import", json=roster, headers=auth)
        response.raise_for_status()
        targets = [("team", t, "revenue", "month", 2_000_000) for t in TEAMS]
        targets += [("rep", r.rep_id, "calls_total", "day", CALLS_A_DAY) for r in REPS]
        for scope, subject, metric, period, value in targets:
            put = await client.put(
                f"{self.api_url}/v1/targets/{scope}/{subject}/{metric}/{period}",
                json={"value": value},
                headers=auth,
            )
            put.raise_for_status()

    async def post_one(self, client: httpx.AsyncClient) -> httpx.Response:
        provider = self._rng.choice(self._providers)
        path, body, headers = self._formats.builders[provider](self._rng.choice(REPS))
        return await client.post(f"{self.ingest_url}{path}", content=body, headers=headers)

    async def run(self, stop: asyncio.Event, count: int | None = None) -> int:
        """Post deliveries until ``stop`` is set or ``count`` were sent; return how many were."""
        async with httpx.AsyncClient(timeout=10) as client:
            await self._wait_for(client, stop)
            await self.setup_roster(client)
            contests = asyncio.create_task(self.run_contests(client, stop))
            try:
                sent = await self._post(client, stop, count)
            finally:
                contests.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await contests
        return sent

    async def _post(self, client: httpx.AsyncClient, stop: asyncio.Event, count: int | None) -> int:
        sent = 0
        while not stop.is_set() and (count is None or sent < count):
            response = await self.post_one(client)
            if response.status_code == 202:
                sent += 1
            else:
                log.warning(
                    "simulated delivery refused",
                    extra={"status": response.status_code, "body": response.text[:300]},
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._rng.expovariate(self.rate))
        return sent

    async def run_contests(self, client: httpx.AsyncClient, stop: asyncio.Event) -> None:
        """Round after round of the demo contest (``DEMO_CONTEST``): a call blitz of
        ``CONTEST_ROUND`` from the current minute; once it is settled and its winners have been
        on the wallboard for ``WINNERS_SHOWN``, the next round replaces it."""
        if not (self.api_url and self.admin_key):
            return
        url = f"{self.api_url}/v1/contests/{DEMO_CONTEST}"
        auth = {"authorization": f"Bearer {self.admin_key}"}
        while not stop.is_set():
            start = datetime.now(UTC).replace(second=0, microsecond=0)
            body = {
                "name": "Call blitz",
                "starts_at": start.isoformat(),
                "ends_at": (start + CONTEST_ROUND).isoformat(),
                "score": {"points": {"calls_total": 1, "meetings_held": 3, "deals_won": 10}},
                "goal": 25,
            }
            try:
                await client.delete(url, headers=auth)
                response = await client.put(url, json=body, headers=auth)
                response.raise_for_status()
            except httpx.HTTPError as exc:
                log.warning("demo contest not set up; trying again", extra={"error": repr(exc)})
                wait = 10.0
            else:
                settles = datetime.fromisoformat(response.json()["settles_at"])
                wait = (settles - datetime.now(UTC) + WINNERS_SHOWN).total_seconds()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), max(wait, 1.0))

    async def _wait_for(self, client: httpx.AsyncClient, stop: asyncio.Event) -> None:
        for url in filter(None, [self.ingest_url, self.api_url]):
            while not stop.is_set():
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get(f"{url}/healthz")).status_code == 200:
                        break
                await asyncio.sleep(0.2)
