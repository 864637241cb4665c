"""Composition root of the worker: the one place it is wired.

``build_worker`` builds the database (unless given one), each job and the health app;
``salespulse worker``, the one-process modes (``dev``, ``serve``: pass the shared engine, run
``worker.run`` beside the other services) and the tests all call it. What it builds it also
disposes (``async with`` the worker, or ``close()``); a database passed in stays its owner's.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from services.api.contests.settlement import Settlement
from services.kpi.retention import prune, prune_activity
from services.worker.dispatcher import metrics as dispatch_metrics
from services.worker.dispatcher.dispatcher import Dispatcher
from services.worker.jobs import Job, Periodic
from services.worker.pace_checks import CHECK_EVERY_S, check_pace
from services.worker.resend import RESEND_EVERY_S, resend_pending
from services.worker.service import Worker, readiness
from shared.bus import Bus
from shared.bus.log import Keep
from shared.bus.log import prune as prune_log
from shared.db.engine import create_engine
from shared.health import health_router
from shared.observability import NO_TELEMETRY
from shared.settings import Settings

log = logging.getLogger(__name__)
SETTLE_EVERY_S = 15.0  # a contest's winners are known within this of its settles_at
PRUNE_EVERY_S = 600.0
ACTIVITY_PRUNE_EVERY_S = 6 * 3600.0  # a scan of the record: a few times a day


def build_worker(
    settings: Settings,
    db: AsyncEngine | None = None,
    *,
    settle_every_s: float = SETTLE_EVERY_S,
    pace_every_s: float = CHECK_EVERY_S,
    prune_every_s: float = PRUNE_EVERY_S,
    bus: Bus | None = None,
    resend_every_s: float = RESEND_EVERY_S,
) -> Worker:
    """The worker and its jobs: ``dispatcher``, ``settlement``, ``pace_checks``, ``retention``;
    and, given the ``bus`` corrections travel on (its owner starts it), ``corrections``: those
    the KPI service has not applied sent again (``resend``)."""
    owns_db = db is None
    # pre-ping: a connection the pool kept across a database restart is replaced, not failed
    db = db if db is not None else create_engine(settings.database_url, pool_pre_ping=True)
    settlement = Settlement(db, settings)

    async def settle() -> None:
        await settlement.settle_due(datetime.now(UTC))

    async def check() -> None:
        await check_pace(db, settings, datetime.now(UTC))

    last_activity_prune = [0.0]  # when this worker last pruned the activity record

    async def retain() -> None:
        await _prune(db, settings, last_activity_prune)

    jobs: dict[str, Job] = {
        "dispatcher": Dispatcher(db, settings),
        "settlement": Periodic("settling contests", settle_every_s, settle, db),
        "pace_checks": Periodic("pace checks", pace_every_s, check, db),
        "retention": Periodic("pruning", prune_every_s, retain, db),
    }
    if bus is not None:
        the_bus = bus

        async def resend() -> None:
            await resend_pending(db, the_bus, settings.activity_topic, int(time.time()))

        jobs["corrections"] = Periodic("sending corrections again", resend_every_s, resend, db)
    dispatch_metrics.initialise()  # every series from the start, at 0
    return Worker(db, jobs, create_health_app(db, jobs), owns_db)


async def _prune(db: AsyncEngine, settings: Settings, last_activity_prune: list[float]) -> None:
    """Minute and hour buckets past their retention, applied ids and call states past the
    deduplication window (``DEDUPE_RETENTION_DAYS``), the activity record past
    ``ACTIVITY_RETENTION_DAYS`` (every ``ACTIVITY_PRUNE_EVERY_S``: it scans the table) and,
    without Kafka, the database's log (``log_retention``)."""
    now = time.time()
    fact_floor = int(now) - settings.dedupe_retention_days * 86400
    pruned = await prune(db, *settings.retention_floors(now), fact_floor)
    if pruned:
        log.info("buckets pruned", extra={"rows": pruned})
    if now - last_activity_prune[0] >= ACTIVITY_PRUNE_EVERY_S:
        rows = await prune_activity(db, int(now) - settings.activity_retention_days * 86400)
        last_activity_prune[0] = now
        if rows:
            log.info("activity record pruned", extra={"rows": rows})
    if not settings.kafka_bootstrap_servers:
        records = await prune_log(db, log_retention(settings), now)
        if records:
            log.info("log pruned", extra={"records": records})


def log_retention(settings: Settings) -> dict[str, Keep]:
    """What the database's log keeps: activity the KPI service has read, for
    ``LOG_RETENTION_HOURS`` (a replay rebuilds from what is kept); dead letters, read or not,
    for ``DEADLETTER_RETENTION_DAYS``."""
    return {
        settings.activity_topic: Keep(settings.log_retention_hours * 3600, settings.kpi_group),
        settings.deadletter_topic: Keep(settings.deadletter_retention_days * 86400),
    }


def create_health_app(db: AsyncEngine, jobs: dict[str, Job]) -> FastAPI:
    """/healthz, /readyz (the database, and each job) and /metrics of the worker."""
    app = FastAPI(
        title="SalesPulse worker",
        version="1",
        docs_url=None,
        redoc_url=None,
        telemetry=NO_TELEMETRY,
    )
    app.include_router(health_router(lambda: readiness(db, jobs)))
    return app
