"""A snapshot of the roster for the engine: actor identity -> rep, rep -> team at a time, and
who had left by then (``shared.roster``: one answer for every reader)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from services.kpi.domain.state import REP_PROVIDER
from shared.events import Actor
from shared.roster import Memberships


class Owner(NamedTuple):
    rep_id: str
    team_id: str | None


@dataclass(slots=True)
class Roster:
    version: int = -1
    # (provider, external_id) -> rep id
    identities: dict[tuple[str, str], str] = field(default_factory=dict)
    memberships: Memberships = field(default_factory=Memberships)
    emails: dict[str, str] = field(default_factory=dict)  # lower-case email -> rep id

    @classmethod
    def build(
        cls,
        version: int,
        identities: Iterable[tuple[str, str, str]],
        memberships: Iterable[tuple[str, int, str]],
        left: Mapping[str, int | None] | None = None,
    ) -> Roster:
        """From rows (provider, external_id, rep_id), (rep_id, effective_from, team_id) and
        rep -> left_at."""
        return cls(
            version=version,
            identities={(p, x): rep for p, x, rep in identities},
            memberships=Memberships.build(memberships, left),
        )

    def to_learn(self, actors: Iterable[Actor | None]) -> dict[tuple[str, str], str]:
        """The identities of ``actors`` nobody has, whose email is a rep's: identity -> rep."""
        found: dict[tuple[str, str], str] = {}
        for actor in actors:
            if actor is None or actor.email is None or actor.provider == REP_PROVIDER:
                continue
            identity = (actor.provider, actor.external_id)
            if identity not in self.identities and actor.email in self.emails:
                found[identity] = self.emails[actor.email]
        return found

    def team_at(self, rep_id: str, ts: int) -> str | None:
        return self.memberships.team_at(rep_id, ts)

    def knows(self, actor: Actor | None) -> bool:
        return actor is not None and (actor.provider, actor.external_id) in self.identities

    def owner(self, actor: Actor | None, ts: int) -> Owner | None:
        """Who is credited with the actor's activity at ``ts``; None if nobody on the roster,
        or the rep had left by then (the activity is then unassigned)."""
        if actor is None:
            return None
        if actor.provider == REP_PROVIDER:  # an event reassigned to a rep: hers
            rep_id: str | None = actor.external_id
        else:
            rep_id = self.identities.get((actor.provider, actor.external_id))
        if rep_id is None or not self.memberships.present(rep_id, ts):
            return None
        return Owner(rep_id, self.team_at(rep_id, ts))
