"""The bulk roster import at scale: 10,000 reps (two identities each, 50 teams) in one
``POST /v1/roster/import``, as JSON and as CSV, each into a fresh PostgreSQL database, through
the real API app in-process (httpx's ASGI transport: no network, the app's whole request path).

Figures in seconds, from the request sent to the answer read: ``json_s`` and ``csv_s`` on an
empty roster (everything created), ``json_again_s`` the same JSON once more (everything
updated, no team change). The issue's goal: at most 2 s for 10,000 reps on PostgreSQL.

``python -m bench.roster_import`` prints them (``SALESPULSE_TEST_DATABASE_URL``: the server).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from typing import Any

import httpx

from services.api.app import create_app
from shared.db.engine import create_engine
from shared.db.migrate import migrate
from shared.runtime import tune_gc_for_batches
from shared.settings import Settings
from tests.conftest import ADMIN_KEY, fresh_postgres_database

REPS = int(os.environ.get("BENCH_IMPORT_REPS", "10000"))
TEAMS = 50
AUTH = {"authorization": f"Bearer {ADMIN_KEY}"}


def json_body(reps: int) -> bytes:
    teams = [{"id": f"t{t}", "name": f"Team {t}"} for t in range(TEAMS)]
    people = [
        {
            "id": f"r{i}",
            "name": f"Rep {i}",
            "team_id": f"t{i % TEAMS}",
            "effective_from": "2020-01-01T00:00:00Z",
            "identities": [
                {"provider": "crm", "external_id": f"u-{i}"},
                {"provider": "twilio", "external_id": f"client:r{i}"},
            ],
        }
        for i in range(reps)
    ]
    return json.dumps({"teams": teams, "reps": people}).encode()


def csv_body(reps: int) -> bytes:
    lines = ["rep_id,name,team_id,provider,external_id,effective_from"]
    for i in range(reps):
        for provider, external_id in (("crm", f"u-{i}"), ("twilio", f"client:r{i}")):
            lines.append(f"r{i},Rep {i},t{i % TEAMS},{provider},{external_id},2020-01-01T00:00Z")
    return ("\n".join(lines) + "\n").encode()


async def _timed(client: httpx.AsyncClient, body: bytes, content_type: str) -> float:
    started = time.perf_counter()
    response = await client.post(
        "/v1/roster/import", content=body, headers={**AUTH, "content-type": content_type}
    )
    elapsed = time.perf_counter() - started
    if response.status_code != 200:
        raise RuntimeError(f"import failed: {response.status_code} {response.text[:300]}")
    return elapsed


async def _imports(database_url: str, bodies: list[tuple[bytes, str]]) -> list[float]:
    """Each body imported in turn into a fresh database on the server of ``database_url``."""
    async with fresh_postgres_database(database_url) as url:
        db = create_engine(url)
        try:
            await migrate(db)
            settings = Settings(api_keys=f"{ADMIN_KEY}:read+admin", database_url=url)
            transport = httpx.ASGITransport(create_app(settings, db))
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
                return [await _timed(client, body, kind) for body, kind in bodies]
        finally:
            await db.dispose()


async def run(database_url: str, reps: int = REPS) -> dict[str, Any]:
    """Seconds to import ``reps`` reps as JSON (then again) and as CSV; ``database_url`` is the
    PostgreSQL server's (a database is made and dropped for each format)."""
    tune_gc_for_batches()  # as `salespulse api` does
    as_json, as_csv = json_body(reps), csv_body(reps)
    json_s, json_again_s = await _imports(database_url, [(as_json, "application/json")] * 2)
    (csv_s,) = await _imports(database_url, [(as_csv, "text/csv")])
    return {
        "reps": reps,
        "identities": 2 * reps,
        "json_bytes": len(as_json),
        "csv_bytes": len(as_csv),
        "json_s": round(json_s, 3),
        "json_again_s": round(json_again_s, 3),
        "csv_s": round(csv_s, 3),
        "transport": "httpx ASGI transport, in-process",
    }


if __name__ == "__main__":
    print(json.dumps(asyncio.run(run(os.environ["SALESPULSE_TEST_DATABASE_URL"])), indent=2))
