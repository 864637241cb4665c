"""Shared fixtures. Real Kafka and PostgreSQL come from ``make test`` (SALESPULSE_TEST_KAFKA,
SALESPULSE_TEST_DATABASE_URL); under CI=true their absence fails the run instead of skipping."""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import pytest
from hypothesis import settings as hypothesis_settings
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.db import chunks
from shared.settings import Settings

IN_CI = os.environ.get("CI", "").lower() == "true"
# Every engine the tests make (``create_engine``), here and in the processes they start,
# refuses a statement over the drivers' parameter limit (``shared.db.chunks``).
os.environ[chunks.GUARD_ENV] = "1"


@pytest.fixture(autouse=True)
def statements_within_the_parameter_limit() -> Iterator[None]:
    """Fail the test if any statement it ran was over the limit, even one whose error the
    code under test caught (the KPI consumer isolates failing flushes, say)."""
    chunks.violations.clear()
    yield
    refused, chunks.violations[:] = list(chunks.violations), []
    assert not refused, f"statements over the parameter limit: {refused}"


def require_service(env: str, what: str) -> str:
    value = os.environ.get(env)
    if not value:
        message = f"{what} not configured: set {env} (`make test` starts it)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return value


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    servers = require_service("SALESPULSE_TEST_KAFKA", "Apache Kafka")
    host, _, port = servers.split(",")[0].rpartition(":")
    if not _reachable(host, int(port)):
        message = f"Apache Kafka not reachable at {servers}"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return servers


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    url = require_service("SALESPULSE_TEST_DATABASE_URL", "PostgreSQL")
    parsed = make_url(url)
    if not _reachable(parsed.host or "127.0.0.1", parsed.port or 5432):
        message = f"PostgreSQL not reachable at {parsed.host}:{parsed.port}"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return url


DROP_ATTEMPTS = 600  # every 0.2 s: two minutes


@asynccontextmanager
async def fresh_postgres_database(admin_url: str) -> AsyncIterator[str]:
    """A new, empty database on the test server; dropped on exit."""
    parsed = make_url(admin_url)
    name = f"sp_test_{uuid.uuid4().hex[:12]}"
    dsn = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
    admin = await asyncpg.connect(dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    yield parsed.set(database=name).render_as_string(hide_password=False)
    admin = await asyncpg.connect(dsn)  # a new one: the server may have restarted meanwhile
    try:
        for attempt in range(DROP_ATTEMPTS):
            try:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                break
            except asyncpg.exceptions.InsufficientPrivilegeError:
                # an autovacuum worker (the superuser's) is in it: it leaves within moments in
                # a test's small database, within a minute in a benchmark's 12 M rows
                if attempt == DROP_ATTEMPTS - 1:
                    raise
                await asyncio.sleep(0.2)
    finally:
        await admin.close()


@pytest.fixture
async def postgres_url(postgres_admin_url: str) -> AsyncIterator[str]:
    """A fresh, empty database for one test, dropped afterwards."""
    async with fresh_postgres_database(postgres_admin_url) as url:
        yield url


@pytest.fixture
async def pg(postgres_url: str) -> AsyncIterator[AsyncEngine]:
    """A fresh PostgreSQL database, with the schema."""
    from shared.db.engine import create_engine
    from shared.db.migrate import migrate

    engine = create_engine(postgres_url)
    await migrate(engine)
    yield engine
    await engine.dispose()


@pytest.fixture
def topic_prefix() -> str:
    """A unique prefix per test, so tests never read each other's topics or groups."""
    return f"test-{uuid.uuid4().hex[:10]}."


WEBHOOK_SECRET = "whsec_" + "dGVzdC1zZWNyZXQtZm9yLXNhbGVzcHVsc2UtdGVzdHM="
TWILIO_TOKEN = "test-twilio-auth-token-0123456789"
AIRCALL_TOKEN = "test-aircall-webhook-token"
HUBSPOT_SECRET = "test-hubspot-client-secret-1234"
PIPEDRIVE_USER, PIPEDRIVE_PASSWORD = "pipedrive-hook", "test-pipedrive-password"
PUBLIC_BASE_URL = "https://sales.example.com"
ADMIN_KEY = "test-admin-key"
READ_KEY = "test-read-key"
PROVIDER_SECRETS = {
    "webhook_secret": WEBHOOK_SECRET,
    "twilio_auth_token": TWILIO_TOKEN,
    "aircall_token": AIRCALL_TOKEN,
    "hubspot_client_secret": HUBSPOT_SECRET,
    "pipedrive_user": PIPEDRIVE_USER,
    "pipedrive_password": PIPEDRIVE_PASSWORD,
    "public_base_url": PUBLIC_BASE_URL,
}


@pytest.fixture
def make_settings() -> Callable[..., Settings]:
    def build(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            **PROVIDER_SECRETS,
            "api_keys": f"{ADMIN_KEY}:read+admin,{READ_KEY}:read",
            "database_url": "sqlite:///:memory:",
            **overrides,
        }
        return Settings(**values)

    return build


def canonical(
    type_: str = "call.placed",
    *,
    event_id: str | None = None,
    actor: str = "u-1",
    provider: str = "crm",
    time: datetime | None = None,
    **data: Any,
) -> dict[str, Any]:
    """A canonical event body with sensible data for its type; ``data`` overrides fields."""
    call_id = f"call-{uuid.uuid4().hex[:12]}"  # a new call unless the test says otherwise
    defaults: dict[str, dict[str, Any]] = {
        "call.placed": {"call_id": call_id, "outcome": "connected", "talk_seconds": 60},
        "call.received": {"call_id": call_id, "talk_seconds": 30},
        "call.missed": {"call_id": call_id, "reason": "no_answer"},
        "deal.updated": {"deal_id": "D-1", "status": "won", "amount": "1000.00", "currency": "EUR"},
        "lead.created": {"lead_id": "L-1"},
        "meeting.held": {"meeting_id": "M-1"},
    }
    body = {
        **defaults.get(type_, {}),
        "actor": {"provider": provider, "external_id": actor},
        **data,
    }
    return {
        "specversion": "1.0",
        "id": event_id or f"evt-{uuid.uuid4().hex}",
        "source": "test://suite",
        "type": type_,
        "time": (time or datetime.now(UTC)).isoformat(),
        "data": body,
    }


@pytest.fixture
async def rig(
    kafka_bootstrap: str,
    postgres_url: str,
    topic_prefix: str,
    make_settings: Callable[..., Settings],
) -> AsyncIterator[Any]:
    """A KPI rig (``tests/kpi_rig.py``) on the real Kafka and a fresh PostgreSQL database."""
    from tests.kpi_rig import make_rig

    async with make_rig(kafka_bootstrap, postgres_url, topic_prefix, make_settings) as made:
        yield made


@pytest.fixture
async def client(
    make_settings: Callable[..., Settings], db: AsyncEngine
) -> AsyncIterator[httpx.AsyncClient]:
    """The API app over the ``db`` of the test's folder, called in-process."""
    from services.api.app import create_app
    from tests.api_support import api_client

    async with api_client(create_app(make_settings(), db)) as c:
        yield c


# CI runs the property tests on a fixed seed (a red main must come from a change, not from
# luck); developers' runs explore new examples every time.
hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
if IN_CI:
    hypothesis_settings.load_profile("ci")
