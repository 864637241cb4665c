"""Alerts decided inside the KPI flush: the outbox (``architecture.md``, decision 12).

After a batch's aggregates are upserted, and in the same transaction, the alerts watching what
the batch touched are evaluated and each crossing is written as a notification with a pending
delivery per channel. The transaction commits both or neither, so a crash loses no
notification and a replay doubles none: a notification is unique per alert, subject and
occurrence (``INSERT … ON CONFLICT DO NOTHING``), so it fires once however often the crossing
is seen again (duplicates, replays, a correction and a re-crossing in the same occurrence).

Read here, for the subjects the batch touched, and decided by ``shared.alerting`` (the pure
evaluators, one per trigger kind):
- ``threshold``: the value of the window holding now crosses (``>=``/``<=``) the value; once
  per window occurrence (each day of ``today``...).
- ``target_reached``: the value of the period holding now reaches the period's target.
- ``new_leader``: the board's sole leader, once per leader and occurrence.
- ``deal_won``: a deal newly won (at or above ``min_amount``), once per deal and win time.
Scheduled triggers (``behind_pace``, ``contest_won``) are read by the worker.

The reads are shared: the alerts watching one scope over one window (``today`` for a
threshold, the period's window for a target) are evaluated from one statement that sums every
counter their metrics need, so a flush costs a statement per (scope, window) in use, not one
per alert (3,000 alerts once made a one-event flush take 1.6 s).
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime
from types import UnionType
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncConnection

from services.kpi.domain.engine import Applied, Deltas
from services.kpi.domain.state import Win
from shared import outbox
from shared.alert_reads import Sums, metric_values, targets_by_metric, window_sums
from shared.alerting import Crossing, Reading, Values, Watched, decide, of_kind, watched_window
from shared.alerts import NewLeader, TargetReached, Threshold, Voice
from shared.catalogue import needed_counters
from shared.roster import Memberships
from shared.windows import Window, resolve_window

log = logging.getLogger(__name__)
Watch = tuple[str, str]  # (scope, window name): the alerts that share one read


class AlertWatch:
    """The enabled alerts (reloaded when their version moves), evaluated in each flush."""

    def __init__(self, tz: ZoneInfo, week_start: int = 0, voice: Voice | None = None) -> None:
        self._tz, self._week_start = tz, week_start
        self._voice = voice or Voice()
        self._version = -1
        self._watched: list[Watched] = []
        self.enabled = True  # off while a replay rebuilds history

    async def raise_for(
        self,
        conn: AsyncConnection,
        version: int,
        deltas: Deltas,
        wins: Iterable[Win],
        now: float | None = None,
        members: Memberships | None = None,
    ) -> int:
        """Write the notifications this batch's aggregates cause: how many were new.
        ``version``: the alerts version, read with the roster's (no round trip of its own);
        ``members``: the roster's memberships, for a team's target from its reps'."""
        if not self.enabled:
            return 0
        await self._reload(conn, version)
        if not self._watched:
            return 0
        at = time.time() if now is None else now
        touched = _touched(deltas)
        crossings = await self._crossed(conn, touched, at, members or Memberships())
        crossings += await self._leaders(conn, touched, at)
        won = Reading(wins=list(wins))
        for alert in of_kind(self._watched, "deal_won"):
            crossings += decide(alert, won)
        return await outbox.write(conn, crossings, at, self._voice)

    async def _reload(self, conn: AsyncConnection, version: int) -> None:
        if version == self._version:
            return
        self._watched = await outbox.enabled_alerts(conn)
        self._version = version
        log.info("alerts loaded", extra={"version": version, "alerts": len(self._watched)})

    def _window(self, name: str, at: float) -> Window:
        now = datetime.fromtimestamp(at, UTC)
        return resolve_window(name, now=now, tz=self._tz, week_start=self._week_start)

    async def _crossed(
        self, conn: AsyncConnection, touched: dict[str, set[str]], at: float, members: Memberships
    ) -> list[Crossing]:
        """Thresholds and targets reached by the touched subjects: per (scope, window), one
        read of their values and one of their targets."""
        found: list[Crossing] = []
        for (scope, name), alerts in _watches(self._watched, Threshold | TargetReached).items():
            subjects = sorted(touched.get(scope, ()))
            if not subjects:
                continue
            window = self._window(name, at)
            sums = await window_sums(conn, scope, subjects, _counters(alerts), window, self._tz)
            targeted = {a.trigger.metric for a in alerts if isinstance(a.trigger, TargetReached)}
            targets = await targets_by_metric(
                conn, scope, subjects, targeted, window, self._tz, self._week_start,
                list(members.members_at(int(at))) if scope == "team" else None,
            )  # fmt: skip
            values = _ByMetric(sums)
            for alert in alerts:
                metric = alert.trigger.metric
                reading = Reading(name, window.start_ts, values[metric], targets.get(metric, {}))
                found += decide(alert, reading)
        return found

    async def _leaders(
        self, conn: AsyncConnection, touched: dict[str, set[str]], at: float
    ) -> list[Crossing]:
        """The sole leaders of the boards the batch moved: one read per (scope, window)."""
        found: list[Crossing] = []
        for (scope, name), alerts in _watches(self._watched, NewLeader).items():
            if not touched.get(scope):
                continue
            window = self._window(name, at)
            sums = await window_sums(conn, scope, None, _counters(alerts), window, self._tz)
            values = _ByMetric(sums)
            for alert in alerts:
                metric = alert.trigger.metric
                found += decide(alert, Reading(name, window.start_ts, values[metric]))
        return found


