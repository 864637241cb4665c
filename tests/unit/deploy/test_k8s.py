"""The Kubernetes manifests, checked for what an operator relies on (no cluster here)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from shared.settings import Settings
from tests.paths import ROOT

K8S = ROOT / "deploy" / "k8s"


def documents() -> list[dict[str, Any]]:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    docs = []
    for name in kustomization["resources"]:
        docs += [d for d in yaml.safe_load_all((K8S / name).read_text()) if d]
    return docs


def of_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in documents() if d["kind"] == kind}


DEPLOYMENTS = of_kind("Deployment")


def test_the_four_services_are_deployed() -> None:
    assert set(DEPLOYMENTS) == {
        "salespulse-ingest", "salespulse-kpi", "salespulse-api", "salespulse-worker"
    }  # fmt: skip
    for name, deployment in DEPLOYMENTS.items():
        [container] = deployment["spec"]["template"]["spec"]["containers"]
        assert container["args"] == [name.removeprefix("salespulse-")]


@pytest.mark.parametrize("name", sorted(DEPLOYMENTS))
def test_probes_and_resource_requests(name: str) -> None:
    [container] = DEPLOYMENTS[name]["spec"]["template"]["spec"]["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert {"cpu", "memory"} <= set(container["resources"]["requests"])
    assert DEPLOYMENTS[name]["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"]


def test_kpi_replicas_never_exceed_the_partitions() -> None:
    partitions = int(
        of_kind("ConfigMap")["salespulse-config"]["data"]["SALESPULSE_KAFKA_PARTITIONS"]
    )
    kpi = DEPLOYMENTS["salespulse-kpi"]
    assert kpi["spec"]["replicas"] <= partitions
    assert int(kpi["metadata"]["annotations"]["salespulse.dev/max-replicas"]) == partitions
    scaled = {
        h["spec"]["scaleTargetRef"]["name"] for h in of_kind("HorizontalPodAutoscaler").values()
    }
    assert scaled == {"salespulse-ingest", "salespulse-api"}  # not the KPI: partitions do


def test_services_select_their_deployments() -> None:
    for name, service in of_kind("Service").items():
        labels = DEPLOYMENTS[name]["spec"]["template"]["metadata"]["labels"]
        assert service["spec"]["selector"].items() <= labels.items()


def test_settings_are_real_and_secrets_not_in_the_configmap() -> None:
    fields = {f.upper() for f in Settings.model_fields}
    example = yaml.safe_load((K8S / "secrets.example.yaml").read_text())
    config = of_kind("ConfigMap")["salespulse-config"]["data"]
    for key in [*config, *example["stringData"]]:
        assert key.removeprefix("SALESPULSE_") in fields, key
    assert not any(
        word in key
        for key in config
        for word in ("SECRET", "PASSWORD", "TOKEN", "KEYS", "DATABASE_URL")
    )
    assert (
        "secrets.example.yaml"
        not in yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"]
    )


@pytest.mark.parametrize("name", ["salespulse-kpi", "salespulse-api", "salespulse-worker"])
def test_the_schema_is_migrated_before_the_services_that_use_the_database(name: str) -> None:
    [init] = DEPLOYMENTS[name]["spec"]["template"]["spec"]["initContainers"]
    assert init["args"] == ["migrate"]


def test_the_worker_listens_where_its_probes_and_prometheus_reach_it() -> None:
    worker = DEPLOYMENTS["salespulse-worker"]["spec"]["template"]
    [container] = worker["spec"]["containers"]
    env = {e["name"]: e["value"] for e in container.get("env", [])}
    assert env["SALESPULSE_WORKER_HOST"] == "0.0.0.0"  # noqa: S104 (the pod address)
    [port] = container["ports"]
    assert port["containerPort"] == Settings().worker_port
    assert worker["metadata"]["annotations"]["prometheus.io/port"] == str(Settings().worker_port)
