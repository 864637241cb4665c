"""``salespulse serve``: the whole of SalesPulse in one process, on one database, durably.

Ingest, the KPI consumer, the API and the background jobs share one event loop, one database
engine (SQLite in WAL mode, or PostgreSQL) and one bus: the database's own log unless Kafka is
configured (``shared.bus.log``). Ingest answers ``202`` once an event is committed to the log;
the KPI consumer reads the log by position and stores its position with its aggregates; so a
SIGKILL at any instant loses no accepted event and counts none twice, and a restart resumes.

``make run`` is ``serve --demo``: demo secrets printed in a banner, the simulator posting
traffic. Without ``--demo`` nothing is invented: the settings are the environment's, and no
secret is printed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncEngine

from services.api.app import create_app as create_api
from services.dev import banner, simulator_secrets, with_demo_secrets
from services.ingest.app import create_app as create_ingest
from services.kpi.app import build_kpi_service
from services.runner import run_all, serve
from services.simulator import Simulator
from services.worker.app import build_worker
from services.worker.service import readiness
from shared.bus import Bus, build_bus
from shared.db.engine import create_engine
from shared.db.migrate import current_revision, migrate
from shared.settings import Settings, masked_url

log = logging.getLogger(__name__)

Job = Callable[[asyncio.Event], Awaitable[None]]


async def run_serve(settings: Settings, *, demo: bool = False) -> None:
    admin_key = None
    if demo:
        settings, admin_key = with_demo_secrets(settings)
    db = create_engine(settings.database_url, pool_pre_ping=True)
    bus = build_bus(settings, client_id="salespulse", db=db)
    try:
        await _migrate(db)
        await bus.start()
        print(banner(settings, admin_key) if demo else _summary(settings), flush=True)
        await run_all(*_jobs(settings, bus, db, admin_key if demo else None))
    finally:
        await bus.stop()
        await db.dispose()


async def _migrate(db: AsyncEngine) -> None:
    """One process owns its database: it brings the schema along (one line, not Alembic's
    line per revision, in the start-up output)."""
    alembic = logging.getLogger("alembic")
    level = alembic.level
    alembic.setLevel(logging.WARNING)
    try:
        before = await current_revision(db)
        await migrate(db)
        after = await current_revision(db)
    finally:
        alembic.setLevel(level)
    if before != after:
        log.info("database migrated", extra={"from": before, "to": after})


def _jobs(settings: Settings, bus: Bus, db: AsyncEngine, admin_key: str | None) -> list[Job]:
    """Every part, on the one bus and the one engine (one pool, one database)."""
    kpi = build_kpi_service(settings, bus, db)
    worker = build_worker(settings, db, bus=bus)  # delivery, settlement, pace, retention...

    async def the_rest_ready() -> dict[str, bool]:
        """The API's /readyz is the process's: it answers for the bus, the KPI consumer and
        each of the worker's jobs too."""
        jobs = await readiness(db, worker.jobs)
        jobs.pop("database")
        return {"bus": await bus.ready(), "consuming": kpi.consumer.healthy, **jobs}

    api = create_api(settings, db, also_ready=the_rest_ready, bus=bus)
    ingest = create_ingest(settings, bus, db)
    jobs: list[Job] = [
        lambda stop: serve(ingest, settings.ingest_host, settings.ingest_port, stop),
        lambda stop: serve(api, settings.api_host, settings.api_port, stop),
        kpi.run,
        worker.run,
    ]
    if admin_key is not None and settings.simulate:
        jobs.append(_simulator(settings, admin_key))
    return jobs


def _simulator(settings: Settings, admin_key: str) -> Job:
    ingest_url = f"http://{settings.ingest_host}:{settings.ingest_port}"
    api_url = f"http://{settings.api_host}:{settings.api_port}"
    simulator = Simulator(ingest_url, simulator_secrets(settings), api_url, admin_key)

    async def simulate(stop: asyncio.Event) -> None:
        await simulator.run(stop)
        await stop.wait()

    return simulate


def _summary(settings: Settings) -> str:
    """What a production start prints: where things are, never a secret."""
    bus = (
        "Kafka " + str(settings.kafka_bootstrap_servers)
        if settings.kafka_bootstrap_servers
        else "its log"
    )
    return "\n".join(
        [
            f"SalesPulse serve: database {masked_url(settings.database_url)}, bus: {bus}",
            f"  API and wallboard  http://{settings.api_host}:{settings.api_port}",
            f"  console            http://{settings.api_host}:{settings.api_port}/console",
            f"  webhooks           http://{settings.ingest_host}:{settings.ingest_port}/webhooks/<provider>",
        ]
    )
