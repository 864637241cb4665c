"""The embedded default (``make run``): ingest, KPI and API in one process, in-memory bus, SQLite,
demo secrets printed at start, and the simulator so the wallboard moves."""

from __future__ import annotations

import asyncio
import base64
import secrets

from pydantic import SecretStr

from services.api.app import create_app as create_api
from services.ingest.app import create_app as create_ingest
from services.kpi.app import build_kpi_service
from services.runner import run_all, serve
from services.simulate import Simulator
from shared.bus.memory import MemoryBus
from shared.db.engine import create_engine, create_schema
from shared.settings import Scope, Settings


def with_demo_secrets(settings: Settings) -> tuple[Settings, str, str | None]:
    """Fill unset secrets with fresh demo values; return (settings, webhook secret, admin key)."""
    webhook = settings.webhook_secret or SecretStr(
        "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    )
    keys = settings.api_keys or SecretStr(f"demo-{secrets.token_urlsafe(12)}:read+admin")
    demo = settings.model_copy(
        update={"webhook_secret": webhook, "api_keys": keys, "dev_mode": True}
    )
    admins = [k.key.get_secret_value() for k in demo.parsed_api_keys() if Scope.admin in k.scopes]
    return demo, webhook.get_secret_value(), admins[0] if admins else None


def banner(settings: Settings, webhook_secret: str, admin_key: str | None) -> str:
    api = f"http://{settings.api_host}:{settings.api_port}"
    ingest = f"http://{settings.ingest_host}:{settings.ingest_port}"
    return "\n".join(
        [
            "SalesPulse (embedded: in-memory bus, SQLite at " + settings.database_url + ")",
            f"  ingest   {ingest}/webhooks/events",
            f"  api      {api}/docs",
            f"  board    {api}/v1/leaderboards/calls_total?window=today",
            f"  API key (read+admin)        {admin_key or '(none with admin scope)'}",
            f"  demo webhook secret         {webhook_secret}",
            "  simulator "
            + ("on (SALESPULSE_SIMULATE=0 turns it off)" if settings.simulate else "off"),
            "Ctrl-C stops.",
        ]
    )


async def run_dev(settings: Settings) -> None:
    settings, webhook_secret, admin_key = with_demo_secrets(settings)
    print(banner(settings, webhook_secret, admin_key), flush=True)
    bus = MemoryBus(settings.kafka_partitions)
    db = create_engine(settings.database_url)
    await create_schema(db)
    kpi = build_kpi_service(settings, bus, db)
    api_url = f"http://{settings.api_host}:{settings.api_port}"
    jobs = [
        lambda stop: serve(
            create_ingest(settings, bus), settings.ingest_host, settings.ingest_port, stop
        ),
        lambda stop: serve(create_api(settings, db), settings.api_host, settings.api_port, stop),
        kpi.run,
    ]
    if settings.simulate:
        simulator = Simulator(
            f"http://{settings.ingest_host}:{settings.ingest_port}",
            webhook_secret,
            api_url,
            admin_key,
        )

        async def simulate(stop: asyncio.Event) -> None:
            await simulator.run(stop)
            await stop.wait()

        jobs.append(simulate)
    try:
        await run_all(*jobs)
    finally:
        await db.dispose()
