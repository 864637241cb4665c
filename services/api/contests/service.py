"""Contests: defined by admins, scored from the exact buckets, settled once.

- **Saving** checks what the schema cannot: the catalogue (points weigh count and sum metrics),
  the roster (every team named exists) and the retention (a contest reaching back past the
  kept minute buckets starts and ends on the hour). A completed contest is final: redefining
  it is a 409.
- **Standings** are computed once per change of the data (and per minute, as the status moves
  with the clock) and cached, like the leaderboards: the box ``[starts_at, ends_at)`` is tiled
  exactly (months, days, hours, minutes), the participants ranked, and ``goal_reached_at``
  timed from the finest buckets of those holding the goal.
- **Settlement.** At ``ends_at`` + ``CONTEST_SETTLE_SECONDS`` the standings are computed one
  last time and stored with the winners, in one transaction, by whichever API instance gets
  there first (the write is conditional). From then on the stored standings are served: later
  events change nothing.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.api.common.database import in_transaction
from services.api.common.freshness import DataVersion, data_version
from services.api.common.pages import decode_cursor, encode_cursor
from services.api.common.params import SubjectKind
from services.api.common.stamped import StampedCache
from services.api.contests import scoring
from services.api.contests.repository import ContestRepository, Final
from services.api.contests.schemas import (
    ContestIn,
    ContestList,
    ContestOut,
    ContestRow,
    ContestSummary,
    ScoreIn,
    ScoreOut,
    Winner,
)
from services.api.contests.scoring import Contender, Contest, Score, Standing, Status
from services.api.kpis.queries import KpiQueries
from services.api.leaderboards.contenders import Contenders
from services.api.leaderboards.service import stamp_of
from services.api.roster.repository import RosterRepository
from services.api.roster.service import epoch
from services.api.targets.repository import TargetRepository
from services.api.targets.service import TargetCache, Targets
from shared import outbox
from shared.alerting import ContestWinner, Reading, Settled, decide, of_kind
from shared.alerts import Voice
from shared.catalogue import CATALOGUE, TARGETED
from shared.db.repeats import Repeats, log_failure
from shared.problems import Conflict, NotFound, refused
from shared.settings import Settings, voice_of
from shared.windows import Window

log = logging.getLogger(__name__)
HOUR = 3600


def _at(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


# --- saving -------------------------------------------------------------------------------


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
        raise _missing(contest_id)
    return found[0]


async def delete(contests: ContestRepository, contest_id: str) -> None:
    if not await contests.delete(contest_id):
        raise _missing(contest_id)
    await contests.changed()


def _missing(contest_id: str) -> NotFound:
    return NotFound(f"no contest {contest_id!r}")


# --- reading ------------------------------------------------------------------------------


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
    flight), settled when due. One per app, like ``Boards``."""

    def __init__(
        self, db: AsyncEngine, targets: TargetCache, settings: Settings, capacity: int = 128
    ) -> None:
        self._db, self._targets, self._settings = db, targets, settings
        self._cache: StampedCache[str, _Computed] = StampedCache(capacity)
        self._roster = Contenders()  # per roster version, as the boards' own
        self.computed = 0  # how many standings were computed (tests)

    @property
    def db(self) -> AsyncEngine:
        return self._db

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
        if final is None and contest.due(now, self.settle_s):
            await self._settle(contest_id, now)  # or another instance did: read what it stored
            contest, final = await self._read(contest_id)
        if final is not None:
            return _stored(contest, final)
        async with self._db.connect() as conn:
            return await self._live(conn, contest, version, now)

    async def _read(self, contest_id: str) -> tuple[Contest, Final | None]:
        async with self._db.connect() as conn:
            found = await ContestRepository(conn).get(contest_id)
        if found is None:
            raise _missing(contest_id)
        return found

    async def _live(
        self, conn: AsyncConnection, contest: Contest, version: DataVersion, now: int
    ) -> _Computed:
        standing, teams = await self._standings(conn, contest, version, now)
        rows = [_row(contest, s, teams) for s in standing]
        return _Computed(contest, rows, [], version.as_of)

    async def settle_due(self, now: datetime) -> int:
        """Store the final standings of every contest due: how many this call settled."""
        async with self._db.connect() as conn:
            due = await ContestRepository(conn).due(epoch(now), self.settle_s)
        settled = 0
        for contest in due:
            settled += await self._settle(contest.id, epoch(now)) is not None
        return settled

    async def _settle(self, contest_id: str, now: int) -> Final | None:
        """Compute and store ``contest_id``'s final standings in one transaction: None if it
        was not due, or another instance settled it first."""

        async def work(conn: AsyncConnection) -> Final | None:
            repo = ContestRepository(conn)
            found = await repo.get(contest_id)
            if found is None or not found[0].due(now, self.settle_s):
                return None
            contest = found[0]
            version = await data_version(conn)
            standing, teams = await self._standings(conn, contest, version, now)
            rows = [_row(contest, s, teams) for s in standing]
            won = [_row(contest, s, teams) for s in scoring.winners(standing)]
            final: Final = {
                "rows": [r.model_dump(mode="json") for r in rows],
                "winners": [_winner(r).model_dump(mode="json") for r in won],
            }
            if not await repo.settle(contest, final, now):
                return None
            await repo.changed()
            await _contest_won(conn, contest, won, now, voice_of(self._settings))
            log.info(
                "contest settled",
                extra={"contest": contest_id, "winners": len(final["winners"])},
            )
            return final

        return await in_transaction(self._db, work, what=f"settle contest {contest_id}")

    async def _standings(
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


def _row(contest: Contest, standing: Standing, teams: dict[str, str]) -> ContestRow:
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


async def _contest_won(
    conn: AsyncConnection, contest: Contest, winners: list[ContestRow], now: int, voice: Voice
) -> int:
    """The ``contest_won`` notifications of a contest just settled, in its settlement's
    transaction (the outbox): one per alert watching it and winner (``shared.alerting``)."""
    settled = Settled(
        contest.id,
        contest.name,
        "rep" if contest.participants == "reps" else "team",
        contest.score.metric or "points",
        tuple(ContestWinner(row.rep_id or row.team_id or "", row.score) for row in winners),
    )
    reading = Reading(settled=settled)
    watching = of_kind(await outbox.enabled_alerts(conn), "contest_won")
    crossings = [crossing for alert in watching for crossing in decide(alert, reading)]
    return await outbox.write(conn, crossings, now, voice)


def _goal_factors(
    holders: list[str], test: scoring.GoalTest, targets: dict[str, dict[str, float]]
) -> dict[str, float]:
    """What each participant holding the goal has its threshold multiplied by: its target of
    the attainment's metric (``per_target``), else 1."""
    if not test.per_target:
        return dict.fromkeys(holders, 1.0)
    found = {s: next(iter(targets.get(s, {}).values()), 0.0) for s in holders}
    return {s: target for s, target in found.items() if target > 0}


def _winner(row: ContestRow) -> Winner:
    return Winner(rep_id=row.rep_id, team_id=row.team_id, name=row.name)


def _stored(contest: Contest, final: Final) -> _Computed:
    rows = [ContestRow.model_validate(r) for r in final.get("rows", [])]
    winners = [Winner.model_validate(w) for w in final.get("winners", [])]
    settled = contest.settled_at if contest.settled_at is not None else 0
    return _Computed(contest, rows, winners, _at(settled))


async def settle_periodically(standings: Standings, every_s: float = 15.0) -> None:
    """Settle the contests that are due, every ``every_s``, whether or not anyone reads them
    (their winners are known on time). A failure is logged (at ERROR when it repeats on a
    healthy database) and tried again next time."""
    repeats = Repeats()
    while True:
        try:
            await standings.settle_due(datetime.now(UTC))
            repeats.clear()
        except Exception as exc:
            await log_failure(log, "settling contests", exc, repeats, standings.db)
        await asyncio.sleep(every_s)
