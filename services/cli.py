"""The ``salespulse`` command: everything in one process (``serve``), or one service each (the
Kafka shape), and the operator's tools."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import Annotated

import typer
import uvloop

from shared.observability import configure_logging
from shared.runtime import tune_gc_for_batches
from shared.settings import Settings

app = typer.Typer(
    help="SalesPulse: real-time sales KPIs.", no_args_is_help=True, pretty_exceptions_enable=False
)
log = logging.getLogger("salespulse")


def _settings() -> Settings:
    settings = Settings()
    configure_logging(settings.log_level)
    return settings


@app.command()
def ingest() -> None:
    """Run the ingest service (webhooks -> Kafka)."""
    from services.ingest.app import create_app
    from services.runner import run_all, serve

    settings = _settings()
    web = create_app(settings)
    tune_gc_for_batches()  # a webhook's objects outlive young collections until Kafka acks
    uvloop.run(run_all(lambda stop: serve(web, settings.ingest_host, settings.ingest_port, stop)))


@app.command()
def kpi() -> None:
    """Run the KPI service (consumer group -> aggregates), with /healthz and /metrics."""
    from services.kpi.app import build_kpi_service
    from services.runner import run_all, serve

    settings = _settings()

    async def main() -> None:
        async with build_kpi_service(settings) as service:
            tune_gc_for_batches()
            await run_all(
                service.run,
                lambda stop: serve(
                    service.health, settings.kpi_host, settings.kpi_metrics_port, stop
                ),
            )

    uvloop.run(main())


@app.command()
def replay(
    yes: Annotated[bool, typer.Option("--yes", help="confirm: the aggregates are rebuilt")] = False,
) -> None:
    """Rebuild every aggregate from the topic into the database (after a roster fix or a
    definition change). Stop the KPI service first; it resumes where the replay ends."""
    import uuid

    from services.kpi.app import build_kpi_service
    from services.runner import run_all

    if not yes:
        raise typer.BadParameter("this deletes and rebuilds every aggregate: pass --yes")
    settings = _settings()
    group = f"{settings.kpi_group}-replay-{uuid.uuid4().hex[:8]}"

    async def main() -> None:
        service = build_kpi_service(settings, consumer_group=group, client_id="salespulse-replay")
        async with service:

            async def job(stop: asyncio.Event) -> None:
                reached = await service.replay(stop)
                log.info("replay done", extra={"offsets": reached})

            await run_all(job)

    uvloop.run(main())


@app.command()
def migrate() -> None:
    """Bring the database (SALESPULSE_DATABASE_URL) to the schema this release needs; a
    database of a release before migrations is recognised and upgraded in place."""
    from shared.db.engine import create_engine
    from shared.db.migrate import current_revision
    from shared.db.migrate import migrate as upgrade

    settings = _settings()

    async def main() -> None:
        db = create_engine(settings.database_url)
        try:
            before = await current_revision(db)
            await upgrade(db)
            after = await current_revision(db)
        finally:
            await db.dispose()
        log.info("database migrated", extra={"from": before, "to": after})
        typer.echo(f"database at revision {after} (was {before or 'unversioned or empty'})")

    asyncio.run(main())


@app.command("backup")
def backup_command(
    file: Annotated[Path, typer.Argument(help="where to write the backup (replaced if there)")],
) -> None:
    """Write a consistent backup of the database (SALESPULSE_DATABASE_URL) to FILE, safe while
    SalesPulse runs: SQLite's online backup, or pg_dump for PostgreSQL."""
    from services.backup import BackupError, backup

    settings = _settings()
    try:
        archive = backup(settings.database_url, file)
    except BackupError as exc:
        typer.echo(f"backup failed: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(
        f"backup of the {archive.kind} database at revision {archive.revision or '(none)'} "
        f"written to {archive.path} ({archive.size:,} bytes)"
    )


@app.command("restore")
def restore_command(
    file: Annotated[Path, typer.Argument(help="a file `salespulse backup` wrote")],
    replace: Annotated[
        bool, typer.Option("--replace", help="replace a database that has tables")
    ] = False,
) -> None:
    """Bring the database (SALESPULSE_DATABASE_URL) back to the backup in FILE. Stop SalesPulse
    first; events accepted after the backup was taken are not in it."""
    from services.backup import BackupError, restore

    settings = _settings()
    try:
        archive = restore(file, settings.database_url, replace=replace)
    except BackupError as exc:
        typer.echo(f"restore failed: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(
        f"{archive.kind} database restored from {archive.path} "
        f"(revision {archive.revision or '(none)'}; the next start migrates it if older)"
    )


