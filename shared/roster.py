"""Who is in which team at an instant, and who had left by then: one answer for every reader.

The KPI engine credits activity with it, the boards, contests and reports list their
contenders with it, and a team's target falls back to its members' targets with it. A rep is in
the team of their latest membership that took effect at or before the instant (``team_at``), and
is present until ``left_at`` (exclusive): their activity after it is unassigned, and they are
left off boards and contests for windows that start after it.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.db.models import Rep, RepTeam, table

Membership = tuple[int, str]  # (effective_from, team_id): in the team from then on
_reps, _rep_teams = table(Rep), table(RepTeam)


def team_at(history: Sequence[Membership], at: int) -> str | None:
    """The team of a rep with this ``history`` (ascending) at the instant ``at``."""
    index = bisect_right([since for since, _ in history], at) - 1
    return history[index][1] if index >= 0 else None


def present(left_at: int | None, at: int) -> bool:
    """Whether a rep who left at ``left_at`` (None: has not) is still on the floor at ``at``."""
    return left_at is None or at < left_at


@dataclass(slots=True)
class Memberships:
    """Every rep's team history (ascending) and when each left."""

    history: dict[str, list[Membership]] = field(default_factory=dict)
    left: dict[str, int] = field(default_factory=dict)

    @classmethod
    def build(
        cls, rows: Iterable[tuple[str, int, str]], left: Mapping[str, int | None] | None = None
    ) -> Memberships:
        """From rows ``(rep_id, effective_from, team_id)`` and ``rep -> left_at``."""
        history: dict[str, list[Membership]] = {}
        for rep, since, team in rows:
            history.setdefault(rep, []).append((int(since), team))
        for memberships in history.values():
            memberships.sort()
        gone = {rep: int(at) for rep, at in (left or {}).items() if at is not None}
        return cls(history, gone)

    def team_at(self, rep: str, at: int) -> str | None:
        return team_at(self.history.get(rep, ()), at)

    def present(self, rep: str, at: int) -> bool:
        return present(self.left.get(rep), at)

    def members_at(self, at: int) -> Iterator[tuple[str, str]]:
        """Each rep on the floor at ``at`` that is in a team then, with that team."""
        for rep, memberships in self.history.items():
            team = team_at(memberships, at)
            if team is not None and self.present(rep, at):
                yield rep, team

    def teams(self) -> set[str]:
        """Every team some rep is or was in."""
        return {team for memberships in self.history.values() for _, team in memberships}


async def read_memberships(conn: AsyncConnection) -> Memberships:
    """Every rep's team history and leaving time, in two reads."""
    rows = await conn.execute(
        select(_rep_teams.c.rep_id, _rep_teams.c.effective_from, _rep_teams.c.team_id)
    )
    left = await conn.execute(
        select(_reps.c.id, _reps.c.left_at).where(_reps.c.left_at.is_not(None))
    )
    return Memberships.build(((rep, since, team) for rep, since, team in rows), dict(left.all()))
