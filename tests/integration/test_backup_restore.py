"""Backup and restore of a small floor's database (``services/backup.py``), on SQLite and on
PostgreSQL: a backup taken while a writer is still booking brings back, through the API, every
KPI of every rep and team in every window as they stood when it was taken, and the roster,
targets, contests and schema revision with them."""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.api.app import create_app
from services.api.common.params import request_now
from services.backup import Archive, BackupError, backup, restore
from services.kpi.domain.engine import Engine
from services.kpi.flush import KpiStore
from shared.catalogue import CATALOGUE
from shared.db.engine import create_engine
from shared.db.migrate import current_revision, head_revision, migrate
from shared.settings import Settings
from tests.api_support import ADMIN, READ, api_client, book
from tests.conftest import fresh_postgres_database

NOW = datetime.now(UTC).replace(second=0, microsecond=0)  # the API's clock, frozen
HOUR = NOW.replace(minute=0)
TEAMS = ("north", "south", "east")
REPS = [f"r{i:02d}" for i in range(12)]
HISTORY_DAYS = 40
WINDOWS = (
    "today", "yesterday", "this_week", "last_week", "this_month", "last_month", "this_year",
    "last_1h", "last_7d", "last_30d",
)  # fmt: skip
CUSTOM = {"from": (NOW - timedelta(days=12, hours=5)).isoformat(), "to": NOW.isoformat()}
BOARDS = ("calls_total", "revenue", "win_rate")
Url = str


# -- a floor: roster, targets, contests, and forty days of varied activity --------------------


