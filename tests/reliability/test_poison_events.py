"""One bad event never stops the line: poison records on the real topic, a real PostgreSQL.

Each poison kind once stopped the KPI service for good (it raised while bucketing or at flush
time, restarted at the same offset and died again). Now each is dead-lettered alone, with its
reason and origin, and every good event around it is counted.
"""

from __future__ import annotations

import asyncio
import base64
import random
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from services.kpi.app import build_kpi_service
from services.kpi.domain import engine as kpi_engine
from services.kpi.service import KpiService
from shared import buckets
from shared.buckets import Grain
from shared.bus import OutgoingRecord, Record
from tests.conftest import canonical
from tests.kpi_rig import Rig, calls, expected_totals, rep_sums

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


def _poison() -> dict[str, bytes]:
    far = canonical("call.placed", actor="u-1")
    far["time"] = "9999-12-31T23:30:00Z"
    queue = canonical("call.missed", actor="u-1")
    del queue["data"]["actor"]
    queue["data"]["queue"] = "q" * 5000
    counterpart = canonical("call.placed", actor="u-2", counterpart="+33" + "1" * 4997)
    actor = canonical("call.placed", actor="a" * 600)
    account = canonical("deal.updated", actor="u-3", account_id="A" * 3000)
    lead = orjson.dumps(canonical("lead.created", actor="u-4"))
    deep = lead[:-1] + b',"deep":' + b'{"x":' * 256 + b"{}" + b"}" * 256 + b"}"
    bodies = {
        "time": far,
        "queue": queue,
        "counterpart": counterpart,
        "external_id": actor,
        "account_id": account,
    }
    poison = {field: orjson.dumps(body) for field, body in bodies.items()}
    poison["extension"] = deep
    poison["not json"] = b'{"specversion": "1.0", "id": '
    return poison


async def _dead_letters(rig: Rig, at_least: int) -> list[dict[str, Any]]:
    async def none(_: str, __: list[int]) -> dict[int, int]:
        return {}

    consumer = rig.bus.consumer(rig.settings.deadletter_topic, "dlq-reader", none)
    await consumer.start()
    letters: list[Record] = []
    try:
        for _ in range(100 if at_least else 10):
            letters += await consumer.getmany(200, 100)
            if len(letters) >= at_least:
                break
    finally:
        await consumer.stop()
    return [orjson.loads(letter.value) for letter in letters]


async def _run_until_caught_up(service: KpiService, rig: Rig) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    try:
        await rig.wait_caught_up(60)
        assert not task.done(), "the KPI service stopped"
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)


async def test_every_poison_kind_is_dead_lettered_alone_and_the_line_goes_on(rig: Rig) -> None:
    good = calls(60, random.Random(7))
    poison = _poison()
    records = [OutgoingRecord(b"crm:u-1", orjson.dumps(body)) for body in good[:30]]
    records += [OutgoingRecord(b"crm:u-1", raw) for raw in poison.values()]
    records += [OutgoingRecord(b"crm:u-1", orjson.dumps(body)) for body in good[30:]]
    await rig.bus.publish(rig.settings.activity_topic, records)  # one partition: in this order

    await _run_until_caught_up(build_kpi_service(rig.settings, rig.bus, rig.db), rig)

    assert rep_sums(await rig.totals()) == expected_totals(good)
    letters = await _dead_letters(rig, len(poison))
    assert len(letters) == len(poison)
    assert all(letter["provider"] == "kpi" for letter in letters)
    assert len({letter["origin"] for letter in letters}) == len(poison)  # topic/partition/offset
    reasons = " | ".join(letter["reason"] for letter in letters)
    for named in ("time", "queue", "counterpart", "external_id", "account_id", "recursion"):
        assert named in reasons, f"no dead letter names {named!r}: {reasons}"
    assert all(letter["reason"].startswith("invalid_event") for letter in letters)


@pytest.fixture
def bucketing_fails_for(
    monkeypatch: pytest.MonkeyPatch,
) -> Callable[[Callable[[int], bool]], None]:
    """Make the engine raise while bucketing the instants a predicate picks (as it once did
    for year 9999): an engine error that only a flush finds."""
    original = buckets.bucket_starts

    def install(poisoned: Callable[[int], bool]) -> None:
        def bucket_starts(ts: int, tz: Any) -> tuple[tuple[Grain, int], ...]:
            if poisoned(ts):
                raise OverflowError("date value out of range")
            return original(ts, tz)

        monkeypatch.setattr(kpi_engine, "bucket_starts", bucket_starts)

    return install


POISON_AT = datetime(2001, 1, 1, tzinfo=UTC)


async def test_an_event_the_engine_fails_on_is_dead_lettered_and_its_batch_flushes(
    rig: Rig, bucketing_fails_for: Callable[[Callable[[int], bool]], None]
) -> None:
    bucketing_fails_for(lambda ts: ts == int(POISON_AT.timestamp()))
    good = calls(200, random.Random(8))
    bad = canonical("call.placed", actor="u-5", time=POISON_AT)
    await rig.publish([*good[:100], bad, *good[100:]])

    await _run_until_caught_up(build_kpi_service(rig.settings, rig.bus, rig.db), rig)

    assert rep_sums(await rig.totals()) == expected_totals(good)
    [letter] = await _dead_letters(rig, 1)
    assert letter["reason"].startswith("engine_error: OverflowError")
    assert orjson.loads(base64.b64decode(letter["body_base64"]))["id"] == bad["id"]


async def test_a_fault_in_every_event_stops_progress_instead_of_dead_lettering_the_stream(
    rig: Rig, bucketing_fails_for: Callable[[Callable[[int], bool]], None]
) -> None:
    bucketing_fails_for(lambda ts: True)  # a bug, not bad data
    sent = calls(40, random.Random(9))
    await rig.publish(sent)
    service = build_kpi_service(rig.settings, rig.bus, rig.db)
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    try:
        for _ in range(100):
            if not service.consumer.healthy:
                break
            await asyncio.sleep(0.1)
        assert not service.consumer.healthy  # /readyz says not ready
        assert await rig.stored_offsets() == {}  # nothing skipped
        bucketing_fails_for(lambda ts: False)  # the fix is deployed
        await rig.wait_caught_up(60)
    finally:
        stop.set()
        await asyncio.wait_for(task, 40)
    assert rep_sums(await rig.totals()) == expected_totals(sent)
    assert await _dead_letters(rig, 0) == []
