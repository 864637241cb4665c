"""A real sales floor for the wallboard's tests: reps with French names (some long), three
teams, a day of calls and wins, some of them an hour and more ago (so the boards have moved)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.api_support import ADMIN, book
from tests.conftest import canonical

TEAMS = {
    "idf": "Île-de-France Grands Comptes",
    "ouest": "Grand Ouest",
    "sud": "Sud-Est & Monaco",
}
FIRST = ["Chloé", "Lucas", "Inès", "Hugo", "Léa", "Nathan", "Manon", "Louis", "Camille",
         "Gabriel", "Zoé", "Arthur", "Jade", "Raphaël", "Louise", "Jules", "Marie-Charlotte",
         "Théo", "Anaïs", "Maël"]  # fmt: skip
LAST = ["Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand",
        "Leroy", "Moreau", "Simon", "Laurent", "de La Rochefoucauld-Montbel", "Lefèvre",
        "Michel", "Garcia", "David", "Bertrand", "Roux", "Vincent"]  # fmt: skip


def rep_name(i: int) -> str:
    return f"{FIRST[i % len(FIRST)]} {LAST[(i * 7 + i // len(FIRST)) % len(LAST)]}"


async def seed(url: str, db: AsyncEngine, reps: int, wins: int, seed: int = 1) -> dict[str, Any]:
    """``reps`` reps in the three teams, their calls of today and ``wins`` deals won today;
    returns what was booked: ``{"reps": {rep_id: name}, "calls": {rep_id: n}, "wins": [...]}``."""
    rng = random.Random(seed)
    roster: dict[str, list[dict[str, Any]]] = {
        "teams": [{"id": t, "name": n} for t, n in TEAMS.items()],
        "reps": [
            {"id": f"r{i:03d}", "name": rep_name(i), "team_id": list(TEAMS)[i % 3],
             "effective_from": "2020-01-01T00:00:00Z",
             "identities": [{"provider": "crm", "external_id": f"u-{i}"}]}
            for i in range(reps)
        ],
    }  # fmt: skip
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        put = await client.post("/v1/roster/import", json=roster, headers=ADMIN)
        assert put.status_code == 200, put.text
    now = datetime.now(UTC)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    earliest = max(midnight + timedelta(hours=1), now - timedelta(hours=6))  # today, anywhere
    span = max(int((now - earliest).total_seconds()), 60)
    events: list[dict[str, Any]] = []
    calls: dict[str, int] = {}
    for i in range(reps):
        n = rng.randrange(0, 40)
        calls[f"r{i:03d}"] = n
        for _ in range(n):
            at = earliest + timedelta(seconds=rng.randrange(span))
            events.append(canonical("call.placed", actor=f"u-{i}", time=at))
    won: list[dict[str, Any]] = []
    for w in range(wins):
        i = rng.randrange(reps)
        amount = rng.choice([1200, 4800, 15000, 540200, 23750])
        at = earliest + timedelta(seconds=rng.randrange(span))
        won.append({"rep_id": f"r{i:03d}", "amount": amount, "at": at})
        events.append(canonical("deal.updated", actor=f"u-{i}", deal_id=f"D-{w}",
                                amount=f"{amount}.00", time=at))  # fmt: skip
    await book(db, *events)
    return {"reps": {r["id"]: r["name"] for r in roster["reps"]}, "calls": calls, "wins": won}