class Activity:
    """Canonical events of a floor, the same for the same seed: calls of every kind, leads,
    meetings, proposals, deals opened, won, lost and corrected, surveys, complaints, churn, and
    an actor nobody knows."""

    def __init__(self, seed: int) -> None:
        self.rng, self.serial = random.Random(seed), 0
        self.won: list[tuple[str, str, datetime]] = []  # (deal, actor, won at), to correct later

    def event(self, type_: str, actor: str | None, at: datetime, **data: Any) -> dict[str, Any]:
        self.serial += 1
        body = {**data, **({"actor": {"provider": "crm", "external_id": actor}} if actor else {})}
        return {
            "specversion": "1.0", "id": f"evt-{self.rng.getrandbits(40):x}-{self.serial}",
            "source": "test://backup", "type": type_, "time": at.isoformat(), "data": body,
        }  # fmt: skip

    def rep_moment(self, actor: str, at: datetime) -> list[dict[str, Any]]:
        """What one rep does at ``at``: one fact, drawn."""
        rng, n = self.rng, self.serial
        kind = rng.choices(
            ["placed", "received", "missed", "lead", "meeting", "proposal", "deal", "other"],
            [40, 12, 6, 8, 8, 5, 10, 3],
        )[0]
        if kind == "placed":
            outcome = rng.choice(["connected", "connected", "no_answer", "busy", "voicemail"])
            talk = rng.randrange(20, 900) if outcome == "connected" else 0
            number = f"+3361234{n % 1000:04d}"
            return [self.event("call.placed", actor, at, call_id=f"c{n}", outcome=outcome,
                               talk_seconds=talk, counterpart=number)]  # fmt: skip
        if kind == "received":
            return [self.event("call.received", actor, at, call_id=f"c{n}",
                               talk_seconds=rng.randrange(10, 600))]  # fmt: skip
        if kind == "missed":
            return [self.event("call.missed", actor, at, call_id=f"c{n}",
                               counterpart=f"+3361234{n % 1000:04d}")]  # fmt: skip
        if kind == "lead":
            return [self.event("lead.created", actor, at, lead_id=f"L{n}", source="web")]
        if kind == "meeting":
            type_ = rng.choice(["meeting.booked", "meeting.held"])
            return [self.event(type_, actor, at, meeting_id=f"M{n}")]
        if kind == "proposal":
            type_ = rng.choice(["proposal.sent", "proposal.sent", "proposal.accepted"])
            return [self.event(type_, actor, at, proposal_id=f"P{n}", amount="4200.00",
                               currency="EUR")]  # fmt: skip
        if kind == "deal":
            return self.deal(actor, at)
        type_ = rng.choice(["survey.answered", "complaint.logged", "customer.churned"])
        if type_ == "survey.answered":
            score = {"nps": rng.randrange(0, 11)} if rng.random() < 0.5 else {"csat": 4}
            return [self.event(type_, actor, at, account_id=f"A{n % 37}", **score)]
        return [self.event(type_, actor, at, account_id=f"A{n % 37}")]

    def deal(self, actor: str, at: datetime) -> list[dict[str, Any]]:
        """A deal opened before ``at`` and closed at ``at``, or a correction of one won."""
        rng, n = self.rng, self.serial
        if self.won and rng.random() < 0.2:  # a won deal's amount corrected, or it reopens
            deal, owner, _ = rng.choice(self.won)
            change = {"amount": f"{rng.randrange(500, 90000)}.00"}
            if rng.random() < 0.2:
                change = {"status": "open"}
            return [self.event("deal.updated", owner, at, deal_id=deal, **change)]
        opened = at - timedelta(days=rng.randrange(0, 20), minutes=rng.randrange(0, 600))
        deal, status = f"D{n}", rng.choice(["won", "won", "lost"])
        events = [
            self.event("deal.updated", actor, opened, deal_id=deal, status="open",
                       account_id=f"A{rng.randrange(60)}", amount=f"{rng.randrange(900, 60000)}.00",
                       currency="EUR", created_at=opened.isoformat()),
            self.event("deal.updated", actor, at, deal_id=deal, status=status,
                       margin=f"{rng.randrange(100, 9000)}.00", discount="0.05"),
        ]  # fmt: skip
        if status == "won":
            self.won.append((deal, actor, at))
        return events

    def day(self, day: datetime, until: datetime) -> list[dict[str, Any]]:
        """Every rep's day (and an unknown actor's calls), in business hours before ``until``."""
        out: list[dict[str, Any]] = []
        for i in range(len(REPS) + 1):
            actor = f"u-{i}" if i < len(REPS) else "u-stranger"  # the last: not in the roster
            for _ in range(self.rng.randrange(4, 16)):
                at = day + timedelta(hours=7, seconds=self.rng.randrange(11 * 3600))
                if at < until:
                    out += self.rep_moment(actor, at)
        return out

    def history(self) -> list[dict[str, Any]]:
        """Forty days up to an hour ago."""
        today = NOW.replace(hour=0, minute=0)
        out: list[dict[str, Any]] = []
        for back in range(HISTORY_DAYS, -1, -1):
            out += self.day(today - timedelta(days=back), NOW - timedelta(hours=1))
        return out

    def live(self, batch: int) -> list[dict[str, Any]]:
        """The ``batch``-th batch of live traffic (the same whenever asked): the last hour, and
        corrections of deals won in the history."""
        drawn = Activity(1000 + batch)
        drawn.serial, drawn.won = 1_000_000 * (batch + 1), list(self.won)
        out: list[dict[str, Any]] = []
        while len(out) < 15:
            actor = f"u-{drawn.rng.randrange(len(REPS))}"
            at = NOW - timedelta(seconds=drawn.rng.randrange(1, 3600))
            out += drawn.rep_moment(actor, at)
        return out


