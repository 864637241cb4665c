"""Corrections of events that are no state of their own (a lead, a meeting, an email...). Pure.

Such an event books its counters once, at its time, to whom its actor was then. Corrected, it
becomes a state of its own, keyed by the event: what it books is learnt from the activity record
at its first correction (its counters and instant, whoever they went to), and from then on the
corrections in force decide where it goes: nowhere (excluded), to a rep (reassigned), or back
to its own actor (all undone). Events that are states already (calls, deals) keep their
corrections in those states (``calls.py``, ``deals.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from services.kpi.domain.state import Booked, Overrides, booked_from_json, booked_to_json


@dataclass(slots=True)
class CorrectedEvent:
    overrides: Overrides = field(default_factory=dict)
    counters: list[list[Any]] | None = None  # [[name, amount]]: what the event books
    at: int | None = None  # the instant it books them at
    booked: list[Booked] = field(default_factory=list)

    @property
    def learnt(self) -> bool:
        return self.counters is not None

    def learn(self, recorded: list[Booked], at: int) -> None:
        """What the event books, from its rows in the activity record (whoever they went to)."""
        totals: dict[str, int] = {}
        for booking in recorded:
            for name, amount in booking.counters:
                totals[name] = totals.get(name, 0) + amount
        self.counters = [[n, v] for n, v in sorted(totals.items()) if v]
        self.at = recorded[0].at if recorded else at
        self.booked = list(recorded)

    def to_json(self) -> dict[str, Any]:
        return {
            "overrides": self.overrides,
            "counters": self.counters,
            "at": self.at,
            "booked": booked_to_json(self.booked),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CorrectedEvent:
        return cls(
            data.get("overrides", {}),
            data.get("counters"),
            data.get("at"),
            booked_from_json(data.get("booked")),
        )
