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

import asyncio
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, NamedTuple

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.api.common.freshness import DataVersion
from services.api.common.params import SubjectKind, WindowQuery, resolve
from services.api.kpis.queries import KpiQueries, Sums
from services.api.leaderboards.ranking import Entry, rank
from services.api.leaderboards.schemas import LeaderboardOut, LeaderboardRow
from services.api.roster.repository import RosterRepository
from services.api.roster.service import epoch, team_at
from services.api.targets.repository import TargetRepository
from services.api.targets.service import TargetCache, Targets
from shared.catalogue import TARGETED, evaluate, needed_counters, volume
from shared.settings import Settings
from shared.windows import Window, WindowError

RankBy = Literal["value", "attainment"]
Stamp = tuple[DataVersion, int]  # what a board is up to date with: data version, minute


def stamp_of(version: DataVersion, now: datetime) -> Stamp:
    """A board is current for one data version and one minute: windows move with the clock."""
    return version, epoch(now) // 60


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


class _Contender(NamedTuple):  # tuples: one per rep of a board, made 10,000 at a time
    id: str
    name: str
    team_id: str | None


@dataclass(frozen=True, slots=True)
class _Reads:
    """What computing one board reads, all on one connection."""

    sums: KpiQueries
    roster: RosterRepository
    targets: Targets


class _Ranked(NamedTuple):
    key: str
    rank: int | None
    value: float | int | None
    attainment: float | None
    volume: int | None


class Boards:
    def __init__(
        self, db: AsyncEngine, targets: TargetCache, settings: Settings, capacity: int = 512
    ) -> None:
        self._db, self._targets, self._settings = db, targets, settings
        self._cache: OrderedDict[BoardSpec, tuple[Stamp, LeaderboardOut, bytes]] = OrderedDict()
        self._locks: dict[BoardSpec, asyncio.Lock] = {}
        self._capacity = capacity
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
        stamp = stamp_of(version, now)
        cached = self._cache.get(spec)
        if cached and cached[0] == stamp:
            return cached[1], cached[2]
        lock = self._locks.setdefault(spec, asyncio.Lock())
        if lock.locked() and cached and not wait:
            return cached[1], cached[2]  # being recomputed: at most one change old
        try:
            async with lock:
                cached = self._cache.get(spec)
                if cached and cached[0] == stamp:
                    return cached[1], cached[2]
                result = await self._compute(spec, version, now, window or self.resolve(spec, now))
                encoded = result.model_dump_json(by_alias=True).encode()
                self._remember(spec, stamp, result, encoded)
                return result, encoded
        finally:
            if spec not in self._cache and not lock.locked():
                self._locks.pop(spec, None)  # failed: no lock kept for a board never cached

    def _remember(
        self, spec: BoardSpec, stamp: Stamp, result: LeaderboardOut, encoded: bytes
    ) -> None:
        self._cache[spec] = (stamp, result, encoded)
        self._cache.move_to_end(spec)
        while len(self._cache) > self._capacity:
            evicted, _ = self._cache.popitem(last=False)
            self._locks.pop(evicted, None)

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
        self.computed += 1
        async with self._db.connect() as conn:
            reads = self._reads(conn)
            contenders = await _contenders(reads.roster, spec, now)
            sums = await reads.sums.sums(spec.kind, window, needed_counters([spec.metric]))
            current = await self._ranked(reads, spec, window, contenders, sums, version)
            previous = await self._previous_ranks(
                reads, spec, window, now, contenders, sums, version
            )
        return LeaderboardOut(
            metric=spec.metric,
            rank_by=spec.rank_by,
            window=window.name,
            from_=window.start,
            to=window.end,
            as_of=version.as_of,
            rows=[_row(spec, r, contenders, previous) for r in current[: spec.limit]],
        )

    async def _previous_ranks(
        self,
        reads: _Reads,
        spec: BoardSpec,
        window: Window,
        now: datetime,
        contenders: dict[str, _Contender],
        sums: Sums,
        version: DataVersion,
    ) -> dict[str, int | None]:
        """The ranks on the same board as it stood then: the window as resolved then, up to
        then. Nothing yet then is no position to move from: no previous rank, no movement."""
        then = now - timedelta(minutes=self._settings.leaderboard_movement_minutes)
        try:
            before = self.resolve(spec, then)
        except WindowError:  # a custom window that had not begun then
            return {}
        if before.start >= then:
            return {}
        cut = Window(before.name, before.start, min(before.end, then))
        counters = needed_counters([spec.metric])
        if cut.start == window.start and cut.end <= window.end:
            # The same start: the board then is the board now less the last interval, a small
            # range to read instead of the whole window again.
            recent = await reads.sums.sums(
                spec.kind, Window(window.name, cut.end, window.end), counters
            )
            earlier = _minus(sums, recent)
        else:
            earlier = await reads.sums.sums(spec.kind, cut, counters)
        ranked = await self._ranked(reads, spec, cut, contenders, earlier, version)
        return {row.key: row.rank for row in ranked if row.value}

    async def _ranked(
        self,
        reads: _Reads,
        spec: BoardSpec,
        window: Window,
        contenders: dict[str, _Contender],
        sums: Sums,
        version: DataVersion,
    ) -> list[_Ranked]:
        metric = spec.metric
        wanted = {TARGETED[metric]} if metric in TARGETED else set()
        if spec.rank_by == "attainment":
            wanted.add(metric)
        targets = await reads.targets.for_window(spec.kind, wanted, window, version.targets)
        minimum = self._settings.min_volume(metric)
        entries, details = [], {}
        for contender in contenders.values():
            own = sums.get(contender.id, {})
            value = evaluate(own, [metric], targets.get(contender.id))[metric]
            facts = volume(metric, own)
            attainment = None
            if spec.rank_by == "attainment":
                target = targets.get(contender.id, {}).get(metric)
                attainment = None if not target or value is None else round(value / target, 6)
            key_value = attainment if spec.rank_by == "attainment" else value
            if facts is not None and facts < minimum:
                key_value = None  # too few facts to compare a ratio fairly
            entries.append(Entry(contender.id, contender.name, key_value))
            details[contender.id] = (value, attainment, facts)
        return [_Ranked(r.entry.key, r.rank, *details[r.entry.key]) for r in rank(entries)]


