"""Targets: set with a history, read, listed, imported, and what a window is measured against
(``shared.targets``: one rule for boards, KPIs, contests and alerts, the team fallback
included).

- **Saving** names the period a value applies from (``starting``: ``2027-01``, ``2027-W03``,
  ``2027-Q1``, ``2027``, a date); earlier periods keep the value they had. Without
  ``starting``, a first value applies from the beginning (a new target stands for every
  period, as targets always did), and a new value for a target that has one applies from the
  current period. A target of a rep or a team that is not on the roster is a 404.
- **Reading** gives the value in force now (null: none yet) and the whole history.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from zoneinfo import ZoneInfo

from services.api.common.imports import Error, Errors
from services.api.common.pages import decode_cursor, encode_cursor
from services.api.common.params import SubjectKind
from services.api.roster.service import epoch
from services.api.targets.imports import Placed
from services.api.targets.repository import Step, TargetKey, TargetRepository
from services.api.targets.schemas import HistoryStep, TargetList, TargetOut, TargetsImported
from shared.calendar import Period, local_date, period_at
from shared.problems import NotFound, refused
from shared.targets import History, TargetBook, in_force, period_label, starting_at
from shared.windows import Window


class TargetCache:
    """Every target with its history, as of a targets version: they are few and change
    rarely, so they are read again only when the version moves. One per app."""

    def __init__(self) -> None:
        self._cached: tuple[int, TargetBook] | None = None

    async def book(self, repo: TargetRepository, version: int) -> TargetBook:
        if self._cached is None or self._cached[0] != version:
            self._cached = (version, await repo.book())
        return self._cached[1]


class Targets:
    """The targets as one request (or one board) sees them: through its connection, the app's
    cache, and the organisation's calendar."""

    def __init__(
        self, repo: TargetRepository, cache: TargetCache, tz: ZoneInfo, week_start: int
    ) -> None:
        self._repo, self._cache = repo, cache
        self._tz, self._week_start = tz, week_start

    # --- writing ------------------------------------------------------------------------

    def starting(self, key: TargetKey, label: str | None, history: History, now: datetime) -> int:
        """The instant the value applies from (see the module); a ``ValueError`` for a label
        that names no ``key.period``."""
        if label is not None:
            return starting_at(key.period, label, self._tz, self._week_start)
        if not history:
            return 0
        return period_at(key.period, epoch(now), self._tz, self._week_start).start

    async def save(
        self, key: TargetKey, value: float, label: str | None, now: datetime, version: int
    ) -> None:
        if missing := await self.missing({(key.kind, key.subject)}):
            raise _unknown_subject(missing)
        history = (await self.book(version)).entries.get(_entry(key), ())
        try:
            starting = self.starting(key, label, history, now)
        except ValueError as exc:
            raise refused(("starting", str(exc))) from None
        if _effect(history, starting, value) == "unchanged":
            return  # the same value again: no new step in its history
        await self._repo.save([(key, starting, value)])
        await self._repo.changed()

    async def save_many(self, steps: list[Step]) -> None:
        await self._repo.save(steps)
        await self._repo.changed()

    async def missing(self, wanted: set[tuple[SubjectKind, str]]) -> set[tuple[str, str]]:
        """Those of ``(rep|team, id)`` on no roster."""
        return await self._repo.missing_subjects(wanted)

    async def delete(self, key: TargetKey, label: str | None) -> None:
        starting = None
        if label is not None:
            try:
                starting = starting_at(key.period, label, self._tz, self._week_start)
            except ValueError as exc:
                raise refused(("starting", str(exc))) from None
        if not await self._repo.delete(key, starting):
            raise _missing(key)
        await self._repo.changed()

    # --- reading ------------------------------------------------------------------------

    async def book(self, version: int) -> TargetBook:
        return await self._cache.book(self._repo, version)

    async def shown(self, key: TargetKey, version: int, now: datetime) -> TargetOut:
        history = (await self.book(version)).entries.get(_entry(key))
        if not history:
            raise _missing(key)
        return self.out(key, history, now)

    def out(self, key: TargetKey, history: History, now: datetime) -> TargetOut:
        current = period_at(key.period, epoch(now), self._tz, self._week_start).start
        steps = [
            HistoryStep(
                starting=self.label(key.period, starting),
                starts_at=None if not starting else datetime.fromtimestamp(starting, self._tz),
                value=value,
            )
            for starting, value in history
        ]
        return TargetOut(
            scope=key.kind, id=key.subject, metric=key.metric, period=key.period,
            value=in_force(history, current), history=steps,
        )  # fmt: skip

    def label(self, period: Period, starting: int) -> str | None:
        """How the period starting at ``starting`` is named (None: from the beginning)."""
        return period_label(period, local_date(starting, self._tz)) if starting else None

    async def listed(
        self,
        version: int,
        now: datetime,
        kind: SubjectKind | None,
        subject: str | None,
        metric: str | None,
        period: Period | None,
        limit: int,
        cursor: str | None,
    ) -> TargetList:
        """A page of targets in (scope, id, metric, period) order (``common.pages``)."""
        after = decode_cursor(cursor, (str, str, str, str))
        keys = sorted(
            k for k in (await self.book(version)).entries
            if kind in (None, k[0]) and subject in (None, k[1]) and metric in (None, k[2])
            and period in (None, k[3]) and (after is None or list(k) > after)
        )  # fmt: skip
        book = await self.book(version)
        shown = keys[:limit]
        items = [self.out(TargetKey(*k), book.entries[k], now) for k in shown]  # type: ignore[arg-type]
        more = len(keys) > limit
        return TargetList(items=items, next_cursor=encode_cursor(list(shown[-1])) if more else None)

    async def for_window(
        self,
        kind: SubjectKind,
        metrics: set[str],
        window: Window,
        version: int,
        subject: str | None = None,
        members: Iterable[tuple[str, str | None]] | None = None,
    ) -> dict[str, dict[str, float]]:
        """subject -> metric -> the target ``window`` is measured against; a team without its
        own: its reps' summed (``members``: each rep and its team at the window's time)."""
        if not metrics:
            return {}
        book = await self.book(version)
        return book.for_window(kind, metrics, window, self._tz, self._week_start, subject, members)


