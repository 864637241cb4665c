"""The dispatcher on a real database and a real HTTP receiver on 127.0.0.1 (ALLOW_PRIVATE_CHANNELS
on, as in dev mode), rows inserted as the KPI side inserts them: each notification is delivered
signed, retried with the same id, refused for good on a 4xx, given up after 24 h; two workers
never deliver one twice; a dispatcher dying mid-delivery loses nothing."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pytest
from fastapi import FastAPI, Request, Response
from prometheus_client import REGISTRY
from sqlalchemy import text
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncEngine
from standardwebhooks import Webhook

from services.worker.app import build_worker
from services.worker.dispatcher.backoff import Backoff
from services.worker.dispatcher.dispatcher import Dispatcher
from services.worker.dispatcher.repository import claim_due
from services.worker.service import Worker
from shared.notify.messages import new_secret
from shared.settings import Settings
from tests.api_support import served

SECRET = new_secret()
HOUR_MS = 3_600_000
FAST = Backoff(base_s=0.05, cap_s=0.2)
Answer = tuple[int, dict[str, str]]


@dataclass
class Hit:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A real HTTP server: records every POST; a path answers its script in order (the last
    answer repeats; none: 200). ``hang`` paths hold their first request until released."""

    hits: list[Hit] = field(default_factory=list)
    scripts: dict[str, list[Answer]] = field(default_factory=dict)
    hang: set[str] = field(default_factory=set)
    delay_s: float = 0.0
    released: asyncio.Event = field(default_factory=asyncio.Event)

    def app(self) -> FastAPI:
        app = FastAPI()
        app.add_api_route("/healthz", lambda: {"ok": True}, methods=["GET"])
        app.add_api_route("/{path:path}", self._receive, methods=["POST"])
        return app

    async def _receive(self, request: Request, path: str) -> Response:
        self.hits.append(Hit(path, dict(request.headers), await request.body()))
        if path in self.hang:
            self.hang.discard(path)
            await self.released.wait()
        await asyncio.sleep(self.delay_s)
        script = self.scripts.get(path, [(200, {})])
        status, headers = script.pop(0) if len(script) > 1 else script[0]
        return Response("answer", status_code=status, headers=headers)

    def ids(self, path: str | None = None) -> list[str]:
        return [h.headers["webhook-id"] for h in self.hits if path is None or h.path == path]


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    found = Receiver()
    async with served(found.app()) as url:
        yield found, url
        found.released.set()  # a held request ends before the server stops


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(allow_private_channels=True)


def now_ms() -> int:
    return round(time.time() * 1000)


async def add_channel(db: AsyncEngine, url: str, channel_id: str = "hook") -> None:
    async with db.begin() as conn:
        await conn.execute(
            text("INSERT INTO channels (id, kind, url, secret) VALUES (:id, 'webhook', :url, :s)"),
            {"id": channel_id, "url": url, "s": SECRET},
        )


async def raise_notification(
    db: AsyncEngine, nid: str, channel_id: str = "hook", raised_at: int | None = None
) -> None:
    """What the KPI side writes in its flush: the notification and a pending delivery."""
    raised = raised_at if raised_at is not None else now_ms()
    data = {
        "alert_id": "big-deals",
        "kind": "deal_won",
        "subject": {"scope": "rep", "id": "alice", "name": "Alice"},
        "window": None,
        "metric": "revenue_won",
        "value": 15000,
        "text": "Alice closed 15,000 €",
    }
    async with db.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO notifications (id, alert_id, kind, scope, subject_id, occurrence,"
                " data, raised_at) VALUES (:id, 'big-deals', 'deal_won', 'rep', 'alice', :id,"
                " :data, :raised)"
            ),
            {"id": nid, "data": json.dumps(data), "raised": raised},
        )
        await conn.execute(
            text(
                "INSERT INTO notification_deliveries (notification_id, channel_id, status,"
                " attempts, next_attempt_at) VALUES (:id, :channel, 'pending', 0, :raised)"
            ),
            {"id": nid, "channel": channel_id, "raised": raised},
        )


async def delivery(db: AsyncEngine, nid: str, channel_id: str = "hook") -> RowMapping:
    async with db.connect() as conn:
        query = text(
            "SELECT * FROM notification_deliveries WHERE notification_id = :n AND channel_id = :c"
        )
        return (await conn.execute(query, {"n": nid, "c": channel_id})).mappings().one()


async def eventually(check: Callable[[], Awaitable[bool]], within_s: float = 15.0) -> None:
    deadline = time.monotonic() + within_s
    while not await check():
        assert time.monotonic() < deadline, "not within the time allowed"
        await asyncio.sleep(0.05)


def dispatcher(db: AsyncEngine, settings: Settings, **options: object) -> Dispatcher:
    defaults: dict[str, object] = {"poll_s": 0.05, "backoff": FAST}
    return Dispatcher(db, settings, **{**defaults, **options})  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def running(worker: Dispatcher) -> AsyncIterator[asyncio.Task[None]]:
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        yield task
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 10)


def sample(name: str, kind: str = "webhook") -> float:
    return REGISTRY.get_sample_value(name, {"kind": kind}) or 0.0


