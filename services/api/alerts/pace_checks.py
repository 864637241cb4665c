"""``behind_pace`` alerts, checked on a schedule by the API process (any number of instances:
the outbox's uniqueness keeps one notification per alert, subject and day).

A subject is behind when its pace for the period holding now (value / expected so far,
``shared.pacing``) is under the alert's ``below``. Checked on working days only
(``WORKDAYS``), from ``CHECK_FROM_HOUR`` local time on: by then half the working day has gone,
so "behind" means something (at 00:05 every pace is a near-empty fraction). At most once per
subject per local day. A subject is paced against its own target of the metric.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.api.common.database import in_transaction
from shared import outbox
from shared.alert_reads import window_targets, window_values
from shared.alerting import Crossing, Reading, Watched, decide, of_kind, watched_window
from shared.alerts import BehindPace
from shared.db.repeats import Repeats, log_failure
from shared.pacing import elapsed_share
from shared.roster import read_memberships
from shared.settings import Settings, voice_of
from shared.windows import resolve_window

log = logging.getLogger(__name__)
CHECK_FROM_HOUR = 12  # local time: half the day has gone
CHECK_EVERY_S = 60.0


async def check_pace(db: AsyncEngine, settings: Settings, now: datetime) -> int:
    """Raise the ``behind_pace`` notifications due at ``now``: how many were new."""
    local = now.astimezone(settings.tz)
    workdays = settings.working_days
    if local.hour < CHECK_FROM_HOUR or (workdays is not None and local.weekday() not in workdays):
        return 0

    async def work(conn: AsyncConnection) -> int:
        watching = of_kind(await outbox.enabled_alerts(conn), "behind_pace")
        crossings = []
        for alert in watching:
            crossings += await _behind(conn, alert, settings, now)
        return await outbox.write(conn, crossings, now.timestamp(), voice_of(settings))

    return await in_transaction(db, work, what="pace checks")


async def _behind(
    conn: AsyncConnection, alert: Watched, settings: Settings, now: datetime
) -> list[Crossing]:
    """Read what ``alert`` watches (its subjects' targets and values of the period holding
    now) and let ``shared.alerting`` decide who is behind."""
    trigger: BehindPace = alert.trigger
    name = watched_window(trigger)
    window = resolve_window(name, now=now, tz=settings.tz, week_start=settings.week_start.weekday)
    members = None
    if trigger.scope == "team":  # a team without its own target: its reps' summed
        members = list((await read_memberships(conn)).members_at(int(now.timestamp())))
    targets = await window_targets(
        conn, trigger.scope, None, trigger.metric, window, settings.tz,
        settings.week_start.weekday, members,
    )  # fmt: skip
    if not targets:
        return []
    # every subject of the scope (no IN list of thousands; those without targets are ignored)
    values = await window_values(conn, trigger.scope, None, trigger.metric, window, settings.tz)
    share = elapsed_share(
        window.start_ts, window.end_ts, int(now.timestamp()), settings.tz, settings.working_days
    )
    day = now.astimezone(settings.tz).date().isoformat()
    reading = Reading(name, window.start_ts, values, targets, share=share, day=day)
    return decide(alert, reading)


async def check_periodically(db: AsyncEngine, settings: Settings) -> None:
    """``check_pace`` every ``CHECK_EVERY_S``; a failure is logged (at ERROR when it repeats
    on a healthy database) and tried again next time."""
    repeats = Repeats()
    while True:
        try:
            await check_pace(db, settings, datetime.now(UTC))
            repeats.clear()
        except Exception as exc:
            await log_failure(log, "pace checks", exc, repeats, db)
        await asyncio.sleep(CHECK_EVERY_S)
