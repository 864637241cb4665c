"""The property behind corrections, against an independent computation (issue 22).

Random activity (calls reported several times, missed calls called back, deals won, edited,
reopened, lost and handed to another owner, first wins of accounts, touches, leads and
meetings, an unknown caller), sent with duplicates and out of order, with a rep moving team
and an unknown identity joining a rep on the way; then random corrections (reassign, exclude,
some undone), in batches. It is booked twice through the real KPI flush on SQLite:

- once as it came, then corrected through the bus's messages;
- once with the corrections made at the source: an excluded event never sent, a reassigned
  one sent by its rep, an undone correction never made.

Every bucket (rep, team, unassigned; minute, hour, day, month; every base counter, so every
metric and window) must be equal, and the corrected floor's activity record must add up to its
buckets: a drill-down of any window then sums to its value (the API's tests check it reads the
record with the value's own tiling).
"""

from __future__ import annotations

import asyncio
import random
import shutil
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.api.roster.service import RosterStore
from shared.corrections import CorrectionMessage
from shared.db.engine import create_engine
from shared.db.migrate import migrate
from tests.activity_support import (
    as_rep,
    assert_the_record_adds_up,
    exclude,
    from_the_buckets,
    reassign,
    undo,
)
from tests.conftest import canonical
from tests.integration.test_corrections_flush import TZ, Floor

