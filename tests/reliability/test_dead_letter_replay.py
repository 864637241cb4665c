"""Dead letters an operator can act on: counted by reason, and replayed once the cause is fixed
(here: an FX rate that was missing), counting once however often the replay runs."""

from __future__ import annotations

import asyncio
import base64
import subprocess

import orjson
import pytest

from services.deadletters import replayable
from services.kpi.app import build_kpi_service
from shared.bus import OutgoingRecord
from tests.conftest import canonical
from tests.kpi_rig import SALESPULSE, Rig

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


def dead_letters_command(rig: Rig, *args: str, **env: str) -> str:
    done = subprocess.run(
        [str(SALESPULSE), "dead-letters", *args],
        env={**rig.env, **{f"SALESPULSE_{k}": v for k, v in env.items()}},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


async def _run_kpi(rig: Rig) -> None:
    service = build_kpi_service(rig.settings, rig.bus, rig.db)
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    try:
        await rig.wait_caught_up(60)
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)


async def test_a_dead_letter_is_replayed_once_its_cause_is_fixed(rig: Rig) -> None:
    deal = canonical("deal.updated", actor="u-1", deal_id="D-9", amount="100.00", currency="USD")
    await rig.bus.publish(
        rig.settings.activity_topic,
        [OutgoingRecord(b"crm:u-1", orjson.dumps(deal)), OutgoingRecord(b"crm:u-1", b"{")],
    )
    await _run_kpi(rig)  # no USD rate yet: the deal is set aside, with the broken record
    assert ("rep", "rep-1", "revenue_cents") not in await rig.totals()

    listing = dead_letters_command(rig)
    assert "unusable_event" in listing
    assert "invalid_event" in listing
    assert "0 can be booked now" in listing

    fixed = {"FX_RATES": "USD:0.9"}
    assert "published 1" in dead_letters_command(rig, "--replay", **fixed)
    assert "published 1" in dead_letters_command(rig, "--replay", **fixed)  # once more: harmless
    rig.settings = rig.settings.model_copy(update={"fx_rates": "USD:0.9"})
    await _run_kpi(rig)
    assert (await rig.totals())[("rep", "rep-1", "revenue_cents")] == 9000


def test_an_event_the_engine_failed_on_is_not_replayed() -> None:
    body = base64.b64encode(orjson.dumps(canonical("call.placed", actor="u-1"))).decode()
    failed = {"reason": "engine_error: OverflowError: boom", "body_base64": body}
    assert replayable(failed, {}) is None  # it would fail the same way again
    fixed = {"reason": "invalid_event: data.time: out of range", "body_base64": body}
    assert replayable(fixed, {}) is not None  # valid now (the bound was widened, say)
