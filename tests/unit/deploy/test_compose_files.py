"""Every compose file of the repository, loaded by compose-go, the loader of ``docker compose``
itself: the Compose spec's schema, interpolation with the example .env (a required
``${X:?...}`` unset stops it) and the consistency checks (an undeclared volume, a dependency
on no service). No Docker engine or compose plugin is needed: ``deploy/compose-check`` is a
small Go program on compose-go, built here once per session. Without Go the tests skip, and
fail under CI=true (``.ci/run`` puts Go on the PATH)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import IN_CI
from tests.paths import ROOT

FLOOR = ROOT / "deploy" / "small-floor"
CHECKER = ROOT / "deploy" / "compose-check"
ENV_EXAMPLE = FLOOR / ".env.example"
COMPOSE_FILES = [
    ROOT / "docker-compose.yml",
    *sorted(p for p in FLOOR.iterdir() if p.suffix in (".yml", ".yaml")),
]
# docker-compose.yml's one required variable that the small floor's .env.example lacks
KAFKA_SHAPE_ENV = {"GRAFANA_ADMIN_PASSWORD": "change-me"}
GO = shutil.which("go") or shutil.which("go", path="/usr/local/go/bin")
BUILD_TIMEOUT_S = 540  # the first build fetches compose-go from the Go module proxy: ~20 s

pytestmark = pytest.mark.timeout(BUILD_TIMEOUT_S + 60)


@pytest.fixture(scope="session")
def compose_check(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """deploy/compose-check, built into a temporary folder (Go's own caches make it quick)."""
    if GO is None:
        message = "no Go (>= 1.24) to build deploy/compose-check: .ci/run puts one on the PATH"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    binary = tmp_path_factory.mktemp("compose-check") / "compose-check"
    built = subprocess.run(
        [GO, "build", "-buildvcs=false", "-o", str(binary), "."],
        cwd=CHECKER,
        capture_output=True,
        text=True,
        check=False,
        timeout=BUILD_TIMEOUT_S,
    )
    assert built.returncode == 0, built.stderr
    return binary


def check(
    binary: Path, file: Path, env_file: Path = ENV_EXAMPLE
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(binary), "-env-file", str(env_file), str(file)],
        capture_output=True,
        text=True,
        env=KAFKA_SHAPE_ENV,  # nothing else from this process's environment
        check=False,
        timeout=60,
    )


def test_every_compose_file_is_found() -> None:
    names = {p.relative_to(ROOT).as_posix() for p in COMPOSE_FILES}
    assert {
        "docker-compose.yml",
        "deploy/small-floor/compose.sqlite.yml",
        "deploy/small-floor/compose.postgres.yml",
    } <= names


@pytest.mark.parametrize("file", COMPOSE_FILES, ids=lambda p: p.name)
def test_compose_loads_the_file_with_the_example_env(compose_check: Path, file: Path) -> None:
    done = check(compose_check, file)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"ok {file}\n"


SQLITE, POSTGRES = FLOOR / "compose.sqlite.yml", FLOOR / "compose.postgres.yml"
BROKEN = {
    "unknown key": (
        SQLITE,
        "    restart: unless-stopped\n",
        "    restart: unless-stopped\n    restrat: always\n",
        "services.salespulse.restrat",
    ),
    "undeclared volume": (
        SQLITE,
        "\nvolumes:\n  salespulse-data:\n",
        "\n",
        "undefined volume salespulse-data",
    ),
    "bad duration": (POSTGRES, "interval: 5s", "interval: soon", 'invalid duration "soon"'),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_a_broken_file_is_refused_with_the_loaders_reason(
    compose_check: Path, tmp_path: Path, case: str
) -> None:
    original, old, new, reason = BROKEN[case]
    text = original.read_text()
    assert old in text
    broken = tmp_path / original.name
    broken.write_text(text.replace(old, new, 1))
    done = check(compose_check, broken)
    assert done.returncode == 1
    assert reason in done.stderr
    assert done.stdout == ""


@pytest.mark.parametrize("missing", ["POSTGRES_PASSWORD", "SALESPULSE_API_KEYS"])
def test_a_required_variable_left_unset_is_refused(
    compose_check: Path, tmp_path: Path, missing: str
) -> None:
    env_file = tmp_path / ".env"
    lines = ENV_EXAMPLE.read_text().splitlines(keepends=True)
    env_file.write_text("".join(line for line in lines if not line.startswith(f"{missing}=")))
    done = check(compose_check, POSTGRES, env_file)
    assert done.returncode == 1
    assert f"required variable {missing} is missing a value" in done.stderr
