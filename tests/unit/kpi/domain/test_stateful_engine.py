"""Calls as one fact, callbacks, first wins per account, touches, cycle, margin and discount."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from services.kpi.domain.engine import Engine, States
from services.kpi.domain.roster import Roster
from shared import events as ev
from tests.conftest import canonical

PARIS = ZoneInfo("Europe/Paris")
T0 = datetime(2026, 11, 10, 9, 0, tzinfo=UTC)
ROSTER = Roster.build(
    1,
    [("crm", "a", "alice"), ("crm", "b", "bob"), ("crm", "c", "carol")],
    [("alice", 0, "north"), ("bob", 0, "north"), ("carol", 0, "south")],
)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def event(type_: str, minutes: float, actor: str = "a", **data: Any) -> ev.Event:
    return ev.parse_events(canonical(type_, actor=actor, time=at(minutes), **data))[0]


def totals(*events: ev.Event, scope: str = "rep") -> Counter[tuple[str, str]]:
    """Sums over every day bucket per (subject, metric), for one scope."""
    engine = Engine(PARIS, "EUR")
    states: States = {}
    result: Counter[tuple[str, str]] = Counter()
    for e in events:  # one event per batch: the hardest case for state
        for key, amount in engine.book([(e, engine.contributions(e))], states, ROSTER).items():
            if key.grain == "day" and key.scope == scope:
                result[(key.subject_id, key.metric)] += amount
    return +result


def test_progress_reports_of_one_call_collapse_to_the_latest() -> None:
    ringing = event("call.placed", 0, call_id="X", outcome="no_answer", talk_seconds=0)
    answered = event("call.placed", 1, call_id="X", outcome="connected", talk_seconds=90)
    for order in ((ringing, answered), (answered, ringing)):
        assert totals(*order) == {
            ("alice", "calls_placed"): 1,
            ("alice", "calls_connected"): 1,
            ("alice", "talk_seconds"): 90,
        }


def test_missed_call_called_back_by_the_team_within_the_hour() -> None:
    missed = event("call.missed", 0, "a", counterpart="+33 6 11 22 33 44")
    back = event("call.placed", 30, "b", counterpart="+33611223344")
    for order in ((missed, back), (back, missed)):
        result = totals(*order)
        assert result[("alice", "callbacks_1h")] == 1
        assert result[("alice", "callback_delay_seconds")] == 1800
        assert result[("bob", "callbacks")] == 0  # credited to the missed call, not the caller
    assert totals(missed, back, scope="team")[("north", "callbacks_1h")] == 1


def test_late_callbacks_other_teams_and_earlier_calls_do_not_count() -> None:
    missed = event("call.missed", 0, "a", counterpart="+33611223344")
    late = totals(missed, event("call.placed", 120, "b", counterpart="+33611223344"))
    assert (late[("alice", "callbacks")], late[("alice", "callbacks_1h")]) == (1, 0)
    assert late[("alice", "callback_delay_seconds")] == 7200
    other_team = totals(missed, event("call.placed", 5, "c", counterpart="+33611223344"))
    assert other_team[("alice", "callbacks")] == 0
    before = totals(event("call.placed", -5, "b", counterpart="+33611223344"), missed)
    assert before[("alice", "callbacks")] == 0


def won(minutes: float, deal: str, amount: str, **data: Any) -> ev.Event:
    return event("deal.updated", minutes, deal_id=deal, status="won", amount=amount, **data)


def test_first_win_of_an_account_is_new_business_later_ones_expansion() -> None:
    first, second = won(0, "D1", "100", account_id="ACME"), won(60, "D2", "50", account_id="ACME")
    for order in ((first, second), (second, first)):
        result = totals(*order)
        assert result[("alice", "new_customers")] == 1
        assert result[("alice", "new_business_revenue_cents")] == 10000
        assert result[("alice", "expansion_revenue_cents")] == 5000
    reopened = totals(first, second, event("deal.updated", 90, deal_id="D1", status="open"))
    assert reopened[("alice", "new_business_revenue_cents")] == 5000  # D2 is now the first
    assert reopened[("alice", "expansion_revenue_cents")] == 0


def test_touches_before_the_win_cycle_margin_and_discount() -> None:
    created = event(
        "deal.updated",
        -60 * 24 * 10,
        deal_id="D1",
        status="open",
        created_at=at(-60 * 24 * 10).isoformat(),
    )
    touches = [
        event("meeting.held", -60, deal_id="D1", meeting_id="m1"),
        event("email.sent", -30, deal_id="D1", id="e1"),
        event("email.sent", 30, deal_id="D1", id="e2"),
    ]  # after the win
    win = won(0, "D1", "1000", margin="250", discount="0.1")
    result = totals(created, *touches, win)
    assert result[("alice", "touches_on_wins")] == 2
    assert result[("alice", "sales_cycle_seconds")] == 10 * 86400
    assert result[("alice", "cycled_wins")] == 1
    assert result[("alice", "margin_cents")] == 25000
    assert (result[("alice", "discount_bp_sum")], result[("alice", "discounted_wins")]) == (1000, 1)
    assert result[("alice", "emails_sent")] == 2
