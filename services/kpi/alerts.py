"""Alerts decided inside the KPI flush: the outbox (``architecture.md``, decision 12).

After a batch's aggregates are upserted, and in the same transaction, the alerts watching what
the batch touched are evaluated and each crossing is written as a notification with a pending
delivery per channel. The transaction commits both or neither, so a crash loses no
notification and a replay doubles none: a notification is unique per alert, subject and
occurrence (``INSERT … ON CONFLICT DO NOTHING``), so it fires once however often the crossing
is seen again (duplicates, replays, a correction and a re-crossing in the same occurrence).

Evaluated here, for the subjects the batch touched:
- ``threshold``: the value of the window holding now crosses (``>=``/``<=``) the value; once
  per window occurrence (each day of ``today``...).
- ``target_reached``: the value of the period holding now reaches the period's target.
- ``new_leader``: the board's sole leader, once per leader and occurrence.
- ``deal_won``: a deal newly won (at or above ``min_amount``), once per deal and win time.
Scheduled triggers (``behind_pace``, ``contest_won``) are decided elsewhere.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

import orjson
from pydantic import TypeAdapter
from sqlalchemy import and_, func, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from services.kpi import metrics
from services.kpi.engine import Deltas
from shared.alerts import (
    DealWon,
    NewLeader,
    TargetReached,
    Threshold,
    Trigger,
    render,
)
from shared.buckets import tile
from shared.catalogue import evaluate, needed_counters
from shared.db.models import Alert, AlertsVersion, Delivery, Notification, Rep, Target, Team, table
from shared.db.models import kpi_rollups as _rollups
from shared.targets import window_target
from shared.windows import Window, resolve_window

log = logging.getLogger(__name__)
_alerts, _version = table(Alert), table(AlertsVersion)
_notifications, _deliveries = table(Notification), table(Delivery)
_targets, _reps, _teams = table(Target), table(Rep), table(Team)
_TRIGGER: TypeAdapter[Any] = TypeAdapter(Trigger)
PERIOD_WINDOW = {
    "day": "today",
    "week": "this_week",
    "month": "this_month",
    "quarter": "this_quarter",
    "year": "this_year",
}


class Win(NamedTuple):
    """A deal newly won in a batch: its id, when, its revenue, the rep (None: unassigned)."""

    deal_id: str
    at: int
    revenue_cents: int
    rep_id: str | None


@dataclass(frozen=True, slots=True)
class _Watched:
    id: str
    name: str
    channels: tuple[str, ...]
    message: str | None
    trigger: Any  # one of shared.alerts' triggers


@dataclass(frozen=True, slots=True)
class _Crossing:
    alert: _Watched
    scope: str
    subject: str
    occurrence: str
    values: dict[str, Any]  # for the text and the payload: metric, value, window, target...


class AlertWatch:
    """The enabled alerts (reloaded when their version moves), evaluated in each flush."""

    def __init__(self, tz: ZoneInfo, week_start: int = 0) -> None:
        self._tz, self._week_start = tz, week_start
        self._version = -1
        self._watched: list[_Watched] = []

    async def raise_for(
        self, conn: AsyncConnection, deltas: Deltas, wins: Iterable[Win], now: float | None = None
    ) -> int:
        """Write the notifications this batch's aggregates cause: how many were new."""
        await self._reload(conn)
        if not self._watched:
            return 0
        at = time.time() if now is None else now
        touched = _touched(deltas)
        crossings: list[_Crossing] = []
        for alert in self._watched:
            trigger = alert.trigger
            if isinstance(trigger, Threshold | TargetReached):
                crossings += await self._crossed(conn, alert, touched, at)
            elif isinstance(trigger, NewLeader) and touched.get(trigger.scope):
                crossings += await self._leader(conn, alert, at)
            elif isinstance(trigger, DealWon):
                crossings += _won(alert, trigger, wins)
        return await self._write(conn, crossings, at) if crossings else 0

    async def _reload(self, conn: AsyncConnection) -> None:
        version = (await conn.execute(select(_version.c.version))).scalar() or 0
        if version == self._version:
            return
        rows = await conn.execute(
            select(_alerts.c.id, _alerts.c.name, _alerts.c.channels, _alerts.c.message,
                   _alerts.c.trigger).where(_alerts.c.enabled.is_(True))
        )  # fmt: skip
        self._watched = [
            _Watched(i, n, tuple(orjson.loads(c)), m, _TRIGGER.validate_json(t))
            for i, n, c, m, t in rows
        ]
        self._version = int(version)
        log.info("alerts loaded", extra={"version": version, "alerts": len(self._watched)})

    def _window(self, name: str, at: float) -> Window:
        now = datetime.fromtimestamp(at, UTC)
        return resolve_window(name, now=now, tz=self._tz, week_start=self._week_start)

    async def _crossed(
        self,
        conn: AsyncConnection,
        alert: _Watched,
        touched: dict[str, set[str]],
        at: float,
    ) -> list[_Crossing]:
        trigger = alert.trigger
        subjects = sorted(touched.get(trigger.scope, ()))
        if not subjects:
            return []
        name = trigger.window if isinstance(trigger, Threshold) else PERIOD_WINDOW[trigger.period]
        window = self._window(name, at)
        values = await _values(conn, trigger.scope, subjects, trigger.metric, window, self._tz)
        targets = (
            await self._targets(conn, trigger.scope, subjects, trigger.metric, window)
            if isinstance(trigger, TargetReached)
            else {}
        )
        found = []
        for subject in subjects:
            value = values.get(subject)
            if value is None:
                continue
            if isinstance(trigger, Threshold):
                hit = value >= trigger.value if trigger.op == ">=" else value <= trigger.value
                target = None
            else:
                target = targets.get(subject)
                hit = target is not None and value >= target
            if hit:
                details = {"metric": trigger.metric, "value": value, "window": name}
                found.append(
                    _Crossing(alert, trigger.scope, subject, str(window.start_ts),
                              {**details, "target": target})
                )  # fmt: skip
        return found

    async def _targets(
        self, conn: AsyncConnection, scope: str, subjects: list[str], metric: str, window: Window
    ) -> dict[str, float]:
        rows = await conn.execute(
            select(_targets.c.subject_id, _targets.c.period, _targets.c.value).where(
                _targets.c.scope == scope,
                _targets.c.metric == metric,
                _targets.c.subject_id.in_(subjects),
            )
        )
        periods: dict[str, dict[Any, float]] = {}
        for subject, period, value in rows:
            periods.setdefault(subject, {})[period] = float(value)
        found = {}
        for subject, standing in periods.items():
            target = window_target(standing, window, self._tz, self._week_start)
            if target:
                found[subject] = target
        return found

    async def _leader(self, conn: AsyncConnection, alert: _Watched, at: float) -> list[_Crossing]:
        trigger: NewLeader = alert.trigger
        window = self._window(trigger.window, at)
        values = await _values(conn, trigger.scope, None, trigger.metric, window, self._tz)
        ranked = sorted(
            ((v, s) for s, v in values.items() if v is not None and v > 0), reverse=True
        )
        if not ranked or (len(ranked) > 1 and ranked[1][0] == ranked[0][0]):
            return []  # nobody yet, or a tie: no sole leader
        value, leader = ranked[0]
        details = {"metric": trigger.metric, "value": value, "window": trigger.window}
        occurrence = f"{window.start_ts}:{leader}"
        return [_Crossing(alert, trigger.scope, leader, occurrence, details)]

    async def _write(self, conn: AsyncConnection, crossings: list[_Crossing], at: float) -> int:
        names = await _names(conn, crossings)
        insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
        raised = 0
        for crossing in crossings:
            alert, kind = crossing.alert, crossing.alert.trigger.kind
            name = names.get((crossing.scope, crossing.subject), crossing.subject)
            text = render(alert.message, kind, {
                "alert": alert.name, "subject": name, "subject_id": crossing.subject,
                **{k: _shown(v) for k, v in crossing.values.items()},
            })  # fmt: skip
            data = {
                "alert_id": alert.id,
                "kind": kind,
                "subject": {"scope": crossing.scope, "id": crossing.subject, "name": name},
                **crossing.values,
                "text": text,
            }
            notification_id = f"ntf_{uuid.uuid4().hex}"
            created = await conn.execute(
                insert(_notifications)
                .values(
                    id=notification_id,
                    alert_id=alert.id,
                    kind=kind,
                    scope=crossing.scope,
                    subject_id=crossing.subject,
                    occurrence=crossing.occurrence,
                    data=orjson.dumps(data).decode(),
                    raised_at=int(at * 1000),
                )
                .on_conflict_do_nothing(
                    index_elements=["alert_id", "scope", "subject_id", "occurrence"]
                )
                .returning(_notifications.c.id)
            )
            if created.scalar() is None:
                continue  # this crossing fired before
            raised += 1
            metrics.notification_raised(kind)
            if alert.channels:
                await conn.execute(
                    _deliveries.insert(),
                    [
                        {
                            "notification_id": notification_id,
                            "channel_id": channel,
                            "status": "pending",
                            "attempts": 0,
                            "next_attempt_at": int(at * 1000),
                        }
                        for channel in alert.channels
                    ],
                )
        return raised


