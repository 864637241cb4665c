"""Teams and reps: the list (search, team, status), a rep's form (create, edit, move from a
date, leave, identities and email), teams (create, rename), the CSV import with a preview of
what will change, and the unassigned activity given to reps.

Every write is the roster service's (``services.api.roster.service``), with the API's schemas:
what the API would refuse, the console refuses, next to the field."""

from __future__ import annotations

import asyncio
import base64
import binascii
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

from fastapi.responses import Response
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from services.api.common.database import Db, api_router
from services.api.common.exports import Export
from services.api.common.freshness import data_version
from services.api.common.params import Now, WindowQuery, resolve
from services.api.console.views import Answer, Console, Editor, Viewer, field_of
from services.api.kpis.queries import KpiQueries
from services.api.kpis.service import Kpis
from services.api.roster import imports, service
from services.api.roster.repository import RepFilter, RosterRepository
from services.api.roster.routes import MAX_IMPORT_BYTES, preview_of
from services.api.roster.schemas import RepIn, RepPatch, TeamImport
from services.api.targets.repository import TargetRepository
from services.api.targets.service import Targets
from shared.problems import Problem, Unprocessable
from shared.roster import team_at
from shared.windows import WindowError

router = api_router(prefix="/console", include_in_schema=False)
PAGE = 50
STATUSES = ("active", "left", "all")
UNASSIGNED_WINDOWS = ("today", "yesterday", "this_week", "last_7d", "this_month", "last_30d")


def local_midnight(console: Console, text: str) -> str | None:
    """A date field (``2027-02-01``) as the instant its day starts in the organisation's zone,
    ISO; the text itself when it is no date (the schema then names the field)."""
    if not text:
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        return text
    return datetime.combine(day, time(0), console.settings.tz).isoformat()


def local_day(console: Console, moment: datetime | None) -> str:
    return "" if moment is None else moment.astimezone(console.settings.tz).date().isoformat()


def identities_of(text: str) -> list[dict[str, str]]:
    """One ``provider:external_id`` a line; a line that is not is a refusal naming the field."""
    found = []
    for n, line in enumerate(filter(None, (x.strip() for x in text.splitlines())), 1):
        provider, colon, external_id = line.partition(":")
        if not colon or not provider.strip() or not external_id.strip():
            raise Unprocessable(
                f"identities line {n}",
                errors=[{"field": "identities", "message": f"{n}: « {line[:80]} » ≠ provider:id"}],
            )
        found.append({"provider": provider.strip(), "external_id": external_id.strip()})
    return found


def console_targets(console: Console, db: Db) -> Targets:
    """The targets as the API's requests see them (the app's cache, the calendar)."""
    settings = console.settings
    cache = console.request.app.state.target_cache
    return Targets(TargetRepository(db), cache, settings.tz, settings.week_start.weekday)


def console_kpis(console: Console, db: Db) -> Kpis:
    settings = console.settings
    queries = KpiQueries(db, settings.tz, settings.retention_floors)
    return Kpis(queries, console_targets(console, db), settings, RosterRepository(db))


# --- the list -------------------------------------------------------------------------------


@router.get("/reps")
async def reps(
    console: Viewer, db: Db, now: Now, export: Export, q: str = "", team: str = "",
    status: str = "active", cursor: str | None = None,
) -> Response:  # fmt: skip
    roster = RosterRepository(db)
    status = status if status in STATUSES else "active"
    which = RepFilter(now=service.epoch(now), team=team or None, q=q[:200] or None, status=status)
    try:
        found = await service.reps(roster, which, PAGE if not export.wanted else 10_000, cursor)
    except Problem:  # a cursor from elsewhere: the first page
        found = await service.reps(roster, which, PAGE, None)
    if export.wanted:
        return export.of(found.items, "reps")
    teams = await roster.all_teams()
    counted = await service.teams(roster, 1000, None, now)
    return console.render(
        "reps.html", reps=found.items, next_cursor=found.next_cursor, teams=teams,
        team_counts=counted.items, q=q, team=team, status=status, statuses=STATUSES,
    )  # fmt: skip


@router.post("/teams")
async def save_team(console: Editor, db: Db, now: Now) -> Response:
    form = console.form
    roster = RosterRepository(db)
    try:
        team = TeamImport.model_validate(
            {"id": field_of(form, "id"), "name": field_of(form, "name")}
        )
        await service.save_team(roster, team.id, team.name)
    except (ValidationError, Problem) as exc:
        counted = await service.teams(roster, 1000, None, now)
        found = await service.reps(roster, RepFilter(now=service.epoch(now)), PAGE, None)
        raise console.refuse(
            "reps.html", exc, reps=found.items, next_cursor=found.next_cursor,
            teams=await roster.all_teams(), team_counts=counted.items, q="", team="",
            status="active", statuses=STATUSES,
        ) from None  # fmt: skip
    return console.redirect("/console/reps", "team_saved")


