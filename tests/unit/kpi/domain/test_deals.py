"""Deals as state: merged per field by event time, booked once, corrected by later facts."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from services.kpi.domain.deals import DealState
from services.kpi.domain.engine import Engine, States
from services.kpi.domain.roster import Roster
from shared import events as ev

PARIS = ZoneInfo("Europe/Paris")
T0 = datetime(2026, 11, 10, 9, 0, tzinfo=UTC)
ROSTER = Roster.build(
    1,
    [("hubspot", "7", "alice"), ("hubspot", "8", "bob")],
    [("alice", 0, "north"), ("bob", 0, "south")],
)


def update(minutes: int, event_id: str | None = None, **data: Any) -> ev.DealUpdated:
    body = {
        "specversion": "1.0",
        "id": event_id or f"u{minutes}",
        "source": "hubspot://1",
        "type": "deal.updated",
        "time": (T0 + timedelta(minutes=minutes)).isoformat(),
        "data": {"deal_id": "D1", **data},
    }
    event = ev.parse_event(orjson.dumps(body))
    assert isinstance(event, ev.DealUpdated)
    return event


def owner(external_id: str) -> dict[str, str]:
    return {"provider": "hubspot", "external_id": external_id}


def totals(updates: list[ev.DealUpdated], batches: int = 1) -> Counter[tuple[str, str, str, int]]:
    """Day-grain sums per (scope, subject, metric, day) after booking the updates in batches."""
    engine = Engine(PARIS, "EUR", {"USD": Decimal("0.5")})
    states: States = {}
    result: Counter[tuple[str, str, str, int]] = Counter()
    size = max(len(updates) // batches, 1)
    for start in range(0, len(updates), size):
        items = [(u, engine.contributions(u)) for u in updates[start : start + size]]
        for key, amount in engine.book(items, states, ROSTER).items():
            if key.grain == "day":
                result[(key.scope, key.subject_id, key.metric, key.bucket_start)] += amount
    return +result  # drop zeros


def day(minutes: int = 0) -> int:
    local = (T0 + timedelta(minutes=minutes)).astimezone(PARIS)
    return int(local.replace(hour=0, minute=0).timestamp())


def test_thin_updates_merge_into_a_win_for_the_latest_owner_with_the_latest_amount() -> None:
    updates = [
        update(0, stage="closedwon", status="won"),
        update(1, amount="1000"),
        update(2, actor=owner("7")),
    ]
    assert totals(updates) == {
        ("rep", "alice", "deals_won", day()): 1,
        ("team", "north", "deals_won", day()): 1,
        ("rep", "alice", "revenue_cents", day()): 100000,
        ("team", "north", "revenue_cents", day()): 100000,
    }


def test_any_arrival_order_and_any_batching_give_the_same_numbers() -> None:
    updates = [
        update(0, actor=owner("7"), amount="500", currency="USD"),
        update(10, status="won"),
        update(20, status="open"),
        update(30, status="won"),
        update(40, amount="800"),
        update(50, actor=owner("8")),
        update(31, status="won"),
    ]
    expected = totals(updates)
    assert expected == {
        ("rep", "bob", "deals_won", day()): 1,
        ("team", "south", "deals_won", day()): 1,
        ("rep", "bob", "revenue_cents", day()): 40000,
        ("team", "south", "revenue_cents", day()): 40000,
    }
    for order in itertools.islice(itertools.permutations(updates), 0, 5040, 97):
        for batches in (1, 3, len(updates)):
            assert totals(list(order), batches) == expected


def test_reopening_removes_the_win_and_winning_again_counts_at_the_new_time() -> None:
    won = [update(0, actor=owner("7"), amount="100"), update(5, status="won")]
    assert totals([*won, update(60 * 24 * 2, status="open")]) == {}
    again = totals([*won, update(60 * 24 * 2, status="open"), update(60 * 24 * 3, status="won")])
    assert again[("rep", "alice", "deals_won", day(60 * 24 * 3))] == 1
    assert again[("rep", "alice", "deals_won", day(5))] == 0


def test_a_repeated_won_does_not_move_the_deal() -> None:
    result = totals([update(0, actor=owner("7"), status="won"), update(60 * 24 * 2, status="won")])
    assert result[("rep", "alice", "deals_won", day())] == 1
    assert sum(v for k, v in result.items() if k[2] == "deals_won" and k[0] == "rep") == 1


def test_lost_then_won_moves_it_from_lost_to_won() -> None:
    result = totals([update(0, actor=owner("7"), status="lost"), update(30, status="won")])
    assert result[("rep", "alice", "deals_won", day())] == 1
    assert ("rep", "alice", "deals_lost", day()) not in result


def test_unknown_owner_is_kept_unassigned_and_the_deal_without_owner_under_its_id() -> None:
    assert totals([update(0, status="lost")]) == {
        ("unassigned", "deal_id:D1", "deals_lost", day()): 1
    }
    assert totals([update(0, status="lost", actor=owner("99"))]) == {
        ("unassigned", "hubspot:99", "deals_lost", day()): 1
    }


def test_state_survives_serialisation() -> None:
    engine = Engine(PARIS, "EUR")
    states: States = {}
    engine.book([(update(0, actor=owner("7"), status="won", amount="10"), {})], states, ROSTER)
    restored = {k: DealState.from_json(v.to_json()) for k, v in states.items()}
    deltas = engine.book([(update(1, amount="20"), {})], restored, ROSTER)
    revenue = {
        k.subject_id: v
        for k, v in deltas.items()
        if k.metric == "revenue_cents" and k.grain == "day"
    }
    assert revenue == {"alice": 1000, "north": 1000}  # the +10.00 correction only
