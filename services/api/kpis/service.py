"""KPIs of a rep or a team in a window, their timeseries, and activity nobody owns yet.

Every metric is evaluated from summed base counters (``shared.catalogue``); attainment metrics
against the window's targets. A timeseries is the window cut at interval boundaries: minutes and
hours on the clock, days and weeks at the organisation's local midnights (``shared.calendar``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from itertools import islice
from typing import Literal

from services.api.common.freshness import DataVersion
from services.api.common.params import SubjectKind
from services.api.kpis.queries import KpiQueries
from services.api.kpis.schemas import (
    KpiRow,
    KpisOut,
    MetricOut,
    MetricValue,
    PaceOut,
    RepKpisOut,
    TeamKpisOut,
    TimeseriesOut,
    TimeseriesPoint,
    UnassignedOut,
    UnassignedRow,
)
from services.api.roster.repository import RosterRepository
from services.api.roster.service import Subject, as_of, epoch, members_at
from services.api.targets.service import Targets
from shared import i18n
from shared.calendar import Period, periods
from shared.catalogue import CATALOGUE, TARGETED, evaluate, needed_counters
from shared.pacing import elapsed_share, pace, paced
from shared.problems import Problem
from shared.settings import Settings
from shared.windows import Window

Interval = Literal["minute", "hour", "day", "week"]
MAX_POINTS = 1500  # points of one timeseries; more is a 400 (a day of minutes fits)
UNASSIGNED = ["calls_total", "deals_won", "revenue"]
WHOLE_SCOPE_FROM = 1000  # subjects: past this, one scan of the scope beats chunked id lists


class Kpis:
    """The KPI reads of one request: sums through its connection, targets through the app's
    cache, windows cut in the organisation's calendar."""

    def __init__(
        self,
        queries: KpiQueries,
        targets: Targets,
        settings: Settings,
        roster: RosterRepository | None = None,
    ) -> None:
        self._queries, self._targets, self._settings = queries, targets, settings
        self._roster = roster  # for a team's pace from its reps' targets

    async def of(
        self,
        subject: Subject,
        window: Window,
        names: list[str],
        version: DataVersion,
        now: datetime | None = None,
    ) -> KpisOut:
        members = await self.members(subject.kind, window, now)
        found = await self.values(subject.kind, [subject.id], window, names, version, members)
        metrics = found[subject.id]
        paced_names = [n for n in names if paced(n)]
        members = await self.members(subject.kind, window, now)
        targets = await self._targets.for_window(
            subject.kind, set(paced_names), window, version.targets, subject.id, members
        )
        own = targets.get(subject.id, {})
        kpis = KpisOut(
            window=window.name,
            from_=window.start,
            to=window.end,
            as_of=version.as_of,
            metrics=metrics,
            pace=self._pace(metrics, paced_names, own, window, now),
        ).model_dump()
        if subject.kind == "rep":
            return RepKpisOut(**kpis, rep_id=subject.id, team_id=subject.team_id)
        return TeamKpisOut(**kpis, team_id=subject.id)

    async def values(
        self,
        kind: SubjectKind,
        subjects: Sequence[str],
        window: Window,
        names: list[str],
        version: DataVersion,
        members: list[tuple[str, str]] | None = None,
    ) -> dict[str, dict[str, MetricValue]]:
        """Each of ``subjects``' metrics ``names`` in ``window`` (attainments against the
        window's targets; a team without its own: its ``members``' summed): what ``of``
        answers for one subject, for many at once. Their sums are one query: of the listed
        subjects, or of the whole scope when they are many."""
        counters = needed_counters(names)
        listed = list(subjects) if len(subjects) <= WHOLE_SCOPE_FROM else None
        sums = await self._queries.sums(kind, window, counters, listed)
        wanted = {TARGETED[n] for n in names if n in TARGETED}
        targets = await self._targets.for_window(
            kind, wanted, window, version.targets, None, members
        )
        return {s: evaluate(sums.get(s, {}), names, targets.get(s, {})) for s in subjects}

    async def members(
        self, kind: SubjectKind, window: Window, now: datetime | None
    ) -> list[tuple[str, str]] | None:
        """For a team: the reps on the floor at the window's time, with their teams (whose
        targets a team without its own is measured against); None for a rep."""
        if kind != "team" or self._roster is None:
            return None
        return await members_at(self._roster, as_of(window, now))

    def rows(self, kpis: KpisOut) -> list[KpiRow]:
        """A KPI answer as rows for an export: one per metric, named in the organisation's
        language, with its pace when it has one."""
        language = self._settings.language
        return [
            KpiRow(
                metric=name,
                label=i18n.label(i18n.METRICS, name, language),
                value=value,
                pace=kpis.pace.get(name),
            )
            for name, value in kpis.metrics.items()
        ]

    def _pace(
        self,
        metrics: dict[str, float | int | None],
        names: list[str],
        targets: dict[str, float],
        window: Window,
        now: datetime | None,
    ) -> dict[str, PaceOut]:
        """The pace of each of ``names`` that has a target (``shared.pacing``)."""
        at = epoch(now or datetime.now(UTC))
        share = elapsed_share(
            window.start_ts, window.end_ts, at, self._settings.tz, self._settings.working_days
        )
        return {
            n: PaceOut(**asdict(pace(metrics[n], targets[n], share))) for n in names if n in targets
        }

    async def timeseries(
        self,
        subject: Subject,
        metric: str,
        window: Window,
        interval: Interval,
        version: DataVersion,
    ) -> TimeseriesOut:
        cuts = interval_cuts(window, interval, self._settings)
        _within_limit(cuts)
        counters = needed_counters([metric])
        per_point = await self._queries.sums_per_window(subject.kind, subject.id, cuts, counters)
        points = [
            TimeseriesPoint(start=cut.start, end=cut.end, value=evaluate(sums, [metric])[metric])
            for cut, sums in zip(cuts, per_point, strict=True)
        ]
        return TimeseriesOut(
            scope=subject.kind,
            id=subject.id,
            metric=metric,
            interval=interval,
            window=window.name,
            from_=window.start,
            to=window.end,
            as_of=version.as_of,
            points=points,
        )

    async def unassigned(self, window: Window, version: DataVersion) -> UnassignedOut:
        sums = await self._queries.sums("unassigned", window, needed_counters(UNASSIGNED))
        rows = [_unassigned_row(identity, own) for identity, own in sorted(sums.items())]
        return UnassignedOut(
            window=window.name,
            from_=window.start,
            to=window.end,
            as_of=version.as_of,
            rows=[r for r in rows if r.calls_total or r.deals_won or r.revenue],
        )