# --- one rep --------------------------------------------------------------------------------


async def _rep_page(console: Console, roster: RosterRepository, rep_id: str | None, now: datetime,
                    status: int = 200, **extra: Any) -> Response:  # fmt: skip
    rep = await service.rep(roster, rep_id, now) if rep_id else None
    values = {}
    if rep is not None:
        values = {
            "name": rep.name, "team_id": rep.team_id or "", "email": rep.email or "",
            "identities": "\n".join(f"{i.provider}:{i.external_id}" for i in rep.identities),
            "left_at": local_day(console, rep.left_at),
        }  # fmt: skip
    return console.render(
        "rep.html", status, rep=rep, teams=await roster.all_teams(),
        today=now.astimezone(console.settings.tz).date().isoformat(),
        values=extra.pop("values", values), **extra,
    )  # fmt: skip


@router.get("/reps/new")
async def new_rep(console: Viewer, db: Db, now: Now) -> Response:
    return await _rep_page(console, RosterRepository(db), None, now)


@router.get("/reps/{rep_id}")
async def rep_page(rep_id: str, console: Viewer, db: Db, now: Now) -> Response:
    try:
        return await _rep_page(console, RosterRepository(db), rep_id, now)
    except Problem:
        return console.redirect("/console/reps", "not_found")


def _rep_fields(console: Console) -> dict[str, Any]:
    form = console.form
    fields: dict[str, Any] = {
        "name": field_of(form, "name"),
        "email": field_of(form, "email") or None,
        "identities": identities_of(field_of(form, "identities")),
        "left_at": local_midnight(console, field_of(form, "left_at")),
    }
    if field_of(form, "team_id"):
        fields["team_id"] = field_of(form, "team_id")
        fields["effective_from"] = local_midnight(console, field_of(form, "effective_from"))
    return fields


@router.post("/reps")
async def create_rep(console: Editor, db: Db, now: Now) -> Response:
    roster = RosterRepository(db)
    rep_id = field_of(console.form, "id")
    try:
        if not rep_id or await roster.rep(rep_id) is not None:
            message = "required" if not rep_id else f"rep {rep_id!r} exists"
            raise Unprocessable(message, errors=[{"field": "id", "message": message}])
        TeamImport.model_validate({"id": rep_id, "name": "x"})  # the id's rules: the roster's
        body = RepIn.model_validate(_rep_fields(console))
        change = service.RepChange(
            name=body.name, team_id=body.team_id,
            identities=[(i.provider, i.external_id) for i in body.identities],
            since=service.epoch(body.effective_from or now), email=body.email,
            left_at=service.epoch(body.left_at) if body.left_at else None,
        )  # fmt: skip
        await service.save_rep(roster, rep_id, change)
    except (ValidationError, Problem) as exc:
        raise console.refuse("rep.html", exc, rep=None, teams=await roster.all_teams(),
                             today=now.date().isoformat()) from None  # fmt: skip
    return console.redirect(f"/console/reps/{rep_id}", "rep_saved")


@router.post("/reps/{rep_id}")
async def edit_rep(rep_id: str, console: Editor, db: Db, now: Now) -> Response:
    roster = RosterRepository(db)
    current = await service.rep(roster, rep_id, now)
    try:
        fields = _rep_fields(console)
        if fields.get("team_id") == current.team_id:  # not a move: no new team history
            fields.pop("team_id"), fields.pop("effective_from", None)
        patch = RepPatch.model_validate(fields)
        await service.patch_rep(roster, rep_id, patch, now)
    except (ValidationError, Problem) as exc:
        raise console.refuse("rep.html", exc, rep=current, teams=await roster.all_teams(),
                             today=now.date().isoformat()) from None  # fmt: skip
    return console.redirect(f"/console/reps/{rep_id}", "rep_saved")


# --- the CSV import -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PreviewRow:
    id: str
    name: str
    team_before: str | None
    team_after: str | None
    identities: int
    what: str  # new, moved, changed, same


async def _csv_of(console: Console) -> bytes:
    """The CSV of the form: the file chosen, else the one a preview carried (base64)."""
    form = console.form
    upload = form.get("file") if form is not None else None
    if isinstance(upload, UploadFile) and upload.filename:
        body = await upload.read(MAX_IMPORT_BYTES + 1)
    else:
        try:
            body = base64.b64decode(field_of(form, "csv_b64"), validate=True)
        except (binascii.Error, ValueError):
            body = b""
    if not body:
        message = console.t("import.no_file")
        raise Unprocessable(message, errors=[{"field": "file", "message": message}])
    if len(body) > MAX_IMPORT_BYTES:
        message = f"> {MAX_IMPORT_BYTES} bytes"
        raise Unprocessable(message, errors=[{"field": "file", "message": message}])
    return body


