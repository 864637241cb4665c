from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from services.kpi.domain.engine import BucketKey, Engine, UnusableEvent, new_state
from services.kpi.domain.roster import Roster
from services.kpi.domain.state import Win
from shared import events as ev
from tests.conftest import canonical

PARIS = ZoneInfo("Europe/Paris")
MOVE = int(datetime(2026, 11, 20, tzinfo=UTC).timestamp())
ROSTER = Roster.build(
    1,
    identities=[("crm", "u-1", "alice"), ("twilio", "client:alice", "alice")],
    memberships=[("alice", 0, "north"), ("alice", MOVE, "south")],
)


def event(type_: str, when: datetime, **kw: Any) -> ev.Event:
    return ev.parse_events(canonical(type_, time=when, **kw))[0]


def book(engine: Engine, *events: ev.Event) -> dict[BucketKey, int]:
    return dict(engine.book([(e, engine.contributions(e)) for e in events], {}, ROSTER))


def test_call_contributions() -> None:
    engine = Engine(PARIS, "EUR")
    placed = event("call.placed", datetime.now(UTC), outcome="connected", talk_seconds=42)
    assert engine.contributions(placed) == {
        "calls_placed": 1,
        "calls_connected": 1,
        "talk_seconds": 42,
    }
    missed = event("call.missed", datetime.now(UTC))
    assert engine.contributions(missed) == {"calls_missed": 1}


def test_activity_is_credited_to_rep_and_the_team_of_the_events_time() -> None:
    engine = Engine(PARIS, "EUR")
    before = datetime(2026, 11, 19, 10, 0, 5, tzinfo=UTC)
    after = datetime(2026, 11, 21, 10, 0, 5, tzinfo=UTC)
    deltas = book(
        engine,
        event("call.received", before, talk_seconds=10),
        event("call.received", after, talk_seconds=20),
    )
    day_before = int(datetime(2026, 11, 18, 23, tzinfo=UTC).timestamp())  # Paris midnight
    assert deltas[BucketKey("team", "calls_received", "day", day_before, "north")] == 1
    assert ("team", "south") not in {
        (k.scope, k.subject_id) for k in deltas if k.bucket_start < MOVE and k.grain != "month"
    }
    assert (
        deltas[BucketKey("rep", "talk_seconds", "minute", int(after.timestamp()) - 5, "alice")]
        == 20
    )
    reps = {k for k in deltas if k.scope == "rep" and k.metric == "calls_received"}
    assert {k.grain for k in reps} == {"minute", "hour", "day", "month"}


def test_unknown_actor_is_kept_as_unassigned_under_its_identity() -> None:
    engine = Engine(PARIS, "EUR")
    deltas = book(
        engine, event("call.placed", datetime.now(UTC), actor="stranger", provider="aircall")
    )
    assert {k.scope for k in deltas} == {"unassigned"}
    assert {k.subject_id for k in deltas} == {"aircall:stranger"}


def test_amount_in_a_currency_without_rate_is_unusable() -> None:
    engine = Engine(PARIS, "EUR")
    with pytest.raises(UnusableEvent, match="no exchange rate from GBP"):
        engine.contributions(event("deal.updated", datetime.now(UTC), currency="GBP"))


def test_survey_scores() -> None:
    engine = Engine(PARIS, "EUR")
    promoter = event("survey.answered", datetime.now(UTC), account_id="A", nps=10)
    assert engine.contributions(promoter) == {"nps_answers": 1, "nps_promoters": 1}
    csat = event("survey.answered", datetime.now(UTC), account_id="A", csat=4)
    assert engine.contributions(csat) == {"csat_answers": 1, "csat_sum": 4}


def test_roster_resolves_team_history() -> None:
    assert ROSTER.team_at("alice", MOVE - 1) == "north"
    assert ROSTER.team_at("alice", MOVE) == "south"
    assert ROSTER.team_at("nobody", MOVE) is None
    assert ROSTER.owner(ev.Actor(provider="crm", external_id="u-404"), MOVE) is None


def wins_of(engine: Engine, states: dict[Any, Any], *events: ev.Event) -> list[Win]:
    """The wins a batch announces, its states kept in ``states`` from batch to batch."""
    batch = [(e, engine.contributions(e)) for e in events]
    for key in engine.plan(batch, ROSTER):
        states.setdefault(key, new_state(key))
    return engine.apply(batch, states, ROSTER).wins


def hubspot_deal(when: datetime, event_id: str, **data: Any) -> ev.Event:
    """A partial deal update: what ``data`` gives (None: the field left out)."""
    body = canonical("deal.updated", event_id=event_id, time=when, deal_id="D-7")
    given = {"deal_id": "D-7", **data}
    body["data"] = {k: v for k, v in given.items() if v is not None}
    return ev.parse_events(body)[0]


@pytest.mark.parametrize("hold", [True, False])
def test_a_thin_win_is_announced_once_completed_while_hubspot_enrichment_is_on(
    hold: bool,
) -> None:
    engine = Engine(PARIS, "EUR", hold_thin_wins=hold)
    states: dict[Any, Any] = {}
    when = datetime(2026, 11, 25, 10, tzinfo=UTC)
    # the stage change alone: no owner, no amount (HubSpot's webhook)
    thin = hubspot_deal(when, "e-1", status="won")
    announced = wins_of(engine, states, thin)
    assert announced == ([] if hold else [Win("D-7", int(when.timestamp()), 0, None)])
    # the enrichment: its owner (Alice's CRM identity) and amount, at the same instant
    owner = {"provider": "crm", "external_id": "u-1"}
    full = hubspot_deal(when, "e-1-enriched", actor=owner, amount="12500.50", currency="EUR")

    completed = wins_of(engine, states, full)
    assert completed == ([Win("D-7", int(when.timestamp()), 1_250_050, "alice")] if hold else [])
    # an amount edited later is an edit, not another win
    assert wins_of(engine, states, hubspot_deal(when, "e-2", amount="13000")) == []
