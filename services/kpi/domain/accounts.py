"""First wins per account: new customers, new-business and expansion revenue. Pure.

An account's state lists its currently won deals (time of the win, revenue, subjects). The
earliest is the account's first win: a new customer, and new-business revenue; every later win
is expansion revenue. A deal reopened or re-dated changes which win is first, and the difference
is booked like any other state change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from services.kpi.domain.state import Booked, Subjects, booked_from_json, booked_to_json


@dataclass(slots=True)
class AccountState:
    wins: dict[str, list[Any]] = field(default_factory=dict)  # deal key -> [at, cents, subjects]
    booked: list[Booked] = field(default_factory=list)

    def set_win(self, deal: str, at: int, revenue_cents: int, subjects: Subjects) -> None:
        self.wins[deal] = [at, revenue_cents, [list(s) for s in subjects]]

    def drop_win(self, deal: str) -> None:
        self.wins.pop(deal, None)

    def bookings(self) -> list[Booked]:
        ordered = sorted(self.wins.items(), key=lambda kv: (kv[1][0], kv[0]))
        result = []
        for position, (_, (at, revenue, subjects)) in enumerate(ordered):
            counters = (
                (("new_customers", 1), ("new_business_revenue_cents", revenue))
                if position == 0
                else (("expansion_revenue_cents", revenue),)
            )
            result.append(Booked(int(at), tuple((s, i) for s, i in subjects), counters))
        return result

    def to_json(self) -> dict[str, Any]:
        return {"wins": self.wins, "booked": booked_to_json(self.booked)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AccountState:
        return cls(data.get("wins", {}), booked_from_json(data.get("booked")))
