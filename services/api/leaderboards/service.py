"""Leaderboards: computed once per change of the data, however many screens ask.

A board is ranked with standard competition ranking, by the metric's value or by attainment
(value / target, so reps with different quotas compete); a ratio resting on fewer facts than its
minimum volume is listed unranked. ``previous_rank`` comes from the same board as it stood a
configured interval ago. Results are cached per board and data version (and minute, for windows
that move with the clock); while one is recomputed, others asking get the previous one.

A board is computed outside any one request (many share it): it reads on a connection of its
own, one for all its queries.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.api.common.freshness import DataVersion
from services.api.common.params import SubjectKind, WindowQuery, resolve
from services.api.kpis.queries import KpiQueries, Sums
from services.api.kpis.schemas import PaceOut
from services.api.leaderboards.schemas import LeaderboardOut, LeaderboardRow
from services.api.leaderboards.scores import (
    Scores,
    Shown,
    evaluated,
    minus_sums,
    minus_totals,
    of_total,
    scores,
    shown,
    values_of_totals,
)
from services.api.live.contenders import Contender, Contenders
from services.api.live.stamped import StampedCache, stamp_of
from services.api.roster.repository import RosterRepository
from services.api.roster.service import epoch
from services.api.targets.repository import TargetRepository
from services.api.targets.service import TargetCache, Targets
from shared.catalogue import TARGETED, needed_counters
from shared.pacing import elapsed_share, pace, paced
from shared.settings import Settings
from shared.windows import Window, WindowError

RankBy = Literal["value", "attainment", "pace"]


@dataclass(frozen=True, slots=True)
class BoardSpec:
    kind: SubjectKind  # reps or teams are ranked
    metric: str
    window: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    team: str | None = None
    limit: int = 100
    rank_by: RankBy = "value"

    @property
    def asked(self) -> WindowQuery:
        return WindowQuery(self.window, self.start, self.end)


@dataclass(frozen=True, slots=True)
class _Reads:
    """What computing one board reads, all on one connection."""

    sums: KpiQueries
    roster: RosterRepository
    targets: Targets


class Boards:
    def __init__(
        self, db: AsyncEngine, targets: TargetCache, settings: Settings, capacity: int = 512
    ) -> None:
        self._db, self._targets, self._settings = db, targets, settings
        self._cache: StampedCache[BoardSpec, tuple[LeaderboardOut, bytes]] = StampedCache(capacity)
        self._contenders = Contenders()  # per roster version
        self.computed = 0  # how many boards were computed (tests and metrics)

    async def board(
        self,
        spec: BoardSpec,
        version: DataVersion,
        now: datetime,
        window: Window | None = None,
        *,
        wait: bool = False,
    ) -> tuple[LeaderboardOut, bytes]:
        """The board for ``spec`` at ``version`` and ``now`` (its ``window`` then, if the caller
        resolved it already), and its JSON: from the cache, or computed (single flight). While
        it is being recomputed, a reader gets the previous board unless it must ``wait`` for the
        current one (a live stream, which would otherwise take the previous board for the
        current version and keep it until the next change)."""

        async def compute() -> tuple[LeaderboardOut, bytes]:
            result = await self._compute(spec, version, now, window or self.resolve(spec, now))
            return result, result.model_dump_json(by_alias=True).encode()

        return await self._cache.get(spec, stamp_of(version, now), compute, wait=wait)

    def resolve(self, spec: BoardSpec, now: datetime) -> Window:
        return resolve(spec.asked, now, self._settings)

    def _reads(self, conn: AsyncConnection) -> _Reads:
        settings = self._settings
        return _Reads(
            KpiQueries(conn, settings.tz, settings.retention_floors),
            RosterRepository(conn),
            Targets(
                TargetRepository(conn), self._targets, settings.tz, settings.week_start.weekday
            ),
        )

    async def _compute(
        self, spec: BoardSpec, version: DataVersion, now: datetime, window: Window
    ) -> LeaderboardOut:
        """The board: its contenders, everyone's numbers now and then, and the first rows in
        full. Only the rows shown are ordered and given their previous rank (a rank is 1 + how
        many are ahead: ``ranking.Standing``)."""
        self.computed += 1
        cut = self._then(spec, window, now)
        async with self._db.connect() as conn:
            reads = self._reads(conn)
            contenders = await self._contenders_of(reads, spec, window, version, now)
            teams = await self._team_names(reads, version, now)
            ids = [c.id for c in contenders]
            sums_now, sums_then = await _read(reads.sums, spec, window, cut)
            current = await self._scores(reads, spec, window, ids, sums_now, version)
            paces = await self._paces(reads, spec, window, version, now)
            if spec.rank_by == "pace":
                current = current._replace(keys=paces.keys(ids, current.values))
            previous = None
            if cut is not None and sums_then is not None:
                previous = await self._scores(reads, spec, cut, ids, sums_then, version)
                if spec.rank_by == "pace":
                    then = await self._paces(reads, spec, cut, version, cut.end)
                    previous = previous._replace(keys=then.keys(ids, previous.values))
        rows = shown(ids, [c.name for c in contenders], current, previous, spec.limit)
        return LeaderboardOut(
            metric=spec.metric,
            rank_by=spec.rank_by,
            window=window.name,
            from_=window.start,
            to=window.end,
            as_of=version.as_of,
            compared_to=cut.end if previous is not None and cut is not None else None,
            rows=[
                _row(spec, contenders[row.contender], row, current, teams, paces) for row in rows
            ],
            rows_total=len(ids),
        )

    async def _team_names(
        self, reads: _Reads, version: DataVersion, now: datetime
    ) -> dict[str, str]:
        teams = await self._contenders.of(reads.roster, "team", version.roster, epoch(now))
        return {team.id: team.name for team in teams}

    async def _paces(
        self, reads: _Reads, spec: BoardSpec, window: Window, version: DataVersion, at: datetime
    ) -> Paces:
        """Each contender's target of the board's metric (a team without one: its reps'
        targets summed) and the window's elapsed share at ``at``: none for a ratio."""
        if not paced(spec.metric):
            return Paces({}, None)
        metric, settings = spec.metric, self._settings
        own = await self._targets_of(reads, spec.kind, {metric}, window, version, epoch(at))
        targets = {s: t[metric] for s, t in own.items() if metric in t}
        share = elapsed_share(
            window.start_ts, window.end_ts, epoch(at), settings.tz, settings.working_days
        )
        return Paces(targets, share)

    async def _targets_of(
        self,
        reads: _Reads,
        kind: SubjectKind,
        metrics: set[str],
        window: Window,
        version: DataVersion,
        at: int,
    ) -> dict[str, dict[str, float]]:
        """Each contender's targets for ``window`` (a team without its own: its reps' summed,
        the reps in it at ``at``)."""
        members = None
        if kind == "team" and metrics:
            members = await self._contenders.members(reads.roster, version.roster, at)
        return await reads.targets.for_window(kind, metrics, window, version.targets, None, members)

    async def _contenders_of(
        self, reads: _Reads, spec: BoardSpec, window: Window, version: DataVersion, now: datetime
    ) -> list[Contender]:
        """Who is on the board: every team, or every rep (in its team now, unless they left
        before the window); of ``spec.team`` only, if it names one."""
        every = await self._contenders.of(
            reads.roster, spec.kind, version.roster, epoch(now), window.start_ts
        )
        return every if spec.team is None else [c for c in every if c.team_id == spec.team]

    def _then(self, spec: BoardSpec, window: Window, now: datetime) -> Window | None:
        """The window of the same board as it stood a movement interval ago: as resolved then,
        up to then. None if it had not begun: no position to move from, no movement."""
        then = now - timedelta(minutes=self._settings.leaderboard_movement_minutes)
        try:
            before = self.resolve(spec, then)
        except WindowError:  # a custom window that had not begun then
            return None
        if before.start >= then:
            return None
        return Window(before.name, before.start, min(before.end, then))

    async def _scores(
        self,
        reads: _Reads,
        spec: BoardSpec,
        window: Window,
        ids: list[str],
        sums: _Sums,
        version: DataVersion,
    ) -> Scores:
        metric = spec.metric
        wanted = {TARGETED[metric]} if metric in TARGETED else set()
        if spec.rank_by == "attainment":
            wanted.add(metric)
        at = min(epoch(datetime.now(UTC)), window.end_ts - 1)
        targets = await self._targets_of(reads, spec.kind, wanted, window, version, at)
        if isinstance(sums, _Totals):
            values, volumes = values_of_totals(metric, ids, sums.totals), None
        else:
            values, volumes = evaluated(metric, ids, sums, targets)
        by_attainment = spec.rank_by == "attainment"
        minimum = self._settings.min_volume(metric)
        return scores(metric, by_attainment, ids, values, volumes, targets, minimum)


