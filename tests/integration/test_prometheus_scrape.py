"""Debian's real Prometheus scrapes a running SalesPulse API; a metric is read back through
Prometheus' query API."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from services.api.app import create_app
from services.runner import serve
from shared.db.engine import create_engine
from shared.db.migrate import migrate
from shared.settings import Settings
from tests.api_support import READ, floor
from tests.conftest import IN_CI

PROMETHEUS = shutil.which("prometheus")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_prometheus_scrapes_the_api_and_answers_a_query(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    if PROMETHEUS is None:
        if IN_CI:
            pytest.fail("prometheus missing: .ci/run installs Debian's prometheus")
        pytest.skip("prometheus not installed (apt-get install prometheus)")
    db = create_engine(f"sqlite:///{tmp_path / 'p.db'}")
    await migrate(db)
    api_port, prom_port = free_port(), free_port()
    stop = asyncio.Event()
    server = asyncio.create_task(
        serve(create_app(make_settings(), db), "127.0.0.1", api_port, stop)
    )
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s}\n"
        "scrape_configs:\n"
        "  - job_name: salespulse-api\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{api_port}']}}]\n"
    )
    prometheus = subprocess.Popen(
        [
            PROMETHEUS,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{prom_port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "prometheus.log").open("wb"),
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{api_port}") as api:
            for _ in range(100):
                with contextlib.suppress(httpx.TransportError):
                    if (await api.get("/healthz")).status_code == 200:
                        break
                await asyncio.sleep(0.05)
            await floor(api)
            await api.get("/v1/leaderboards/calls_total", headers=READ)
        query = (
            'salespulse_http_requests_total{job="salespulse-api",route="/v1/leaderboards/{metric}"}'
        )
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{prom_port}") as prom:
            result: list[dict[str, object]] = []
            for _ in range(120):
                with contextlib.suppress(httpx.TransportError):
                    answer = (await prom.get("/api/v1/query", params={"query": query})).json()
                    result = answer["data"]["result"]
                    if result:
                        break
                await asyncio.sleep(0.25)
        assert result, "Prometheus never got the metric from the API"
        assert result[0]["metric"]["method"] == "GET"  # type: ignore[index]
        assert float(result[0]["value"][1]) >= 1  # type: ignore[index]
    finally:
        prometheus.terminate()
        prometheus.wait(20)
        stop.set()
        await asyncio.wait_for(server, 10)
        await db.dispose()