async def import_targets(
    targets: Targets, items: list[Placed], now: datetime, version: int, dry_run: bool
) -> TargetsImported:
    """Set every target of an import, all or nothing: each as its PUT would (its ``starting``,
    or the default), a rep or team not on the roster refused, naming where it is. A
    ``dry_run`` counts and writes nothing."""
    book = await targets.book(version)
    missing = await targets.missing({(kind_of(p.item.scope), p.item.id) for p in items})
    errors = Errors()
    steps: list[Step] = []
    seen: dict[tuple[TargetKey, int], str] = {}
    counts = {"created": 0, "changed": 0, "unchanged": 0}
    for each in items:
        item = each.item
        key = TargetKey(kind_of(item.scope), item.id, item.metric, item.period)
        if (key.kind, key.subject) in missing:
            errors.add(Error(each.field("id"), f"no {key.kind} {key.subject!r} on the roster"))
            continue
        history = book.entries.get(_entry(key), ())
        try:
            starting = targets.starting(key, item.starting, history, now)
        except ValueError as exc:
            errors.add(Error(each.field("starting"), str(exc)))
            continue
        if (key, starting) in seen:
            errors.add(Error(each.field("id"), f"the same target is also at {seen[key, starting]}"))
            continue
        seen[key, starting] = each.at
        kind = _effect(history, starting, item.value)
        counts[kind] += 1
        if kind != "unchanged":
            steps.append((key, starting, item.value))
    errors.refuse_if_any()
    if not dry_run:
        await targets.save_many(steps)
    return TargetsImported(dry_run=dry_run, **counts)


def _effect(history: History, starting: int, value: float) -> str:
    """What setting ``value`` from ``starting`` does to a target with ``history``: creates it,
    changes it, or leaves it as it is (the value in force then is that already)."""
    if not history:
        return "created"
    return "unchanged" if in_force(history, starting) == value else "changed"


def _entry(key: TargetKey) -> tuple[str, str, str, Period]:
    return (key.kind, key.subject, key.metric, key.period)


def _missing(key: TargetKey) -> NotFound:
    return NotFound(f"no {key.period} target of {key.metric} for {key.kind} {key.subject!r}")


def _unknown_subject(missing: set[tuple[str, str]]) -> NotFound:
    kind, subject = sorted(missing)[0]
    where = "reps" if kind == "rep" else "teams"
    return NotFound(f"no {kind} {subject!r}: add it first (PUT /v1/{where}/{subject})")


def kind_of(scope: str) -> SubjectKind:
    return "rep" if scope in ("rep", "reps") else "team"