@dataclass(frozen=True, slots=True)
class _Totals:
    """A count or sum board's input: per subject, the total of the metric's counters."""

    totals: dict[str, int]


_Sums = _Totals | Sums  # what a board reads: totals (counts and sums) or sums (the rest)


async def _read(
    queries: KpiQueries, spec: BoardSpec, window: Window, cut: Window | None
) -> tuple[_Sums, _Sums | None]:
    """What the board reads for ``window`` now and for ``cut`` then (if any). With the same
    start, the board then is the board now less the last interval: a small range to read
    instead of the whole window again. Totals of both are read in one scan."""
    counters = needed_counters([spec.metric])
    since = None
    if cut is not None and cut.start == window.start and cut.end <= window.end:
        since = Window(window.name, cut.end, window.end)
    if of_total(spec.metric):
        asked = [window, *([since or cut] if cut else [])]
        found = [_Totals(t) for t in await queries.totals_per_window(spec.kind, asked, counters)]
        if cut is None:
            return found[0], None
        return found[0], _minus(found[0], found[1]) if since else found[1]
    whole = await queries.sums(spec.kind, window, counters)
    if since is not None:
        return whole, _minus(whole, await queries.sums(spec.kind, since, counters))
    return whole, await queries.sums(spec.kind, cut, counters) if cut else None