def _unassigned_row(identity: str, sums: dict[str, int]) -> UnassignedRow:
    values = evaluate(sums, UNASSIGNED)
    provider, _, external_id = identity.partition(":")
    return UnassignedRow(
        identity=identity,
        provider=provider,
        external_id=external_id,
        calls_total=int(values["calls_total"] or 0),
        deals_won=int(values["deals_won"] or 0),
        revenue=float(values["revenue"] or 0),
        activity=f"/v1/unassigned/{identity}/activity",
    )


def catalogue() -> list[MetricOut]:
    return [
        MetricOut(
            name=m.name,
            kind=m.kind,
            unit=m.unit,
            definition=m.definition,
            labels=i18n.labels(i18n.METRICS, m.name),
        )
        for m in CATALOGUE.values()
    ]


def _within_limit(cuts: list[Window]) -> None:
    if len(cuts) > MAX_POINTS:
        # 400, not 422: each parameter is valid alone; it is their combination that asks for
        # a series longer than the API serves.
        raise Problem(
            f"more than {MAX_POINTS} points: at most {MAX_POINTS}; pick a longer interval "
            "or a shorter window",
            slug="too-many-points",
            errors=[{"field": "interval", "message": f"more than {MAX_POINTS} points"}],
        )


def interval_cuts(window: Window, interval: Interval, settings: Settings) -> list[Window]:
    """The window cut at interval boundaries; one cut past ``MAX_POINTS`` at most, which is
    enough to refuse the series."""
    if interval in ("minute", "hour"):
        step = 60 if interval == "minute" else 3600
        first = window.start_ts - window.start_ts % step
        edges = ((edge, edge + step) for edge in range(first, window.end_ts, step))
    else:
        period: Period = "day" if interval == "day" else "week"
        spans = periods(
            period, window.start_ts, window.end_ts, settings.tz, settings.week_start.weekday
        )
        edges = ((span.start, span.end) for span in spans)
    return [_cut(window, start, end) for start, end in islice(edges, MAX_POINTS + 1)]


def _cut(window: Window, start: int, end: int) -> Window:
    return Window(
        window.name,
        datetime.fromtimestamp(max(start, window.start_ts), UTC),
        datetime.fromtimestamp(min(end, window.end_ts), UTC),
    )
