"""The overview (today's headline numbers, data freshness, dead letters, unassigned activity),
the read-only settings, and the connections page."""

from __future__ import annotations

import time

from fastapi.responses import Response

from services.api.common.database import Db, api_router
from services.api.common.freshness import data_version
from services.api.common.params import Now, WindowQuery, resolve
from services.api.connections.service import connections as connection_status
from services.api.console import queries
from services.api.console.views import Viewer
from services.api.kpis.queries import KpiQueries
from shared.bus.log import LogBus
from shared.catalogue import evaluate, needed_counters
from shared.pacing import WEEKDAYS

router = api_router(prefix="/console", include_in_schema=False)
HEADLINES = ["calls_total", "meetings_booked", "deals_won", "revenue"]


@router.get("")
async def overview(console: Viewer, db: Db, now: Now) -> Response:
    settings = console.settings
    today = resolve(WindowQuery("today"), now, settings)
    kpis = KpiQueries(db, settings.tz, settings.retention_floors)
    per_team = await kpis.sums("team", today, needed_counters(HEADLINES))
    totals: dict[str, int] = {}
    for counters in per_team.values():  # the floor: every team's counters added up
        for counter, value in counters.items():
            totals[counter] = totals.get(counter, 0) + value
    headline = evaluate(totals, HEADLINES)
    unassigned = await kpis.sums("unassigned", today, needed_counters(["calls_total"]))
    version = await data_version(db)
    dead: int | str | None = None  # None: no bus; "kafka": on the broker, not in the database
    bus = console.request.app.state.bus
    if bus is not None and not isinstance(bus, LogBus):
        dead = "kafka"
    elif isinstance(bus, LogBus):
        since = int((time.time() - 86400) * 1000)
        dead = await queries.dead_letters_since(db, settings.deadletter_topic, since)
    age = None if not version.updated_at_ms else int(time.time() - version.updated_at_ms / 1000)
    found = await connection_status(db, settings, str(console.request.base_url), now)
    return console.render(
        "overview.html", headline=headline, unassigned=len(unassigned), dead=dead,
        as_of=version.as_of if version.updated_at_ms else None, age=age, window=today,
        connections=[c for c in found.items if c.configured],
    )  # fmt: skip


@router.get("/settings")
async def settings_page(console: Viewer) -> Response:
    settings = console.settings
    days = settings.working_days
    return console.render(
        "settings.html",
        rows=[
            ("settings.timezone", settings.timezone),
            ("settings.locale", settings.locale),
            ("settings.currency", settings.currency),
            ("settings.week_start", console.t("day." + settings.week_start.value[:3])),
            (
                "settings.workdays",
                ", ".join(console.t("day." + WEEKDAYS[d]) for d in sorted(days))
                if days is not None
                else console.t("settings.every_day"),
            ),
            ("settings.session_hours", console.number(settings.console_session_hours, 1)),
        ],
    )


@router.get("/connections")
async def connections(console: Viewer, db: Db, now: Now) -> Response:
    """What to paste into each provider, what to subscribe to, and its last deliveries (the
    same answer as ``GET /v1/connections``)."""
    found = await connection_status(db, console.settings, str(console.request.base_url), now)
    return console.render("connections.html", found=found)
