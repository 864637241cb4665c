"""Defining a contest: what the schema cannot check, checked on save, and the rule that a
completed contest is final.

- **The catalogue.** A score is one metric, or points weighing count and sum metrics.
- **The roster.** Every team named exists.
- **The retention.** A contest reaching back past the kept minute buckets starts and ends on the
  hour, and reaches back at most ``HOUR_RETENTION_DAYS``.
- **Final is final.** Redefining a completed contest is a 409; the same definition again is a
  no-op.
"""

from __future__ import annotations

from datetime import UTC, datetime

from services.api.contests import scoring
from services.api.contests.repository import ContestRepository
from services.api.contests.schemas import ContestIn, ScoreIn
from services.api.contests.scoring import Contest, Score
from services.api.roster.repository import RosterRepository
from services.api.roster.service import epoch
from shared.catalogue import CATALOGUE
from shared.problems import Conflict, NotFound, refused
from shared.settings import Settings

HOUR = 3600


def _at(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def _score(body: ScoreIn) -> Score:
    if body.metric is not None:
        if body.metric not in CATALOGUE:
            raise refused(("score.metric", f"unknown metric {body.metric!r}; see GET /v1/metrics"))
        return Score(metric=body.metric)
    points = body.points or {}
    if problems := scoring.point_problems(points):
        raise refused(*problems)
    return Score(points=tuple(sorted(points.items())))


def minutes_kept_from(now: int, settings: Settings) -> int:
    """From when on the minute buckets are surely still there (and, once the contest is saved,
    kept until it settles): the retention floor, an hour of margin for a prune under way,
    rounded up to the hour."""
    floor = settings.retention_floors(now)[0] + HOUR
    return -(-floor // HOUR) * HOUR


def _retention_problems(start: int, end: int, kept_from: int, now: int, settings: Settings) -> (
    list[tuple[str, str]]
):  # fmt: skip
    hour_floor = settings.retention_floors(now)[1]
    if start < hour_floor:
        return [("starts_at", f"a contest reaches back at most {settings.hour_retention_days} "
                              "days (older hours are no longer kept)")]  # fmt: skip
    kept = _at(kept_from).isoformat()
    return [
        (field, f"minute buckets before {kept} are no longer kept: {field} must be on the hour")
        for field, moment in (("starts_at", start), ("ends_at", end))
        if moment < kept_from and moment % HOUR
    ]


def define(contest_id: str, body: ContestIn, now: int, settings: Settings) -> Contest:
    """The contest ``body`` defines, or a 422 naming what the catalogue or the retention refuse."""
    start, end = epoch(body.starts_at), epoch(body.ends_at)
    score = _score(body.score)
    kept_from = max(start, minutes_kept_from(now, settings))
    if problems := _retention_problems(start, end, kept_from, now, settings):
        raise refused(*problems)
    return Contest(
        id=contest_id,
        name=body.name,
        starts_at=start,
        ends_at=end,
        participants=body.participants,
        team_ids=tuple(dict.fromkeys(body.team_ids)) if body.team_ids is not None else None,
        score=score,
        goal=body.goal,
        minutes_from=kept_from,
    )


async def save(contests: ContestRepository, roster: RosterRepository, contest: Contest) -> Contest:
    """Create or redefine ``contest``; the same definition again changes nothing."""
    if contest.team_ids:
        known = await roster.all_teams()
        if unknown := [t for t in contest.team_ids if t not in known]:
            raise refused(("team_ids", f"unknown team(s): {', '.join(unknown)}"))
    found = await contests.get(contest.id)
    if found is not None and found[0].same_definition(contest):
        return found[0]
    if found is not None and found[0].settled_at is not None:
        raise Conflict(
            f"contest {contest.id!r} is completed and its standings are final; "
            "delete it and create a new one to run it again"
        )
    await contests.save(contest)
    await contests.changed()
    return contest


async def existing(contests: ContestRepository, contest_id: str) -> Contest:
    found = await contests.get(contest_id)
    if found is None:
        raise missing(contest_id)
    return found[0]


async def delete(contests: ContestRepository, contest_id: str) -> None:
    if not await contests.delete(contest_id):
        raise missing(contest_id)
    await contests.changed()


def missing(contest_id: str) -> NotFound:
    return NotFound(f"no contest {contest_id!r}")
