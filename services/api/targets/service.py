"""Targets: set, read, and what a window is measured against (``shared.targets``)."""

from __future__ import annotations

from collections.abc import Iterable
from zoneinfo import ZoneInfo

from services.api.common.params import SubjectKind
from services.api.targets.repository import TargetKey, TargetRepository
from shared.calendar import Period
from shared.problems import NotFound
from shared.targets import window_target
from shared.windows import Window

BySubject = dict[str, dict[str, dict[Period, float]]]  # subject -> metric -> period -> value


class TargetCache:
    """Every standing target, as of a targets version: they are few and change rarely, so they
    are read again only when the version moves. One per app, shared by its requests."""

    def __init__(self) -> None:
        self._cached: tuple[int, dict[TargetKey, float]] | None = None

    async def standing(self, repo: TargetRepository, version: int) -> dict[TargetKey, float]:
        if self._cached is None or self._cached[0] != version:
            self._cached = (version, await repo.all())
        return self._cached[1]


class Targets:
    """The targets as one request (or one board) sees them: through its connection, the app's
    cache, and the organisation's calendar."""

    def __init__(
        self, repo: TargetRepository, cache: TargetCache, tz: ZoneInfo, week_start: int
    ) -> None:
        self._repo, self._cache = repo, cache
        self._tz, self._week_start = tz, week_start

    async def save(self, key: TargetKey, value: float) -> None:
        await self._repo.save(key, value)
        await self._repo.changed()

    async def delete(self, key: TargetKey) -> None:
        if not await self._repo.delete(key):
            raise _missing(key)
        await self._repo.changed()

    async def value(self, key: TargetKey, version: int) -> float:
        value = (await self._cache.standing(self._repo, version)).get(key)
        if value is None:
            raise _missing(key)
        return value

    async def of(
        self, kind: SubjectKind, metrics: set[str], version: int, subject: str | None = None
    ) -> BySubject:
        """subject -> metric -> period -> value, for one subject or all of a kind."""
        found: BySubject = {}
        for key, value in (await self._cache.standing(self._repo, version)).items():
            if key.kind == kind and key.metric in metrics and subject in (None, key.subject):
                found.setdefault(key.subject, {}).setdefault(key.metric, {})[key.period] = value
        return found

    async def for_window(
        self,
        kind: SubjectKind,
        metrics: set[str],
        window: Window,
        version: int,
        subject: str | None = None,
    ) -> dict[str, dict[str, float]]:
        """subject -> metric -> the target ``window`` is measured against."""
        result: dict[str, dict[str, float]] = {}
        if not metrics:
            return result
        for who, by_metric in (await self.of(kind, metrics, version, subject)).items():
            for name, periods in by_metric.items():
                target = window_target(periods, window, self._tz, self._week_start)
                if target is not None:
                    result.setdefault(who, {})[name] = target
        return result

    async def summed_by_team(
        self,
        team_of: Iterable[tuple[str, str | None]],
        metrics: set[str],
        window: Window,
        version: int,
    ) -> dict[str, dict[str, float]]:
        """team -> metric -> its reps' targets for ``window`` summed (``team_of``: each rep and
        its team): what a team without a target of its own is paced against."""
        by_rep = await self.for_window("rep", metrics, window, version)
        summed: dict[str, dict[str, float]] = {}
        for rep, team in team_of:
            if team is None:
                continue
            for name, value in by_rep.get(rep, {}).items():
                totals = summed.setdefault(team, {})
                totals[name] = totals.get(name, 0.0) + value
        return {t: {m: round(v, 6) for m, v in own.items()} for t, own in summed.items()}


def _missing(key: TargetKey) -> NotFound:
    return NotFound(f"no {key.period} target of {key.metric} for {key.kind} {key.subject!r}")
