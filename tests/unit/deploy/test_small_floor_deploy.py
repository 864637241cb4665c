"""The small floor's deployment: the image for every shape, the two compose files (SalesPulse
alone on SQLite, or with PostgreSQL), the image's health check and the backup wrapper.

No Docker engine here: the compose files are checked structurally and interpolated as Compose
does, with the example .env; ``test_compose_files.py`` loads them with Compose's own loader."""

from __future__ import annotations

import os
import re
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy.engine import make_url

from services.healthcheck import command_of, main, readiness_url
from shared.settings import Settings
from tests.paths import ROOT

FLOOR = ROOT / "deploy" / "small-floor"
COMPOSE_FILES = {"sqlite": FLOOR / "compose.sqlite.yml", "postgres": FLOOR / "compose.postgres.yml"}
REQUIRED = {"SALESPULSE_API_KEYS", "POSTGRES_PASSWORD"}  # no default: compose refuses to start
REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")
SECRET = re.compile(r"^\s*[A-Z_]*(PASSWORD|SECRET|TOKEN|API_KEYS)[A-Z_]*\s*:")  # a key: value


def example_env() -> dict[str, str]:
    """The variables .env.example sets or documents (commented out), with its values."""
    values = {}
    for line in (FLOOR / ".env.example").read_text().splitlines():
        found = re.match(r"^#?\s*([A-Z][A-Z0-9_]*)=(.*)$", line)
        if found:
            values[found[1]] = found[2]
    return values


def interpolate(text: str, env: dict[str, str]) -> str:
    """``${VAR}``, ``${VAR:-default}`` and ``${VAR:?message}`` as Compose substitutes them."""

    def value(match: re.Match[str]) -> str:
        name, operator, argument = match[1], match[2], match[3]
        if env.get(name):
            return env[name]
        if operator == ":?":
            raise LookupError(f"{name}: {argument}")
        return argument if operator == ":-" else ""

    return REFERENCE.sub(value, text)


