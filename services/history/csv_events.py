"""Canonical events from CSV rows, as a spreadsheet writes them. Pure.

The header names the columns, in any order. Every row is one event:

- ``type``, ``time``, ``id`` (the event's id, unique within its source), ``actor_provider`` and
  ``actor_id`` (who did it, as the source names them), and optionally ``email`` (the actor's),
  ``source`` (default ``import:<actor_provider>``) and ``subject``;
- then the event's data, one column per field of the canonical event (``call_id``, ``outcome``,
  ``talk_seconds``, ``deal_id``, ``status``, ``amount``, ``currency``...): ``DATA_COLUMNS``.
  Two are renamed, their names being taken by the envelope: a lead's ``source`` is
  ``lead_source``, an email's or a conversation's ``id`` is ``touch_id``.

An empty cell is a field left out, so one file may hold calls and deals side by side. A cell
that holds a value its event type does not have makes the row bad (the validator names it).
Numbers are read as spreadsheets write them (``1 234,5`` in a ``;`` file); times in ISO 8601
(``2026-05-03T14:22:05+02:00``), or as French Excel writes them (``03/05/2026 14:22``), a time
without an offset being local time in the deployment's time zone.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, get_args
from zoneinfo import ZoneInfo

from shared import events as ev
from shared import spreadsheet

REQUIRED = ("type", "time", "actor_provider", "actor_id", "id")
ENVELOPE = (*REQUIRED, "email", "source", "subject")
RENAMED = {"lead_source": "source", "touch_id": "id"}  # column -> data field
_FIELD_COLUMN = {field: column for column, field in RENAMED.items()}
INTEGERS = frozenset({"talk_seconds", "wait_seconds", "nps", "csat"})
DECIMALS = frozenset({"amount", "margin", "discount"})
TIMES = frozenset({"time", "started_at", "created_at"})
_LOCAL_FORMATS = ("%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M", "%d/%m/%Y")


def _data_fields() -> dict[str, tuple[str, ...]]:
    """Event type -> the fields of its data but the actor, read off the canonical models."""
    fields = {}
    for model in get_args(get_args(ev.Event)[0]):
        kind = get_args(model.model_fields["type"].annotation)[0]
        data = model.model_fields["data"].annotation
        fields[kind] = tuple(name for name in data.model_fields if name != "actor")
    return fields


DATA_FIELDS = _data_fields()
DATA_COLUMNS: tuple[str, ...] = tuple(
    sorted({_FIELD_COLUMN.get(f, f) for names in DATA_FIELDS.values() for f in names})
)
COLUMNS = frozenset(ENVELOPE) | frozenset(DATA_COLUMNS)


class BadHeader(ValueError):
    """The header row is not one this import reads (a column missing, or unknown)."""


def check_header(header: list[str]) -> list[str]:
    """The header's column names, trimmed and lower-cased; ``BadHeader`` naming what is wrong."""
    names = [name.strip().lower() for name in header]
    if missing := [c for c in REQUIRED if c not in names]:
        raise BadHeader(f"the header lacks the column(s) {', '.join(missing)}")
    if unknown := [n for n in names if n not in COLUMNS]:
        raise BadHeader(f"unknown column(s) {', '.join(repr(n) for n in unknown[:5])}")
    if len(set(names)) != len(names):
        raise BadHeader("a column is named twice in the header")
    return names


def to_body(row: dict[str, str], tz: ZoneInfo, decimal_comma: bool) -> dict[str, Any]:
    """The canonical event body of one row (``check_header``'s names as keys), for the
    validator to judge: nothing here refuses a value."""
    cells = {name: value.strip() for name, value in row.items() if value and value.strip()}
    data: dict[str, Any] = {}
    for column, value in cells.items():
        if column in ENVELOPE:
            continue
        data[RENAMED.get(column, column)] = _value(column, value, tz, decimal_comma)
    provider, external_id = cells.get("actor_provider"), cells.get("actor_id")
    if provider or external_id:
        actor = {"provider": provider or "", "external_id": external_id or ""}
        if email := cells.get("email"):
            actor["email"] = email
        data["actor"] = actor
    body: dict[str, Any] = {
        "specversion": "1.0",
        "id": cells.get("id", ""),
        "source": cells.get("source") or f"import:{provider or 'csv'}",
        "type": cells.get("type", ""),
        "time": _time(cells.get("time", ""), tz),
        "data": data,
    }
    if subject := cells.get("subject"):
        body["subject"] = subject
    return body


def _value(column: str, value: str, tz: ZoneInfo, decimal_comma: bool) -> Any:
    if column in INTEGERS:
        return _integer(spreadsheet.number(value, decimal_comma))
    if column in DECIMALS:
        return spreadsheet.number(value, decimal_comma)
    if column in TIMES:
        return _time(value, tz)
    if column == "currency":
        return value.upper()
    return value


def _integer(text: str) -> int | str:
    """``60``, ``60,0`` and ``60.0`` are 60; anything else is left for the validator to refuse."""
    try:
        number = Decimal(text)
    except InvalidOperation:
        return text
    return int(number) if number == number.to_integral_value() else text


def _time(text: str, tz: ZoneInfo) -> str:
    """An ISO 8601 time; a time without an offset is local (``tz``). Left as written (for the
    validator to refuse) when it is no time."""
    moment: datetime | None = None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        for pattern in _LOCAL_FORMATS:
            try:
                moment = datetime.strptime(text, pattern)
                break
            except ValueError:
                continue
    if moment is None:
        return text
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    return moment.isoformat()
