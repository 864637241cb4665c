"""The activity behind any number (a rep's, a team's or an unassigned identity's metric in a
window), each event reassigned or excluded with a reason, and the audit list of corrections
with their undo.

The drill-down is the API's (``activity.service.Drilldown``, the KPI values of
``kpis.service``); a correction is ``corrections.service.Corrections``: recorded in the
request's transaction, sent on the bus once committed (``AfterCommit``), applied by the KPI
service. ``made_by`` is the signed-in key's name."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi.responses import Response
from pydantic import ValidationError

from services.api.activity.queries import ActivityQueries, Whose
from services.api.activity.routes import answer
from services.api.activity.service import Asked, Drilldown
from services.api.common.database import AfterCommit, Db, api_router
from services.api.common.exports import Export
from services.api.common.freshness import data_version
from services.api.common.params import Now, WindowQuery, resolve
from services.api.console.roster import console_kpis
from services.api.console.views import Answer, Console, Editor, Viewer, field_of
from services.api.corrections.repository import CorrectionsRepository
from services.api.corrections.schemas import CorrectionIn
from services.api.corrections.service import Corrections, view
from services.api.kpis.queries import KpiQueries
from services.api.roster.repository import RepFilter, RosterRepository
from services.api.roster.service import epoch, rep_subject, reps, team_subject
from shared.catalogue import CATALOGUE, evaluate, needed_counters
from shared.i18n import WINDOWS
from shared.problems import Problem
from shared.windows import WindowError

router = api_router(prefix="/console", include_in_schema=False)
PAGE = 50
SCOPES = ("rep", "team", "unassigned")
DRILL_WINDOWS = [w for w in WINDOWS if w != "custom"]


async def _choices(console: Console, db: Db, now: datetime) -> dict[str, Any]:
    roster = RosterRepository(db)
    found = await reps(roster, RepFilter(now=epoch(now), status="all"), 10_000, None)
    return {
        "reps": found.items, "teams": await roster.all_teams(), "windows": DRILL_WINDOWS,
        "scopes": SCOPES, "metric_names": list(CATALOGUE),
    }  # fmt: skip


async def _drill(console: Console, db: Db, now: datetime, asked: dict[str, str],
                 cursor: str | None, limit: int = PAGE) -> Any:  # fmt: skip
    """The drill-down page ``asked`` names (scope, id, metric, window), as the API answers it."""
    settings = console.settings
    scope, subject_id, metric = asked["scope"], asked["id"], asked["metric"]
    window = resolve(WindowQuery(asked["window"]), now, settings)
    version = await data_version(db)
    kpi = KpiQueries(db, settings.tz, settings.retention_floors)
    drill = Drilldown(ActivityQueries(db), kpi, settings.activity_retention_days, now)
    if scope == "unassigned":
        sums = await kpi.sums("unassigned", window, needed_counters([metric]), [subject_id])
        value = evaluate(sums.get(subject_id, {}), [metric])[metric]
    else:
        roster = RosterRepository(db)
        subject = await (rep_subject(roster, subject_id, now) if scope == "rep"
                         else team_subject(roster, subject_id))  # fmt: skip
        kpis = console_kpis(console, db)
        members = await kpis.members(subject.kind, window, now)
        values = await kpis.values(subject.kind, [subject.id], window, [metric], version, members)
        value = values[subject.id][metric]
    whose = Whose(scope, subject_id)
    return await drill.page(Asked(whose, CATALOGUE[metric], window, limit, cursor), value,
                            version.as_of)  # fmt: skip


def _asked(scope: str, id: str, metric: str, window: str) -> dict[str, str] | None:
    if scope not in SCOPES or not id or metric not in CATALOGUE:
        return None
    return {"scope": scope, "id": id, "metric": metric,
            "window": window if window in DRILL_WINDOWS else "today"}  # fmt: skip


async def _page(console: Console, db: Db, now: datetime, asked: dict[str, str] | None,
                cursor: str | None, **extra: Any) -> dict[str, Any]:  # fmt: skip
    context = {**await _choices(console, db, now), "asked": asked or {}, "found": None,
               "problem": None, "failed_event": None, **extra}  # fmt: skip
    if asked is not None:
        try:
            context["found"] = await _drill(console, db, now, asked, cursor)
        except (Problem, WindowError) as exc:
            context["problem"] = getattr(exc, "detail", str(exc))
    return context


@router.get("/activity")
async def activity(
    console: Viewer, db: Db, now: Now, export: Export, scope: str = "rep", id: str = "",
    metric: str = "calls_total", window: str = "today", cursor: str | None = None,
) -> Response:  # fmt: skip
    asked = _asked(scope, id, metric, window)
    if export.wanted and asked is not None:
        found = await _drill(console, db, now, asked, None, 10_000)
        file = answer(found, export, f"activity-{scope}-{id}-{metric}")
        assert isinstance(file, Response)
        return file
    return console.render("activity.html", **await _page(console, db, now, asked, cursor))


@router.post("/corrections")
async def correct(console: Editor, db: Db, now: Now, later: AfterCommit) -> Response:
    """Reassign or exclude one event, with a reason; back to the drill-down it came from."""
    form = console.form
    asked = _asked(field_of(form, "scope"), field_of(form, "subject"), field_of(form, "metric"),
                   field_of(form, "window"))  # fmt: skip
    action = field_of(form, "action")
    try:
        body = CorrectionIn.model_validate({
            "event_id": field_of(form, "event_id"), "action": action,
            "rep_id": field_of(form, "rep_id") or None if action == "reassign" else None,
            "reason": field_of(form, "reason"),
        })  # fmt: skip
        assert console.session is not None
        await _corrections(console, db).make(body, console.session.name, now, later)
    except (ValidationError, Problem) as exc:
        context = await _page(console, db, now, asked, None,
                              failed_event=field_of(form, "event_id"))  # fmt: skip
        raise console.refuse("activity.html", exc, **context) from None
    if asked is None:
        return console.redirect("/console/corrections", "corrected")
    back = "&".join(f"{k}={v}" for k, v in asked.items())
    return console.redirect(f"/console/activity?{back}", "corrected")


def _corrections(console: Console, db: Db) -> Corrections:
    return Corrections(
        ActivityQueries(db), CorrectionsRepository(db), RosterRepository(db),
        console.request.app.state.bus, console.settings.activity_topic,
    )  # fmt: skip


@router.get("/corrections")
async def corrections(console: Viewer, db: Db, export: Export) -> Response:
    rows = await CorrectionsRepository(db).page(None, 1000 if export.wanted else 200)
    items = [view(r) for r in rows]
    if export.wanted:
        return export.of(items, "corrections")
    return console.render("corrections.html", items=items)


@router.post("/corrections/{correction_id}/undo")
async def undo(correction_id: str, console: Editor, now: Now, db: Db, later: AfterCommit) -> (
    Response
):  # fmt: skip
    assert console.session is not None
    try:
        await _corrections(console, db).undo(correction_id, console.session.name, now, later)
    except Problem as exc:
        raise Answer(console.redirect("/console/corrections", "not_found")) from exc
    return console.redirect("/console/corrections", "undone")