def is_delivered(db: AsyncEngine, nid: str) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return bool((await delivery(db, nid))["status"] == "delivered")

    return check


# --- one dispatcher, on SQLite and PostgreSQL -------------------------------------------------


async def test_a_notification_is_delivered_once_signed_the_standard_webhooks_way(
    db: AsyncEngine, settings: Settings, receiver: tuple[Receiver, str]
) -> None:
    found, url = receiver
    await add_channel(db, f"{url}/ok")
    await raise_notification(db, "ntf_1")
    delivered = sample("salespulse_notifications_delivered_total")
    latencies = sample("salespulse_notification_delivery_seconds_count")
    worker = dispatcher(db, settings)
    async with worker.client() as client:
        assert await worker.dispatch_once(client) == 1
        assert await worker.dispatch_once(client) == 0  # delivered: never claimed again
    [hit] = found.hits
    payload = Webhook(SECRET).verify(hit.body, hit.headers)
    assert hit.headers["webhook-id"] == payload["id"] == "ntf_1"
    assert payload["type"] == "salespulse.alert.deal_won"
    assert payload["data"]["text"] == "Alice closed 15,000 €"
    row = await delivery(db, "ntf_1")
    assert (row["status"], row["attempts"], row["last_error"]) == ("delivered", 1, None)
    assert row["delivered_at"] >= row["next_attempt_at"] - 60_000  # within its lease
    assert sample("salespulse_notifications_delivered_total") == delivered + 1
    assert sample("salespulse_notification_delivery_seconds_count") == latencies + 1


async def test_a_server_error_is_retried_with_the_same_id_until_delivered(
    db: AsyncEngine, settings: Settings, receiver: tuple[Receiver, str]
) -> None:
    found, url = receiver
    found.scripts["flaky"] = [(500, {}), (503, {}), (200, {})]
    await add_channel(db, f"{url}/flaky")
    await raise_notification(db, "ntf_2")
    retries = sample("salespulse_notification_retries_total")
    async with running(dispatcher(db, settings)):
        await eventually(is_delivered(db, "ntf_2"))
    assert found.ids() == ["ntf_2"] * 3
    for hit in found.hits:
        Webhook(SECRET).verify(hit.body, hit.headers)
    assert len({hit.body for hit in found.hits}) == 1  # the same bytes, signed anew each time
    row = await delivery(db, "ntf_2")
    assert (row["status"], row["attempts"]) == ("delivered", 3)
    assert (
        row["last_error"] == "http_503 (Service Unavailable)"
    )  # what the attempt before the delivery met
    assert sample("salespulse_notification_retries_total") == retries + 2


async def test_retry_after_is_honoured(
    db: AsyncEngine, settings: Settings, receiver: tuple[Receiver, str]
) -> None:
    found, url = receiver
    found.scripts["busy"] = [(429, {"retry-after": "7"})]
    await add_channel(db, f"{url}/busy")
    await raise_notification(db, "ntf_3")
    worker = dispatcher(db, settings)
    before = now_ms()
    async with worker.client() as client:
        assert await worker.dispatch_once(client) == 1
        assert await worker.dispatch_once(client) == 0  # not due for 7 s
    row = await delivery(db, "ntf_3")
    assert (row["status"], row["attempts"]) == ("pending", 1)
    assert row["next_attempt_at"] >= before + 7000  # FAST's backoff alone would be < 50 ms
    assert row["last_error"] == "http_429 (Too Many Requests)"
    assert len(found.hits) == 1


async def test_a_client_error_fails_at_once_and_is_not_retried(
    db: AsyncEngine, settings: Settings, receiver: tuple[Receiver, str]
) -> None:
    found, url = receiver
    found.scripts["gone"] = [(404, {})]
    await add_channel(db, f"{url}/gone")
    await raise_notification(db, "ntf_4")
    failed = sample("salespulse_notifications_failed_total")
    async with running(dispatcher(db, settings)):
        await eventually(lambda: _status_is(db, "ntf_4", "failed"))
        await asyncio.sleep(0.3)  # several more passes
    row = await delivery(db, "ntf_4")
    assert (row["status"], row["attempts"]) == ("failed", 1)
    assert row["last_error"] == "http_404 (Not Found)"
    assert len(found.hits) == 1
    assert sample("salespulse_notifications_failed_total") == failed + 1


async def test_a_notification_still_failing_24_hours_after_it_was_raised_fails(
    db: AsyncEngine, settings: Settings, receiver: tuple[Receiver, str]
) -> None:
    found, url = receiver
    found.scripts["down"] = [(503, {})]
    await add_channel(db, f"{url}/down")
    await raise_notification(db, "ntf_5", raised_at=now_ms() - 25 * HOUR_MS)
    worker = dispatcher(db, settings)
    async with worker.client() as client:
        assert await worker.dispatch_once(client) == 1
    row = await delivery(db, "ntf_5")
    assert (row["status"], row["attempts"]) == ("failed", 1)
    assert row["last_error"] == "gave up after 24 h: http_503 (Service Unavailable)"
    assert found.ids() == ["ntf_5"]