@app.command("dead-letters")
def dead_letters(
    replay: Annotated[
        bool, typer.Option("--replay", help="publish what validates now to the activity topic")
    ] = False,
) -> None:
    """Count the dead letters by provider and reason; with --replay, publish again those that
    are canonical events and can be booked now (after a fix). Safe to repeat: the KPI service
    counts an event id once."""
    import uuid

    from services.deadletters import read_topic, review
    from shared.bus import build_bus

    settings = _settings()

    async def main() -> None:
        bus = build_bus(settings, client_id="salespulse-dead-letters")
        await bus.start()
        try:
            group = f"{settings.topic_prefix}salespulse-dead-letters-{uuid.uuid4().hex[:8]}"
            found = review(await read_topic(bus, settings.deadletter_topic, group), settings.rates)
            for (provider, reason), count in sorted(found.by_reason.items()):
                typer.echo(f"{count:8d}  {provider:10s} {reason}")
            typer.echo(
                f"{found.letters} dead letters; {len(found.replayable)} can be booked now, "
                f"{found.still_invalid} cannot"
            )
            if replay and found.replayable:
                for start in range(0, len(found.replayable), 500):  # each under the timeout
                    await bus.publish(
                        settings.activity_topic, found.replayable[start : start + 500]
                    )
                typer.echo(f"published {len(found.replayable)} to {settings.activity_topic}")
        finally:
            await bus.stop()

    uvloop.run(main())


@app.command("import")
def import_command(
    file: Annotated[
        Path, typer.Argument(help="JSON lines of canonical events, or CSV (see the README)")
    ],
    restart: Annotated[
        bool, typer.Option("--restart", help="forget where an earlier run stopped; start over")
    ] = False,
    batch: Annotated[int, typer.Option("--batch", min=1, help="events per published batch")] = 1000,
) -> None:
    """Import past activity from FILE through the same validation as live events, with a
    progress bar and a summary. Resumable: run it again after an interruption and it goes on
    where it stopped. Safe to repeat: nothing is counted twice, and history raises no alert."""
    from services.history.command import ProgressBar, nothing_read, run_import, summary_lines
    from services.history.files import UnreadableInput
    from shared.db.migrate import SchemaBehind

    settings = _settings()
    total = file.stat().st_size if file.is_file() else None
    try:
        with ProgressBar(file.name, total) as bar:
            summary = uvloop.run(run_import(settings, file, restart=restart, batch_size=batch,
                                            progress=bar.update))  # fmt: skip
    except (UnreadableInput, SchemaBehind) as exc:
        typer.echo(f"import failed: {exc}", err=True)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        typer.echo("interrupted: run the same command again to resume", err=True)
        raise typer.Exit(130) from None
    for line in summary_lines(summary):
        typer.echo(line)
    if nothing_read(summary):
        typer.echo("nothing could be imported from this file", err=True)
        raise typer.Exit(1)


@app.command("backfill")
def backfill_command(
    provider: Annotated[str, typer.Argument(help="hubspot or aircall")],
    since: Annotated[
        str, typer.Option("--since", help="from this date (YYYY-MM-DD, the TIMEZONE's) or time")
    ],
    restart: Annotated[
        bool, typer.Option("--restart", help="forget where an earlier run stopped; start over")
    ] = False,
    batch: Annotated[int, typer.Option("--batch", min=1, help="events per published batch")] = 1000,
) -> None:
    """Read past activity from the provider's REST API (HubSpot deals changed since DATE,
    Aircall calls started since DATE) and publish it as its webhooks would have, with a
    progress bar and a summary. Resumable and safe to repeat: nothing is counted twice, and
    history raises no alert."""
    from services.backfill.command import NotConfigured, Provider, run_backfill
    from services.backfill.dates import parse_since
    from services.history.command import ProgressBar, summary_lines
    from services.providers_api.http import ProviderError
    from shared.db.migrate import SchemaBehind

    settings = _settings()
    try:
        which = Provider(provider)
        start = parse_since(since, settings.tz)
    except ValueError as exc:
        typer.echo(f"backfill: {exc}", err=True)
        raise typer.Exit(2) from None
    try:
        with ProgressBar(f"{which} since {since}", None) as bar:
            summary = uvloop.run(run_backfill(settings, which, start, restart=restart,
                                              batch_size=batch, progress=bar.update))  # fmt: skip
    except (NotConfigured, SchemaBehind) as exc:
        typer.echo(f"backfill failed: {exc}", err=True)
        raise typer.Exit(1) from None
    except ProviderError as exc:
        typer.echo(f"backfill stopped: {exc.reason}", err=True)
        typer.echo("what was published is kept: run the same command again to resume", err=True)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        typer.echo("interrupted: run the same command again to resume", err=True)
        raise typer.Exit(130) from None
    for line in summary_lines(summary):
        typer.echo(line)


@app.command()
def api() -> None:
    """Run the API gateway (queries, leaderboards, roster admin, /metrics)."""
    from services.api.app import create_app
    from services.runner import run_all, serve

    settings = _settings()
    web = create_app(settings)
    tune_gc_for_batches()  # a board of 10,000 reps is tens of thousands of objects
    uvloop.run(run_all(lambda stop: serve(web, settings.api_host, settings.api_port, stop)))


