"""End to end, on real Kafka and PostgreSQL with `salespulse ingest`, `kpi`, `api` and `worker`
as separate processes and a local HTTP receiver: exactly one notification per crossing, with
duplicates, reordering, and a SIGKILL of the KPI process between the flush and the delivery
(issue 13, ``architecture.md`` decision 12: the outbox).

The story, in order:

1. a floor (teams, reps), a webhook channel pointing at the receiver (ALLOW_PRIVATE_CHANNELS, as
   in dev mode) and two alerts: ``calls_total >= 3 today`` and ``deal_won``;
2. signed webhooks to ingest: Alice's five calls in scrambled time order, Bob's two calls
   (below the threshold), Carol's won deal and a late, earlier "open" report of it; every one
   posted twice (ingest answers the second as a duplicate) and also published to Kafka
   directly, as a provider's retry reaching another ingest replica would be;
3. the receiver refuses everything while the KPI process lives: as soon as both notifications
   are in the outbox, the KPI process is SIGKILLed, so it dies after the flush that wrote them
   and before any of them was delivered;
4. everything is published to Kafka again (a replay), the KPI process is restarted, one more
   call of Alice's re-crosses the threshold, and the deal is re-reported won;
5. once the KPI group has caught up and every delivery is delivered, and a while after: one
   notification per crossing in the table, none for Bob; each id reached the receiver, the
   first attempt refused and the retry carrying the same id; every signature verifies with
   the official ``standardwebhooks`` library; every id the receiver saw is in the table.

A second test: a won deal whose earlier "won" report arrives after a later one (its win time
moves) gets no second deal_won notification: it is an edit of the same win.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from sqlalchemy import text
from standardwebhooks import Webhook

from shared.bus.kafka import KafkaBus
from shared.db.engine import create_engine
from shared.settings import Settings
from tests.api_support import ADMIN, READ, served
from tests.api_support import floor as put_floor
from tests.conftest import ADMIN_KEY, READ_KEY, WEBHOOK_SECRET, canonical
from tests.e2e.test_processes import SALESPULSE, free_port, post_kwargs, wait_ready
from tests.kpi_rig import Rig

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.postgres]
THRESHOLD = 3


@dataclass
class Hit:
    headers: dict[str, str]
    body: bytes
    status: int


@dataclass
class Receiver:
    """Records every POST. Refuses (503, Retry-After: 1) while ``closed``, and the first
    attempt of every notification id: each id is then delivered by a retry."""

    closed: bool = True
    hits: list[Hit] = field(default_factory=list)

    def app(self) -> FastAPI:
        app = FastAPI()
        app.add_api_route("/healthz", lambda: {"ok": True}, methods=["GET"])
        app.add_api_route("/hook", self._receive, methods=["POST"])
        return app

    async def _receive(self, request: Request) -> Response:
        headers, body = dict(request.headers), await request.body()
        seen = any(h.headers.get("webhook-id") == headers.get("webhook-id") for h in self.hits)
        status = 503 if self.closed or not seen else 204
        self.hits.append(Hit(headers, body, status))
        return Response(status_code=status, headers={"retry-after": "1"} if status >= 500 else {})


@dataclass
class Stack:
    """The four services as processes; the KPI one can be killed and started again."""

    env: dict[str, str]
    logs: Path
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    killed: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self, name: str) -> None:
        with (self.logs / f"{name}.log").open("ab") as log:  # the child keeps its own copy
            self.procs[name] = subprocess.Popen(
                [str(SALESPULSE), name], env=self.env, stdout=log, stderr=subprocess.STDOUT
            )

    def kill(self, name: str) -> None:
        process = self.procs.pop(name)
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        self.killed.append(process)

    def stop(self) -> dict[str, int]:
        for process in self.procs.values():
            process.send_signal(signal.SIGTERM)
        return {name: process.wait(30) for name, process in self.procs.items()}


async def until(check: Callable[[], Awaitable[bool]], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not await check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def today_times(count: int) -> list[datetime]:
    """``count`` distinct instants of today (Europe/Paris, the default zone), recent first, none
    before the day's start: the threshold's window is the day holding now."""
    now = datetime.now(UTC)
    start = datetime.now(Settings().tz).replace(hour=0, minute=0, second=0, microsecond=0)
    return [max(now - timedelta(seconds=5 * (i + 1)), start + timedelta(milliseconds=i + 1))
            for i in range(count)]  # fmt: skip


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    found = Receiver()
    async with served(found.app()) as url:
        yield found, f"{url}/hook"


@dataclass
class Floor:
    """The running services, set up: a floor, the receiver's channel and the two alerts."""

    ingest: str
    api: str
    kpi: str
    rig: Rig  # for its direct publishing to Kafka and its catching-up wait
    stack: Stack
    hook: Receiver
    secret: str  # the channel's, shown once by its PUT
    logs: Path


