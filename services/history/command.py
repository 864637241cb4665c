"""``salespulse import FILE``: the composition root of an import, its progress bar and its
summary. The loader (``loader``) does the work; this wires it to the settings' bus and
database and shows it to whoever runs it."""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)

from services.history.checkpoints import Checkpoints
from services.history.files import FileSource
from services.history.loader import (
    DEFAULT_BATCH,
    HistoryLoader,
    ProgressCallback,
    Source,
    Summary,
)
from services.history.loader import Progress as Done
from shared.bus import build_bus
from shared.db.engine import create_engine
from shared.db.migrate import require_current
from shared.settings import Settings

IMPORT_PUBLISH_TIMEOUT_S = 30.0  # a batch of history is bigger than a webhook's


async def run_import(
    settings: Settings,
    path: Path,
    *,
    restart: bool = False,
    batch_size: int = DEFAULT_BATCH,
    progress: ProgressCallback | None = None,
) -> Summary:
    """Import ``path`` through the bus of ``settings`` (Kafka, else the database's log);
    ``FileSource`` raises ``UnreadableInput`` for a file that is no import at all."""
    source = FileSource(path, settings.tz)
    return await load_history(
        settings, source, "salespulse-import", restart=restart, batch_size=batch_size,
        progress=progress,
    )  # fmt: skip


async def load_history(
    settings: Settings,
    source: Source,
    client_id: str,
    *,
    restart: bool = False,
    batch_size: int = DEFAULT_BATCH,
    progress: ProgressCallback | None = None,
) -> Summary:
    """Load ``source`` through the bus of ``settings`` (Kafka, else the database's log), from
    its checkpoint in the database: what ``import`` and ``backfill`` both run."""
    db = create_engine(settings.database_url)
    timeout = max(settings.publish_timeout_seconds, IMPORT_PUBLISH_TIMEOUT_S)
    bus_settings = settings.model_copy(update={"publish_timeout_seconds": timeout})
    bus = build_bus(bus_settings, client_id=client_id, db=db)
    try:
        await require_current(db)
        await bus.start()
        await bus.ensure_topics([settings.activity_topic, settings.deadletter_topic])
        loader = HistoryLoader(
            bus, settings.activity_topic, Checkpoints(db), rates=settings.rates,
            batch_size=batch_size,
        )  # fmt: skip
        return await loader.load(source, restart=restart, progress=progress)
    finally:
        await bus.stop()
        await db.dispose()


class ProgressBar(AbstractContextManager["ProgressBar"]):
    """A rich progress bar on stderr: bytes of the file read, events published, events/s."""

    def __init__(self, label: str, total: int | None, console: Console | None = None) -> None:
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(bar_width=24),
            TaskProgressColumn(),
            TextColumn("{task.fields[published]:,} events, {task.fields[rate]:,.0f}/s"),
            TextColumn("{task.fields[bad]:,} bad"),
            TimeElapsedColumn(),
            console=console or Console(stderr=True),
            transient=False,
        )
        self._task: TaskID = self._progress.add_task(
            label, total=total, published=0, rate=0.0, bad=0
        )

    def __enter__(self) -> ProgressBar:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def update(self, done: Done) -> None:
        self._progress.update(
            self._task,
            completed=done.done,
            total=done.total,
            published=done.published,
            rate=done.rate,
            bad=done.bad,
        )


def summary_lines(summary: Summary) -> list[str]:
    """The end-of-run summary, as printed."""
    lines = [f"Import of {summary.label}"]
    if summary.started_over:
        lines.append("  the file changed since the last import: started over from line 1")
    if summary.resumed_from:
        lines.append(
            f"  resumed after line {summary.resumed_from:,}: {summary.skipped:,} events "
            "already published by earlier runs were skipped"
        )
    lines += [
        f"  read            {summary.read:>10,} lines",
        f"  published       {summary.published:>10,} events",
        f"  duplicates      {summary.duplicates:>10,} (an event id seen earlier in the file)",
        f"  bad lines       {summary.bad:>10,}",
        f"  time            {summary.seconds:>10.1f} s ({summary.rate:,.0f} events/s)",
    ]
    if summary.errors:
        shown = len(summary.errors)
        more = f" (the first {shown})" if summary.bad > shown else ""
        lines.append(f"  bad lines{more}:")
        lines += [f"    line {e.line}: {e.reason}" for e in summary.errors]
    return lines


def nothing_read(summary: Summary) -> bool:
    """Whether the run found no event at all in a file it had not imported before: the exit
    code says so (a file imported before, with nothing new, is not a failure)."""
    return summary.published + summary.duplicates == 0 and summary.skipped == 0
