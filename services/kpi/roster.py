"""A snapshot of the roster for the engine: actor identity -> rep, rep -> team at a time."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

from shared.events import Actor


class Owner(NamedTuple):
    rep_id: str
    team_id: str | None


@dataclass(slots=True)
class Roster:
    version: int = -1
    # (provider, external_id) -> rep id
    identities: dict[tuple[str, str], str] = field(default_factory=dict)
    # rep id -> ([effective_from ascending], [team id at each])
    memberships: dict[str, tuple[list[int], list[str]]] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        version: int,
        identities: Iterable[tuple[str, str, str]],
        memberships: Iterable[tuple[str, int, str]],
    ) -> Roster:
        """From rows (provider, external_id, rep_id) and (rep_id, effective_from, team_id)."""
        history: dict[str, list[tuple[int, str]]] = {}
        for rep_id, since, team_id in memberships:
            history.setdefault(rep_id, []).append((since, team_id))
        return cls(
            version=version,
            identities={(p, x): rep for p, x, rep in identities},
            memberships={
                rep: ([s for s, _ in sorted(rows)], [t for _, t in sorted(rows)])
                for rep, rows in history.items()
            },
        )

    def team_at(self, rep_id: str, ts: int) -> str | None:
        starts, teams = self.memberships.get(rep_id, ([], []))
        index = bisect_right(starts, ts) - 1
        return teams[index] if index >= 0 else None

    def knows(self, actor: Actor | None) -> bool:
        return actor is not None and (actor.provider, actor.external_id) in self.identities

    def owner(self, actor: Actor | None, ts: int) -> Owner | None:
        """Who is credited with the actor's activity at ``ts``; None if nobody on the roster."""
        if actor is None:
            return None
        rep_id = self.identities.get((actor.provider, actor.external_id))
        return None if rep_id is None else Owner(rep_id, self.team_at(rep_id, ts))