def _minus(whole: _Sums, part: _Sums) -> _Sums:
    if isinstance(whole, _Totals) and isinstance(part, _Totals):
        return _Totals(minus_totals(whole.totals, part.totals))
    if isinstance(whole, _Totals) or isinstance(part, _Totals):
        raise TypeError("a board reads totals or sums, the same for both")
    return minus_sums(whole, part)


@dataclass(frozen=True, slots=True)
class Paces:
    """A board's pacing: each contender's target of the metric, and the elapsed share."""

    targets: dict[str, float]
    share: float | None

    def of(self, subject: str, value: float | int | None) -> PaceOut | None:
        target = self.targets.get(subject)
        return None if target is None else PaceOut(**asdict(pace(value, target, self.share)))

    def keys(self, ids: list[str], values: list[float | int | None]) -> list[float | int | None]:
        """What a board by pace ranks: each contender's pace (None: no target, or no time
        elapsed yet to be expected to have done anything)."""
        targets, share = self.targets, self.share
        return [
            pace(value, targets[subject], share).pace if subject in targets else None
            for subject, value in zip(ids, values, strict=True)
        ]


def _row(
    spec: BoardSpec,
    contender: Contender,
    row: Shown,
    current: Scores,
    teams: dict[str, str],
    paces: Paces,
) -> LeaderboardRow:
    i, rank, before = row
    movement = before - rank if before is not None and rank is not None else None
    return LeaderboardRow(
        rank=rank,
        previous_rank=before,
        movement=movement,
        rep_id=contender.id if spec.kind == "rep" else None,
        name=contender.name,
        team_id=contender.team_id,
        team_name=teams.get(contender.team_id) if contender.team_id is not None else None,
        value=current.values[i],
        attainment=current.attainments[i] if current.attainments is not None else None,
        volume=current.volumes[i] if current.volumes is not None else None,
        pace=paces.of(contender.id, current.values[i]),
    )
