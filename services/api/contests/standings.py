"""Contest standings, as every reader gets them: computed once per change of the data (and per
minute, as the status moves with the clock) and cached, like the leaderboards.

- **Scoring** (``Scorer``): the box ``[starts_at, ends_at)`` is tiled exactly (months, days,
  hours, minutes), the participants ranked, and ``goal_reached_at`` timed from the finest
  buckets of those holding the goal. Settlement (``settlement.py``) scores the same way.
- **Reading** (``Standings``): a settled contest answers its stored final standings; any other
  is scored live, a contest past its ``settles_at`` included (``active``, "final standings any
  moment"): a read never writes, and only the worker settles.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.api.common.freshness import DataVersion
from services.api.common.pages import decode_cursor, encode_cursor
from services.api.common.params import SubjectKind
from services.api.contests import scoring
from services.api.contests.definition import minutes_kept_from, missing
from services.api.contests.repository import ContestRepository, Final
from services.api.contests.schemas import (
    ContestList,
    ContestOut,
    ContestRow,
    ContestSummary,
    ScoreOut,
    Winner,
)
from services.api.contests.scoring import Contender, Contest, Score, Standing, Status
from services.api.kpis.queries import KpiQueries
from services.api.live.contenders import Contenders
from services.api.live.stamped import StampedCache, stamp_of
from services.api.roster.repository import RosterRepository
from services.api.roster.service import epoch
from services.api.targets.repository import TargetRepository
from services.api.targets.service import TargetCache, Targets
from shared.catalogue import TARGETED
from shared.settings import Settings
from shared.windows import Window

log = logging.getLogger(__name__)
HOUR = 3600


def _at(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def score_out(score: Score) -> ScoreOut:
    if score.metric:
        return {"metric": score.metric}
    return {"points": dict(score.points)}


def summary(
    contest: Contest, winners: list[dict[str, Any]], now: int, settle_s: int
) -> ContestSummary:
    return ContestSummary(
        id=contest.id,
        name=contest.name,
        status=contest.status(now),
        starts_at=_at(contest.starts_at),
        ends_at=_at(contest.ends_at),
        settles_at=_at(contest.settles_at(settle_s)),
        participants=contest.participants,
        team_ids=list(contest.team_ids) if contest.team_ids is not None else None,
        score=score_out(contest.score),
        goal=contest.goal,
        winners=[Winner.model_validate(w) for w in winners],
    )


async def listed(
    contests: ContestRepository,
    status: Status | None,
    now: int,
    settle_s: int,
    limit: int,
    cursor: str | None,
) -> ContestList:
    """A page of contests in start order (``common.pages``)."""
    after = decode_cursor(cursor, (int, str))
    found = await contests.page(status, now, limit + 1, (after[0], after[1]) if after else None)
    shown = found[:limit]
    last = shown[-1][0] if len(found) > limit else None
    return ContestList(
        contests=[summary(contest, winners, now, settle_s) for contest, winners in shown],
        next_cursor=encode_cursor([last.starts_at, last.id]) if last else None,
    )


@dataclass(frozen=True, slots=True)
class StandingsSpec:
    contest_id: str
    limit: int = 100


@dataclass(frozen=True, slots=True)
class _Computed:
    contest: Contest
    rows: list[ContestRow]  # every participant
    winners: list[Winner]
    as_of: datetime


class Standings:
    """Contest standings for every reader: cached per contest and stamp, computed once (single
    flight). One per app, like ``Boards``."""

    def __init__(
        self, db: AsyncEngine, targets: TargetCache, settings: Settings, capacity: int = 128
    ) -> None:
        self._db, self._settings = db, settings
        self._scorer = Scorer(targets, settings)
        self._cache: StampedCache[str, _Computed] = StampedCache(capacity)
        self.computed = 0  # how many standings were computed (tests)

    @property
    def settle_s(self) -> int:
        return self._settings.contest_settle_seconds

    async def board(
        self, spec: StandingsSpec, version: DataVersion, now: datetime, *, wait: bool = False
    ) -> tuple[ContestOut, bytes]:
        """The standings of ``spec``'s contest (its first ``limit`` rows) and their JSON."""
        computed = await self._computed(spec.contest_id, version, now, wait)
        out = self._out(computed, spec.limit, epoch(now))
        return out, out.model_dump_json().encode()

    @property
    def _locks(self) -> dict[str, asyncio.Lock]:
        """The contests being computed or cached (tests: nothing kept for a 404)."""
        return self._cache.locks

    async def _computed(
        self, contest_id: str, version: DataVersion, now: datetime, wait: bool
    ) -> _Computed:
        async def compute() -> _Computed:
            return await self._compute(contest_id, version, epoch(now))

        return await self._cache.get(contest_id, stamp_of(version, now), compute, wait=wait)

    async def _compute(self, contest_id: str, version: DataVersion, now: int) -> _Computed:
        self.computed += 1
        contest, final = await self._read(contest_id)
        if final is not None:
            return _stored(contest, final)
        async with self._db.connect() as conn:
            return await self._live(conn, contest, version, now)

    async def _read(self, contest_id: str) -> tuple[Contest, Final | None]:
        async with self._db.connect() as conn:
            found = await ContestRepository(conn).get(contest_id)
        if found is None:
            raise missing(contest_id)
        return found

    async def _live(
        self, conn: AsyncConnection, contest: Contest, version: DataVersion, now: int
    ) -> _Computed:
        standing, teams = await self._scorer.rank(conn, contest, version, now)
        rows = [row(contest, s, teams) for s in standing]
        return _Computed(contest, rows, [], version.as_of)

    def _out(self, computed: _Computed, limit: int, now: int) -> ContestOut:
        contest = computed.contest
        return ContestOut(
            **summary(contest, [], now, self.settle_s).model_dump(exclude={"winners"}),
            final=contest.settled_at is not None,
            settled_at=_at(contest.settled_at) if contest.settled_at is not None else None,
            as_of=computed.as_of,
            rows=computed.rows[:limit],
            rows_total=len(computed.rows),
            winners=computed.winners,
        )