def _touched(deltas: Deltas) -> dict[str, set[str]]:
    """scope -> the subjects whose figures the batch changed."""
    touched: dict[str, set[str]] = {}
    for scope, _, grain, _, subject in deltas:
        if grain == "day" and scope in ("rep", "team"):
            touched.setdefault(scope, set()).add(subject)
    return touched


def _won(alert: _Watched, trigger: DealWon, wins: Iterable[Win]) -> list[_Crossing]:
    found = []
    for win in wins:
        amount = win.revenue_cents / 100
        if win.rep_id is None or (trigger.min_amount is not None and amount < trigger.min_amount):
            continue
        details = {"metric": "revenue", "value": amount, "amount": amount, "deal_id": win.deal_id}
        occurrence = f"deal:{win.deal_id}@{win.at}"
        found.append(_Crossing(alert, "rep", win.rep_id, occurrence, details))
    return found


async def _values(
    conn: AsyncConnection,
    scope: str,
    subjects: list[str] | None,
    metric: str,
    window: Window,
    tz: ZoneInfo,
) -> dict[str, float | int | None]:
    """Per subject (of ``subjects``, or all of ``scope``), the metric over ``window``, read in
    this transaction (so with the batch's own rows)."""
    counters = sorted(needed_counters([metric]))
    ranges = tile(window.start_ts, window.end_ts, tz)
    within = or_(*(
        and_(_rollups.c.grain == r.grain, _rollups.c.bucket_start >= r.lo,
             _rollups.c.bucket_start < r.hi) for r in ranges
    ))  # fmt: skip
    query = (
        select(_rollups.c.subject_id, *(func.sum(_rollups.c[c]) for c in counters))
        .where(_rollups.c.scope == scope, within)
        .group_by(_rollups.c.subject_id)
    )
    if subjects is not None:
        query = query.where(_rollups.c.subject_id.in_(subjects))
    values = {}
    for subject, *totals in await conn.execute(query):
        sums = {c: int(t or 0) for c, t in zip(counters, totals, strict=True)}
        values[subject] = evaluate(sums, [metric])[metric]
    return values


async def _names(conn: AsyncConnection, crossings: list[_Crossing]) -> dict[tuple[str, str], str]:
    found: dict[tuple[str, str], str] = {}
    for scope, names in (("rep", _reps), ("team", _teams)):
        wanted = sorted({c.subject for c in crossings if c.scope == scope})
        if wanted:
            rows = await conn.execute(
                select(names.c.id, names.c.name).where(names.c.id.in_(wanted))
            )
            found.update({(scope, i): n for i, n in rows})
    return found


def _shown(value: Any) -> Any:
    """A value as a message shows it: whole numbers without a trailing .0."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return "" if value is None else value
