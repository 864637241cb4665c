"""The KPI service on real Kafka and PostgreSQL: replay, SIGKILL at any moment, rebalances."""

from __future__ import annotations

import asyncio
import random
import signal
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from services.api.roster.service import RosterStore
from services.kpi.app import build_kpi_service
from tests.kpi_rig import Rig, calls, expected_totals, rep_sums

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


async def test_replay_rebuilds_the_same_numbers_and_applies_a_roster_fix(rig: Rig) -> None:
    rng = random.Random(1)
    bodies = calls(300, rng) + calls(20, rng, ["stranger"])
    await rig.publish(bodies + bodies[:50])  # with redeliveries
    live = build_kpi_service(rig.settings, rig.bus, rig.db)
    await live.consumer.run(
        asyncio.Event(), until=await rig.bus.end_offsets(rig.settings.activity_topic)
    )
    before = await rig.totals()
    assert rep_sums(before) == expected_totals(bodies[:300])
    assert before[("unassigned", "crm:stranger", "calls_placed")] == 20

    replay = build_kpi_service(rig.settings, rig.bus, rig.db, consumer_group=f"r-{uuid.uuid4()}")
    await replay.replay(asyncio.Event())
    assert await rig.totals() == before  # the same numbers as the live path

    await RosterStore(rig.db).put_rep(
        "rep-0", "Rep 0", "south", [("crm", "u-0"), ("crm", "stranger")], 0
    )
    fixed = build_kpi_service(rig.settings, rig.bus, rig.db, consumer_group=f"r-{uuid.uuid4()}")
    await fixed.replay(asyncio.Event())
    after = await rig.totals()
    assert ("unassigned", "crm:stranger", "calls_placed") not in after
    assert rep_sums(after) == expected_totals(bodies)
    assert after[("rep", "rep-0", "calls_placed")] == (
        before.get(("rep", "rep-0", "calls_placed"), 0) + 20
    )


async def test_sigkill_at_any_moment_loses_and_double_counts_nothing(
    rig: Rig, tmp_path: Path
) -> None:
    rng = random.Random(2)
    sent: list[dict[str, Any]] = []
    process = rig.kpi_process(tmp_path / "kpi.log")
    try:
        for round_ in range(12):
            batch = calls(250, rng)
            batch += rng.sample(sent, min(len(sent), 40))  # providers' retries
            await rig.publish(batch)
            sent += batch
            await asyncio.sleep(rng.uniform(0.05, 0.6))
            if round_ % 3 == 2:  # kill -9 mid-stream, then start again
                process.send_signal(signal.SIGKILL)
                process.wait(10)
                process = rig.kpi_process(tmp_path / "kpi.log")
        await rig.wait_caught_up()
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(20)
    assert rep_sums(await rig.totals()) == expected_totals(sent)


async def test_two_kpi_processes_in_one_group_give_the_totals_of_one_across_rebalances(
    rig: Rig, tmp_path: Path
) -> None:
    rng = random.Random(3)
    sent = calls(1000, rng)
    first = rig.kpi_process(tmp_path / "a.log")
    second: subprocess.Popen[bytes] | None = None
    await rig.until_serving(first)  # a SIGTERM before that would find no handler yet
    try:
        await rig.publish(sent[:400])
        await asyncio.sleep(1.0)
        second = rig.kpi_process(tmp_path / "b.log")  # joins: partitions are rebalanced
        await rig.until_serving(second)
        for start in range(400, 1000, 100):
            await rig.publish(sent[start : start + 100] + rng.sample(sent[:start], 10))
            sent += sent[start - 10 : start]  # what was re-sent (same ids: no new facts)
            await asyncio.sleep(0.3)
            if start == 700:
                first.send_signal(signal.SIGTERM)  # leaves: the other takes everything
        await rig.wait_caught_up()
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(20)
    assert rep_sums(await rig.totals()) == expected_totals(sent)
    assert first.returncode == 0
