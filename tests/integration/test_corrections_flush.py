"""Corrections through the KPI flush, on SQLite and PostgreSQL: each scenario books the same
activity twice, once and then corrected through the bus's messages, and once with the
corrections made at the source (the event sent by the rep it was reassigned to, or not sent at
all). Every bucket must be equal, and the activity record must add up in both."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services.api.roster.service import RosterStore
from services.kpi.domain.engine import Engine
from services.kpi.flush import Booking, KpiStore
from shared import events as ev
from shared.bus import Record
from shared.corrections import CorrectionMessage
from shared.db.engine import create_engine
from shared.db.migrate import migrate
from shared.settings import Settings
from tests.activity_support import (
    as_rep,
    assert_the_record_adds_up,
    exclude,
    from_the_buckets,
    reassign,
    undo,
)
from tests.conftest import canonical, fresh_postgres_database

T0 = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=5)
TZ = Settings().tz


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


class Floor:
    """A database with Alice and Bob (north), Carol (south), and a KPI store to book into."""

    def __init__(self, db: AsyncEngine) -> None:
        self.db = db
        self.engine = Engine(TZ, "EUR")
        self.store = KpiStore(db, self.engine, "g", "t")
        self.offset = 0

    async def roster(self) -> None:
        store = RosterStore(self.db)
        await store.put_team("north", "North")
        await store.put_team("south", "South")
        for rep, team, ident in (
            ("alice", "north", "u-1"),
            ("bob", "north", "u-2"),
            ("carol", "south", "u-3"),
        ):
            await store.put_rep(rep, rep.title(), team, [("crm", ident)], 0)

    async def book(
        self, bodies: list[dict[str, Any]], corrections: list[CorrectionMessage] | None = None
    ) -> None:
        corrections = corrections or []
        events = [ev.parse_event(orjson.dumps(b)) for b in bodies]
        count = len(events) + len(corrections)
        records = [Record("t", 0, self.offset + i, b"k", b"", 0) for i in range(count)]
        self.offset += count
        booked = [(e, self.engine.contributions(e)) for e in events]
        await self.store.flush(Booking(records, booked, list(corrections)))


MakeFloor = Callable[[], Awaitable[Floor]]


@pytest.fixture(params=["sqlite", "postgres"])
async def new_floor(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[MakeFloor]:
    """Floors on fresh databases, as many as the test asks for (one corrected through the
    bus, others corrected at the source)."""
    async with AsyncExitStack() as stack:

        async def make() -> Floor:
            if request.param == "sqlite":
                url = f"sqlite:///{tmp_path / uuid.uuid4().hex}.db"
            else:
                admin = request.getfixturevalue("postgres_admin_url")
                url = await stack.enter_async_context(fresh_postgres_database(admin))
            db = create_engine(url)
            stack.push_async_callback(db.dispose)
            await migrate(db)
            floor = Floor(db)
            await floor.roster()
            return floor

        yield make


async def assert_same(corrected: Floor, at_source: Floor) -> None:
    assert await from_the_buckets(corrected.db) == await from_the_buckets(at_source.db)
    for floor in (corrected, at_source):
        await assert_the_record_adds_up(floor.db, TZ)


async def test_a_lead_reassigned_then_back_and_a_meeting_excluded_from_its_deal(
    new_floor: MakeFloor,
) -> None:
    corrected, at_source, as_sent = await new_floor(), await new_floor(), await new_floor()
    lead = canonical("lead.created", actor="u-1", time=at(1), lead_id="L1")
    meeting = canonical("meeting.held", actor="u-2", time=at(2), meeting_id="M1", deal_id="D1")
    won = canonical(
        "deal.updated", actor="u-1", time=at(10), deal_id="D1", status="won", amount="500.00"
    )
    await corrected.book([lead, meeting, won])
    to_bob = reassign(lead, "bob")
    await corrected.book([], [to_bob, exclude(meeting)])
    await at_source.book([as_rep(lead, "bob"), won])
    await assert_same(corrected, at_source)
    # the reassignment undone: the lead is Alice's again, the meeting still excluded
    await corrected.book([], [undo(to_bob)])
    await as_sent.book([lead, won])
    await assert_same(corrected, as_sent)


async def test_a_call_whose_latest_report_is_excluded_falls_back_to_the_one_before(
    new_floor: MakeFloor,
) -> None:
    corrected, at_source = await new_floor(), await new_floor()
    first = canonical(
        "call.placed",
        actor="u-1",
        time=at(0),
        call_id="C1",
        outcome="no_answer",
        talk_seconds=0,
        counterpart="+33 6 00 00 00 01",
    )
    second = canonical(
        "call.placed",
        actor="u-1",
        time=at(3),
        call_id="C1",
        outcome="connected",
        talk_seconds=120,
        counterpart="+33 6 00 00 00 01",
    )
    missed = canonical(
        "call.missed", actor="u-3", time=at(-30), call_id="C0", counterpart="+33600000001"
    )
    await corrected.book([missed, first])
    await corrected.book([second])
    await corrected.book([], [exclude(second), reassign(first, "carol")])
    # at the source: no second report, the first sent by Carol (who calls her own missed call
    # back: the callback moves to her team)
    await at_source.book([missed, as_rep(first, "carol")])
    await assert_same(corrected, at_source)


async def test_deal_updates_reassigned_and_excluded_refold_the_deal(
    new_floor: MakeFloor,
) -> None:
    corrected, at_source = await new_floor(), await new_floor()
    opened = canonical(
        "deal.updated",
        actor="u-1",
        time=at(0),
        deal_id="D9",
        status="open",
        amount="100.00",
        account_id="acme",
    )
    won = canonical("deal.updated", actor="u-1", time=at(5), deal_id="D9", status="won")
    edit = canonical("deal.updated", actor="u-2", time=at(9), deal_id="D9", amount="900.00")
    await corrected.book([opened, won])
    await corrected.book([edit])
    await corrected.book([], [reassign(edit, "carol"), exclude(won)])
    await at_source.book([opened, as_rep(edit, "carol")])
    await assert_same(corrected, at_source)