class Scorer:
    """Ranks a contest's participants from the exact buckets: for the live standings and for
    the final ones (``settlement.py``). Reads on the connection given."""

    def __init__(self, targets: TargetCache, settings: Settings) -> None:
        self._targets, self._settings = targets, settings
        self._roster = Contenders()  # per roster version, as the boards' own

    async def rank(
        self, conn: AsyncConnection, contest: Contest, version: DataVersion, now: int
    ) -> tuple[list[Standing], dict[str, str]]:
        """Every participant ranked, with when each holding the goal reached it; and the
        team names."""
        settings = self._settings
        scope: SubjectKind = "rep" if contest.participants == "reps" else "team"
        roster = RosterRepository(conn)
        teams = {team.id: team.name for team in await self._every(roster, "team", version)}
        contenders = await self._contenders(roster, contest, version)
        window = Window("contest", _at(contest.starts_at), _at(contest.ends_at))
        counters = sorted(contest.score.counters)
        sums = await KpiQueries(conn, settings.tz).sums(scope, window, counters)
        wanted = {TARGETED[m] for m in contest.score.metrics if m in TARGETED}
        target_reads = Targets(
            TargetRepository(conn), self._targets, settings.tz, settings.week_start.weekday
        )
        members = None  # a team without its own target: its reps' summed, at the box's end
        if scope == "team" and wanted:
            members = await self._roster.members(roster, version.roster, contest.ends_at - 1)
        targets = await target_reads.for_window(
            scope, wanted, window, version.targets, None, members
        )
        minimum = settings.min_volume(contest.score.metric or "")
        # Ranking thousands of participants is pure CPU: off the event loop, which goes on
        # serving the other requests (and health probes) meanwhile.
        standing = await asyncio.to_thread(
            scoring.standings, contest, contenders, sums, targets, minimum, {}
        )
        if contest.goal is None:
            return standing, teams
        test = scoring.goal_test(contest.score, contest.goal, minimum)
        factors = _goal_factors(scoring.at_goal(standing, contest.goal), test, targets)
        kept = max(contest.minutes_from, minutes_kept_from(now, settings))
        tiles = scoring.goal_tiles(contest, kept)
        reached = await ContestRepository(conn).goal_reached(scope, factors, test, tiles)
        return [s._replace(goal_reached_at=reached.get(s.contender.id)) for s in standing], teams

    async def _every(
        self,
        roster: RosterRepository,
        kind: SubjectKind,
        version: DataVersion,
        at: int = 0,
        since: int | None = None,
    ) -> list[Contender]:
        return await self._roster.of(roster, kind, version.roster, at, since)

    async def _contenders(
        self, roster: RosterRepository, contest: Contest, version: DataVersion
    ) -> list[Contender]:
        """The teams (of ``team_ids``, if given), or the reps, each in its team at the
        contest's end (in those teams only, if given), but those who left before it began."""
        wanted = set(contest.team_ids) if contest.team_ids is not None else None
        kind: SubjectKind = "team" if contest.participants == "teams" else "rep"
        every = await self._every(roster, kind, version, contest.ends_at - 1, contest.starts_at)
        if wanted is None:
            return every
        return [c for c in every if c.team_id is not None and c.team_id in wanted]


def row(contest: Contest, standing: Standing, teams: dict[str, str]) -> ContestRow:
    who = standing.contender
    reached = standing.goal_reached_at
    return ContestRow(
        rank=standing.rank,
        rep_id=who.id if contest.participants == "reps" else None,
        team_id=who.team_id,
        name=who.name,
        team_name=teams.get(who.team_id) if who.team_id is not None else None,
        score=standing.score,
        parts=standing.parts,
        goal_reached_at=_at(reached) if reached is not None else None,
    )


def _goal_factors(
    holders: list[str], test: scoring.GoalTest, targets: dict[str, dict[str, float]]
) -> dict[str, float]:
    """What each participant holding the goal has its threshold multiplied by: its target of
    the attainment's metric (``per_target``), else 1."""
    if not test.per_target:
        return dict.fromkeys(holders, 1.0)
    found = {s: next(iter(targets.get(s, {}).values()), 0.0) for s in holders}
    return {s: target for s, target in found.items() if target > 0}


def _stored(contest: Contest, final: Final) -> _Computed:
    rows = [ContestRow.model_validate(r) for r in final.get("rows", [])]
    winners = [Winner.model_validate(w) for w in final.get("winners", [])]
    settled = contest.settled_at if contest.settled_at is not None else 0
    return _Computed(contest, rows, winners, _at(settled))
