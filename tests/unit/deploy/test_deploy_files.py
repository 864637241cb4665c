"""docker-compose.yml and the Dockerfile, checked structurally (no Docker engine here)."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from shared.settings import Settings
from tests.paths import ROOT


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return data


def test_stack_has_official_images_and_the_four_services(compose: dict[str, Any]) -> None:
    services = compose["services"]
    images = {name: s.get("image", "") for name, s in services.items()}
    assert images["kafka"].startswith("apache/kafka:4")
    assert images["postgres"].startswith("postgres:")
    assert images["prometheus"].startswith("prom/prometheus:")
    assert images["grafana"].startswith("grafana/grafana:")
    for name in ("ingest", "kpi", "api", "worker"):
        assert services[name]["build"] == "."
        assert services[name]["command"] == [name]


def test_every_service_has_a_health_check(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        if service.get("restart") == "no":
            continue  # a one-shot step: it runs to completion, nothing to probe
        assert service["healthcheck"]["test"], name


def test_the_schema_is_migrated_once_before_the_services_that_use_it(
    compose: dict[str, Any],
) -> None:
    migrate = compose["services"]["migrate"]
    assert migrate["command"] == ["migrate"]
    assert migrate["restart"] == "no"
    for name in ("kpi", "api", "worker"):
        depends = compose["services"][name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully"


def test_services_wait_for_healthy_kafka_and_postgres(compose: dict[str, Any]) -> None:
    for name in ("ingest", "kpi", "api"):
        depends = compose["services"][name]["depends_on"]
        assert depends["kafka"]["condition"] == "service_healthy"
        assert depends["postgres"]["condition"] == "service_healthy"
    worker = compose["services"]["worker"]["depends_on"]
    assert worker["postgres"]["condition"] == "service_healthy"
    assert "kafka" not in worker  # the worker needs the database only


def test_environment_names_are_real_settings(compose: dict[str, Any]) -> None:
    fields = {f.upper() for f in Settings.model_fields}
    for name in ("ingest", "kpi", "api", "worker"):
        for key in compose["services"][name]["environment"]:
            assert key.startswith("SALESPULSE_"), key
            assert key.removeprefix("SALESPULSE_") in fields, key


def test_no_secret_is_written_into_the_file() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    for line in text.splitlines():
        if re.search(r"(PASSWORD|SECRET|TOKEN|API_KEYS)\s*:", line) and "${" not in line:
            pytest.fail(f"literal secret in compose: {line.strip()}")


def test_volumes_persist_state(compose: dict[str, Any]) -> None:
    assert {"kafka-data", "postgres-data"} <= set(compose["volumes"])


def test_dockerfile_runs_the_cli_as_a_non_root_user() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["salespulse"]' in dockerfile
    assert "uv sync --frozen --no-dev" in dockerfile
    assert re.search(r"^USER \w+", dockerfile, re.M)


def test_prometheus_scrapes_the_four_services(compose: dict[str, Any]) -> None:
    config = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    targets = {
        t for job in config["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]
    }
    assert targets == {"ingest:8001", "kpi:8002", "api:8000", "worker:8003"}
    worker = compose["services"]["worker"]
    assert worker["environment"]["SALESPULSE_WORKER_HOST"] == "0.0.0.0"  # noqa: S104 (from it)
    assert "8003/readyz" in worker["healthcheck"]["test"][-1]
