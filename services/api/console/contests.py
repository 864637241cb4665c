"""Contests: the list, a contest's form (create, edit), its live standings, and the link that
opens it on the TV. Writes are the contests' own (``definition.define`` and ``save``, with the
API's ``ContestIn``)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from fastapi.responses import Response
from pydantic import ValidationError

from services.api.common.database import Db, api_router
from services.api.common.exports import Export
from services.api.common.freshness import data_version
from services.api.common.params import Now
from services.api.console.views import Console, Editor, Viewer, field_of
from services.api.contests import definition
from services.api.contests.repository import ContestRepository
from services.api.contests.schemas import ContestIn, ContestOut
from services.api.contests.standings import Standings, StandingsSpec, listed
from services.api.roster.repository import RosterRepository
from services.api.roster.service import epoch
from shared.catalogue import CATALOGUE
from shared.problems import Problem, Unprocessable

router = api_router(prefix="/console", include_in_schema=False)
SHOWN = 50  # rows of the standings on the page (the export has them all)


def local_input(console: Console, moment: datetime) -> str:
    """``moment`` as a ``datetime-local`` input shows it: the organisation's wall clock."""
    return moment.astimezone(console.settings.tz).strftime("%Y-%m-%dT%H:%M")


def from_local(console: Console, text: str) -> str:
    """A ``datetime-local`` value as an aware ISO instant in the organisation's zone (the
    text itself when it is not one: the schema then names the field)."""
    try:
        naive = datetime.fromisoformat(text)
    except ValueError:
        return text
    if naive.tzinfo is None:
        naive = naive.replace(tzinfo=console.settings.tz)
    return naive.isoformat()


def points_of(text: str) -> dict[str, str]:
    """``metric=weight`` a line (or ``metric: weight``)."""
    found = {}
    for line in filter(None, (x.strip() for x in text.splitlines())):
        name, sep, weight = line.replace(":", "=").partition("=")
        if not sep:
            raise Unprocessable(
                line, errors=[{"field": "points", "message": f"« {line} » ≠ metric=weight"}]
            )
        found[name.strip()] = weight.strip().replace(",", ".")
    return found


def _body(console: Console) -> dict[str, Any]:
    form = console.form
    assert form is not None
    teams = [t for t in form.getlist("team_ids") if isinstance(t, str) and t]
    if field_of(form, "score_kind") == "points":
        score: dict[str, Any] = {"points": points_of(field_of(form, "points"))}
    else:
        score = {"metric": field_of(form, "metric")}
    return {
        "name": field_of(form, "name"),
        "starts_at": from_local(console, field_of(form, "starts_at")),
        "ends_at": from_local(console, field_of(form, "ends_at")),
        "participants": field_of(form, "participants") or "reps",
        "team_ids": teams or None,
        "score": score,
        "goal": field_of(form, "goal").replace(",", ".") or None,
    }


async def _form_page(console: Console, db: Db, contest_id: str | None, now: datetime,
                     standings: ContestOut | None = None, status: int = 200,
                     **extra: Any) -> Response:  # fmt: skip
    teams = await RosterRepository(db).all_teams()
    return console.render(
        "contest.html", status, contest_id=contest_id, teams=teams, standings=standings,
        metrics=list(CATALOGUE), **extra,
    )  # fmt: skip


@router.get("/contests")
async def contests(console: Viewer, db: Db, now: Now) -> Response:
    found = await listed(ContestRepository(db), None, epoch(now),
                         console.settings.contest_settle_seconds, 200, None)  # fmt: skip
    return console.render("contests.html", contests=found.contests)


@router.get("/contests/new")
async def new_contest(console: Viewer, db: Db, now: Now) -> Response:
    start = now.astimezone(console.settings.tz).replace(hour=0, minute=0, second=0, microsecond=0)
    start += timedelta(days=1)
    values = {
        "starts_at": local_input(console, start),
        "ends_at": local_input(console, start + timedelta(days=7)),
        "participants": "reps", "score_kind": "metric", "metric": "calls_total",
    }  # fmt: skip
    return await _form_page(console, db, None, now, values=values)


@router.get("/contests/{contest_id}")
async def contest(contest_id: str, console: Viewer, db: Db, now: Now, export: Export) -> Response:
    standings: Standings = console.request.app.state.standings
    try:
        out, _ = await standings.board(
            StandingsSpec(contest_id, 10_000_000 if export.wanted else SHOWN),
            await data_version(db), now,
        )  # fmt: skip
    except Problem:
        return console.redirect("/console/contests", "not_found")
    if export.wanted:
        return export.of(out.rows, f"contest-{contest_id}")
    score = out.score
    values = {
        "name": out.name, "starts_at": local_input(console, out.starts_at),
        "ends_at": local_input(console, out.ends_at), "participants": out.participants,
        "score_kind": "points" if "points" in score else "metric",
        "metric": score.get("metric", ""), "goal": "" if out.goal is None else f"{out.goal:g}",
        "points": "\n".join(f"{m}={w:g}" for m, w in score.get("points", {}).items())  # type: ignore[union-attr]
        if "points" in score else "",
        "team_ids": out.team_ids or [],
    }  # fmt: skip
    return await _form_page(console, db, contest_id, now, standings=out, values=values)


@router.post("/contests")
async def save_contest(console: Editor, db: Db, now: Now) -> Response:
    contest_id = field_of(console.form, "id")
    return await _save(console, db, now, contest_id, new=True)


@router.post("/contests/{contest_id}")
async def edit_contest(contest_id: str, console: Editor, db: Db, now: Now) -> Response:
    return await _save(console, db, now, contest_id, new=False)


async def _save(console: Console, db: Db, now: datetime, contest_id: str, new: bool) -> Response:
    contests = ContestRepository(db)
    try:
        if new and (not contest_id or await contests.get(contest_id) is not None):
            message = "required" if not contest_id else f"contest {contest_id!r} exists"
            raise Unprocessable(message, errors=[{"field": "id", "message": message}])
        body = ContestIn.model_validate(_body(console))
        defined = definition.define(contest_id, body, epoch(now), console.settings)
        await definition.save(contests, RosterRepository(db), defined)
    except (ValidationError, Problem) as exc:
        teams = await RosterRepository(db).all_teams()
        values = {k: v for k, v in console.form.items() if isinstance(v, str)}  # type: ignore[union-attr]
        values["team_ids"] = console.form.getlist("team_ids")  # type: ignore[union-attr,assignment]
        raise console.refuse(
            "contest.html", exc, contest_id=None if new else contest_id, teams=teams,
            standings=None, metrics=list(CATALOGUE), values=values,
        ) from None  # fmt: skip
    return console.redirect(f"/console/contests/{contest_id}", "contest_saved")