def live_only(applied: Applied, history: frozenset[tuple[str, str]]) -> tuple[Deltas, list[Win]]:
    """What a batch booked that alerts may look at: not what its historical events booked
    (``history``: their ``(source, id)``; ``shared.history``), so a deal won two months ago
    rings no bell today. Read off the batch's ledger: the subjects and deals its live events
    booked to (a subject a live event touched is evaluated as it stands, history included)."""
    if not history:
        return applied.deltas, applied.wins
    subjects: set[tuple[str, str]] = set()
    deals: set[str] = set()
    for cause, booked, _ in applied.ledger:
        if (cause.source, cause.id) in history:
            continue
        subjects.update(booked.subjects)
        if deal_id := cause.data.__dict__.get("deal_id"):
            deals.add(deal_id)
    deltas = {key: v for key, v in applied.deltas.items() if (key[0], key[4]) in subjects}
    return deltas, [win for win in applied.wins if win.deal_id in deals]


def _watches(watched: list[Watched], kinds: type[Any] | UnionType) -> dict[Watch, list[Watched]]:
    """The alerts of ``kinds``, by the (scope, window) whose values they read."""
    grouped: dict[Watch, list[Watched]] = defaultdict(list)
    for alert in watched:
        if isinstance(alert.trigger, kinds):
            grouped[(alert.trigger.scope, watched_window(alert.trigger))].append(alert)
    return grouped


def _counters(alerts: list[Watched]) -> set[str]:
    """Every base counter the metrics of ``alerts`` are made of."""
    return needed_counters(sorted({alert.trigger.metric for alert in alerts}))


class _ByMetric(dict[str, Values]):
    """metric -> subject -> value, each metric made once from the shared sums."""

    def __init__(self, sums: Sums) -> None:
        super().__init__()
        self._sums = sums

    def __missing__(self, metric: str) -> Values:
        self[metric] = values = metric_values(self._sums, metric)
        return values


def _touched(deltas: Deltas) -> dict[str, set[str]]:
    """scope -> the subjects whose figures the batch changed."""
    touched: dict[str, set[str]] = {}
    for scope, _, grain, _, subject in deltas:
        if grain == "day" and scope in ("rep", "team"):
            touched.setdefault(scope, set()).add(subject)
    return touched