NOW = datetime.now(UTC).replace(second=0, microsecond=0)
REPS = {
    "alice": ("north", "u-1"),
    "bob": ("north", "u-2"),
    "carol": ("south", "u-3"),
    "dan": ("south", "u-4"),
}
ACTORS = ["u-1", "u-2", "u-3", "u-4", "u-9"]  # u-9: nobody's, until it joins Dan
NUMBERS = ["+33600000001", "+33 6 00 00 00 02", "+33600000003"]


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite database with the floor, copied for each floor of each example."""
    path = tmp_path_factory.mktemp("template") / "floor.db"

    async def make() -> None:
        db = create_engine(f"sqlite:///{path}")
        await migrate(db)
        store = RosterStore(db)
        for team in ("north", "south"):
            await store.put_team(team, team.title())
        for rep, (team, ident) in REPS.items():
            await store.put_rep(rep, rep.title(), team, [("crm", ident)], 0)
        await db.dispose()

    asyncio.run(make())
    return path


class Story:
    """One random history: the events in the order they arrive (duplicates included), the
    roster changes at their places, and the corrections after."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.move_at = NOW - timedelta(minutes=rng.randrange(60, 240))  # Carol moves north
        before, after = self._facts()
        stream = [*before, ("roster", "move"), *after]
        stream = self._with_duplicates(stream)
        joins = rng.randrange(len(stream) + 1)
        self.stream: list[Any] = [*stream[:joins], ("roster", "join"), *stream[joins:]]
        self.corrections = self._corrections()

    def _id(self, prefix: str) -> str:
        """Ids from the story's own randomness: an example is the same each time it runs."""
        return f"{prefix}{self.rng.getrandbits(48):012x}"

    def _time(self, after_move: bool) -> datetime:
        if after_move:
            return self.move_at + timedelta(minutes=self.rng.randrange(0, 50))
        return self.move_at - timedelta(minutes=self.rng.randrange(1, 600))

    def _facts(self) -> tuple[list[Any], list[Any]]:
        """Events before Carol's move (and out of order), and events timed after it, sent
        after it (a move counts from its date: what came before was booked to her old team)."""
        groups: tuple[list[Any], list[Any]] = ([], [])
        rng = self.rng
        for _ in range(rng.randrange(8, 22)):
            late = rng.random() < 0.3
            for body in self._fact(late):
                groups[late].append(("event", body))
        for group in groups:
            rng.shuffle(group)
        return groups

    def _fact(self, late: bool) -> list[dict[str, Any]]:
        rng, actor = self.rng, self.rng.choice(ACTORS)
        kind = rng.choice(["call", "call", "missed", "deal", "deal", "lead", "meeting"])
        t = self._time(late)
        if kind == "call":
            call_id = self._id("C")
            reports = []
            for n in range(rng.randrange(1, 4)):
                reports.append(
                    canonical(
                        event_id=self._id("e"),
                        type_="call.placed",
                        actor=actor,
                        time=t + timedelta(seconds=30 * n),
                        call_id=call_id,
                        outcome=rng.choice(["connected", "no_answer"]),
                        talk_seconds=rng.randrange(0, 300),
                        counterpart=rng.choice(NUMBERS),
                    )
                )
            return reports
        if kind == "missed":
            return [
                canonical(
                    event_id=self._id("e"),
                    type_="call.missed",
                    actor=actor,
                    time=t,
                    call_id=self._id("M"),
                    counterpart=rng.choice(NUMBERS),
                )
            ]
        if kind == "lead":
            return [
                canonical(
                    event_id=self._id("e"),
                    type_="lead.created",
                    actor=actor,
                    time=t,
                    lead_id=self._id("L"),
                )
            ]
        deal_id = self._id("D")
        if kind == "meeting":
            return [
                canonical(
                    event_id=self._id("e"),
                    type_="meeting.held",
                    actor=actor,
                    time=t,
                    meeting_id="M",
                    deal_id=rng.choice([deal_id, "Dshared"]),
                )
            ]
        updates = [
            canonical(
                event_id=self._id("e"),
                type_="deal.updated",
                actor=actor,
                time=t,
                deal_id=deal_id,
                status="won",
                amount=f"{rng.randrange(1, 50) * 100}.00",
                account_id=rng.choice(["acme", "globex", None]) or "acme",
            )
        ]
        for n in range(rng.randrange(0, 4)):
            change = rng.choice(["edit", "reopen", "lost", "owner", "won"])
            when = t + timedelta(minutes=n + 1)
            data: dict[str, Any] = {"deal_id": deal_id}
            if change == "edit":
                data["amount"] = f"{rng.randrange(1, 50) * 100}.00"
            elif change == "owner":
                data["status"] = "won"
                updates.append(
                    canonical(
                        event_id=self._id("e"),
                        type_="deal.updated",
                        actor=rng.choice(ACTORS),
                        time=when,
                        **data,
                    )
                )
                continue
            else:
                data["status"] = {"reopen": "open", "lost": "lost", "won": "won"}[change]
            updates.append(
                canonical(
                    event_id=self._id("e"), type_="deal.updated", actor=actor, time=when, **data
                )
            )
        return updates

    def _with_duplicates(self, stream: list[Any]) -> list[Any]:
        events = [item for item in stream if item[0] == "event"]
        for _ in range(len(events) // 5):
            again = self.rng.choice(events)
            stream.insert(self.rng.randrange(stream.index(again), len(stream) + 1), again)
        return stream

    def _corrections(self) -> list[CorrectionMessage]:
        unique = list({b["id"]: b for kind, b in self.stream if kind == "event"}.values())
        made: list[CorrectionMessage] = []
        for body in self.rng.sample(unique, k=min(len(unique), self.rng.randrange(1, 9))):
            if self.rng.random() < 0.5:
                made.append(self._named(reassign(body, self.rng.choice(list(REPS)))))
            else:
                made.append(self._named(exclude(body)))
            if self.rng.random() < 0.2:  # corrected twice: the second decides
                made.append(self._named(reassign(body, self.rng.choice(list(REPS)))))
        for correction in self.rng.sample(made, k=len(made) // 4):
            made.append(undo(correction))
        return made

    def _named(self, correction: CorrectionMessage) -> CorrectionMessage:
        return correction.model_copy(update={"id": self._id("c")})

    def at_source(self) -> list[Any]:
        """The stream with the corrections made at the source."""
        in_force: dict[str, list[CorrectionMessage]] = {}
        for c in self.corrections:
            active = [a for a in in_force.get(c.target.id, []) if a.id != c.id]
            in_force[c.target.id] = active if c.undo else [*active, c]
        made: list[Any] = []
        for kind, body in self.stream:
            decided = in_force.get(body["id"]) if kind == "event" else None
            if decided:
                last = decided[-1]
                if last.action == "exclude":
                    continue
                assert last.rep_id is not None
                body = as_rep(body, last.rep_id)
            made.append((kind, body))
        return made


async def play(floor: Floor, stream: list[Any], move_at: datetime, rng: random.Random) -> None:
    """Book the stream in batches of random sizes, the roster changes between them."""
    batch: list[dict[str, Any]] = []
    roster = RosterStore(floor.db)
    for kind, body in [*stream, ("end", None)]:
        if kind == "event":
            batch.append(body)
            if rng.random() < 0.25:
                await floor.book(batch)
                batch = []
            continue
        if batch:
            await floor.book(batch)
            batch = []
        if body == "move":
            move = int(move_at.timestamp())
            await roster.put_rep("carol", "Carol", "north", [("crm", "u-3")], move)
        elif body == "join":
            await roster.put_rep("dan", "Dan", None, [("crm", "u-4"), ("crm", "u-9")], 0)
    await floor.book([])  # a last flush: it takes the last roster change in (its re-credit)


@pytest.fixture
async def floors(template: Path, tmp_path: Path) -> AsyncIterator[Any]:
    made: list[Floor] = []

    async def make() -> Floor:
        path = tmp_path / f"{uuid.uuid4().hex}.db"
        shutil.copy(template, path)
        floor = Floor(create_engine(f"sqlite:///{path}"))
        made.append(floor)
        return floor

    yield make
    for floor in made:
        await floor.db.dispose()


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(seed=st.integers(0, 2**32 - 1))
async def test_corrections_through_the_bus_equal_corrections_at_the_source(
    floors: Any, seed: int
) -> None:
    story = Story(random.Random(seed))
    corrected, at_source = await floors(), await floors()
    await play(corrected, story.stream, story.move_at, random.Random(seed + 1))
    made = story.corrections
    cuts = sorted(random.Random(seed + 2).sample(range(len(made) + 1), k=2))
    for part in (made[: cuts[0]], made[cuts[0] : cuts[1]], made[cuts[1] :]):
        await corrected.book([], part)
    await play(at_source, story.at_source(), story.move_at, random.Random(seed + 1))
    assert await from_the_buckets(corrected.db) == await from_the_buckets(at_source.db)
    await assert_the_record_adds_up(corrected.db, TZ)
