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

import hashlib
import logging
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncConnection

from services.kpi.engine import Deltas
from services.kpi.state import Win
from shared import outbox
from shared.alert_reads import window_targets, window_values
from shared.alerts import PERIOD_WINDOW, DealWon, NewLeader, TargetReached, Threshold
from shared.outbox import Crossing, Watched
from shared.windows import Window, resolve_window

log = logging.getLogger(__name__)


class AlertWatch:
    """The enabled alerts (reloaded when their version moves), evaluated in each flush."""

    def __init__(self, tz: ZoneInfo, week_start: int = 0) -> None:
        self._tz, self._week_start = tz, week_start
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
    ) -> int:
        """Write the notifications this batch's aggregates cause: how many were new.
        ``version``: the alerts version, read with the roster's (no round trip of its own)."""
        if not self.enabled:
            return 0
        await self._reload(conn, version)
        if not self._watched:
            return 0
        at = time.time() if now is None else now
        touched = _touched(deltas)
        crossings: list[Crossing] = []
        for alert in self._watched:
            trigger = alert.trigger
            if isinstance(trigger, Threshold | TargetReached):
                crossings += await self._crossed(conn, alert, touched, at)
            elif isinstance(trigger, NewLeader) and touched.get(trigger.scope):
                crossings += await self._leader(conn, alert, at)
            elif isinstance(trigger, DealWon):
                crossings += _won(alert, trigger, wins)
        return await outbox.write(conn, crossings, at)

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
        self,
        conn: AsyncConnection,
        alert: Watched,
        touched: dict[str, set[str]],
        at: float,
    ) -> list[Crossing]:
        trigger = alert.trigger
        subjects = sorted(touched.get(trigger.scope, ()))
        if not subjects:
            return []
        name = trigger.window if isinstance(trigger, Threshold) else PERIOD_WINDOW[trigger.period]
        window = self._window(name, at)
        values = await window_values(
            conn, trigger.scope, subjects, trigger.metric, window, self._tz
        )
        targets = (
            await window_targets(
                conn, trigger.scope, subjects, trigger.metric, window, self._tz, self._week_start
            )
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
                    Crossing(alert, trigger.scope, subject, str(window.start_ts),
                              {**details, "target": target})
                )  # fmt: skip
        return found

    async def _leader(self, conn: AsyncConnection, alert: Watched, at: float) -> list[Crossing]:
        trigger: NewLeader = alert.trigger
        window = self._window(trigger.window, at)
        values = await window_values(conn, trigger.scope, None, trigger.metric, window, self._tz)
        ranked = sorted(
            ((v, s) for s, v in values.items() if v is not None and v > 0), reverse=True
        )
        if not ranked or (len(ranked) > 1 and ranked[1][0] == ranked[0][0]):
            return []  # nobody yet, or a tie: no sole leader
        value, leader = ranked[0]
        details = {"metric": trigger.metric, "value": value, "window": trigger.window}
        occurrence = f"{window.start_ts}:{leader}"
        return [Crossing(alert, trigger.scope, leader, occurrence, details)]


def _touched(deltas: Deltas) -> dict[str, set[str]]:
    """scope -> the subjects whose figures the batch changed."""
    touched: dict[str, set[str]] = {}
    for scope, _, grain, _, subject in deltas:
        if grain == "day" and scope in ("rep", "team"):
            touched.setdefault(scope, set()).add(subject)
    return touched


def _won(alert: Watched, trigger: DealWon, wins: Iterable[Win]) -> list[Crossing]:
    found = []
    for win in wins:
        amount = win.revenue_cents / 100
        if win.rep_id is None or (trigger.min_amount is not None and amount < trigger.min_amount):
            continue
        details = {"metric": "revenue", "value": amount, "amount": amount, "deal_id": win.deal_id}
        # The deal by digest: its id may be longer (256) than an occurrence holds (128)
        key = hashlib.sha256(win.deal_id.encode()).hexdigest()[:32]
        occurrence = f"deal:{key}@{win.at}"
        found.append(Crossing(alert, "rep", win.rep_id, occurrence, details))
    return found
