"""The activity record's rows from what the engine booked. Pure: no I/O, no clock.

The engine records every booking with the event that caused it (``Entry``). A batch's entries
are netted per event, subject and instant (a call's report that replaces the previous one books
``-old`` and ``+new``: where both fall on the same instant and subjects, one row holds the
difference), and an applied event that booked nothing still gets a row without counters, so
that the record knows it (it can be corrected, it is listed with its deal). The rows sum, per
subject and bucket, to exactly what the batch added to the buckets.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

import orjson

from services.kpi.domain.engine import Corrected, Entry, Fact
from services.kpi.domain.state import Counters, Subjects
from shared import events as ev
from shared.activity_mask import mask
from shared.events import event_key

COLUMNS = ("event_key", "event_id", "source", "type", "time", "actor", "call_id", "deal_id",
           "scope", "subject", "team_id", "at", "counters", "mask", "correction")  # fmt: skip


class Placed(NamedTuple):
    """Where a row goes: ``scope`` rep or unassigned, its subject, the rep's team then."""

    scope: str
    subject: str
    team_id: str | None


def placed(subjects: Subjects) -> Placed:
    """The row's place from the subjects a booking went to: ((rep, r), (team, t)), ((rep, r),)
    or ((unassigned, actor key),)."""
    found = dict(subjects)
    if "rep" in found:
        return Placed("rep", found["rep"], found.get("team"))
    return Placed("unassigned", found["unassigned"], None)


def subjects_of_row(scope: str, subject: str, team_id: str | None) -> Subjects:
    """The subjects an ``activity`` row's booking went to (``placed``, the other way)."""
    if scope == "rep":
        return (("rep", subject), ("team", team_id)) if team_id else (("rep", subject),)
    return (("unassigned", subject),)


Row = tuple[Any, ...]  # an ``activity`` row, its values in the order of ``COLUMNS``


def rows(
    entries: Iterable[Entry], applied: Iterable[ev.Event], where: Callable[[ev.Event], Subjects]
) -> list[Row]:
    """The ``activity`` rows of a batch: its entries netted per event, correction, place and
    instant; and an empty row, at its own time and place (``where`` its actor resolves to),
    for each event ``applied`` that booked nothing.

    On the hot path (a row per event and subject): each cause's key and each subjects' place
    is worked out once per batch, and rows are built as tuples, as COPY takes them."""
    groups: dict[tuple[bytes, str | None], list[Entry]] = {}
    keys: dict[int, tuple[bytes, str | None]] = {}  # id(cause) -> (its key, its correction)
    for entry in entries:
        cause = entry[0]
        known = keys.get(id(cause))
        if known is None:
            correction = cause.correction_id if isinstance(cause, Corrected) else None
            known = keys[id(cause)] = (event_key(cause.source, cause.id), correction)
        group = groups.get(known)
        if group is None:
            groups[known] = [entry]
        else:
            group.append(entry)
    places: dict[Subjects, Placed] = {}

    def place_of(subjects: Subjects) -> Placed:
        place = places.get(subjects)
        if place is None:
            place = places[subjects] = placed(subjects)
        return place

    found: list[Row] = []
    booked_something: set[bytes] = set()
    for (key, correction), group in groups.items():
        cause = group[0][0]
        if len(group) == 1:  # most events: one booking, nothing to net
            _, booked, sign = group[0]
            cells = {(booked.at, booked.subjects): _signed(booked.counters, sign, {})}
        else:
            cells = {}
            for _, booked, sign in group:
                cell = cells.setdefault((booked.at, booked.subjects), {})
                _signed(booked.counters, sign, cell)
        for (at, subjects), counters in cells.items():
            kept = {name: value for name, value in counters.items() if value}
            if kept:
                booked_something.add(key)
                found.append(_row(cause, key, at, place_of(subjects), kept, correction))
    for event in applied:
        known = keys.get(id(event))
        key = known[0] if known else event_key(event.source, event.id)
        if key not in booked_something:
            found.append(_row(event, key, event.epoch, placed(where(event)), {}, None))
            booked_something.add(key)
    return found


def _signed(counters: Counters, sign: int, into: dict[str, int]) -> dict[str, int]:
    for name, amount in counters:
        into[name] = into.get(name, 0) + sign * amount
    return into


def as_dict(row: Row) -> dict[str, Any]:
    return dict(zip(COLUMNS, row, strict=True))


def _row(
    event: Fact,
    key: bytes,
    at: int,
    place: Placed,
    counters: dict[str, int],
    correction: str | None,
) -> Row:
    data = vars(event.data)  # a model's fields: a getattr of one it lacks costs an exception
    actor = event.actor
    return (
        key,
        event.id,
        event.source,
        event.type,
        event.epoch,
        actor.key if actor else None,
        data.get("call_id"),
        data.get("deal_id"),
        *place,
        at,
        orjson.dumps(counters).decode(),
        mask(counters),
        correction,
    )
