"""The dependency rule of the KPI service, seen in its imports: ``services/kpi/domain`` imports
only itself, the standard library and ``shared``'s pure modules; never the service's I/O
modules, a driver, or another service."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.paths import ROOT

DOMAIN = ROOT / "services" / "kpi" / "domain"
DRIVERS = ("sqlalchemy", "asyncpg", "aiosqlite", "aiokafka", "fastapi", "httpx")
IO_MODULES = ("prometheus_client", "shared.db", "shared.bus", "shared.outbox",
              "shared.alert_reads", "shared.health")  # fmt: skip


def imported(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
    return names


@pytest.mark.parametrize("module", sorted(DOMAIN.glob("*.py")), ids=lambda p: p.stem)
def test_the_domain_imports_nothing_of_the_service_around_it(module: Path) -> None:
    names = imported(module)
    outside = [
        n for n in names if n.startswith("services.") and not n.startswith("services.kpi.domain")
    ]
    drivers = [n for n in names if n.startswith(DRIVERS + IO_MODULES)]
    assert not outside
    assert not drivers


def test_the_rule_is_checked_on_the_domain_modules() -> None:
    assert {p.stem for p in DOMAIN.glob("*.py")} >= {"engine", "state", "roster", "recredit"}