async def floor(client: httpx.AsyncClient) -> None:
    """The roster (a move, a rep who left), targets with a history, and two contests."""
    roster = {
        "teams": [{"id": t, "name": t.title()} for t in TEAMS],
        "reps": [
            {"id": rep, "name": f"Rep {rep}", "team_id": TEAMS[i % 3],
             "effective_from": "2020-01-01T00:00:00Z", "email": f"{rep}@example.com",
             "identities": [{"provider": "crm", "external_id": f"u-{i}"}]}
            for i, rep in enumerate(REPS)
        ],
    }  # fmt: skip

    async def ok(response: httpx.Response) -> None:
        assert response.status_code in (200, 201), response.text

    await ok(await client.post("/v1/roster/import", json=roster, headers=ADMIN))
    moved = {"team_id": "east", "effective_from": (NOW - timedelta(days=9)).isoformat()}
    await ok(await client.patch("/v1/reps/r01", json=moved, headers=ADMIN))
    left = {"left_at": (NOW - timedelta(days=3)).isoformat()}
    await ok(await client.patch("/v1/reps/r11", json=left, headers=ADMIN))
    month = f"{NOW:%Y-%m}"
    for rep in REPS[:6]:
        path = f"/v1/targets/reps/{rep}/revenue/month"
        await ok(await client.put(path, json={"value": 40000}, headers=ADMIN))
        await ok(await client.put(path, json={"value": 52000, "starting": month}, headers=ADMIN))
        path = f"/v1/targets/reps/{rep}/calls_total/day"
        await ok(await client.put(path, json={"value": 12}, headers=ADMIN))
    path = "/v1/targets/teams/north/revenue/month"
    await ok(await client.put(path, json={"value": 150000}, headers=ADMIN))
    running = {
        "name": "Call blitz", "starts_at": (HOUR - timedelta(days=2)).isoformat(),
        "ends_at": (HOUR + timedelta(days=5)).isoformat(), "participants": "reps",
        "score": {"metric": "calls_total"}, "goal": 60,
    }  # fmt: skip
    await ok(await client.put("/v1/contests/blitz", json=running, headers=ADMIN))
    race = {
        "name": "Points race", "starts_at": (HOUR - timedelta(days=30)).isoformat(),
        "ends_at": (HOUR - timedelta(days=1)).isoformat(), "participants": "teams",
        "score": {"points": {"deals_won": 10, "meetings_held": 3, "calls_total": 1}},
    }  # fmt: skip
    await ok(await client.put("/v1/contests/race", json=race, headers=ADMIN))


# -- databases and the API over them --------------------------------------------------------


@dataclass
class Database:
    url: Url
    engine: AsyncEngine
    app_client: httpx.AsyncClient


@dataclass
class Databases:
    """Fresh databases of the kind of the test's ``db``, each with the API over it."""

    kind: str
    make_url: Callable[[str], Any]
    stack: AsyncExitStack
    settings: Settings
    opened: list[Database] = field(default_factory=list)

    async def url(self, name: str) -> Url:
        url: Url = await self.stack.enter_async_context(self.make_url(name))
        return url

    async def open(self, url: Url, *, migrated: bool = True) -> Database:
        engine = create_engine(url)
        self.stack.push_async_callback(engine.dispose)
        if migrated:
            await migrate(engine)
        app = create_app(self.settings, engine)
        app.dependency_overrides[request_now] = lambda: NOW
        client = await self.stack.enter_async_context(api_client(app))
        return Database(url, engine, client)


def url_of(engine: AsyncEngine) -> Url:
    return engine.url.render_as_string(hide_password=False)


@pytest.fixture
async def databases(
    db: AsyncEngine,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    make_settings: Callable[..., Settings],
) -> AsyncIterator[Databases]:
    kind = db.dialect.name

    @asynccontextmanager
    async def sqlite_url(name: str) -> AsyncIterator[Url]:
        yield f"sqlite:///{tmp_path / name}.db"

    def postgres_url(name: str) -> Any:
        return fresh_postgres_database(request.getfixturevalue("postgres_admin_url"))

    async with AsyncExitStack() as stack:
        yield Databases(
            kind, sqlite_url if kind == "sqlite" else postgres_url, stack, make_settings()
        )


async def offset(engine: AsyncEngine) -> int:
    """How many events the database has booked (``book`` numbers them on one partition)."""
    store = KpiStore(engine, Engine(Settings().tz, "EUR"), "g", "t")
    return (await store.load_offsets("t", [0])).get(0, 0)


# -- reading everything through the API -----------------------------------------------------