@pytest.fixture
async def floor(
    kafka_bootstrap: str,
    postgres_url: str,
    topic_prefix: str,
    make_settings: Callable[..., Settings],
    receiver: tuple[Receiver, str],
    tmp_path: Path,
) -> AsyncIterator[Floor]:
    hook, hook_url = receiver
    ports = {"ingest": free_port(), "api": free_port(), "kpi": free_port(), "worker": free_port()}
    env = {
        **os.environ,
        "SALESPULSE_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "SALESPULSE_DATABASE_URL": postgres_url,
        "SALESPULSE_TOPIC_PREFIX": topic_prefix,
        "SALESPULSE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "SALESPULSE_API_KEYS": f"{ADMIN_KEY}:read+admin,{READ_KEY}:read",
        "SALESPULSE_INGEST_PORT": str(ports["ingest"]),
        "SALESPULSE_API_PORT": str(ports["api"]),
        "SALESPULSE_KPI_METRICS_PORT": str(ports["kpi"]),
        "SALESPULSE_WORKER_PORT": str(ports["worker"]),
        "SALESPULSE_ALLOW_PRIVATE_CHANNELS": "1",
        "SALESPULSE_DISPATCH_POLL_SECONDS": "0.2",
    }
    ingest, api, kpi, worker = (
        f"http://127.0.0.1:{ports[n]}" for n in ("ingest", "api", "kpi", "worker")
    )
    migrated = subprocess.run([str(SALESPULSE), "migrate"], env=env, capture_output=True)
    assert migrated.returncode == 0, migrated.stderr.decode()[-2000:]
    settings = make_settings(kafka_bootstrap_servers=kafka_bootstrap, topic_prefix=topic_prefix)
    bus = KafkaBus(kafka_bootstrap, partitions=settings.kafka_partitions)
    db = create_engine(postgres_url)
    stack = Stack(env, tmp_path)
    await bus.start()
    try:
        for name in ("ingest", "kpi", "api", "worker"):
            stack.start(name)
        async with httpx.AsyncClient(timeout=10) as client:
            for url in (ingest, api, kpi, worker):
                await wait_ready(client, url, tmp_path)
        async with httpx.AsyncClient(base_url=api, timeout=10) as client:
            secret = await set_up(client, hook_url)
        rig = Rig(settings, bus, db, env)
        yield Floor(ingest, api, kpi, rig, stack, hook, secret, tmp_path)
    finally:
        codes = stack.stop()
        await bus.stop()
        await db.dispose()
    assert set(codes.values()) == {0}, f"services did not stop cleanly: {codes}; logs: {tmp_path}"


async def test_one_notification_per_crossing_through_duplicates_reordering_and_a_sigkill(
    floor: Floor,
) -> None:
    rig, hook = floor.rig, floor.hook
    async with httpx.AsyncClient(timeout=10) as client:
        # 2. the events: reordered, each posted twice and published once more directly
        alice_times = today_times(5)
        alice = [canonical("call.placed", actor="u-1", time=t) for t in alice_times]
        alice = [alice[i] for i in (2, 0, 4, 1, 3)]  # neither in time order nor reversed
        bob = [canonical("call.placed", actor="u-2", time=t) for t in today_times(2)]
        won_at, opened_at = today_times(2)
        deal = {"deal_id": "D-42", "amount": "15000.00", "currency": "EUR"}
        won = canonical("deal.updated", actor="u-3", time=won_at, **deal, status="won")
        opened = canonical("deal.updated", actor="u-3", time=opened_at, **deal, status="open")
        events = [alice[0], bob[1], alice[1], won, alice[2], bob[0], opened, *alice[3:]]
        for event in events:
            await post(client, floor.ingest, event)
            assert (await post(client, floor.ingest, event))["duplicates"] == 1
        await rig.publish(events)

        # 3. the SIGKILL once the flush that raised both notifications has committed;
        # nothing was delivered before it (the receiver refuses everything until now)
        await until(lambda: count_notifications(rig, 2), 30, "both notifications")
        floor.stack.kill("kpi")
        hook.closed = False
        assert not [h for h in hook.hits if h.status < 300]

        # 4. a replay of everything, a restart, a re-crossing and a re-reported win
        await rig.publish(events)
        floor.stack.start("kpi")
        await wait_ready(client, floor.kpi, floor.logs)
        again = canonical("call.placed", actor="u-1", time=today_times(1)[0])
        rewon = canonical("deal.updated", actor="u-3", time=won_at, **deal, status="won")
        for event in (again, rewon, *events):
            await post(client, floor.ingest, event)  # the events again: duplicates at ingest
        await rig.publish([again, rewon, *events])
        await rig.wait_caught_up(30)
        await until(lambda: all_delivered(rig), 30, "every delivery delivered")
        await asyncio.sleep(2)  # quiet: anything more would have come by now

        board = await client.get(
            f"{floor.api}/v1/leaderboards/calls_total?window=today", headers=READ
        )
        values = {r["rep_id"]: r["value"] for r in board.json()["rows"]}
        assert (values["alice"], values["bob"]) == (6, 2), values  # duplicates counted once

    check(await notification_rows(rig), hook.hits, floor.secret)
    assert [p.returncode for p in floor.stack.killed] == [-signal.SIGKILL]


