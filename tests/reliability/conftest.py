"""A PostgreSQL and a Kafka broker of the reliability suite's own, which its tests may stop and
start again without disturbing the servers every other test uses."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OWN_PG_PORT = "55442"
OWN_KAFKA_PORT, OWN_KAFKA_CONTROLLER_PORT = "19092", "19093"


@dataclass(frozen=True)
class Server:
    """A server a test may take down and bring back: ``stop()``, then ``start()``."""

    script: Path
    env: dict[str, str]

    def _run(self, command: str) -> str:
        done = subprocess.run(
            [str(self.script), command],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        assert done.returncode == 0, f"{self.script.name} {command}: {done.stderr[-2000:]}"
        return done.stdout.strip()

    def start(self) -> None:
        self._run("up")

    def stop(self) -> None:
        self._run("down")


@pytest.fixture(scope="module")
def own_postgres(postgres_admin_url: str) -> Iterator[tuple[Server, str]]:
    """(server, admin URL) of a PostgreSQL on its own port; stopped after the module."""
    server = Server(ROOT / "deploy/postgres/pg.sh", {**os.environ, "PG_PORT": OWN_PG_PORT})
    server.start()
    try:
        yield server, server._run("url")
    finally:
        server.stop()


@pytest.fixture(scope="module")
def own_kafka(kafka_bootstrap: str) -> Iterator[tuple[Server, str]]:
    """(server, bootstrap servers) of a Kafka broker on its own ports; stopped after the
    module."""
    env = {
        **os.environ,
        "KAFKA_PORT": OWN_KAFKA_PORT,
        "KAFKA_CONTROLLER_PORT": OWN_KAFKA_CONTROLLER_PORT,
    }
    server = Server(ROOT / "deploy/kafka/kafka.sh", env)
    server.start()
    try:
        yield server, f"127.0.0.1:{OWN_KAFKA_PORT}"
    finally:
        server.stop()
