"""Deals are state, not a stream of counts (architecture decision 7). Pure: no I/O, no clock.

Each deal keeps, per field, the latest value by event time (ties broken by event id, so any
arrival order gives the same deal) and the history of its status. From that state follows what
the deal should contribute to the buckets: a win (or loss) in the window of its *last transition*
into won (lost), credited to its latest owner, with its latest amount. The state remembers what
it has booked; a change books the difference (minus the old booking, plus the new one).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from shared import events as ev

Version = tuple[float, str]  # (event time, event id): the later wins
TRACKED = ("actor", "amount", "currency", "stage", "account_id", "margin", "discount", "created_at")


@dataclass(frozen=True, slots=True)
class Booked:
    """What a deal contributes to the buckets: counters, at one instant, to some subjects."""

    at: int
    subjects: tuple[tuple[str, str], ...]  # (scope, subject id)
    counters: tuple[tuple[str, int], ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "at": self.at,
            "subjects": [list(s) for s in self.subjects],
            "counters": [list(c) for c in self.counters],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Booked:
        return cls(
            int(data["at"]),
            tuple((s, i) for s, i in data["subjects"]),
            tuple((c, int(v)) for c, v in data["counters"]),
        )


@dataclass(slots=True)
class DealState:
    # field name -> [value, event time, event id]; value is JSON-ready (str / dict / None)
    fields: dict[str, list[Any]] = field(default_factory=dict)
    # [event time, event id, status] for every status report seen
    statuses: list[list[Any]] = field(default_factory=list)
    booked: Booked | None = None

    def merge(self, event: ev.DealUpdated) -> None:
        version: Version = (event.time.timestamp(), event.id)
        data = event.data.model_dump(mode="json", exclude_none=True)
        for name in TRACKED:
            if name in data:
                current = self.fields.get(name)
                if current is None or (current[1], current[2]) <= version:
                    self.fields[name] = [data[name], *version]
        if event.data.status is not None:
            entry = [*version, event.data.status]
            if entry not in self.statuses:
                self.statuses.append(entry)

    def value(self, name: str) -> Any:
        entry = self.fields.get(name)
        return None if entry is None else entry[0]

    def decided(self) -> tuple[str, float] | None:
        """(won | lost, time of the last transition into it), or None while open."""
        current, since = None, 0.0
        for time, _, status in sorted(self.statuses):
            if status != current:
                current, since = status, time
        return (current, since) if current in ("won", "lost") else None

    def to_json(self) -> dict[str, Any]:
        return {
            "fields": self.fields,
            "statuses": self.statuses,
            "booked": self.booked.to_json() if self.booked else None,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DealState:
        booked = data.get("booked")
        return cls(
            data.get("fields", {}),
            data.get("statuses", []),
            Booked.from_json(booked) if booked else None,
        )


def revenue_cents(state: DealState, rates: dict[str, Decimal], default_currency: str) -> int:
    amount = state.value("amount")
    if amount is None:
        return 0
    rate = rates.get(state.value("currency") or default_currency)
    if rate is None:
        return 0  # ingest dead-letters unknown currencies; a later rate change needs a replay
    return int((Decimal(amount) * rate * 100).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def counters_of(
    state: DealState, kind: str, rates: dict[str, Decimal], currency: str
) -> tuple[tuple[str, int], ...]:
    if kind == "lost":
        return (("deals_lost", 1),)
    return (("deals_won", 1), ("revenue_cents", revenue_cents(state, rates, currency)))
