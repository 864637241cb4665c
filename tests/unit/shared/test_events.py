from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from shared import events as ev
from tests.conftest import canonical


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth):
        value = {"x": value}
    return value


@pytest.mark.parametrize(
    ("type_", "data"),
    [
        ("call.placed", {"call_id": "c", "outcome": "no_answer"}),
        ("call.received", {"call_id": "c", "talk_seconds": 12, "wait_seconds": 3}),
        ("call.missed", {"call_id": "c", "reason": "out_of_hours"}),
        ("lead.created", {"lead_id": "L", "source": "web"}),
        ("meeting.booked", {"meeting_id": "M", "deal_id": "D"}),
        ("meeting.held", {"meeting_id": "M"}),
        ("email.sent", {"id": "E"}),
        ("conversation.logged", {"id": "C"}),
        ("proposal.sent", {"proposal_id": "P", "deal_id": "D", "amount": "10.5"}),
        ("proposal.accepted", {"proposal_id": "P", "deal_id": "D"}),
        ("deal.updated", {"deal_id": "D", "stage": "negotiation"}),
        ("customer.churned", {"account_id": "A"}),
        ("survey.answered", {"account_id": "A", "nps": 9}),
        ("complaint.logged", {"account_id": "A"}),
    ],
)
def test_every_catalogue_type_parses_to_its_typed_data(type_: str, data: dict[str, Any]) -> None:
    event = ev.parse_events(canonical(type_, **data))[0]
    assert event.type == type_
    assert event.actor == ev.Actor(provider="crm", external_id="u-1")
    assert set(ev.EVENT_TYPES) >= {type_}


def test_json_round_trip_is_lossless() -> None:
    event = ev.parse_events(canonical("deal.updated", amount="12500.00", currency="EUR"))[0]
    again = ev.parse_event(event.to_json())
    assert again == event
    assert b'"amount":"12500.00"' in event.to_json()


def test_validation_error_names_the_field_and_the_allowed_values() -> None:
    with pytest.raises(ValidationError) as caught:
        ev.parse_events([canonical("call.placed", outcome="maybe")])
    error = caught.value.errors()[0]
    assert error["loc"] == (0, "call.placed", "data", "outcome")
    assert "connected" in error["msg"]


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda e: e.update(specversion="0.3"), "specversion"),
        (lambda e: e.update(time="2026-11-25T10:00:00"), "time"),  # naive: ambiguous
        (lambda e: e.update(type="call.teleported"), "type"),
        (lambda e: e["data"].update(talk_seconds=-1), "talk_seconds"),
        (lambda e: e["data"].update(surprise=1), "surprise"),
        (lambda e: e.pop("id"), "id"),
    ],
)
def test_envelope_and_data_violations_are_refused(mutate: Any, field: str) -> None:
    body = canonical("call.placed")
    mutate(body)
    with pytest.raises(ValidationError) as caught:
        ev.parse_events(body)
    assert field in str(caught.value)


def test_survey_needs_exactly_one_score() -> None:
    with pytest.raises(ValidationError, match="exactly one"):
        ev.parse_events(canonical("survey.answered", account_id="A", nps=9, csat=4))


def test_partition_key_is_the_actor_identity_or_the_deal_without_actor() -> None:
    with_actor = ev.parse_events(canonical("call.placed", actor="u-9", provider="twilio"))[0]
    assert with_actor.partition_key == "twilio:u-9"
    body = canonical("deal.updated")
    del body["data"]["actor"]
    assert ev.parse_events(body)[0].partition_key == "deal_id:D-1"


def test_cloudevents_extension_attributes_are_kept() -> None:
    body = {**canonical("lead.created"), "traceparent": "00-abc-def-01"}
    assert b"traceparent" in ev.parse_events(body)[0].to_json()


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        # the poison event that once stopped the KPI service: a time it cannot bucket
        (lambda e: e.update(time="9999-12-31T23:30:00Z"), "time"),
        (lambda e: e.update(time="1970-01-01T00:00:00Z"), "time"),
        (lambda e: e["data"].update(started_at="9999-01-01T00:00:00Z"), "started_at"),
        # fields longer than the columns they end up in
        (lambda e: e["data"].update(counterpart="+3" * 2500), "counterpart"),
        (lambda e: e["data"]["actor"].update(external_id="x" * 600), "external_id"),
        (lambda e: e["data"]["actor"].update(provider="p" * 65), "provider"),
        (lambda e: e.update(id="i" * 257), "id"),
        (lambda e: e.update(source="s" * 257), "source"),
    ],
)
def test_times_and_strings_out_of_bounds_are_refused_at_the_door(mutate: Any, field: str) -> None:
    body = canonical("call.placed")
    mutate(body)
    with pytest.raises(ValidationError) as caught:
        ev.parse_events(body)
    assert field in str(caught.value)


def test_a_time_within_a_day_ahead_is_accepted_as_clock_drift() -> None:
    ahead = datetime.now(UTC) + timedelta(hours=23)
    assert ev.parse_events(canonical("call.placed", time=ahead))[0].time == ahead


@pytest.mark.parametrize(
    ("type_", "field", "value"),
    [
        ("call.missed", "queue", "q" * 5000),
        ("deal.updated", "account_id", "a" * 3000),
        ("deal.updated", "stage", "s" * 300),
        ("lead.created", "source", "w" * 300),
    ],
)
def test_long_data_fields_are_refused(type_: str, field: str, value: str) -> None:
    body = canonical(type_)
    body["data"][field] = value
    with pytest.raises(ValidationError) as caught:
        ev.parse_events(body)
    assert field in str(caught.value)


@pytest.mark.parametrize(
    "extension",
    [
        {"deep": _nested(256)},
        {"list": [1, 2, 3]},
        {"Upper": "x"},
        {"long": "v" * 257},
        {f"e{i}": "v" for i in range(17)},
    ],
)
def test_extension_attributes_are_few_short_scalars(extension: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="extension attribute"):
        ev.parse_events({**canonical("lead.created"), **extension})


@pytest.mark.parametrize(
    ("mutate", "loc"),
    [
        (
            lambda e: e["data"]["actor"].update(external_id="u\x00-1"),
            ("data", "actor", "external_id"),
        ),
        (lambda e: e["data"]["actor"].update(provider="crm\x1b"), ("data", "actor", "provider")),
        (lambda e: e.update(id="evt\x00"), ("id",)),
        (lambda e: e.update(source="test://\x7f"), ("source",)),
        (lambda e: e["data"].update(stage="won\nlost"), ("data", "stage")),
        (lambda e: e.update(subject="s\x00"), ("subject",)),
    ],
)
def test_control_characters_are_refused_in_every_string(mutate: Any, loc: tuple[str, ...]) -> None:
    """PostgreSQL refuses NUL in text: an event holding one would fail the KPI flush."""
    event = canonical("deal.updated", deal_id="D-1")
    mutate(event)
    with pytest.raises(ValidationError) as caught:
        ev.parse_events(event)
    [error] = caught.value.errors()
    assert error["loc"] == ("deal.updated", *loc)
    assert "control characters" in error["msg"]


def test_control_characters_are_refused_in_extension_attributes() -> None:
    event = {**canonical("call.placed"), "traceparent": "00-\x00"}
    with pytest.raises(ValidationError, match="control characters"):
        ev.parse_events(event)
