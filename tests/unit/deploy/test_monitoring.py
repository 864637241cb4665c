"""Prometheus and Grafana as an operator gets them: the exposition passes promtool, the config
and alert rules pass promtool, and every metric a dashboard panel queries is exposed."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
from pathlib import Path

import httpx
import orjson
import pytest
from prometheus_client import REGISTRY, generate_latest

from services.api.app import create_app as create_api
from services.ingest.app import create_app as create_ingest
from services.kpi.app import build_kpi_service
from services.simulator import signed_headers
from services.worker.app import build_worker
from shared.bus import OutgoingRecord
from shared.bus.memory import MemoryBus
from shared.db.engine import create_engine
from shared.db.migrate import migrate
from shared.settings import Settings
from tests.api_support import ADMIN, READ, floor
from tests.conftest import IN_CI, WEBHOOK_SECRET, canonical
from tests.paths import ROOT

PROMTOOL = shutil.which("promtool")
SUFFIXES = ("_total", "_bucket", "_sum", "_count", "_created")


def promtool(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    if PROMTOOL is None:
        if IN_CI:
            pytest.fail("promtool missing: .ci/run installs Debian's prometheus")
        pytest.skip("promtool not installed (apt-get install prometheus)")
    return subprocess.run(
        [PROMTOOL, *args], input=stdin, capture_output=True, check=False, timeout=60
    )


@pytest.fixture(scope="module")
def exposition(tmp_path_factory: pytest.TempPathFactory) -> str:
    """What the four services expose after some real work (one registry: one process)."""
    settings = Settings(
        webhook_secret=WEBHOOK_SECRET,
        api_keys="test-admin-key:read+admin,test-read-key:read",
        database_url=f"sqlite:///{tmp_path_factory.mktemp('m') / 'm.db'}",
    )

    async def work() -> None:
        bus, db = MemoryBus(), create_engine(settings.database_url)
        await migrate(db)
        transport = httpx.ASGITransport
        async with httpx.AsyncClient(
            transport=transport(create_api(settings, db)), base_url="http://a"
        ) as api:
            await floor(api)
            await api.get("/v1/leaderboards/calls_total", headers=READ)
            await api.put("/v1/teams/x", json={"name": "X"}, headers=ADMIN)
        async with httpx.AsyncClient(
            transport=transport(create_ingest(settings, bus)), base_url="http://i"
        ) as ingest:
            body = orjson.dumps(
                [
                    canonical("call.placed", actor="u-1"),
                    canonical("call.missed", actor="u-2"),
                    canonical("deal.updated", actor="u-1", amount="10"),
                ]
            )
            await ingest.post(
                "/webhooks/events", content=body, headers=signed_headers(WEBHOOK_SECRET, body)
            )
            await ingest.post("/webhooks/events", content=b"{}")
        await bus.publish(settings.activity_topic, [OutgoingRecord(b"k", b"not json")])
        service = build_kpi_service(settings, bus, db)
        await service.consumer.run(
            asyncio.Event(), until=await bus.end_offsets(settings.activity_topic)
        )
        async with (
            build_worker(settings, db) as worker,
            httpx.AsyncClient(transport=transport(worker.health), base_url="http://w") as w,
        ):
            assert (await w.get("/readyz")).status_code == 200
        await db.dispose()

    asyncio.run(work())
    return generate_latest(REGISTRY).decode()


def families(exposition: str) -> set[str]:
    """Every name the exposition declares or samples."""
    declared = set(re.findall(r"^# TYPE (\S+) ", exposition, re.M))
    return declared | set(re.findall(r"^([a-z_]+)[{ ]", exposition, re.M))


def test_exposition_passes_promtool(exposition: str) -> None:
    result = promtool("check", "metrics", stdin=exposition.encode())
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()


def test_our_metrics_are_prefixed_and_the_contract_ones_exist(exposition: str) -> None:
    ours = {f for f in families(exposition) if not f.startswith(("python_", "process_"))}
    assert all(f.startswith("salespulse_") for f in ours), ours
    assert ours >= {
        "salespulse_http_requests_total",
        "salespulse_http_request_duration_seconds_bucket",
        "salespulse_kafka_produce_errors_total",
        "salespulse_kpi_consumer_lag",
        "salespulse_kpi_events_applied_total",
        "salespulse_kpi_duplicates_skipped_total",
        "salespulse_ingest_deadlettered_total",
        "salespulse_kpi_event_latency_seconds_bucket",
        "salespulse_kpi_flush_seconds_bucket",
        "salespulse_calls_total",
        "salespulse_deals_won_total",
        "salespulse_revenue_total",
        "salespulse_ingest_accepted_total",
        "salespulse_ingest_refused_total",
        "salespulse_notifications_raised_total",
        "salespulse_notifications_delivered_total",
        "salespulse_notifications_failed_total",
        "salespulse_notification_retries_total",
        "salespulse_notification_delivery_seconds_bucket",
        "salespulse_notification_deliveries_pending",
    }


def test_prometheus_config_and_alert_rules_pass_promtool() -> None:
    config = promtool("check", "config", str(ROOT / "deploy/prometheus/prometheus.yml"))
    assert config.returncode == 0, config.stdout.decode() + config.stderr.decode()
    rules = promtool("check", "rules", *map(str, (ROOT / "deploy/prometheus/rules").glob("*.yml")))
    assert rules.returncode == 0, rules.stdout.decode() + rules.stderr.decode()
    assert b"5 rules found" in rules.stdout


@pytest.mark.parametrize(
    "dashboard", sorted((ROOT / "deploy/grafana/dashboards").glob("*.json")), ids=lambda p: p.stem
)
def test_every_metric_a_dashboard_panel_queries_is_exposed(
    dashboard: Path, exposition: str
) -> None:
    spec = json.loads(dashboard.read_text())
    exprs = [t["expr"] for p in spec["panels"] for t in p["targets"]]
    assert exprs
    queried = {m for e in exprs for m in re.findall(r"\bsalespulse_[a-z_]+", e)}
    exposed = families(exposition)
    missing = {m for m in queried if m not in exposed and _family(m) not in exposed}
    assert not missing, f"{dashboard.name} queries metrics nobody exposes: {missing}"


def _family(metric: str) -> str:
    for suffix in SUFFIXES:
        if metric.endswith(suffix):
            return metric[: -len(suffix)]
    return metric


def test_grafana_provisioning_points_at_the_dashboards() -> None:
    provisioning = (ROOT / "deploy/grafana/provisioning/dashboards/salespulse.yml").read_text()
    compose = (ROOT / "docker-compose.yml").read_text()
    path = re.search(r"path: (\S+)", provisioning)
    assert path is not None
    assert f"./deploy/grafana/dashboards:{path.group(1)}" in compose
