"""Facts that change are state (architecture decision 7): the shared shapes.

A state remembers what it has booked into the buckets (a list of ``Booked``); when a new event
changes what the state should book, the engine subtracts the old list and adds the new one, so
the buckets always hold exactly what the current state implies, whatever the arrival order.
"""

from __future__ import annotations

from typing import Any, NamedTuple

Subjects = tuple[tuple[str, str], ...]  # ((scope, subject id), ...)
Counters = tuple[tuple[str, int], ...]
Version = tuple[float, str]  # (event time, event id): the later wins, ties broken by id
StateKey = tuple[str, str]  # (kind, key): kind is deal | call | callback | account


class Win(NamedTuple):
    """A deal newly won in a batch: its id, when, its revenue, the rep (None: unassigned)."""

    deal_id: str
    at: int
    revenue_cents: int
    rep_id: str | None


class Booked(NamedTuple):
    """Counters booked at one instant to some subjects."""

    at: int
    subjects: Subjects
    counters: Counters

    def to_json(self) -> list[Any]:
        return [self.at, [list(s) for s in self.subjects], [list(c) for c in self.counters]]

    @classmethod
    def from_json(cls, data: list[Any]) -> Booked:
        at, subjects, counters = data
        return cls(
            int(at), tuple((s, i) for s, i in subjects), tuple((c, int(v)) for c, v in counters)
        )


def booked_to_json(booked: list[Booked]) -> list[Any]:
    return [b.to_json() for b in booked]


def booked_from_json(data: list[Any] | None) -> list[Booked]:
    return [Booked.from_json(b) for b in data or []]


# event id -> the corrections in force on it, oldest first: [[correction id, action, rep id]].
# The last one decides: ``exclude``, or ``reassign`` to its rep.
Overrides = dict[str, list[list[Any]]]


def override(
    overrides: Overrides,
    event_id: str,
    correction_id: str,
    action: str,
    rep_id: str | None,
    undo: bool,
) -> None:
    """Put a correction in force on an event, or (``undo``) take it back."""
    active = [a for a in overrides.get(event_id, []) if a[0] != correction_id]
    if not undo:
        active.append([correction_id, action, rep_id])
    if active:
        overrides[event_id] = active
    else:
        overrides.pop(event_id, None)


def in_force(overrides: Overrides, event_id: str) -> tuple[str, str | None] | None:
    """The correction that decides an event now: (action, rep id), or None."""
    active = overrides.get(event_id)
    return (active[-1][1], active[-1][2]) if active else None


REP_PROVIDER = "salespulse-rep"  # the actor of an event reassigned to a rep: that rep, directly


def rep_actor_json(rep_id: str) -> dict[str, str]:
    """The actor (as JSON) that stands for a rep herself: an event reassigned to her is hers,
    as if she had been its actor (``Roster.owner`` knows it)."""
    return {"provider": REP_PROVIDER, "external_id": rep_id}