def load(kind: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    text = COMPOSE_FILES[kind].read_text()
    data: dict[str, Any] = yaml.safe_load(interpolate(text, example_env() if env is None else env))
    return data


@pytest.fixture(params=sorted(COMPOSE_FILES))
def kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


def test_every_service_has_an_image_a_restart_policy_and_a_health_check(kind: str) -> None:
    for name, service in load(kind)["services"].items():
        assert service.get("image") or service.get("build"), name
        assert service["restart"] in ("unless-stopped", "always"), name
        assert service["healthcheck"]["test"][0] in ("CMD", "CMD-SHELL"), name
        assert service["healthcheck"]["retries"] >= 3, name


def test_salespulse_serves_both_ports_from_the_repositorys_image_with_no_kafka(kind: str) -> None:
    compose = load(kind)
    salespulse = compose["services"]["salespulse"]
    assert salespulse["command"] == ["serve"]
    assert (FLOOR / salespulse["build"]["context"] / "Dockerfile").resolve() == ROOT / "Dockerfile"
    assert {"8000:8000", "8001:8001"} <= {str(p) for p in salespulse["ports"]}
    assert salespulse["healthcheck"]["test"] == ["CMD", "python", "-m", "services.healthcheck"]
    assert not any("kafka" in name for name in compose["services"])
    assert not any("KAFKA" in key for key in salespulse["environment"])


def test_environment_names_are_real_settings_and_the_example_makes_valid_ones(kind: str) -> None:
    fields = {f.upper() for f in Settings.model_fields}
    environment = load(kind)["services"]["salespulse"]["environment"]
    for key in environment:
        assert key.removeprefix("SALESPULSE_") in fields, key
    settings = Settings(
        **{k.removeprefix("SALESPULSE_").lower(): v for k, v in environment.items()}
    )
    assert settings.api_keys
    url = make_url(settings.database_url)
    if kind == "sqlite":
        assert settings.database_url == "sqlite:////data/salespulse.db"
    else:
        postgres = load(kind)["services"]["postgres"]["environment"]
        assert (url.get_backend_name(), url.host, url.port) == ("postgresql", "postgres", 5432)
        assert url.username == postgres["POSTGRES_USER"]
        assert url.database == postgres["POSTGRES_DB"]
        assert url.password == postgres["POSTGRES_PASSWORD"] == example_env()["POSTGRES_PASSWORD"]


def test_secrets_come_from_the_env_file_and_the_required_ones_stop_compose(kind: str) -> None:
    text = COMPOSE_FILES[kind].read_text()
    for line in text.splitlines():
        if SECRET.match(line) and "${" not in line:
            pytest.fail(f"literal secret in {kind}: {line.strip()}")
    for password in re.findall(r"://[^:/@\s]+:([^@\s]+)@", text):
        assert password.startswith("${"), f"a literal password in a URL of {kind}"
    references = REFERENCE.findall(text)
    assert not re.search(r"\$(?![{$])", text), "a bare $VAR: write ${VAR}"
    documented = example_env()
    for name, operator, _ in references:
        assert name in documented, f"{name} is not in .env.example"
        assert operator in (":?", ":-"), f"${{{name}}}: say what happens when it is unset"
        assert (operator == ":?") == (name in REQUIRED), name
    for missing in REQUIRED & {name for name, _, _ in references}:
        env = {k: v for k, v in documented.items() if k != missing}
        with pytest.raises(LookupError, match=missing):
            load(kind, env)


def test_state_lives_in_declared_named_volumes(kind: str) -> None:
    compose = load(kind)
    mounted = {
        volume.split(":")[0]: volume.split(":")[1]
        for service in compose["services"].values()
        for volume in service.get("volumes", [])
    }
    assert set(mounted) == set(compose["volumes"])  # every one named, declared and used
    if kind == "sqlite":
        assert mounted == {"salespulse-data": "/data"}
    else:
        assert mounted == {"postgres-data": "/var/lib/postgresql/data"}


def test_salespulse_waits_for_a_healthy_postgres_of_the_images_client_major() -> None:
    compose = load("postgres")
    depends = compose["services"]["salespulse"]["depends_on"]
    assert depends["postgres"]["condition"] == "service_healthy"
    assert "pg_isready" in compose["services"]["postgres"]["healthcheck"]["test"][1]
    server = compose["services"]["postgres"]["image"]
    client = re.search(r"postgresql-client-(\d+)", (ROOT / "Dockerfile").read_text())
    assert client is not None
    assert server == f"postgres:{client[1]}"  # pg_dump needs a client at least as new
    main_stack = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert main_stack["services"]["postgres"]["image"] == server


# -- the image ------------------------------------------------------------------------------


def dockerfile() -> list[str]:
    """The Dockerfile's instructions, continuation lines joined."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    return [line.strip() for line in text.splitlines() if line.strip() and line[0] != "#"]


def test_the_image_runs_serve_by_default_as_non_root_on_a_data_volume() -> None:
    lines = dockerfile()
    final = lines[max(i for i, line in enumerate(lines) if line.startswith("FROM ")) :]
    assert final[-1] == 'CMD ["serve"]'
    assert 'ENTRYPOINT ["salespulse"]' in final
    assert "VOLUME /data" in final
    user = next(line.split()[1] for line in final if line.startswith("USER "))
    assert user not in ("root", "0")
    assert any(f"chown {user}:{user} /data" in line for line in final)  # the volume is its
    env = " ".join(line for line in final if line.startswith("ENV "))
    assert "SALESPULSE_DATABASE_URL=sqlite:////data/salespulse.db" in env
    assert "EXPOSE 8000 8001" in final
    [check] = [line for line in final if line.startswith("HEALTHCHECK")]
    assert check.endswith('CMD ["python", "-m", "services.healthcheck"]')
    assert (ROOT / "services" / "healthcheck.py").is_file()
    assert not any("kafka" in line.lower() for line in lines)


def test_the_image_stays_lean() -> None:
    lines = dockerfile()
    bases = {line.split()[1] for line in lines if line.startswith("FROM ")}
    assert bases == {"python:3.11-slim-trixie"}  # one Debian for the build and the runtime
    for line in lines:
        if "apt-get install" in line:
            assert "--no-install-recommends" in line
            assert "rm -rf /var/lib/apt/lists/*" in line


# -- the health check -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "command"),
    [
        (["/app/.venv/bin/python", "/app/.venv/bin/salespulse", "serve"], "serve"),
        (["/sbin/docker-init", "--", "salespulse", "ingest"], "ingest"),
        (["/app/.venv/bin/python", "/app/.venv/bin/salespulse"], None),
        (["sh", "-c", "sleep 1"], None),
    ],
)
def test_the_command_is_found_in_the_main_process(argv: list[str], command: str | None) -> None:
    assert command_of(argv) == command


def test_each_command_is_probed_on_its_own_port() -> None:
    assert readiness_url("serve", {}) == "http://127.0.0.1:8000/readyz"
    assert readiness_url("api", {"SALESPULSE_API_PORT": "9000"}) == "http://127.0.0.1:9000/readyz"
    assert readiness_url("ingest", {}) == "http://127.0.0.1:8001/readyz"
    assert readiness_url("kpi", {}) == "http://127.0.0.1:8002/readyz"
    assert readiness_url("worker", {}) == "http://127.0.0.1:8003/readyz"
    assert readiness_url("migrate", {}) is None


class Readiness(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status if self.path == "/readyz" else 404)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def readiness() -> Iterator[HTTPServer]:
    server = HTTPServer(("127.0.0.1", 0), Readiness)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_healthy_only_while_ready(readiness: HTTPServer, tmp_path: Path) -> None:
    cmdline = tmp_path / "cmdline"
    cmdline.write_bytes(b"/app/.venv/bin/python\0/app/.venv/bin/salespulse\0serve\0")
    env = {"SALESPULSE_API_PORT": str(readiness.server_address[1])}
    Readiness.status = 200
    assert main(cmdline, env) == 0
    Readiness.status = 503
    assert main(cmdline, env) == 1
    readiness.shutdown()
    readiness.server_close()
    Readiness.status = 200
    assert main(cmdline, env) == 1  # nothing listening
    cmdline.write_bytes(b"salespulse\0migrate\0")
    assert main(cmdline, env) == 0  # a one-shot serves nothing


# -- the backup wrapper -----------------------------------------------------------------------


def test_the_backup_wrapper_is_valid_bash() -> None:
    script = FLOOR / "backup.sh"
    assert os.access(script, os.X_OK)
    assert subprocess.run(["bash", "-n", str(script)], check=False).returncode == 0
    usage = subprocess.run([str(script)], capture_output=True, text=True, check=False)
    assert usage.returncode == 2
    assert "usage:" in usage.stderr
