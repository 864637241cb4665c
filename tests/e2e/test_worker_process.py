"""End to end, on a real PostgreSQL: `salespulse worker` processes settle a contest of 10,000
reps exactly once, though the first is SIGKILLed in the middle of settling it.

The story: a contest that ended two hours ago (due), three reps tied at the top, two alerts on
its winners (one on this contest, one on every contest). A worker starts and begins settling
(it logs ``settling contest`` inside the settlement's transaction); it is SIGKILLed at once, and
the contest is still unsettled: nothing of the settlement was committed. Two workers then start
together: the contest is settled once, with one final standing and one set of ``contest_won``
notifications (one per alert and winner), and stays so.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.api.contests.repository import ContestRepository
from services.api.contests.scoring import Contest, Score
from tests.e2e.test_processes import SALESPULSE, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]
REPS = 10_000
LEADERS = ("r7", "r4242", "r9999")  # tied at the top


async def run(db: AsyncEngine, statement: str, **params: Any) -> None:
    async with db.begin() as conn:
        await conn.execute(text(statement), params)


async def scalar(db: AsyncEngine, query: str) -> Any:
    async with db.connect() as conn:
        return (await conn.execute(text(query))).scalar()


async def a_due_contest_of_many(db: AsyncEngine) -> None:
    """10,000 reps in 50 teams, each with calls in the contest's second hour (minute and hour
    buckets alike), ``LEADERS`` ahead; the contest ended two hours ago; two alerts on it."""
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=4)
    hour = int(start.timestamp()) + 3600
    for statement in (
        "INSERT INTO teams (id, name) SELECT 't' || g, 'Team ' || g FROM generate_series(0, 49) g",
        "INSERT INTO reps (id, name) SELECT 'r' || g, 'Rep ' || g FROM generate_series(0, :n) g",
        "INSERT INTO rep_teams (rep_id, effective_from, team_id) "
        "SELECT 'r' || g, 0, 't' || (g % 50) FROM generate_series(0, :n) g",
        "UPDATE roster_version SET version = version + 1",
    ):
        await run(db, statement, n=REPS - 1)
    for grain, at in (("hour", hour), ("minute", hour + 300)):
        await run(
            db,
            "INSERT INTO kpi_rollups (scope, grain, bucket_start, subject_id, calls_placed) "
            "SELECT 'rep', :grain, :at, 'r' || g, "
            "CASE WHEN 'r' || g IN (:a, :b, :c) THEN 50 ELSE 1 + g % 40 END "
            "FROM generate_series(0, :n) g",
            grain=grain, at=at, n=REPS - 1, a=LEADERS[0], b=LEADERS[1], c=LEADERS[2],
        )  # fmt: skip
    box = int(start.timestamp()), int(start.timestamp()) + 2 * 3600
    contest = Contest("big", "Big blitz", *box, "reps", None, Score(metric="calls_total"), 45.0,
                      box[0])  # fmt: skip
    async with db.begin() as conn:
        await ContestRepository(conn).save(contest)
    for alert_id, contest_id in (("this-one", "big"), ("every-one", None)):
        trigger = json.dumps({"kind": "contest_won", "contest_id": contest_id})
        await run(
            db,
            "INSERT INTO alerts (id, name, channels, enabled, trigger) "
            "VALUES (:id, :id, '[\"nowhere\"]', true, :trigger)",
            id=alert_id, trigger=trigger,
        )  # fmt: skip


@contextmanager
def workers(count: int, env: dict[str, str], logs: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    """``count`` `salespulse worker` processes, stopped (SIGTERM) at the end of the block."""
    procs = []
    for _ in range(count):
        own = {**env, "SALESPULSE_WORKER_PORT": str(free_port())}
        with (logs / "worker.log").open("ab") as log:  # the child keeps its own copy
            procs.append(
                subprocess.Popen([str(SALESPULSE), "worker"], env=own, stdout=log, stderr=log)
            )
    try:
        yield procs
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        codes = [proc.wait(timeout=30) for proc in procs]
        assert all(code in (0, -signal.SIGKILL) for code in codes), codes


async def until(seconds: float, what: str, check: Any) -> None:
    deadline = time.monotonic() + seconds
    while not await check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def test_a_worker_killed_mid_settlement_leaves_it_to_be_settled_exactly_once(
    pg: AsyncEngine, postgres_url: str, tmp_path: Path
) -> None:
    await a_due_contest_of_many(pg)
    env = {
        **os.environ,
        "SALESPULSE_DATABASE_URL": postgres_url,
        "SALESPULSE_LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
    }
    log = tmp_path / "worker.log"
    log.touch()

    async def settling() -> bool:
        return "settling contest" in log.read_text()

    with workers(1, env, tmp_path) as [first]:
        await until(60, "the settlement to begin", settling)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    assert first.returncode == -signal.SIGKILL
    unsettled = "SELECT count(*) FROM contests WHERE settled_at IS NULL"
    assert await scalar(pg, unsettled) == 1, "killed too late: nothing was mid-settlement"
    assert await scalar(pg, "SELECT count(*) FROM notifications") == 0

    async def settled() -> bool:
        return bool(await scalar(pg, unsettled) == 0)

    with workers(2, env, tmp_path):
        await until(120, "the settlement after the restart", settled)
        await asyncio.sleep(3)  # both workers' next rounds: nothing more may come of them

    final = json.loads(await scalar(pg, "SELECT final FROM contests WHERE id = 'big'"))
    assert sorted(w["rep_id"] for w in final["winners"]) == sorted(LEADERS)
    assert len(final["rows"]) == REPS
    async with pg.connect() as conn:
        notified = (
            await conn.execute(
                text("SELECT alert_id, subject_id, occurrence FROM notifications ORDER BY 1, 2")
            )
        ).all()
    assert notified == [(alert, rep, "contest:big") for alert in ("every-one", "this-one")
                        for rep in sorted(LEADERS)]  # fmt: skip
    assert log.read_text().count("contest settled") == 1