async def test_a_late_earlier_won_report_of_a_won_deal_notifies_nothing_more(
    floor: Floor,
) -> None:
    """The CRM reports the deal won twice (the win, then an edit that still says won); the
    later report arrives first and is flushed and notified; then the earlier one arrives."""
    rig, hook = floor.rig, floor.hook
    hook.closed = False
    later, earlier = today_times(2)
    deal = {"deal_id": "D-7", "amount": "100.00", "currency": "EUR"}
    async with httpx.AsyncClient(timeout=10) as client:
        await post(client, floor.ingest, canonical("deal.updated", actor="u-3", time=later,
                                                   **deal, status="won"))  # fmt: skip
        await until(lambda: count_notifications(rig, 1), 30, "the win's notification")
        await post(client, floor.ingest, canonical("deal.updated", actor="u-3", time=earlier,
                                                   **deal, status="won"))  # fmt: skip
        await rig.wait_caught_up(30)
        await until(lambda: all_delivered(rig), 30, "every delivery delivered")
        await asyncio.sleep(1)
    notifications = await notification_rows(rig)
    assert [(n["alert_id"], n["subject_id"]) for n in notifications] == [("wins", "carol")], (
        notifications
    )


async def set_up(client: httpx.AsyncClient, hook_url: str) -> str:
    """The floor, the webhook channel (its secret, shown once) and the two alerts, through
    ``client`` (on the API's URL)."""
    await put_floor(client)
    channel = await client.put(
        "/v1/channels/hook", json={"kind": "webhook", "url": hook_url}, headers=ADMIN
    )
    assert channel.status_code == 200, channel.text
    secret = channel.json()["secret"]
    assert secret.startswith("whsec_")
    alerts: dict[str, dict[str, Any]] = {
        "calls": {
            "kind": "threshold", "metric": "calls_total", "window": "today", "value": THRESHOLD
        },
        "wins": {"kind": "deal_won"},
    }  # fmt: skip
    for alert_id, trigger in alerts.items():
        body = {
            "name": alert_id.title(),
            "channels": ["hook"],
            "enabled": True,
            "trigger": trigger,
        }
        put = await client.put(f"/v1/alerts/{alert_id}", json=body, headers=ADMIN)
        assert put.status_code == 200, put.text
    return str(secret)


async def post(client: httpx.AsyncClient, ingest: str, event: dict[str, Any]) -> Any:
    response = await client.post(f"{ingest}/webhooks/events", **post_kwargs(event))
    if response.status_code != 202:
        pytest.fail(f"ingest refused an event: {response.status_code} {response.text}")
    return response.json()


async def notification_rows(rig: Rig) -> list[dict[str, Any]]:
    query = "SELECT id, alert_id, scope, subject_id, occurrence FROM notifications"
    async with rig.db.connect() as conn:
        return [dict(row) for row in (await conn.execute(text(query))).mappings()]


async def count_notifications(rig: Rig, wanted: int) -> bool:
    return len(await notification_rows(rig)) >= wanted


async def all_delivered(rig: Rig) -> bool:
    query = "SELECT status FROM notification_deliveries"
    async with rig.db.connect() as conn:
        statuses = (await conn.execute(text(query))).scalars().all()
    return bool(statuses) and set(statuses) == {"delivered"}


def check(notifications: list[dict[str, Any]], hits: list[Hit], secret: str) -> None:
    # exactly one notification per crossing, and none for Bob's duplicated calls
    crossings = sorted((n["alert_id"], n["scope"], n["subject_id"]) for n in notifications)
    assert crossings == [("calls", "rep", "alice"), ("wins", "rep", "carol")], notifications
    ids = {n["id"] for n in notifications}
    # every delivery is signed, and its signature verifies with the official library
    payloads = [Webhook(secret).verify(hit.body, hit.headers) for hit in hits]
    by_id: dict[str, list[int]] = {}
    by_crossing: dict[tuple[str, str], set[str]] = {}
    for hit, payload in zip(hits, payloads, strict=True):
        assert hit.headers["webhook-id"] == payload["id"]
        by_id.setdefault(payload["id"], []).append(hit.status)
        subject = payload["data"]["subject"]["id"]
        by_crossing.setdefault((payload["data"]["alert_id"], subject), set()).add(payload["id"])
    # the receiver saw every notification and nothing else; one id per crossing
    assert set(by_id) == ids
    assert by_crossing == {
        ("calls", "alice"): {n["id"] for n in notifications if n["alert_id"] == "calls"},
        ("wins", "carol"): {n["id"] for n in notifications if n["alert_id"] == "wins"},
    }
    # each was refused first and delivered by a retry carrying the same id
    for statuses in by_id.values():
        assert statuses[0] == 503
        assert any(s < 300 for s in statuses), statuses
