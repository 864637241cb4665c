"""Deals are state, not a stream of counts. Pure: no I/O, no clock.

Each deal keeps, per field, the latest value by event time (ties broken by event id, so any
arrival order gives the same deal), the history of its status, and the touches logged on it.
From that state follows what the deal contributes: a win (or loss) in the window of its *last
transition* into won (lost), credited to its latest owner, with its latest amount, margin and
discount, its sales cycle and the touches before the win.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from services.kpi.domain.state import (
    Booked,
    Overrides,
    Version,
    booked_from_json,
    booked_to_json,
    in_force,
    rep_actor_json,
)
from shared import events as ev

TRACKED = ("actor", "amount", "currency", "stage", "account_id", "margin", "discount", "created_at")


@dataclass(slots=True)
class DealState:
    # field name -> [value, event time, event id]; value as JSON (str / dict)
    fields: dict[str, list[Any]] = field(default_factory=dict)
    # [event time, event id, status] for every status report seen
    statuses: list[list[Any]] = field(default_factory=list)
    # [event time, event id] of every touch logged on the deal
    touches: list[list[Any]] = field(default_factory=list)
    booked: list[Booked] = field(default_factory=list)
    account: list[str] | None = None  # the account state this deal's win is registered in
    # every update: [event time, event id, its tracked fields (JSON), its status or None]
    updates: list[list[Any]] = field(default_factory=list)
    overrides: Overrides = field(default_factory=dict)  # corrections of its events

    def merge(self, event: ev.DealUpdated) -> None:
        data = event.data.model_dump(mode="json", exclude_none=True)
        update = [
            event.time.timestamp(),
            event.id,
            {n: data[n] for n in TRACKED if n in data},
            event.data.status,
        ]
        if any(u[1] == event.id for u in self.updates):
            return
        if not self.updates and self.fields:
            self.updates = self._history()  # a deal from before updates were kept
        self.updates.append(update)
        self._fold(update)

    def _fold(self, update: list[Any]) -> None:
        time, event_id, fields, status = update
        version: Version = (time, event_id)
        decided = in_force(self.overrides, event_id)
        if decided is not None:
            action, rep_id = decided
            if action == "exclude":
                return
            if rep_id is not None:
                fields = {**fields, "actor": rep_actor_json(rep_id)}
        for name, value in fields.items():
            current = self.fields.get(name)
            if current is None or (current[1], current[2]) <= version:
                self.fields[name] = [value, *version]
        if status is not None:
            entry = [*version, status]
            if entry not in self.statuses:
                self.statuses.append(entry)

    def refold(self) -> None:
        """The fields and statuses again from every update, the corrections in force applied
        (an excluded update as if it never came, a reassigned one as if its rep sent it)."""
        if not self.updates and self.fields:
            self.updates = self._history()
        self.fields, self.statuses = {}, []
        for update in sorted(self.updates, key=lambda u: (u[0], u[1])):
            self._fold(update)

    def _history(self) -> list[list[Any]]:
        """Updates made up from what a deal of an earlier release kept: its fields' latest
        values and its statuses (the values they replaced are gone)."""
        made: dict[tuple[float, str], list[Any]] = {}
        for name, (value, time, event_id) in self.fields.items():
            made.setdefault((time, event_id), [time, event_id, {}, None])[2][name] = value
        for time, event_id, status in self.statuses:
            made.setdefault((time, event_id), [time, event_id, {}, None])[3] = status
        return [made[k] for k in sorted(made)]

    def touch(self, event: ev.Event) -> None:
        entry = [event.time.timestamp(), event.id]
        if entry not in self.touches:
            self.touches.append(entry)

    def counted_touches(self, until: float) -> int:
        """The touches logged on the deal up to ``until``, but those excluded."""
        return sum(
            1
            for time, event_id in self.touches
            if time <= until and (in_force(self.overrides, event_id) or ("",))[0] != "exclude"
        )

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
            "touches": self.touches,
            "booked": booked_to_json(self.booked),
            "account": self.account,
            "updates": self.updates,
            "overrides": self.overrides,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DealState:
        return cls(
            data.get("fields", {}),
            data.get("statuses", []),
            data.get("touches", []),
            booked_from_json(data.get("booked")),
            data.get("account"),
            data.get("updates", []),
            data.get("overrides", {}),
        )


def cents(amount: Any, rate: Decimal | None) -> int:
    if amount is None or rate is None:
        return 0
    return int((Decimal(str(amount)) * rate * 100).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def won_counters(state: DealState, at: float, rate: Decimal | None) -> dict[str, int]:
    """What a won deal adds, besides the win itself: revenue, margin, discount, cycle, touches."""
    counters = {
        "deals_won": 1,
        "revenue_cents": cents(state.value("amount"), rate),
        "touches_on_wins": state.counted_touches(at),
    }
    if state.value("margin") is not None:
        counters["margin_cents"] = cents(state.value("margin"), rate)
    if state.value("discount") is not None:
        counters["discount_bp_sum"] = int(Decimal(str(state.value("discount"))) * 10_000)
        counters["discounted_wins"] = 1
    created = state.value("created_at")
    if created is not None:
        started = datetime.fromisoformat(created).timestamp()
        counters["sales_cycle_seconds"] = max(int(at - started), 0)
        counters["cycled_wins"] = 1
    return counters
