"""Who competes on a board: every team, or every rep in its team at the time.

Read once per roster version (every roster change bumps it), not once per board: a board of
10,000 reps recomputed after every flush would otherwise read and walk the whole roster each
time. A rep's team changes only at the instants its memberships take effect, so the reps'
teams worked out for one instant hold until the next such instant of any rep.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass
from typing import NamedTuple

from services.api.common.params import SubjectKind
from services.api.roster.repository import RepRecord, RosterRepository
from shared.roster import present, team_at


class Contender(NamedTuple):  # tuples: one per rep of a board, made 10,000 at a time
    id: str
    name: str
    team_id: str | None


@dataclass(frozen=True, slots=True)
class _Roster:
    """The roster as one version of it was read."""

    version: int
    teams: list[Contender]
    reps: list[RepRecord]
    changes: list[float]  # every instant a membership takes effect, ascending, within -inf..inf
    left: dict[str, int]  # rep -> when they left, of those who did


@dataclass(frozen=True, slots=True)
class _Reps:
    """Every rep in its team, for the instants ``since <= at < until`` of one roster version."""

    version: int
    since: float
    until: float
    contenders: list[Contender]


class Contenders:
    """The contenders of boards, cached per roster version (one per app, shared by its boards)."""

    def __init__(self) -> None:
        self._roster: _Roster | None = None
        self._reps: _Reps | None = None

    async def of(
        self,
        roster: RosterRepository,
        kind: SubjectKind,
        version: int,
        at: int,
        since: int | None = None,
    ) -> list[Contender]:
        """Every team, or every rep with its team at the instant ``at``, as of the roster
        ``version`` (read through ``roster`` if it is not the one cached); with ``since`` (a
        window's start), not the reps who had left by then."""
        known = await self._read(roster, version)
        if kind == "team":
            return known.teams
        reps = self._reps
        if reps is None or reps.version != version or not reps.since <= at < reps.until:
            reps = self._reps = _reps_at(known, at)
        if since is None or not known.left:
            return reps.contenders
        return [c for c in reps.contenders if _stayed(known.left.get(c.id), since)]

    async def members(self, roster: RosterRepository, version: int, at: int) -> list[
        tuple[str, str]
    ]:  # fmt: skip
        """Each rep on the floor at ``at`` with their team then: whose targets a team without
        its own is measured against."""
        known = await self._read(roster, version)
        reps = await self.of(roster, "rep", version, at)
        return [
            (c.id, c.team_id)
            for c in reps
            if c.team_id is not None and present(known.left.get(c.id), at)
        ]

    async def _read(self, roster: RosterRepository, version: int) -> _Roster:
        known = self._roster
        if known is None or known.version != version:
            teams = [Contender(t, n, t) for t, n in (await roster.all_teams()).items()]
            reps = await roster.all_reps()
            changes = sorted({since for r in reps for since, _ in r.memberships})
            left = {r.id: r.left_at for r in reps if r.left_at is not None}
            known = self._roster = _Roster(
                version, teams, reps, [-math.inf, *changes, math.inf], left
            )
        return known


def _stayed(left_at: int | None, since: int) -> bool:
    """Whether a rep belongs on a window that starts at ``since``: not if they left before."""
    return left_at is None or since <= left_at


def _reps_at(roster: _Roster, at: int) -> _Reps:
    after = bisect_right(roster.changes, at)
    contenders = [Contender(r.id, r.name, team_at(r.memberships, at)) for r in roster.reps]
    return _Reps(roster.version, roster.changes[after - 1], roster.changes[after], contenders)