def kpi_paths() -> list[str]:
    """Every KPI of every rep and team in every window (the reports: each the KPIs' own values,
    for every subject at once), each rep's and team's own KPIs with their pace in three, the
    boards, the wins and what no rep was credited with."""
    every = ",".join(CATALOGUE)
    windows = [urlencode({"window": w}) for w in WINDOWS] + [urlencode(CUSTOM)]
    paths: list[str] = []
    for query in windows:
        paths += [f"/v1/reports/{scope}?{query}&metrics={every}" for scope in ("reps", "teams")]
        paths += [f"/v1/leaderboards/{metric}?{query}" for metric in BOARDS]
        paths += [f"/v1/team-leaderboards/{metric}?{query}" for metric in BOARDS]
        paths += [f"/v1/unassigned?{query}"]
    for query in (windows[0], windows[4], windows[-1]):  # today, this month, a custom range
        paths += [f"/v1/reps/{rep}/kpis?{query}" for rep in REPS]
        paths += [f"/v1/teams/{team}/kpis?{query}" for team in TEAMS]
        paths += [f"/v1/wins?{query}&limit=500"]
    paths += [f"/v1/teams/{team}/timeseries/revenue?window=this_month" for team in TEAMS]
    return paths


STATE_PATHS = [
    "/v1/teams?limit=1000", "/v1/reps?status=all&limit=1000", "/v1/targets?limit=1000",
    "/v1/contests", "/v1/contests/blitz", "/v1/contests/race", "/v1/organisation",
    *[f"/v1/targets/reps/{rep}/revenue/month" for rep in REPS[:6]],
]  # fmt: skip


def without_stamps(body: Any) -> Any:
    """A body without ``as_of`` (when the data last changed: a stamp, not a figure)."""
    if isinstance(body, dict):
        return {k: without_stamps(v) for k, v in body.items() if k != "as_of"}
    if isinstance(body, list):
        return [without_stamps(v) for v in body]
    return body


async def differences(
    a: Database, b: Database, paths: list[str], *, first: bool = False
) -> list[str]:
    """The paths whose answers differ between ``a`` and ``b``, read back to back (only the
    first that differs if ``first``)."""
    differ: list[str] = []
    for path in paths:
        one, other = (
            await a.app_client.get(path, headers=READ),
            await b.app_client.get(path, headers=READ),
        )
        assert one.status_code == other.status_code == 200, (path, one.text, other.text)
        if without_stamps(one.json()) != without_stamps(other.json()):
            differ.append(path)
            if first:
                break
    return differ


async def figures_are_not_trivial(database: Database) -> None:
    """The comparison is of real numbers: every team has calls, wins and revenue this year."""
    for team in TEAMS:
        got = await database.app_client.get(f"/v1/teams/{team}/kpis?window=last_30d", headers=READ)
        metrics = got.json()["metrics"]
        assert min(metrics["calls_total"], metrics["deals_won"], metrics["revenue"]) > 0, team


# -- the test ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Batch:
    offset: int  # the database's after it
    started: float  # time.monotonic() when booking began
    returned: float  # and when its transaction had committed


@dataclass
class Writer:
    """Books live batches into a database, one after another, until two have begun after
    ``stop_after`` (once it is set); remembers when each began and committed."""

    database: Database
    activity: Activity
    batches: list[Batch] = field(default_factory=list)
    stop_after: float | None = None
    going: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self, at_most: int = 2000) -> None:
        booked = await offset(self.database.engine)
        for batch in range(at_most):
            events = self.activity.live(batch)
            started = time.monotonic()
            await book(self.database.engine, *events)
            booked += len(events)
            self.batches.append(Batch(booked, started, time.monotonic()))
            if len(self.batches) >= 3:
                self.going.set()
            after = self.stop_after
            if after is not None and sum(b.started > after for b in self.batches) >= 2:
                return
            await asyncio.sleep(0)
        raise AssertionError("the writer was never told to stop")

    def within(self, began: float, ended: float) -> list[Batch]:
        """The batches booked from start to commit while a backup ran."""
        return [b for b in self.batches if began < b.started and b.returned < ended]


async def build(database: Database, seed: int) -> Activity:
    await floor(database.app_client)
    activity = Activity(seed)
    history = activity.history()
    for start in range(0, len(history), 2000):
        await book(database.engine, *history[start : start + 2000])
    return activity


