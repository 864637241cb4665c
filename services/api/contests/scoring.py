"""What a contest is and how it is scored. Pure: no I/O, no clock of its own.

- **Score.** One metric (any; a ratio resting on fewer facts than its minimum volume is listed
  unranked), or points: a weighted sum of count and sum metrics.
- **Standings.** Standard competition ranking of the participants by score (``ranking.rank``);
  ``parts`` gives each metric the score is made of.
- **Goal.** ``goal_reached_at`` is the start of the first bucket after which the participant's
  running score reached the goal, walking its finest buckets in time order (minutes; hours
  where minutes were pruned before the contest existed). Only a participant whose score holds
  the goal now has reached it: a deal reopened under it takes it back.
- **Status.** ``scheduled`` before ``starts_at``; ``active`` until it is settled, which happens
  ``settle_s`` after ``ends_at`` (late events with an event time inside the box still count);
  ``completed`` once its final standings are stored.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal, NamedTuple

from services.api.leaderboards.contenders import Contender as Contender  # scoring takes these
from services.api.leaderboards.ranking import Entry, rank
from shared.catalogue import CATALOGUE, evaluate, needed_counters, volume

Participants = Literal["reps", "teams"]
Status = Literal["scheduled", "active", "completed"]
STATUSES: tuple[Status, ...] = ("scheduled", "active", "completed")
POINT_KINDS = ("count", "sum")  # what a points score may weigh: additive metrics only
Counters = Mapping[str, int]


@dataclass(frozen=True, slots=True)
class Score:
    """``metric``, or ``points`` (metric -> weight); exactly one of them."""

    metric: str | None = None
    points: tuple[tuple[str, float], ...] = ()

    @property
    def metrics(self) -> list[str]:
        return [self.metric] if self.metric else [name for name, _ in self.points]

    @property
    def counters(self) -> set[str]:
        return needed_counters(self.metrics)

    def parts(self, sums: Counters, targets: Mapping[str, float]) -> dict[str, float | int | None]:
        return evaluate(sums, self.metrics, dict(targets))

    def value(self, parts: Mapping[str, float | int | None]) -> float | int | None:
        if self.metric:
            return parts[self.metric]
        return round(sum(weight * (parts[name] or 0) for name, weight in self.points), 6)

    def volume(self, sums: Counters) -> int | None:
        """The facts a ratio score rests on (None for counts, sums and points)."""
        return volume(self.metric, sums) if self.metric else None


@dataclass(frozen=True, slots=True)
class Contest:
    id: str
    name: str
    starts_at: int  # epoch seconds, inclusive, on a whole minute
    ends_at: int  # epoch seconds, exclusive, on a whole minute
    participants: Participants
    team_ids: tuple[str, ...] | None
    score: Score
    goal: float | None
    minutes_from: int  # minute buckets of the box are kept from here on (see shared.db.models)
    settled_at: int | None = None

    def settles_at(self, settle_s: int) -> int:
        return self.ends_at + settle_s

    def status(self, now: int) -> Status:
        if self.settled_at is not None:
            return "completed"
        return "scheduled" if now < self.starts_at else "active"

    def due(self, now: int, settle_s: int) -> bool:
        """Whether its standings are to be stored as final now."""
        return self.settled_at is None and now >= self.settles_at(settle_s)

    def same_definition(self, other: Contest) -> bool:
        """Whether ``other`` defines the same contest (settlement aside)."""
        return (self.name, self.starts_at, self.ends_at, self.participants, self.team_ids,
                self.score, self.goal) == (other.name, other.starts_at, other.ends_at,
                other.participants, other.team_ids, other.score, other.goal)  # fmt: skip


class Standing(NamedTuple):
    rank: int | None
    contender: Contender
    score: float | int | None
    parts: dict[str, float | int | None]
    goal_reached_at: int | None  # epoch seconds


def standings(
    contest: Contest,
    contenders: Iterable[Contender],
    sums: Mapping[str, Counters],
    targets: Mapping[str, Mapping[str, float]],
    min_volume: int,
    reached: Mapping[str, int],
) -> list[Standing]:
    """Every contender ranked by score; ``reached``: when each reached the goal (if it did)."""
    entries, details = [], {}
    for contender in contenders:
        own = sums.get(contender.id, {})
        parts = contest.score.parts(own, targets.get(contender.id, {}))
        score = contest.score.value(parts)
        facts = contest.score.volume(own)
        ranked_by = None if facts is not None and facts < min_volume else score
        entries.append(Entry(contender.id, contender.name, ranked_by))
        details[contender.id] = (contender, score, parts)
    return [
        Standing(r.rank, *details[r.entry.key], reached.get(r.entry.key)) for r in rank(entries)
    ]


def at_goal(standing: list[Standing], goal: float | None) -> list[str]:
    """The participants whose score holds the goal now: those ``goal_reached_at`` is sought for."""
    if goal is None:
        return []
    return [s.contender.id for s in standing if s.rank is not None and (s.score or 0) >= goal]


def goal_reached_at(
    score: Score,
    buckets: Iterable[tuple[int, Counters]],
    targets: Mapping[str, float],
    goal: float,
    min_volume: int,
) -> int | None:
    """The start of the first bucket (in time order) after which the running score reached
    ``goal``: a ratio counts only once it rests on ``min_volume`` facts."""
    running: dict[str, int] = {}
    for start, counters in sorted(buckets, key=lambda b: b[0]):
        for name, value in counters.items():
            running[name] = running.get(name, 0) + value
        reached = score.value(score.parts(running, targets))
        facts = score.volume(running)
        if reached is not None and reached >= goal and (facts is None or facts >= min_volume):
            return start
    return None


def winners(standing: list[Standing]) -> list[Standing]:
    """The first rank, with a score: every participant tied at it; none when nobody is ranked,
    or nobody scored (everyone tied at 0 wins nothing)."""
    return [s for s in standing if s.rank == 1 and s.score]


def point_problems(points: Mapping[str, float]) -> list[tuple[str, str]]:
    """(field, message) for each reason a points score is refused."""
    if not points:
        return [("score.points", "points need at least one metric")]
    problems = []
    for name, weight in points.items():
        field = f"score.points.{name}"
        if name not in CATALOGUE:
            problems.append((field, f"unknown metric {name!r}; see GET /v1/metrics"))
        elif CATALOGUE[name].kind not in POINT_KINDS:
            problems.append((field, f"{name} is a {CATALOGUE[name].kind}: points weigh only "
                                    "count and sum metrics"))  # fmt: skip
        if not weight > 0:
            problems.append((field, "a weight must be positive"))
    return problems
