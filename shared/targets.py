"""What a window is measured against. Pure.

A target is set per rep or team, per metric, per period (day, week, month, quarter, year), with
a history: each value applies from the period it starts in (``starting``) until the next value,
so raising January's quota leaves December's attainment as it was.

A calendar window is measured against its period's whole target; any other window pro-rates:
each period it overlaps contributes the target in force in that period times the share of the
period it covers (``last_7d`` inside a 30-day month: 7/30 of that month's target).

A team without a target of its own for a metric is measured against the sum of its reps'
targets (``summed``): one rule for boards, KPIs, pace, contests and alerts alike.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Collection, Iterable, Mapping
from datetime import date
from zoneinfo import ZoneInfo

from shared.calendar import Period, midnight_ts, period_start, periods
from shared.windows import CALENDAR_PERIODS, Window

WINDOW_PERIOD: dict[str, Period] = {name: period for name, (period, _) in CALENDAR_PERIODS.items()}
FALLBACK_ORDER: tuple[Period, ...] = ("month", "week", "day", "quarter", "year")

History = tuple[tuple[int, float], ...]  # (starting, value), by starting: each until the next
Standing = Mapping[Period, History]  # one subject's targets of one metric, by period


def in_force(history: History, at: int) -> float | None:
    """The value that applies to the period starting at ``at`` (None before the first)."""
    index = bisect_right([starting for starting, _ in history], at) - 1
    return history[index][1] if index >= 0 else None


def window_target(
    targets: Standing, window: Window, tz: ZoneInfo, week_start: int = 0
) -> float | None:
    """The target ``window`` is measured against, from one subject's targets by period (the
    window's own period if it has one, else another, in ``FALLBACK_ORDER``); None when none
    is in force in any period the window overlaps."""
    if not targets:
        return None
    own = WINDOW_PERIOD.get(window.name)
    period: Period = (
        own
        if own is not None and own in targets
        else next(p for p in FALLBACK_ORDER if p in targets)
    )
    history = targets[period]
    total, found = 0.0, False
    for span in periods(period, window.start_ts, window.end_ts, tz, week_start):
        value = in_force(history, span.start)
        covered = min(span.end, window.end_ts) - max(span.start, window.start_ts)
        if value is None or covered <= 0:
            continue
        total += value * covered / span.seconds
        found = True
    return round(total, 6) if found else None


def summed(
    own: Mapping[str, float],
    members: Iterable[tuple[str, str | None]],
    of_reps: Mapping[str, float],
) -> dict[str, float]:
    """Each team's target: its own (``own``: team -> target), else the sum of its reps'
    (``members``: each rep and its team; ``of_reps``: rep -> target), when any has one."""
    sums: dict[str, float] = {}
    for rep, team in members:
        if team is not None and team not in own and rep in of_reps:
            sums[team] = sums.get(team, 0.0) + of_reps[rep]
    return {**{t: round(v, 6) for t, v in sums.items()}, **own}


# --- naming the period a value starts in ------------------------------------------------

_LABELS: dict[Period, re.Pattern[str]] = {
    "year": re.compile(r"(\d{4})"),
    "quarter": re.compile(r"(\d{4})-Q([1-4])"),
    "month": re.compile(r"(\d{4})-(0[1-9]|1[0-2])"),
    "week": re.compile(r"(\d{4})-W(0[1-9]|[1-4]\d|5[0-3])"),
}
EXAMPLES: dict[Period, str] = {
    "year": "2027",
    "quarter": "2027-Q1",
    "month": "2027-01",
    "week": "2027-W03 or a date",
    "day": "2027-01-15",
}


def starting_date(period: Period, label: str, week_start: int = 0) -> date:
    """The first date of the ``period`` named by ``label`` (``2027``, ``2027-Q1``, ``2027-01``,
    ``2027-W03`` (ISO week), or a date: the period holding it); a ``ValueError`` saying what
    is expected otherwise."""
    text = label.strip()
    pattern = _LABELS.get(period)
    match = pattern.fullmatch(text) if pattern else None
    try:
        if match and period == "year":
            return date(int(match[1]), 1, 1)
        if match and period == "quarter":
            return date(int(match[1]), 3 * int(match[2]) - 2, 1)
        if match and period == "month":
            return date(int(match[1]), int(match[2]), 1)
        if match and period == "week":
            return period_start("week", date.fromisocalendar(int(match[1]), int(match[2]), 1),
                                week_start)  # fmt: skip
        return period_start(period, date.fromisoformat(text), week_start)
    except ValueError:
        pass
    raise ValueError(f"not a {period}: write it like {EXAMPLES[period]}")


def starting_at(period: Period, label: str, tz: ZoneInfo, week_start: int = 0) -> int:
    """``starting_date`` as the instant the period begins (epoch seconds)."""
    return midnight_ts(starting_date(period, label, week_start), tz)


def period_label(period: Period, first: date) -> str:
    """How a period starting on ``first`` is named (the inverse of ``starting_date``)."""
    if period == "year":
        return f"{first.year}"
    if period == "quarter":
        return f"{first.year}-Q{(first.month - 1) // 3 + 1}"
    if period == "month":
        return f"{first.year}-{first.month:02d}"
    if period == "week":
        year, week, _ = first.isocalendar()
        return f"{year}-W{week:02d}" if first.weekday() == 0 else first.isoformat()
    return first.isoformat()


# --- every target, with its history, as one read model ---------------------------------

TargetKey = tuple[str, str, str, Period]  # (rep|team, subject, metric, period)


class TargetBook:
    """Every target with its history (as read at one targets version), and what a window is
    measured against, the team fallback included."""

    def __init__(self, entries: Mapping[TargetKey, History]) -> None:
        self.entries = dict(entries)
        # (kind, metric) -> subject -> period -> history: a board reads one metric of one kind
        self._index: dict[tuple[str, str], dict[str, dict[Period, History]]] = {}
        for (kind, subject, metric, period), history in self.entries.items():
            self._index.setdefault((kind, metric), {}).setdefault(subject, {})[period] = history

    def standing(self, kind: str, subject: str, metric: str) -> dict[Period, History]:
        return dict(self._index.get((kind, metric), {}).get(subject, {}))

    def for_window(
        self,
        kind: str,
        metrics: Collection[str],
        window: Window,
        tz: ZoneInfo,
        week_start: int = 0,
        subject: str | None = None,
        members: Iterable[tuple[str, str | None]] | None = None,
    ) -> dict[str, dict[str, float]]:
        """subject -> metric -> the target ``window`` is measured against, for one subject or
        every one of ``kind``. A team without its own is given its reps' summed (``members``:
        each rep and its team at the window's time; None: no fallback)."""
        found = self._own(kind, metrics, window, tz, week_start, subject)
        if kind != "team" or members is None:
            return found
        pairs = list(members)
        of_reps = self._own("rep", metrics, window, tz, week_start, None)
        for metric in metrics:
            own = {t: v[metric] for t, v in found.items() if metric in v}
            reps = {r: v[metric] for r, v in of_reps.items() if metric in v}
            for team, value in summed(own, pairs, reps).items():
                if subject in (None, team):
                    found.setdefault(team, {})[metric] = value
        return found

    def _own(
        self,
        kind: str,
        metrics: Collection[str],
        window: Window,
        tz: ZoneInfo,
        week_start: int,
        subject: str | None,
    ) -> dict[str, dict[str, float]]:
        found: dict[str, dict[str, float]] = {}
        for metric in metrics:
            subjects = self._index.get((kind, metric), {})
            chosen = subjects.items() if subject is None else [(subject, subjects.get(subject, {}))]
            for who, standing in chosen:
                target = window_target(standing, window, tz, week_start)
                if target is not None:
                    found.setdefault(who, {})[metric] = target
        return found
