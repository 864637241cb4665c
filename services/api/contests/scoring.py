"""What a contest is and how it is scored. Pure: no I/O, no clock of its own.

- **Score.** One metric (any; a ratio resting on fewer facts than its minimum volume is listed
  unranked), or points: a weighted sum of count and sum metrics.
- **Standings.** Standard competition ranking of the participants by score (``ranking.rank``);
  ``parts`` gives each metric the score is made of.
- **Goal.** ``goal_reached_at`` is the start of the first bucket after which the participant's
  running score reached the goal, its buckets taken in time order (``goal_tiles``: minutes
  where they are kept, hours before). The database finds it (``goal_test`` states the test
  as linear forms of counters). Only a participant whose score holds the goal now has reached
  it: a deal reopened under it takes it back.
- **Status.** ``scheduled`` before ``starts_at``; ``active`` until it is settled, which happens
  ``settle_s`` after ``ends_at`` (late events with an event time inside the box still count);
  ``completed`` once its final standings are stored.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal, NamedTuple

from services.api.live.contenders import Contender as Contender  # scoring takes these
from services.api.live.ranking import Entry, rank
from shared.catalogue import CATALOGUE, VOLUME, evaluate, needed_counters, volume

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


@dataclass(frozen=True, slots=True)
class GoalTest:
    """When a running score holds the goal, as linear forms of base counters (so the database
    can test every bucket of every participant: ``repository.goal_reached``):

    ``numerator >= threshold x denominator`` (no denominator: x 1; ``per_target``: the
    threshold is also multiplied by each participant's target), with a denominator above 0 and
    the ``volume`` counters' sum at least ``min_volume`` where there are some. ``threshold``
    is lowered by half of what the score's rounding hides, so a score shown at the goal holds
    it here too."""

    numerator: dict[str, float]
    denominator: dict[str, float] | None
    threshold: float
    volume: tuple[str, ...] = ()
    min_volume: int = 0
    per_target: bool = False


def _form(metric: str, weight: float = 1.0) -> dict[str, float]:
    """``metric``'s numerator in the units it is shown in (currency: cents / 100)."""
    found = CATALOGUE[metric]
    per = 0.01 if found.unit == "currency" and found.denominator is None else 1.0
    return {c: weight * k * per for c, k in found.numerator}


def goal_test(score: Score, goal: float, min_volume: int) -> GoalTest:
    """The test of ``goal`` for ``score``: a points score or a count or sum metric is linear;
    a ratio compares its numerator with the goal times its denominator; an attainment its
    value with the goal times the participant's target."""
    if not score.metric:
        numerator: dict[str, float] = {}
        for name, weight in score.points:
            for counter, k in _form(name, weight).items():
                numerator[counter] = numerator.get(counter, 0.0) + k
        return GoalTest(numerator, None, goal - 5e-7)  # points are rounded to 6 places
    metric = CATALOGUE[score.metric]
    if metric.target_of is not None:
        return GoalTest(_form(metric.target_of), None, goal - 5e-7, per_target=True)
    if metric.denominator is None:
        shown = 0.005 if metric.unit == "currency" else 0.0  # money is shown to the cent
        return GoalTest(_form(score.metric), None, goal - shown)
    numerator = {c: k * metric.scale for c, k in metric.numerator}
    denominator = {c: float(k) for c, k in metric.denominator}
    volume = VOLUME.get(score.metric, ())
    return GoalTest(numerator, denominator, goal - 5e-7, volume, min_volume)


HOUR = 3600


def goal_tiles(contest: Contest, minutes_from: int) -> list[tuple[str, int, int]]:
    """The buckets a goal is timed from, as ``(grain, start, end)`` ranges tiling the box in
    time order: minute buckets where they are kept (the box's partial hours at each edge, which
    the pruning spares while the contest is unsettled, and whatever lies after
    ``minutes_from``: the minute retention's floor), hour buckets in between. So
    ``goal_reached_at`` is exact to the minute within the minute retention, to the hour
    before it."""
    start, end = contest.starts_at, contest.ends_at
    first_hour, last_hour = -(-start // HOUR) * HOUR, end - end % HOUR
    if first_hour >= last_hour:
        return [("minute", start, end)]
    split = max(first_hour, min(last_hour, -(-minutes_from // HOUR) * HOUR))
    tiles = [("minute", start, first_hour)] if start < first_hour else []
    if first_hour < split:
        tiles.append(("hour", first_hour, split))
    if split < end:
        tiles.append(("minute", split, end))
    return tiles


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
