"""Dashboards on a fresh deployment: every series a provisioned panel queries exists from the
moment the processes start (at 0), not only after its first increment ("No data")."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from services.api.roster.service import RosterStore
from shared.db.engine import create_engine
from shared.db.migrate import migrate
from tests.kpi_rig import SALESPULSE, free_port

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


async def _roster(url: str) -> None:
    """A deployment with its roster in place and no activity yet."""
    db = create_engine(url)
    await migrate(db)
    await RosterStore(db).put_team("north", "North")
    await RosterStore(db).put_rep("alice", "Alice", "north", [("crm", "u-1")], 0)
    await db.dispose()


@contextlib.asynccontextmanager
async def fresh_process(tmp_path: Path) -> AsyncIterator[str]:
    """`salespulse serve --demo` (ingest, KPI and API in one process, one registry), simulator off;
    yields the exposition once every service has started, before any traffic."""
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    await _roster(url)
    api_port, ingest_port = free_port(), free_port()
    env = {
        **os.environ,
        "SALESPULSE_DATABASE_URL": url,
        "SALESPULSE_SIMULATE": "0",
        "SALESPULSE_API_PORT": str(api_port),
        "SALESPULSE_INGEST_PORT": str(ingest_port),
        "SALESPULSE_LOG_LEVEL": "WARNING",
    }
    log = (tmp_path / "dev.log").open("wb")
    process = subprocess.Popen(
        [str(SALESPULSE), "serve", "--demo"], env=env, stdout=log, stderr=log
    )
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            for _ in range(300):
                assert process.poll() is None, (tmp_path / "dev.log").read_text()
                with contextlib.suppress(httpx.TransportError):
                    ready = await client.get(f"http://127.0.0.1:{ingest_port}/readyz")
                    if ready.status_code == 200:
                        break
                await asyncio.sleep(0.1)
            await asyncio.sleep(1.0)  # the KPI loop's first turn (it sets the lag per partition)
            yield (await client.get(f"http://127.0.0.1:{api_port}/metrics")).text
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(20)
        log.close()


def _sampled(exposition: str) -> set[str]:
    """Names that have at least one sample (a declared family without series has none)."""
    return set(re.findall(r"^([a-z_]+)[{ ]", exposition, re.M))


async def test_a_freshly_started_process_has_every_series_a_dashboard_panel_queries(
    tmp_path: Path,
) -> None:
    queried: dict[str, set[str]] = {}
    for dashboard in sorted((ROOT / "deploy/grafana/dashboards").glob("*.json")):
        spec = json.loads(dashboard.read_text())
        for panel in spec["panels"]:
            for target in panel["targets"]:
                for metric in re.findall(r"\bsalespulse_[a-z_]+", target["expr"]):
                    queried.setdefault(metric, set()).add(dashboard.name)
    assert queried
    async with fresh_process(tmp_path) as exposition:
        sampled = _sampled(exposition)
    missing = {m: sorted(d) for m, d in queried.items() if m not in sampled}
    assert not missing, f"panels would show 'No data' on a fresh deployment: {missing}"
    # known label values start at 0: every provider, the roster's teams
    assert 'salespulse_ingest_accepted_total{provider="hubspot"} 0.0' in exposition
    assert 'salespulse_calls_total{direction="missed",team="north"} 0.0' in exposition