async def test_a_delivery_to_a_deleted_channel_fails(db: AsyncEngine, settings: Settings) -> None:
    await raise_notification(db, "ntf_6", channel_id="removed")
    worker = dispatcher(db, settings)
    async with worker.client() as client:
        assert await worker.dispatch_once(client) == 1
    row = await delivery(db, "ntf_6", "removed")
    assert (row["status"], row["last_error"]) == ("failed", "channel_deleted")


async def _status_is(db: AsyncEngine, nid: str, status: str) -> bool:
    return bool((await delivery(db, nid))["status"] == status)


# --- several dispatchers and workers, PostgreSQL ------------------------------------------------


async def test_two_workers_never_deliver_one_notification_twice(
    pg: AsyncEngine,
    postgres_url: str,
    make_settings: Callable[..., Settings],
    receiver: tuple[Receiver, str],
) -> None:
    """Two worker instances on one PostgreSQL, each with its own engine (as two processes):
    every notification is delivered once, and both take part."""
    found, url = receiver
    found.delay_s = 0.05  # passes overlap: each claims while the other delivers
    count = 300
    await add_channel(pg, f"{url}/ok")
    for i in range(count):
        await raise_notification(pg, f"ntf_{i:03}")
    settings = make_settings(
        database_url=postgres_url, allow_private_channels=True, dispatch_poll_seconds=0.05
    )
    async with build_worker(settings) as one, build_worker(settings) as two:
        stop = asyncio.Event()
        both = asyncio.gather(one.run(stop), two.run(stop))
        try:
            await eventually(lambda: _delivered(pg, count), 60)
            await asyncio.sleep(0.5)  # anything more would have come by now
        finally:
            stop.set()
            await asyncio.wait_for(both, 10)
    shares = [dispatcher_of(worker).claimed for worker in (one, two)]
    assert sum(shares) == count
    assert all(share > 0 for share in shares), shares  # both took part
    ids = found.ids()
    assert len(ids) == len(set(ids)) == count  # each delivered exactly once
    async with pg.connect() as conn:
        statuses = await conn.execute(
            text("SELECT status, attempts, count(*) FROM notification_deliveries GROUP BY 1, 2")
        )
        assert statuses.all() == [("delivered", 1, count)]


def dispatcher_of(worker: Worker) -> Dispatcher:
    job = worker.jobs["dispatcher"]
    assert isinstance(job, Dispatcher)
    return job


async def _delivered(db: AsyncEngine, count: int) -> bool:
    query = text("SELECT count(*) FROM notification_deliveries WHERE status = 'delivered'")
    async with db.connect() as conn:
        return bool((await conn.execute(query)).scalar_one() == count)


async def test_a_claim_skips_the_rows_another_dispatcher_is_claiming(
    pg: AsyncEngine, settings: Settings, receiver: tuple[Receiver, str]
) -> None:
    found, url = receiver
    await add_channel(pg, f"{url}/ok")
    for i in range(6):
        await raise_notification(pg, f"ntf_{i}", raised_at=now_ms() - 1000 + i)
    async with pg.connect() as conn, conn.begin() as other:  # another dispatcher, mid-claim
        theirs = await claim_due(conn, now_ms(), 60_000, 2)
        assert [c.notification.id for c in theirs] == ["ntf_0", "ntf_1"]
        worker = dispatcher(pg, settings)
        async with worker.client() as client:  # neither waits for their locks nor takes them
            assert await asyncio.wait_for(worker.dispatch_once(client), 5) == 4
        await other.commit()
    assert sorted(found.ids()) == ["ntf_2", "ntf_3", "ntf_4", "ntf_5"]
    async with worker.client() as client:
        assert await worker.dispatch_once(client) == 0  # theirs are leased to them
    row = await delivery(pg, "ntf_0")
    assert (row["status"], row["attempts"]) == ("pending", 1)


async def test_a_dispatcher_dying_mid_delivery_loses_nothing(
    pg: AsyncEngine, settings: Settings, receiver: tuple[Receiver, str]
) -> None:
    found, url = receiver
    found.hang.add("ok")  # the first request is held: the dispatcher dies waiting for it
    await add_channel(pg, f"{url}/ok")
    await raise_notification(pg, "ntf_7")
    first = asyncio.create_task(
        dispatcher(pg, settings, lease_s=1.0, timeout_s=30).run(asyncio.Event())
    )
    await eventually(lambda: _hits(found, 1))
    first.cancel()  # claimed, delivering, nothing recorded: a crash
    with contextlib.suppress(asyncio.CancelledError):
        await first
    row = await delivery(pg, "ntf_7")
    assert (row["status"], row["attempts"]) == ("pending", 1)
    async with running(dispatcher(pg, settings)):
        await eventually(is_delivered(pg, "ntf_7"))
    assert found.ids() == ["ntf_7", "ntf_7"]  # at least once, with the same id
    for hit in found.hits:
        Webhook(SECRET).verify(hit.body, hit.headers)
    assert (await delivery(pg, "ntf_7"))["attempts"] == 2


async def _hits(found: Receiver, count: int) -> bool:
    return len(found.hits) >= count
