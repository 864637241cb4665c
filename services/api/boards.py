"""Leaderboards: computed once per change of the data, however many screens ask.

A board is ranked with standard competition ranking, by the metric's value or by attainment
(value / target, so reps with different quotas compete); a ratio resting on fewer facts than its
minimum volume is listed unranked. ``previous_rank`` comes from the same board as it stood a
configured interval ago. Results are cached per board and data version (and minute, for windows
that move with the clock); while one is recomputed, others asking get the previous one.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncEngine

from services.api.common.freshness import DataVersion
from services.api.kpis.queries import KpiQueries, Sums
from services.api.ranking import Entry, rank
from services.api.roster.repository import RosterRepository
from services.api.roster.service import team_at
from services.api.schemas import LeaderboardOut, LeaderboardRow
from services.api.targets.repository import TargetRepository
from services.api.targets.service import TargetCache, Targets
from shared.catalogue import TARGETED, evaluate, needed_counters, volume
from shared.settings import Settings
from shared.windows import Window, WindowError, resolve_window

Scope = Literal["rep", "team"]
RankBy = Literal["value", "attainment"]
Stamp = tuple[DataVersion, int]  # what a board is up to date with: data version, minute


def stamp_of(version: DataVersion) -> Stamp:
    """A board is current for one data version and one minute: windows move with the clock."""
    return version, int(datetime.now(UTC).timestamp()) // 60


@dataclass(frozen=True, slots=True)
class BoardSpec:
    scope: Scope
    metric: str
    window: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    team: str | None = None
    limit: int = 100
    rank_by: RankBy = "value"


@dataclass(frozen=True, slots=True)
class _Subject:
    id: str
    name: str
    team_id: str | None


class Boards:
    def __init__(
        self,
        queries: KpiQueries,
        db: AsyncEngine,
        targets: TargetCache,
        settings: Settings,
        capacity: int = 512,
    ) -> None:
        self._queries, self._db, self._targets = queries, db, targets
        self._settings = settings
        self._cache: OrderedDict[BoardSpec, tuple[Stamp, LeaderboardOut, bytes]] = OrderedDict()
        self._locks: dict[BoardSpec, asyncio.Lock] = {}
        self._capacity = capacity
        self.computed = 0  # how many boards were computed (tests and metrics)

    async def board(
        self, spec: BoardSpec, version: DataVersion, *, wait: bool = False
    ) -> tuple[LeaderboardOut, bytes]:
        """The board for ``spec`` at ``version`` and its JSON: from the cache, or computed
        (single flight). While it is being recomputed, a reader gets the previous board unless
        it must ``wait`` for the current one (a live stream, which would otherwise take the
        previous board for the current version and keep it until the next change)."""
        stamp = stamp_of(version)
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
                result = await self._compute(spec, version)
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
        return resolve_window(
            spec.window,
            now=now,
            tz=self._settings.tz,
            week_start=self._settings.week_start.weekday,
            start=spec.start,
            end=spec.end,
        )

    async def _compute(self, spec: BoardSpec, version: DataVersion) -> LeaderboardOut:
        self.computed += 1
        now = datetime.now(UTC)
        window = self.resolve(spec, now)
        subjects = await self._subjects(spec, now)
        counters = needed_counters([spec.metric])
        sums = await self._queries.sums(spec.scope, window, counters)
        current = await self._ranked(spec, window, subjects, sums, version.targets)
        # The same board as it stood then: the window as resolved then, up to then.
        then = now - timedelta(minutes=self._settings.leaderboard_movement_minutes)
        previous: dict[str, int | None] = {}
        try:
            before = self.resolve(spec, then)
        except WindowError:  # a custom window that had not begun then
            before = Window(window.name, then, then)
        if before.start < then:
            cut = Window(before.name, before.start, min(before.end, then))
            if cut.start == window.start and cut.end <= window.end:
                # The same start: the board then is the board now less the last interval,
                # a small range to read instead of the whole window again.
                recent = await self._queries.sums(
                    spec.scope, Window(window.name, cut.end, window.end), counters
                )
                earlier = _minus(sums, recent)
            else:
                earlier = await self._queries.sums(spec.scope, cut, counters)
            # Nothing yet then is no position to move from: no previous rank, no movement.
            previous = {
                row.key: row.rank
                for row in await self._ranked(spec, cut, subjects, earlier, version.targets)
                if row.value
            }
        rows = [self._row(spec, r, subjects, previous) for r in current[: spec.limit]]
        return LeaderboardOut(
            metric=spec.metric,
            rank_by=spec.rank_by,
            window=window.name,
            from_=window.start,
            to=window.end,
            as_of=version.as_of,
            rows=rows,
        )

    async def _subjects(self, spec: BoardSpec, now: datetime) -> dict[str, _Subject]:
        at = int(now.timestamp())
        async with self._db.connect() as conn:
            roster = RosterRepository(conn)
            if spec.scope == "team":
                return {
                    t: _Subject(t, n, t)
                    for t, n in (await roster.all_teams()).items()
                    if spec.team is None or t == spec.team
                }
            return {
                r.id: _Subject(r.id, r.name, team_at(r.memberships, at))
                for r in await roster.all_reps()
                if spec.team is None or team_at(r.memberships, at) == spec.team
            }

    async def _ranked(
        self,
        spec: BoardSpec,
        window: Window,
        subjects: dict[str, _Subject],
        sums: Sums,
        targets_version: int,
    ) -> list[_Ranked]:
        metric = spec.metric
        wanted = {TARGETED[spec.metric]} if spec.metric in TARGETED else set()
        if spec.rank_by == "attainment":
            wanted.add(spec.metric)
        async with self._db.connect() as conn:
            targets = await Targets(
                TargetRepository(conn),
                self._targets,
                self._settings.tz,
                self._settings.week_start.weekday,
            ).for_window(spec.scope, wanted, window, targets_version)
        minimum = self._settings.min_volume(metric)
        entries, details = [], {}
        for subject in subjects.values():
            own = sums.get(subject.id, {})
            value = evaluate(own, [metric], targets.get(subject.id))[metric]
            facts = volume(metric, own)
            attainment = None
            if spec.rank_by == "attainment":
                target = targets.get(subject.id, {}).get(metric)
                attainment = None if not target or value is None else round(value / target, 6)
            key_value = attainment if spec.rank_by == "attainment" else value
            if facts is not None and facts < minimum:
                key_value = None  # too few facts to compare a ratio fairly
            entries.append(Entry(subject.id, subject.name, key_value))
            details[subject.id] = (value, attainment, facts)
        return [_Ranked(r.entry.key, r.rank, *details[r.entry.key]) for r in rank(entries)]

    @staticmethod
    def _row(
        spec: BoardSpec,
        ranked: _Ranked,
        subjects: dict[str, _Subject],
        previous: dict[str, int | None],
    ) -> LeaderboardRow:
        subject = subjects[ranked.key]
        before = previous.get(ranked.key)
        movement = before - ranked.rank if before is not None and ranked.rank is not None else None
        return LeaderboardRow(
            rank=ranked.rank,
            previous_rank=before,
            movement=movement,
            rep_id=subject.id if spec.scope == "rep" else None,
            name=subject.name,
            team_id=subject.team_id,
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


@dataclass(frozen=True, slots=True)
class _Ranked:
    key: str
    rank: int | None
    value: float | int | None
    attainment: float | None
    volume: int | None