async def test_a_backup_taken_while_booking_restores_every_kpi_roster_target_and_contest(
    databases: Databases, db: AsyncEngine, tmp_path: Path
) -> None:
    original = await databases.open(url_of(db), migrated=False)  # ``db`` is migrated
    activity = await build(original, seed=7)
    await figures_are_not_trivial(original)

    # Back up while a writer books the last hour's traffic (and corrections of older deals):
    # until a batch was booked, begun to committed, while the backup ran (the first time, on
    # PostgreSQL; SQLite's copy of this small database takes about as long as a batch).
    writer = Writer(original, activity)
    writing = asyncio.create_task(writer.run())
    await writer.going.wait()
    for _attempt in range(30):
        began = time.monotonic()
        archive = await asyncio.to_thread(backup, original.url, tmp_path / "floor.backup")
        ended = time.monotonic()
        if writer.within(began, ended):
            break
    else:
        pytest.fail("no batch was booked while a backup ran")
    writer.stop_after = ended  # it goes on writing after the backup
    await writing
    assert archive.revision == head_revision()
    assert archive.path.stat().st_mode & 0o077 == 0  # the floor's data: its owner's alone

    # Restore into a fresh database: the schema, and exactly the batches committed by then.
    restored_url = await databases.url("restored")
    assert await asyncio.to_thread(restore, archive.path, restored_url) == Archive(
        archive.path, archive.kind, head_revision(), archive.size
    )
    restored = await databases.open(restored_url, migrated=False)
    assert await current_revision(restored.engine) == head_revision()
    at_backup = await offset(restored.engine)
    offsets = [b.offset for b in writer.batches]
    assert at_backup in offsets, "the backup holds part of a batch"
    done_before = [b.offset for b in writer.batches if b.returned < began]
    assert done_before[-1] <= at_backup, "the backup misses a batch committed before it began"
    begun_after = [b.offset for b in writer.batches if b.started > ended]
    assert at_backup < begun_after[0], "the backup holds a batch begun after it ended"
    batches_in = offsets.index(at_backup) + 1

    # Every KPI as it stood at the backup: the same floor rebuilt with the same batches.
    twin = await databases.open(await databases.url("twin"))
    twin_activity = await build(twin, seed=7)
    for batch in range(batches_in):
        await book(twin.engine, *twin_activity.live(batch))
    assert await offset(twin.engine) == at_backup
    paths = kpi_paths()
    assert await differences(twin, restored, paths) == []
    assert await differences(original, restored, paths, first=True), (
        "the later batches show nowhere"
    )

    # The restored copy resumes where the backup was taken: the rest booked, all equal.
    for batch in range(batches_in, len(offsets)):
        await book(restored.engine, *activity.live(batch))
    assert await offset(restored.engine) == offsets[-1]
    assert await differences(original, restored, paths + STATE_PATHS) == []


