"""The worker on SQLite and PostgreSQL, against an API that runs no background job: the API's
lifespan starts no task, a due contest read through it stays unsettled and no delivery is
attempted; the worker then settles the contest (its winner notified) and delivers. Its
``/readyz`` says, per job, whether it is healthy."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.api.app import create_app
from services.worker.app import build_worker
from services.worker.service import Worker
from shared.settings import Settings
from tests.api_support import ADMIN, READ, api_client, book, floor, served
from tests.conftest import canonical
from tests.integration.test_dispatcher import (
    Receiver,
    add_channel,
    delivery,
    eventually,
    raise_notification,
)


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(allow_private_channels=True, dispatch_poll_seconds=0.05)


@contextlib.asynccontextmanager
async def running(worker: Worker) -> AsyncIterator[Worker]:
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        yield worker
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


async def readyz(worker: Worker) -> tuple[int, dict[str, Any]]:
    async with api_client(worker.health) as client:
        answer = await client.get("/readyz")
    return answer.status_code, answer.json()


async def scalar(db: AsyncEngine, query: str) -> Any:
    async with db.connect() as conn:
        return (await conn.execute(text(query))).scalar()


async def due_contest_won_by_bob(client: httpx.AsyncClient, db: AsyncEngine) -> None:
    """A contest that ended an hour ago (due), Bob ahead, and an alert on its winners."""
    end = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=1)
    body = {"name": "Blitz", "starts_at": (end - timedelta(hours=1)).isoformat(),
            "ends_at": end.isoformat(), "score": {"metric": "calls_total"}}  # fmt: skip
    assert (await client.put("/v1/contests/blitz", json=body, headers=ADMIN)).status_code == 200
    await book(db, *(canonical(actor="u-2", time=end - timedelta(minutes=m)) for m in (5, 9)))
    alert = {"name": "Won", "channels": ["hook"], "trigger": {"kind": "contest_won"}}
    assert (await client.put("/v1/alerts/won", json=alert, headers=ADMIN)).status_code == 200


async def test_the_api_runs_no_background_job_and_the_worker_does_them(
    db: AsyncEngine, settings: Settings, receiver: tuple[Receiver, str]
) -> None:
    found, url = receiver
    await add_channel(db, f"{url}/ok")
    await raise_notification(db, "ntf_1")
    app = create_app(settings, db)

    before = asyncio.all_tasks()
    async with app.router.lifespan_context(app):
        assert asyncio.all_tasks() - before == set()  # its lifespan starts no task

    async with served(app) as api, httpx.AsyncClient(base_url=api) as client:
        await floor(client)
        await due_contest_won_by_bob(client, db)
        read = (await client.get("/v1/contests/blitz", headers=READ)).json()
        assert (read["status"], read["final"], read["winners"]) == ("active", False, [])
        assert datetime.fromisoformat(read["settles_at"]) < datetime.now(UTC)
        await asyncio.sleep(1.0)  # twenty dispatch intervals
        assert found.hits == []
        row = await delivery(db, "ntf_1")
        assert (row["status"], row["attempts"]) == ("pending", 0)
        assert await scalar(db, "SELECT count(*) FROM contests WHERE settled_at IS NULL") == 1

        async with running(build_worker(settings, db, settle_every_s=0.2)):
            await eventually(lambda: _all_delivered(db, 2))
            settled = (await client.get("/v1/contests/blitz", headers=READ)).json()

    assert (settled["status"], settled["final"]) == ("completed", True)
    assert [w["rep_id"] for w in settled["winners"]] == ["bob"]
    assert sorted(found.ids()) == sorted(
        [*(await _ids(db, "contest_won")), "ntf_1"]
    )  # the pending one, and Bob's win: each once
    assert await scalar(db, "SELECT subject_id FROM notifications WHERE kind = 'contest_won'") == (
        "bob"
    )


async def _all_delivered(db: AsyncEngine, count: int) -> bool:
    query = "SELECT count(*) FROM notification_deliveries WHERE status = 'delivered'"
    return bool(await scalar(db, query) == count)


async def _ids(db: AsyncEngine, kind: str) -> list[str]:
    async with db.connect() as conn:
        query = text("SELECT id FROM notifications WHERE kind = :kind")
        return list((await conn.execute(query, {"kind": kind})).scalars())


async def test_readiness_names_each_job_and_a_job_failing_on_a_healthy_database(
    db: AsyncEngine, settings: Settings
) -> None:
    """A contest whose stored score no longer reads fails every settlement, the database up:
    the settlement job is not ready (and /readyz answers 503) until the cause is gone."""
    worker = build_worker(settings, db, settle_every_s=0.05)
    status, body = await readyz(worker)
    assert status == 200  # starting: every job within its first interval
    assert set(body["checks"]) == {"database", "dispatcher", "settlement", "pace_checks",
                                   "retention"}  # fmt: skip
    async with db.begin() as conn:
        await conn.execute(text(
            "INSERT INTO contests (id, name, starts_at, ends_at, participants, score, "
            "minutes_from) VALUES ('broken', 'Broken', 0, 60, 'reps', 'not json', 0)"
        ))  # fmt: skip
    async with running(worker):
        await eventually(lambda: _checks_are(worker, settlement=False), 10)
        status, body = await readyz(worker)
        assert status == 503
        assert body["checks"] == {"database": True, "dispatcher": True, "settlement": False,
                                  "pace_checks": True, "retention": True}  # fmt: skip
        async with db.begin() as conn:
            await conn.execute(text("DELETE FROM contests WHERE id = 'broken'"))
        await eventually(lambda: _checks_are(worker, settlement=True), 10)
        assert (await readyz(worker))[0] == 200


async def _checks_are(worker: Worker, **expected: bool) -> bool:
    _, body = await readyz(worker)
    return all(body["checks"][name] is value for name, value in expected.items())


async def test_a_worker_whose_database_is_unreachable_is_not_ready(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    unreachable = f"sqlite:///{tmp_path / 'no-such-dir' / 'x.db'}"
    async with build_worker(make_settings(database_url=unreachable)) as worker:
        status, body = await readyz(worker)
    assert status == 503
    assert body["checks"]["database"] is False


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    found = Receiver()
    async with served(found.app()) as url:
        yield found, url
        found.released.set()


@pytest.mark.parametrize("kafka", [None, "127.0.0.1:9"])
async def test_retention_prunes_the_log_of_serve_and_leaves_it_alone_in_the_kafka_shape(
    kafka: str | None, make_settings: Callable[..., Settings], db: AsyncEngine
) -> None:
    """Activity the KPI service read, older than LOG_RETENTION_HOURS, goes; what it has not
    read stays, however old. With Kafka configured the log is not the bus: left alone."""
    settings = make_settings(kafka_bootstrap_servers=kafka, log_retention_hours=1)
    old = int((datetime.now(UTC) - timedelta(hours=2)).timestamp() * 1000)
    async with db.begin() as conn:
        for offset in range(10):
            await conn.execute(
                text(
                    'INSERT INTO bus_log (topic, partition, "offset", value, timestamp_ms) '
                    "VALUES ('sales.activity.v1', 0, :o, 'x', :t)"
                ),
                {"o": offset, "t": old},
            )
        await conn.execute(
            text(
                "INSERT INTO consumer_offsets (consumer_group, topic, partition, next_offset) "
                "VALUES (:g, 'sales.activity.v1', 0, 6)"
            ),
            {"g": settings.kpi_group},
        )
    async with running(build_worker(settings, db, prune_every_s=0.05)):
        kept = 4 if kafka is None else 10

        async def pruned() -> bool:
            return bool(await scalar(db, "SELECT count(*) FROM bus_log") == kept)

        await eventually(pruned)
        await asyncio.sleep(0.3)  # a few rounds more: nothing more goes
        assert await pruned()
    assert await scalar(db, 'SELECT min("offset") FROM bus_log') == (6 if kafka is None else 0)