async def _contenders(
    roster: RosterRepository, spec: BoardSpec, now: datetime
) -> dict[str, _Contender]:
    """Who is on the board: every team, or every rep (in its team now); of ``spec.team`` only,
    if it names one."""
    if spec.kind == "team":
        teams = await roster.all_teams()
        return {t: _Contender(t, n, t) for t, n in teams.items() if spec.team in (None, t)}
    at = epoch(now)
    reps = [(r, team_at(r.memberships, at)) for r in await roster.all_reps()]
    return {r.id: _Contender(r.id, r.name, t) for r, t in reps if spec.team in (None, t)}


def _row(
    spec: BoardSpec,
    ranked: _Ranked,
    contenders: dict[str, _Contender],
    previous: dict[str, int | None],
) -> LeaderboardRow:
    contender = contenders[ranked.key]
    before = previous.get(ranked.key)
    movement = before - ranked.rank if before is not None and ranked.rank is not None else None
    return LeaderboardRow(
        rank=ranked.rank,
        previous_rank=before,
        movement=movement,
        rep_id=contender.id if spec.kind == "rep" else None,
        name=contender.name,
        team_id=contender.team_id,
        value=ranked.value,
        attainment=ranked.attainment,
        volume=ranked.volume,
    )


def _minus(whole: Sums, part: Sums) -> Sums:
    """Per subject and counter: what ``whole`` has beyond ``part`` (counters are additive)."""
    return {
        subject: {c: v - part.get(subject, {}).get(c, 0) for c, v in counters.items()}
        for subject, counters in whole.items()
    }
