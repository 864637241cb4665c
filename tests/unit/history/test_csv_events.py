"""CSV rows as spreadsheets write them become the canonical events a JSON line would be."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from services.history import csv_events
from shared import events as ev

PARIS = ZoneInfo("Europe/Paris")
HEADER = ["Type", "time", "actor_provider", "actor_id", "email", "id", "call_id", "outcome",
          "talk_seconds", "deal_id", "status", "amount", "currency", "lead_source"]  # fmt: skip


def row(**cells: str) -> dict[str, str]:
    names = csv_events.check_header(HEADER)
    return {name: cells.get(name, "") for name in names}


def test_a_french_excel_deal_reads_its_decimal_comma_and_local_time() -> None:
    body = csv_events.to_body(
        row(type="deal.updated", time="03/05/2026 14:22", actor_provider="crm", actor_id="u-1",
            email="Jo@Example.FR", id="a-1", deal_id="D-9", status="won", amount="1 234,50",
            currency="eur"),
        PARIS, decimal_comma=True,
    )  # fmt: skip
    event = ev.parse_event_object(body)
    assert isinstance(event, ev.DealUpdated)
    assert event.time.isoformat() == "2026-05-03T14:22:00+02:00"
    assert str(event.data.amount) == "1234.50"
    assert event.data.currency == "EUR"
    assert event.actor is not None
    assert event.actor.email == "jo@example.fr"
    assert (event.source, event.id) == ("import:crm", "a-1")


def test_a_call_keeps_only_its_own_columns_and_whole_seconds() -> None:
    body = csv_events.to_body(
        row(type="call.placed", time="2026-05-04T09:00:00Z", actor_provider="aircall",
            actor_id="42", id="c-1", call_id="c-1", outcome="connected", talk_seconds="120,0"),
        PARIS, decimal_comma=True,
    )  # fmt: skip
    assert body["data"] == {
        "call_id": "c-1", "outcome": "connected", "talk_seconds": 120,
        "actor": {"provider": "aircall", "external_id": "42"},
    }  # fmt: skip
    ev.parse_event_object(body)


def test_renamed_columns_fill_the_fields_the_envelope_names_too() -> None:
    body = csv_events.to_body(
        row(type="lead.created", time="2026-05-04", actor_provider="crm", actor_id="u-1",
            id="l-1", lead_source="salon"),
        PARIS, decimal_comma=False,
    )  # fmt: skip
    assert body["data"]["source"] == "salon"
    assert body["time"] == "2026-05-04T00:00:00+02:00"


def test_a_value_the_type_does_not_have_is_left_for_the_validator_to_refuse() -> None:
    body = csv_events.to_body(
        row(type="call.placed", time="2026-05-04", actor_provider="crm", actor_id="u-1",
            id="c-2", call_id="c-2", outcome="connected", amount="12"),
        PARIS, decimal_comma=True,
    )  # fmt: skip
    with pytest.raises(ev.ValidationError, match="amount"):
        ev.parse_event_object(body)


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (["type", "time", "actor_id", "id"], "lacks the column(s) actor_provider"),
        ([*HEADER, "colour"], "unknown column(s) 'colour'"),
        ([*HEADER, "amount"], "named twice"),
    ],
)
def test_a_header_an_import_cannot_read_is_named(header: list[str], message: str) -> None:
    with pytest.raises(csv_events.BadHeader, match=message.replace("(", r"\(").replace(")", r"\)")):
        csv_events.check_header(header)


def test_every_data_field_of_the_catalogue_has_a_column() -> None:
    for kind, fields in csv_events.DATA_FIELDS.items():
        for name in fields:
            column = {"source": "lead_source", "id": "touch_id"}.get(name, name)
            assert column in csv_events.COLUMNS, (kind, name)
