"""The alert evaluators (``shared.alerting``), pure: one per trigger kind, each deciding from what
its caller read who crossed, in which occurrence, with which values."""

from __future__ import annotations

import hashlib
from typing import Any, get_args

import pytest
from pydantic import TypeAdapter

from services.kpi.domain.state import Win
from shared.alerting import (
    EVALUATORS,
    ContestWinner,
    Reading,
    Settled,
    Watched,
    decide,
    of_kind,
    watched_window,
)
from shared.alerts import Trigger

TRIGGER: TypeAdapter[Any] = TypeAdapter(Trigger)
TODAY = 1_767_222_000  # a window's start


def alert(**trigger: Any) -> Watched:
    return Watched("a", "A", ("ops",), None, TRIGGER.validate_python(trigger))


def crossed(alert: Watched, reading: Reading) -> list[tuple[str, str, str]]:
    return [(c.scope, c.subject, c.occurrence) for c in decide(alert, reading)]


def test_every_trigger_kind_has_its_evaluator() -> None:
    [union, _] = get_args(Trigger)
    kinds = {get_args(t.model_fields["kind"].annotation)[0] for t in get_args(union)}
    assert set(EVALUATORS) == kinds


def test_a_threshold_fires_for_each_subject_past_it_once_per_window_occurrence() -> None:
    at_least = alert(kind="threshold", metric="calls_total", window="today", value=3)
    at_most = alert(kind="threshold", metric="calls_total", window="today", op="<=", value=3)
    reading = Reading("today", TODAY, {"bob": 2, "alice": 3, "carol": None, "dan": 4})
    assert crossed(at_least, reading) == [("rep", "alice", str(TODAY)), ("rep", "dan", str(TODAY))]
    assert crossed(at_most, reading) == [("rep", "alice", str(TODAY)), ("rep", "bob", str(TODAY))]
    [first] = decide(at_least, Reading("today", TODAY, {"alice": 3}))
    assert first.values == {"metric": "calls_total", "value": 3, "window": "today", "target": None}


def test_a_target_is_reached_only_by_subjects_with_a_target_at_or_under_their_value() -> None:
    reached = alert(kind="target_reached", metric="revenue", period="month", scope="team")
    reading = Reading("this_month", TODAY, {"north": 900.0, "south": 1200.0, "east": 5.0},
                      {"north": 1000.0, "south": 1200.0})  # fmt: skip
    [crossing] = decide(reached, reading)
    assert (crossing.scope, crossing.subject, crossing.occurrence) == ("team", "south", str(TODAY))
    assert crossing.values["target"] == 1200.0
    assert watched_window(reached.trigger) == "this_month"


@pytest.mark.parametrize(
    ("values", "leader"),
    [
        ({"alice": 5, "bob": 3}, "alice"),
        ({"alice": 5, "bob": 5}, None),  # a tie: no sole leader
        ({"alice": 0, "bob": None}, None),  # nobody above 0 yet
        ({}, None),
    ],
)
def test_a_new_leader_is_the_sole_leader_above_zero(
    values: dict[str, float | None], leader: str | None
) -> None:
    leads = alert(kind="new_leader", metric="calls_total", window="today")
    expected = [("rep", leader, f"{TODAY}:{leader}")] if leader else []
    assert crossed(leads, Reading("today", TODAY, values)) == expected


def test_a_deal_won_fires_per_deal_and_win_time_for_a_known_rep_at_the_minimum() -> None:
    big = alert(kind="deal_won", min_amount=1000)
    wins = [Win("D-1", 100, 150_000, "alice"), Win("D-2", 200, 99_999, "bob"),
            Win("D-3", 300, 500_000, None)]  # fmt: skip
    [crossing] = decide(big, Reading(wins=wins))
    digest = hashlib.sha256(b"D-1").hexdigest()[:32]
    assert (crossing.subject, crossing.occurrence) == ("alice", f"deal:{digest}@100")
    assert crossing.values == {"metric": "revenue", "value": 1500.0, "amount": 1500.0,
                               "deal_id": "D-1"}  # fmt: skip
    assert len(decide(alert(kind="deal_won"), Reading(wins=wins))) == 2


def test_behind_pace_fires_once_a_day_for_subjects_with_a_target_under_the_pace() -> None:
    slow = alert(kind="behind_pace", metric="calls_total", period="day", below=0.5)
    reading = Reading("today", TODAY, {"alice": 10, "bob": 4, "zoe": 0},
                      {"alice": 20.0, "bob": 20.0, "carol": 20.0}, share=0.5,
                      day="2026-01-01")  # fmt: skip
    assert crossed(slow, reading) == [("rep", "bob", "2026-01-01"), ("rep", "carol", "2026-01-01")]
    carol = decide(slow, reading)[1]
    assert carol.values == {"metric": "calls_total", "value": 0, "window": "today",
                            "target": 20.0, "pace": 0.0, "expected": 10.0}  # fmt: skip
    before = Reading("today", TODAY, {}, {"carol": 20.0}, share=None, day="2026-01-01")
    assert decide(slow, before) == []  # the window has not begun: no pace


def test_a_contest_won_names_each_winner_of_the_contest_it_watches() -> None:
    settled = Settled("blitz", "Blitz", "rep", "points",
                      (ContestWinner("alice", 12), ContestWinner("bob", 12)))  # fmt: skip
    reading = Reading(settled=settled)
    for watching in (alert(kind="contest_won", contest_id="blitz"), alert(kind="contest_won")):
        assert crossed(watching, reading) == [
            ("rep", "alice", "contest:blitz"), ("rep", "bob", "contest:blitz")
        ]  # fmt: skip
    assert decide(alert(kind="contest_won", contest_id="other"), reading) == []
    [first, _] = decide(alert(kind="contest_won"), reading)
    assert first.values == {"contest": "Blitz", "contest_id": "blitz", "value": 12,
                            "metric": "points"}  # fmt: skip


def test_alerts_are_picked_by_kind_in_their_order() -> None:
    alerts = [alert(kind="deal_won"), alert(kind="contest_won"), alert(kind="deal_won")]
    assert of_kind(alerts, "deal_won") == [alerts[0], alerts[2]]
