"""Calls as one fact, and missed calls called back. Pure: no I/O, no clock.

A call is one fact however many events describe it: of the events sharing a call id, the latest
(by event time, then id) is the call's outcome, and only it is booked.

A missed call is *called back* when the same team places a call to the same number after it.
Per team and number the state keeps the missed calls and the placed calls; each missed call
books, at its own time and to its own subjects, whether it was called back within the hour and
how long the first call back took.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from services.kpi.domain.state import (
    Booked,
    Counters,
    Overrides,
    Subjects,
    Version,
    booked_from_json,
    booked_to_json,
    in_force,
    rep_actor_json,
)

_NOT_DIALLED = re.compile(r"[^\d+]")
CALLBACK_WINDOW_SECONDS = 3600
MAX_REMEMBERED = 500  # per team and number; older entries give way first


def normalise_number(number: str | None) -> str | None:
    """E.164-ish digits only (``+33 6 98-76`` -> ``+33698 76``), so providers' formats meet."""
    if not number:
        return None
    cleaned = _NOT_DIALLED.sub("", number)
    return cleaned or None


MAX_REPORTS = 20  # per call: its latest reports, enough for a correction to fall back on


class Report(NamedTuple):
    """One report of a call, as much as booking it needs: when, which event, its type, its
    actor (JSON), its counters, the number called or calling, and its bus key (whom it is
    kept under when no rep owns it)."""

    time: float
    id: str
    type: str
    actor: dict[str, str] | None
    counters: Counters
    counterpart: str | None
    key: str


@dataclass(slots=True)
class CallState:
    version: list[Any] | None = None  # [time, id] of the event booked for the call
    booked: list[Booked] = field(default_factory=list)
    callback: str | None = None  # the callback state this call is registered in
    reports: list[Report] = field(default_factory=list)  # its latest reports, by time
    overrides: Overrides = field(default_factory=dict)  # corrections of its reports

    def newer(self, version: Version) -> bool:
        return self.version is None or (self.version[0], self.version[1]) < version

    def record(self, report: Report) -> None:
        """Remember a report (once), keeping the latest ``MAX_REPORTS``."""
        if any(r.id == report.id for r in self.reports):
            return
        self.reports.append(report)
        self.reports.sort(key=lambda r: (r.time, r.id))
        del self.reports[:-MAX_REPORTS]

    def outcome(self) -> Report | None:
        """The report that decides the call: the latest not excluded, its actor the rep it was
        reassigned to, if it was."""
        for report in reversed(self.reports):
            decided = in_force(self.overrides, report.id)
            if decided is None:
                return report
            action, rep_id = decided
            if action == "reassign" and rep_id is not None:
                return report._replace(actor=rep_actor_json(rep_id))
        return None

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "booked": booked_to_json(self.booked),
            "callback": self.callback,
            "reports": [
                [r.time, r.id, r.type, r.actor, [list(c) for c in r.counters], r.counterpart, r.key]
                for r in self.reports
            ],
            "overrides": self.overrides,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CallState:
        reports = [
            Report(t, i, k, a, tuple((n, int(v)) for n, v in c), p, b)
            for t, i, k, a, c, p, b in data.get("reports", [])
        ]
        return cls(
            data.get("version"),
            booked_from_json(data.get("booked")),
            data.get("callback"),
            reports,
            data.get("overrides", {}),
        )


@dataclass(slots=True)
class CallbackState:
    # call id -> [time, subjects] of missed calls; call id -> time of placed calls
    missed: dict[str, list[Any]] = field(default_factory=dict)
    placed: dict[str, float] = field(default_factory=dict)
    booked: list[Booked] = field(default_factory=list)

    def forget(self, call_id: str) -> None:
        self.missed.pop(call_id, None)
        self.placed.pop(call_id, None)

    def add_missed(self, call_id: str, time: float, subjects: Subjects) -> None:
        self.missed[call_id] = [time, [list(s) for s in subjects]]
        _trim(self.missed, key=lambda v: v[0])

    def add_placed(self, call_id: str, time: float) -> None:
        self.placed[call_id] = time
        _trim(self.placed, key=lambda v: v)

    def bookings(self) -> list[Booked]:
        placed = sorted(self.placed.values())
        result = []
        for call_id in sorted(self.missed):
            time, subjects = self.missed[call_id]
            index = bisect_right(placed, time)
            if index == len(placed):
                continue
            delay = int(placed[index] - time)
            counters = (
                ("callbacks", 1),
                ("callback_delay_seconds", delay),
                ("callbacks_1h", int(delay <= CALLBACK_WINDOW_SECONDS)),
            )
            result.append(Booked(int(time), tuple((s, i) for s, i in subjects), counters))
        return result

    def to_json(self) -> dict[str, Any]:
        return {"missed": self.missed, "placed": self.placed, "booked": booked_to_json(self.booked)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CallbackState:
        return cls(
            data.get("missed", {}), data.get("placed", {}), booked_from_json(data.get("booked"))
        )


def _trim(entries: dict[str, Any], key: Any) -> None:
    if len(entries) > MAX_REMEMBERED:
        for call_id, _ in sorted(entries.items(), key=lambda kv: key(kv[1]))[
            : len(entries) - MAX_REMEMBERED
        ]:
            del entries[call_id]
