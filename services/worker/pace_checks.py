"""``behind_pace`` alerts, checked every minute by the worker (any number of instances: the
outbox's uniqueness keeps one notification per alert, subject and day). This module reads;
``shared.alerting`` decides.

A subject is behind when its pace for the period holding now (value / expected so far,
``shared.pacing``) is under the alert's ``below``. Checked on working days only
(``WORKDAYS``), from ``CHECK_FROM_HOUR`` local time on: by then half the working day has gone,
so "behind" means something (at 00:05 every pace is a near-empty fraction). At most once per
subject per local day. A subject is paced against its own target of the metric.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared import outbox
from shared.alert_reads import window_targets, window_values
from shared.alerting import Crossing, Reading, Watched, decide, of_kind, watched_window
from shared.alerts import BehindPace
from shared.db.retry import retrying
from shared.pacing import elapsed_share
from shared.roster import read_memberships
from shared.settings import Settings, voice_of
from shared.windows import resolve_window

CHECK_FROM_HOUR = 12  # local time: half the day has gone
CHECK_EVERY_S = 60.0


async def check_pace(db: AsyncEngine, settings: Settings, now: datetime) -> int:
    """Raise the ``behind_pace`` notifications due at ``now``: how many were new."""
    local = now.astimezone(settings.tz)
    workdays = settings.working_days
    if local.hour < CHECK_FROM_HOUR or (workdays is not None and local.weekday() not in workdays):
        return 0

    async def once() -> int:  # one transaction, run again on a conflict
        async with db.begin() as conn:
            watching = of_kind(await outbox.enabled_alerts(conn), "behind_pace")
            crossings = []
            for alert in watching:
                crossings += await _behind(conn, alert, settings, now)
            return await outbox.write(conn, crossings, now.timestamp(), voice_of(settings))

    return await retrying(once, what="pace checks")


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
