"""The activity record's rows from what the engine booked. Pure: no I/O, no clock.

The engine records every booking with the event that caused it (``Entry``). A batch's entries
are netted per event, subject and instant (a call's report that replaces the previous one books
``-old`` and ``+new``: where both fall on the same instant and subjects, one row holds the
difference), and an applied event that booked nothing still gets a row without counters, so
that the record knows it (it can be corrected, it is listed with its deal). The rows sum, per
subject and bucket, to exactly what the batch added to the buckets.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple

import orjson

from services.kpi.domain.engine import Entry, Fact
from services.kpi.domain.state import Subjects
from shared import events as ev
from shared.catalogue import BASE_COUNTERS
from shared.events import event_key

BIT = {name: 1 << i for i, name in enumerate(BASE_COUNTERS)}
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


def mask(counters: dict[str, int]) -> int:
    """Bit i set when counter i of ``BASE_COUNTERS`` is non-zero."""
    bits = 0
    for name, value in counters.items():
        if value:
            bits |= BIT[name]
    return bits


def rows(
    entries: Iterable[Entry], applied: Iterable[tuple[ev.Event, Subjects]]
) -> list[dict[str, Any]]:
    """The ``activity`` rows of a batch: its entries netted per event, correction, place and
    instant; and an empty row, at its own time and place (``applied``: each fresh event and
    the subjects its actor resolves to), for each applied event that booked nothing."""
    net: dict[tuple[bytes, str | None, int, Placed], dict[str, int]] = {}
    causes: dict[tuple[bytes, str | None], Fact] = {}
    for cause, booked, sign in entries:
        key = event_key(cause.source, cause.id)
        correction = getattr(cause, "correction_id", None)
        causes[key, correction] = cause
        counters = net.setdefault((key, correction, booked.at, placed(booked.subjects)), {})
        for name, amount in booked.counters:
            counters[name] = counters.get(name, 0) + sign * amount
    found: list[dict[str, Any]] = []
    booked_something: set[bytes] = set()
    for (key, correction, at, place), counters in net.items():
        kept = {name: value for name, value in counters.items() if value}
        if kept:
            booked_something.add(key)
            found.append(_row(causes[key, correction], key, at, place, kept, correction))
    for event, subjects in applied:
        key = event_key(event.source, event.id)
        if key not in booked_something:
            found.append(_row(event, key, event.epoch, placed(subjects), {}, None))
            booked_something.add(key)
    return found


def _row(
    event: Fact,
    key: bytes,
    at: int,
    place: Placed,
    counters: dict[str, int],
    correction: str | None,
) -> dict[str, Any]:
    data = event.data
    return {
        "event_key": key,
        "event_id": event.id,
        "source": event.source,
        "type": event.type,
        "time": event.epoch,
        "actor": event.actor.key if event.actor else None,
        "call_id": getattr(data, "call_id", None),
        "deal_id": getattr(data, "deal_id", None),
        "scope": place.scope,
        "subject": place.subject,
        "team_id": place.team_id,
        "at": at,
        "counters": orjson.dumps(counters).decode(),
        "mask": mask(counters),
        "correction": correction,
    }