@router.get("/roster/import")
async def import_page(console: Viewer) -> Response:
    return console.render(
        "roster_import.html", counts=None, rows=[], csv_b64="", header=imports.CSV_HEADER
    )


@router.post("/roster/import")
async def import_roster(console: Editor, db: Db, now: Now) -> Response:
    """``action=preview``: what the import would change (a dry run), and the file kept in the
    page to apply; ``action=apply``: the import itself, all or nothing."""
    roster = RosterRepository(db)
    apply = field_of(console.form, "action") == "apply"
    header = imports.CSV_HEADER
    try:
        body = await _csv_of(console)
        parsed = await asyncio.to_thread(imports.from_csv, body)
    except Problem as exc:
        raise console.refuse("roster_import.html", exc, counts=None, rows=[], csv_b64="",
                             header=header) from None  # fmt: skip
    try:
        counts = await service.import_roster(roster, parsed, now, dry_run=not apply)
    except Problem as exc:
        if apply or exc.status not in (409, 422):
            raise console.refuse("roster_import.html", exc, counts=None, rows=[], csv_b64="",
                                 header=header) from None  # fmt: skip
        counts = preview_of(exc)
    if apply:
        return console.redirect("/console/reps", "imported")
    rows = await _preview_rows(roster, parsed, now)
    return console.render(
        "roster_import.html", counts=counts, rows=rows, header=header,
        csv_b64=base64.b64encode(body).decode() if not counts.errors else "",
    )  # fmt: skip


async def _preview_rows(roster: RosterRepository, parsed: imports.RosterImport, now: datetime) -> (
    list[PreviewRow]
):  # fmt: skip
    """Each rep of the import and what happens to it (in bulk reads: 50,000 reps are fine)."""
    ids = parsed.rep_ids()
    existing = await roster.reps_now(ids)
    histories = await roster.histories(ids)
    at = service.epoch(now)
    rows = []
    for rep in parsed.reps[:2000]:  # the page shows the first ones; the counts say the rest
        before = team_at(histories.get(rep.id, []), at) if rep.id in histories else None
        after = rep.team_id or before
        if rep.id not in existing:
            what = "new"
        elif after != before:
            what = "moved"
        else:
            name, email, held = existing[rep.id]
            same = (name, frozenset(held)) == (rep.name, frozenset(rep.identities)) and (
                not rep.email_given or email == rep.email
            )
            what = "same" if same else "changed"
        rows.append(PreviewRow(rep.id, rep.name, before, after, len(rep.identities), what))
    return rows


# --- unassigned activity --------------------------------------------------------------------


@router.get("/unassigned")
async def unassigned(console: Viewer, db: Db, now: Now, export: Export, window: str = "today") -> (
    Response
):  # fmt: skip
    settings = console.settings
    window = window if window in UNASSIGNED_WINDOWS else "today"
    try:
        cut = resolve(WindowQuery(window), now, settings)
    except WindowError:
        cut = resolve(WindowQuery("today"), now, settings)
    rows = (await console_kpis(console, db).unassigned(cut, await data_version(db))).rows
    if export.wanted:
        return export.of(rows, "unassigned")
    roster = RosterRepository(db)
    found = await service.reps(roster, RepFilter(now=service.epoch(now)), 10_000, None)
    return console.render(
        "unassigned.html", rows=rows, reps=found.items, window=window, windows=UNASSIGNED_WINDOWS
    )


@router.post("/unassigned/claim")
async def claim(console: Editor, db: Db, now: Now) -> Response:
    """Give an identity to a rep: the rep's identities with it added (the KPI service then
    credits the rep with that identity's unassigned activity)."""
    roster = RosterRepository(db)
    identity, rep_id = field_of(console.form, "identity"), field_of(console.form, "rep_id")
    window = field_of(console.form, "window") or "today"
    back = f"/console/unassigned?window={window}"
    provider, _, external_id = identity.partition(":")
    current = await roster.rep(rep_id) if rep_id else None
    if current is None or not provider or not external_id:
        raise Answer(console.redirect(back, "claim_refused"))
    wanted = [*current.identities, (provider, external_id)]
    patch = RepPatch.model_validate(
        {"identities": [{"provider": p, "external_id": x} for p, x in wanted]}
    )
    try:
        await service.patch_rep(roster, rep_id, patch, now)
    except Problem:
        raise Answer(console.redirect(back, "claim_refused")) from None
    return console.redirect(back, "claimed")