async def test_a_restore_refuses_what_would_lose_or_corrupt_data(
    databases: Databases, db: AsyncEngine, tmp_path: Path
) -> None:
    original = await databases.open(url_of(db), migrated=False)
    await floor(original.app_client)
    archive = await asyncio.to_thread(backup, original.url, tmp_path / "floor.backup")

    # A database that has tables is replaced only when asked, and never while in use.
    target = await databases.open(await databases.url("target"))
    with pytest.raises(BackupError, match="already has tables"):
        await asyncio.to_thread(restore, archive.path, target.url)
    with pytest.raises(BackupError, match="in use"):
        await asyncio.to_thread(restore, archive.path, target.url, replace=True)
    await target.engine.dispose()  # SalesPulse stopped
    await asyncio.to_thread(restore, archive.path, target.url, replace=True)
    target = await databases.open(target.url, migrated=False)
    assert await differences(original, target, STATE_PATHS) == []

    # A backup of a later release, a torn one, one of the other database, or none at all.
    future = await databases.open(await databases.url("future"))
    async with future.engine.begin() as conn:
        await conn.execute(text("UPDATE alembic_version SET version_num = '9999_future'"))
    later = await asyncio.to_thread(backup, future.url, tmp_path / "later.backup")
    assert later.revision == "9999_future"
    with pytest.raises(BackupError, match="does not know"):
        await asyncio.to_thread(restore, later.path, await databases.url("later"))
    torn = tmp_path / "torn.backup"
    torn.write_bytes(archive.path.read_bytes()[: archive.size // 2])
    with pytest.raises(BackupError):
        await asyncio.to_thread(restore, torn, await databases.url("torn"))
    other = tmp_path / "other.backup"
    other.write_bytes(b"PGDMP" if databases.kind == "sqlite" else b"SQLite format 3\x00")
    with pytest.raises(BackupError, match="backup; the database at the URL is"):
        await asyncio.to_thread(restore, other, await databases.url("other"))
    with pytest.raises(BackupError, match="no backup file"):
        await asyncio.to_thread(restore, tmp_path / "nothing", await databases.url("nothing"))


# -- the compose wrapper ----------------------------------------------------------------------

FAKE_DOCKER = """#!/usr/bin/env bash
# `docker compose` as backup.sh calls it, the container being this machine.
echo "$*" >> "$DOCKER_LOG"
[ "$1" = compose ] || exit 64
shift
[ "$1" = -f ] && shift 2
action=$1
shift
case $action in
  stop | start) exit 0 ;;
  exec) while [ "$1" != salespulse ]; do shift; done; shift; exec "$@" ;;
  run)
    while [ "$1" != salespulse ]; do
      [ "$1" = --entrypoint ] && { entry=$2; shift; }
      shift
    done
    shift
    exec "$entry" "$@" ;;
esac
exit 64
"""
WRAPPER = Path(__file__).resolve().parents[2] / "deploy" / "small-floor" / "backup.sh"


async def test_the_compose_wrapper_backs_up_through_the_pipe_and_restores_stopped(
    tmp_path: Path,
) -> None:
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    (bin_ / "docker").write_text(FAKE_DOCKER)
    (bin_ / "docker").chmod(0o755)
    url = f"sqlite:///{tmp_path / 'salespulse.db'}"
    log = tmp_path / "docker.log"
    env = {
        **os.environ,
        "PATH": f"{bin_}:{Path(sys.executable).parent}:{os.environ['PATH']}",
        "SALESPULSE_DATABASE_URL": url,
        "DOCKER_LOG": str(log),
    }
    engine = create_engine(url)
    try:
        await migrate(engine)
        activity = Activity(3)
        await book(engine, *activity.live(0))
        kept = await offset(engine)

        def wrapper(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [str(WRAPPER), "sqlite", *args],
                env=env,
                capture_output=True,
                text=True,
                cwd=tmp_path,
                check=False,
            )

        done = await asyncio.to_thread(wrapper, "backup", "floor.backup")
        assert done.returncode == 0, done.stderr
        saved = tmp_path / "floor.backup"
        assert saved.read_bytes().startswith(b"SQLite format 3\x00")
        assert saved.stat().st_mode & 0o077 == 0  # the floor's data: its owner's alone
        [call] = log.read_text().splitlines()
        compose = f"compose -f {WRAPPER.parent}/compose.sqlite.yml"
        assert call.startswith(f"{compose} exec -T salespulse sh -c ")  # while it runs
        await book(engine, *activity.live(1))
        assert await offset(engine) > kept
        await engine.dispose()  # SalesPulse stopped (the wrapper's `stop` does it for real)

        log.unlink()
        done = await asyncio.to_thread(wrapper, "restore", "floor.backup")
        assert done.returncode == 0, done.stderr
        actions = [line.split()[3] for line in log.read_text().splitlines()]
        assert actions == ["stop", "run", "start"]
        assert await offset(engine) == kept

        failed = await asyncio.to_thread(wrapper, "restore", "nothing.backup")
        assert failed.returncode == 1
        assert "no backup file" in failed.stderr
        env["SALESPULSE_DATABASE_URL"] = f"sqlite:///{tmp_path / 'gone' / 'nothing.db'}"
        failed = await asyncio.to_thread(wrapper, "backup", "broken.backup")
        assert failed.returncode == 1
        assert [name for name in os.listdir(tmp_path) if name.startswith("broken")] == []
    finally:
        await engine.dispose()
