"""``salespulse import`` speed: 100,000 past events (calls and won deals of 40 reps over 60
days) as JSON lines, then as CSV, published by the history loader through the database's log
bus into a fresh PostgreSQL database (what ``salespulse serve`` reads). Figures in events/s,
from the first line read to the last checkpoint written (the KPI service books them after).

``python -m bench.history_import`` prints them (``SALESPULSE_TEST_DATABASE_URL``: the server).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from services.history.command import run_import
from shared.db.engine import create_engine
from shared.db.migrate import migrate
from shared.settings import Settings
from tests.conftest import fresh_postgres_database

EVENTS = int(os.environ.get("BENCH_HISTORY_EVENTS", "100000"))
CSV_HEADER = "type,time,actor_provider,actor_id,id,call_id,outcome,talk_seconds,deal_id,status,amount,currency\n"  # noqa: E501


def events(count: int) -> list[dict[str, Any]]:
    rng, now = random.Random(23), datetime.now(UTC)
    found = []
    for n in range(count):
        at = (now - timedelta(seconds=rng.randrange(60, 60 * 86400))).isoformat()
        actor = {"provider": "crm", "external_id": f"u-{rng.randrange(40)}"}
        if rng.random() < 0.85:
            data = {"call_id": f"c-{n}", "actor": actor, "outcome": "connected",
                    "talk_seconds": rng.randrange(900)}  # fmt: skip
            kind = "call.placed"
        else:
            data = {"deal_id": f"d-{n}", "actor": actor, "status": "won",
                    "amount": f"{rng.randrange(100, 90_000)}.50", "currency": "EUR"}  # fmt: skip
            kind = "deal.updated"
        found.append({"specversion": "1.0", "id": f"h-{n}", "source": "crm://bench",
                      "type": kind, "time": at, "data": data})  # fmt: skip
    return found


def as_csv(bodies: list[dict[str, Any]]) -> str:
    rows = [CSV_HEADER]
    for b in bodies:
        d = b["data"]
        rows.append(",".join(str(v) for v in (
            b["type"], b["time"], "crm", d["actor"]["external_id"], b["id"], d.get("call_id", ""),
            d.get("outcome", ""), d.get("talk_seconds", ""), d.get("deal_id", ""),
            d.get("status", ""), d.get("amount", ""), d.get("currency", ""),
        )) + "\n")  # fmt: skip
    return "".join(rows)


async def _rate(admin_url: str, path: Path) -> float:
    async with fresh_postgres_database(admin_url) as url:
        db = create_engine(url)
        await migrate(db)
        await db.dispose()
        summary = await run_import(Settings(database_url=url), path, batch_size=2000)
    return round(summary.rate)


async def run(admin_url: str, count: int = EVENTS) -> dict[str, Any]:
    bodies = events(count)
    with tempfile.TemporaryDirectory(prefix="bench-history-") as work:
        jsonl, csv = Path(work) / "history.jsonl", Path(work) / "history.csv"
        jsonl.write_bytes(b"".join(orjson.dumps(b) + b"\n" for b in bodies))
        csv.write_text(as_csv(bodies))
        return {
            "events": count,
            "jsonl_events_per_s": await _rate(admin_url, jsonl),
            "csv_events_per_s": await _rate(admin_url, csv),
            "bus": "database log (PostgreSQL), batches of 2,000",
        }


if __name__ == "__main__":
    print(json.dumps(asyncio.run(run(os.environ["SALESPULSE_TEST_DATABASE_URL"])), indent=2))
