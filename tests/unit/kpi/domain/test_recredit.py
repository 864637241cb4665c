"""Re-crediting unassigned activity (``services.kpi.domain.recredit``), pure: a row moves to the
rep and the team of its time, a day to its local month too, and a state's bookings follow."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from services.kpi.domain.engine import Deltas
from services.kpi.domain.recredit import recredit_row, resolver, rewrite_state
from services.kpi.domain.roster import Roster
from shared.catalogue import BASE_COUNTERS

PARIS = ZoneInfo("Europe/Paris")
MOVED = int(datetime(2026, 3, 10, tzinfo=UTC).timestamp())  # alice: south, then north
ROSTER = Roster.build(
    1, [("crm", "u-1", "alice")], [("alice", 0, "south"), ("alice", MOVED, "north")]
)


def counters(**values: int) -> list[int]:
    return [values.get(c, 0) for c in BASE_COUNTERS]


def test_an_unassigned_day_goes_to_the_rep_and_her_team_of_that_day_and_to_their_month() -> None:
    day = int(datetime(2026, 3, 1, 23, tzinfo=UTC).timestamp())  # March 2nd in Paris
    deltas: Deltas = {}
    recredit_row(deltas, "day", day, "crm:u-1", counters(calls_placed=2), resolver(ROSTER), PARIS)
    month = int(datetime(2026, 2, 28, 23, tzinfo=UTC).timestamp())  # March 1st in Paris
    assert deltas == {
        ("rep", "calls_placed", "day", day, "alice"): 2,
        ("rep", "calls_placed", "month", month, "alice"): 2,
        ("team", "calls_placed", "day", day, "south"): 2,
        ("team", "calls_placed", "month", month, "south"): 2,
    }


def test_an_identity_still_unknown_stays_unassigned_and_a_later_row_follows_the_move() -> None:
    deltas: Deltas = {}
    resolve = resolver(ROSTER)
    recredit_row(deltas, "hour", MOVED, "crm:u-1", counters(calls_missed=1), resolve, PARIS)
    recredit_row(deltas, "hour", MOVED, "crm:u-9", counters(calls_missed=1), resolve, PARIS)
    assert deltas == {
        ("rep", "calls_missed", "hour", MOVED, "alice"): 1,
        ("team", "calls_missed", "hour", MOVED, "north"): 1,
        ("unassigned", "calls_missed", "hour", MOVED, "crm:u-9"): 1,
    }


def test_a_state_that_booked_to_the_identity_is_rewritten_to_whom_it_resolves() -> None:
    state = {"booked": [[MOVED - 60, [["unassigned", "crm:u-1"]], [["calls_placed", 1]]]]}
    assert rewrite_state(state, {"crm:u-1"}, resolver(ROSTER))
    assert state["booked"][0][1] == [["rep", "alice"], ["team", "south"]]
    assert not rewrite_state(state, {"crm:u-1"}, resolver(ROSTER))  # nothing left to move
