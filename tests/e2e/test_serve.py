"""``salespulse serve`` as an operator runs it: one probe answers for the whole process, the
start-up output names where things are and prints no secret, and the log is its bus."""

from __future__ import annotations

from pathlib import Path

import httpx
import orjson
import pytest
from sqlalchemy import func, select

from services.simulator import signed_headers
from shared.db.engine import create_engine
from shared.db.models import BusLogRecord, table
from tests.conftest import ADMIN_KEY, WEBHOOK_SECRET, canonical
from tests.reliability.test_serve_crashes import Serve, caught_up

pytestmark = pytest.mark.e2e


async def test_one_readiness_probe_answers_for_every_part_of_the_process(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'serve.db'}"
    serve = Serve(url, tmp_path / "serve.log")
    serve.env["SALESPULSE_LOG_LEVEL"] = "INFO"
    serve.start()
    db = create_engine(url)
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            await serve.until_ready(client)
            ready = await client.get(f"http://127.0.0.1:{serve.api_port}/readyz")
            assert ready.status_code == 200, ready.text
            assert ready.json()["checks"] == dict.fromkeys(
                (
                    "database",
                    "bus",
                    "consuming",
                    "dispatcher",
                    "settlement",
                    "pace_checks",
                    "retention",
                    "corrections",
                ),
                True,
            )
            raw = orjson.dumps([canonical("call.placed"), canonical("call.placed")])
            answer = await client.post(
                f"{serve.ingest}/webhooks/events",
                content=raw,
                headers=signed_headers(WEBHOOK_SECRET, raw),
            )
            assert answer.status_code == 202
        await caught_up(db)
        async with db.connect() as conn:
            logged = await conn.scalar(select(func.count()).select_from(table(BusLogRecord)))
        assert logged == 2
    finally:
        assert serve.stop() == 0
        await db.dispose()
    output = serve.logs.read_text()
    assert f"API and wallboard  http://127.0.0.1:{serve.api_port}" in output
    assert "bus: its log" in output
    assert WEBHOOK_SECRET not in output
    assert ADMIN_KEY not in output
