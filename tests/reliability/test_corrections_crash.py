"""Corrections through SIGKILLs of the KPI process (`salespulse kpi`, real Kafka and
PostgreSQL): killed between the flush and the acknowledgement with corrections in flight, and
again at a random instant while they stream, it leaves the activity record, the corrections and
the aggregates agreeing exactly, and with the same activity corrected at the source."""

from __future__ import annotations

import asyncio
import random
import signal
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import insert, select

from shared.bus import OutgoingRecord
from shared.corrections import CONTENT_TYPE, CorrectionMessage
from shared.db.models import Correction, activity, table
from shared.settings import Settings
from tests.activity_support import assert_the_record_adds_up, exclude, reassign, undo
from tests.kpi_rig import ACTORS, Rig, calls, rep_sums
from tests.reliability.test_outages import _rewind_group, kpi_counter

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.e2e]
_corrections = table(Correction)


def rep_of(actor: str) -> str:
    return f"rep-{ACTORS.index(actor)}"


async def make(rig: Rig, messages: list[CorrectionMessage]) -> None:
    """What the API does: a row per correction (an undo marks its row), then the message."""
    now = int(time.time())
    async with rig.db.begin() as conn:
        for m in messages:
            if m.undo:
                await conn.execute(
                    _corrections.update()
                    .where(_corrections.c.id == m.id)
                    .values(undone_by="test", undone_at=now)
                )
            else:
                row = {
                    "id": m.id,
                    "event_id": m.target.id,
                    "event_key": m.target.key,
                    "action": m.action,
                    "rep_id": m.rep_id,
                    "reason": "test",
                    "made_by": "test",
                    "made_at": now,
                    "bus_key": m.target.partition_key,
                }
                await conn.execute(insert(_corrections).values(row))
    records = [
        OutgoingRecord(
            m.target.partition_key.encode(),
            m.model_dump_json().encode(),
            (("content-type", CONTENT_TYPE.encode()),),
        )
        for m in messages
    ]
    await rig.bus.publish(rig.settings.activity_topic, records)


def at_source(
    bodies: list[dict[str, Any]], in_force: dict[str, CorrectionMessage]
) -> dict[str, dict[str, int]]:
    """Calls placed and talk seconds per rep, each call counted once, with the corrections
    in force applied to the events themselves."""
    sums: dict[str, dict[str, int]] = {}
    for body in {b["id"]: b for b in bodies}.values():
        correction = in_force.get(body["id"])
        if correction is not None and correction.action == "exclude":
            continue
        rep = correction.rep_id if correction else rep_of(body["data"]["actor"]["external_id"])
        assert rep is not None
        mine = sums.setdefault(rep, {"calls_placed": 0, "talk_seconds": 0})
        mine["calls_placed"] += 1
        mine["talk_seconds"] += body["data"]["talk_seconds"]
    return sums


async def per_rep(rig: Rig) -> dict[str, dict[str, int]]:
    sums: dict[str, dict[str, int]] = {}
    for (scope, subject, metric), value in (await rig.totals()).items():
        if scope == "rep" and metric in ("calls_placed", "talk_seconds"):
            sums.setdefault(subject, {"calls_placed": 0, "talk_seconds": 0})[metric] = value
    return {rep: v for rep, v in sums.items() if any(v.values())}


def corrections_of(
    bodies: list[dict[str, Any]], rng: random.Random, count: int
) -> list[CorrectionMessage]:
    made = []
    for body in rng.sample(bodies, count):
        if rng.random() < 0.5:
            made.append(exclude(body))
        else:
            made.append(reassign(body, rng.choice([f"rep-{i}" for i in range(len(ACTORS))])))
    return made


async def test_sigkills_with_corrections_in_flight_leave_record_corrections_and_kpis_agreeing(
    rig: Rig, tmp_path: Path
) -> None:
    rng = random.Random(29)
    first, second, third = calls(300, rng), calls(150, rng), calls(150, rng)
    made = corrections_of(first, rng, 60)
    in_force = {c.target.id: c for c in made}
    log = tmp_path / "kpi.log"
    process = rig.kpi_process(log)
    try:
        await rig.until_serving(process)
        await rig.publish(first)
        await make(rig, made[:30])
        await rig.publish(second)
        await make(rig, made[30:])
        await rig.wait_caught_up()
        # killed once its flushes committed, before Kafka heard of them: the whole stream,
        # corrections included, comes again from the start
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        await _rewind_group(rig)
        process = rig.kpi_process(log)
        await rig.until_serving(process)
        # then undos, new corrections of events corrected already, more activity; and a kill
        # at a random instant while they stream
        undone = rng.sample(made, 15)
        again = corrections_of([b for b in first if b["id"] not in in_force], rng, 20)
        for c in undone:
            del in_force[c.target.id]
        in_force.update({c.target.id: c for c in again})
        await rig.publish(third[:75])
        await make(rig, [undo(c) for c in undone])
        await make(rig, again)
        await rig.publish(third[75:])
        await asyncio.sleep(rng.uniform(0.05, 0.5))
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        process = rig.kpi_process(log)
        await rig.until_serving(process)
        await rig.wait_caught_up()
        assert await kpi_counter(rig, process.pid, "duplicates_skipped") == 0
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(20)

    everything = first + second + third
    assert await per_rep(rig) == at_source(everything, in_force)
    assert rep_sums(await rig.totals()) == {
        "calls_placed": sum(v["calls_placed"] for v in at_source(everything, in_force).values()),
        "talk_seconds": sum(v["talk_seconds"] for v in at_source(everything, in_force).values()),
    }
    await assert_the_record_adds_up(rig.db, Settings().tz)
    async with rig.db.connect() as conn:
        rows = (await conn.execute(select(_corrections))).mappings().all()
    assert len(rows) == len(made) + len(again)
    assert all(r["applied_at"] is not None for r in rows), "a correction was never applied"
    undone_ids = {c.id for c in undone}
    assert {r["id"] for r in rows if r["undo_applied_at"] is not None} == undone_ids
    # event by event, the record nets to what the event books now: nothing once excluded,
    # its call to the rep it was given to
    assert await record_by_event(rig) == expected_by_event(everything, in_force)


def expected_by_event(
    bodies: list[dict[str, Any]], in_force: dict[str, CorrectionMessage]
) -> dict[str, tuple[str, int, int]]:
    expected = {}
    for body in bodies:
        correction = in_force.get(body["id"])
        if correction is not None and correction.action == "exclude":
            continue
        rep = correction.rep_id if correction else rep_of(body["data"]["actor"]["external_id"])
        assert rep is not None
        expected[body["id"]] = (rep, 1, body["data"]["talk_seconds"])
    return expected


async def record_by_event(rig: Rig) -> dict[str, tuple[str, int, int]]:
    """Each event's rep rows of the activity record, netted: (rep, calls, talk seconds)."""
    nets: dict[tuple[str, str], list[int]] = {}
    query = select(activity.c.event_id, activity.c.subject, activity.c.counters).where(
        activity.c.scope == "rep"
    )
    async with rig.db.connect() as conn:
        for event_id, rep, counters in (await conn.execute(query)).all():
            booked = orjson.loads(counters)
            net = nets.setdefault((event_id, rep), [0, 0])
            net[0] += booked.get("calls_placed", 0)
            net[1] += booked.get("talk_seconds", 0)
    found: dict[str, tuple[str, int, int]] = {}
    for (event_id, rep), (placed, talk) in nets.items():
        if placed or talk:
            assert event_id not in found, f"{event_id} is booked to two reps"
            found[event_id] = (rep, placed, talk)
    return found