@app.command()
def worker() -> None:
    """Run the worker (notification delivery, contest settlement, pace checks, retention,
    corrections sent again), with /healthz, /readyz (per job) and /metrics."""
    from services.runner import run_all, serve
    from services.worker.app import build_worker
    from shared.bus import build_bus

    settings = _settings()

    async def main() -> None:
        # in the Kafka shape, corrections not yet applied are sent again on the activity topic
        bus = build_bus(settings, "salespulse-worker") if settings.kafka_bootstrap_servers else None
        if bus is not None:
            await bus.start()
        try:
            async with build_worker(settings, bus=bus) as background:
                await run_all(
                    background.run,
                    lambda stop: serve(
                        background.health, settings.worker_host, settings.worker_port, stop
                    ),
                )
        finally:
            if bus is not None:
                await bus.stop()

    uvloop.run(main())


@app.command("serve")
def serve_command(
    demo: Annotated[
        bool,
        typer.Option("--demo", help="demo secrets printed at start and the simulator (make run)"),
    ] = False,
) -> None:
    """Everything in one process on one database (SQLite or PostgreSQL), durable without
    Kafka: ingest, KPI, API and the background jobs. Migrates the database at start."""
    from services.serve import run_serve

    uvloop.run(run_serve(_settings(), demo=demo))


@app.command(hidden=True)
def dev() -> None:
    """The old name of `serve --demo`."""
    from services.serve import run_serve

    uvloop.run(run_serve(_settings(), demo=True))


@app.command("move-log-to-kafka")
def move_log_to_kafka() -> None:
    """Adding Kafka to a `serve` deployment: publish what the KPI service has not read yet from
    the database's log (and every dead letter) to the Kafka topics of
    SALESPULSE_KAFKA_BOOTSTRAP_SERVERS, then empty the log. Stop `salespulse serve` first; start
    it again (or the Kafka shape) with the Kafka setting. Safe to run again after a failure."""
    from shared.bus.kafka import KafkaBus
    from shared.bus.log import LogInUse, move_to
    from shared.db.engine import create_engine
    from shared.db.migrate import require_current

    settings = _settings()
    if not settings.kafka_bootstrap_servers:
        raise typer.BadParameter("set SALESPULSE_KAFKA_BOOTSTRAP_SERVERS to the Kafka to move to")

    async def main() -> None:
        db = create_engine(settings.database_url)
        kafka = KafkaBus(
            settings.kafka_bootstrap_servers or "",
            partitions=settings.kafka_partitions,
            replication_factor=settings.kafka_replication_factor,
            client_id="salespulse-move",
            publish_timeout_s=max(settings.publish_timeout_seconds, 30),
        )
        try:
            await require_current(db)
            await kafka.start()
            await kafka.ensure_topics([settings.activity_topic, settings.deadletter_topic])
            topics = {settings.activity_topic: settings.kpi_group, settings.deadletter_topic: None}
            moved = await move_to(kafka, db, topics)
        except LogInUse as exc:
            raise typer.BadParameter(str(exc)) from None
        finally:
            await kafka.stop()
            await db.dispose()
        for topic, count in moved.items():
            typer.echo(f"{count:9d} records moved to {topic}")

    uvloop.run(main())


@app.command()
def simulate(
    ingest_url: Annotated[str, typer.Option(help="ingest base URL")] = "http://127.0.0.1:8001",
    api_url: Annotated[str | None, typer.Option(help="API base URL, to set up the roster")] = None,
    rate: Annotated[float, typer.Option(help="deliveries per second")] = 2.0,
    count: Annotated[int | None, typer.Option(help="stop after this many deliveries")] = None,
    provider: Annotated[
        list[str] | None,
        typer.Option(
            help="standard, twilio, aircall, hubspot or pipedrive (repeatable); "
            "default: every provider whose secret is set"
        ),
    ] = None,
) -> None:
    """Post signed demo traffic to an ingest service, with the secrets of SALESPULSE_*
    (SALESPULSE_ADMIN_KEY, if set, lets it create its roster through --api-url)."""
    from services.dev import simulator_secrets
    from services.runner import run_all
    from services.simulator import Simulator

    settings = _settings()
    try:
        simulator = Simulator(
            ingest_url,
            simulator_secrets(settings),
            api_url,
            os.environ.get("SALESPULSE_ADMIN_KEY"),
            rate,
            provider,
        )
    except ValueError as exc:
        raise typer.BadParameter(f"{exc}: set SALESPULSE_WEBHOOK_SECRET or a provider's") from None

    async def job(stop: asyncio.Event) -> None:
        sent = await simulator.run(stop, count)
        log.info("simulator done", extra={"sent": sent})

    uvloop.run(run_all(job))
