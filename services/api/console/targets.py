"""Targets: a grid of subjects (reps or teams) by metrics for one period, edited in place, each
cell's history, and the CSV import with a preview.

A cell shows the value in force in the chosen period (``starting``); saving a changed cell sets
the target from that period on, as ``PUT /v1/targets/...`` with ``starting`` does (earlier
periods keep theirs). Writes are the targets service's (``Targets.save``,
``import_targets``)."""

from __future__ import annotations

import asyncio
import base64
import binascii
from datetime import datetime
from typing import Any, get_args

from fastapi import Query
from fastapi.responses import Response
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from services.api.common.database import Db, api_router
from services.api.common.freshness import data_version
from services.api.common.params import Now, SubjectKind
from services.api.console.roster import console_targets
from services.api.console.views import Answer, Console, Editor, Viewer, field_of
from services.api.roster.repository import RepFilter, RosterRepository
from services.api.roster.routes import MAX_IMPORT_BYTES
from services.api.roster.service import epoch, reps
from services.api.targets import imports
from services.api.targets.repository import TargetKey
from services.api.targets.schemas import TargetIn
from services.api.targets.service import import_targets
from shared.calendar import Period, local_date, next_period, period_start
from shared.catalogue import CATALOGUE
from shared.problems import Problem, Unprocessable
from shared.targets import in_force, period_label, starting_at

router = api_router(prefix="/console", include_in_schema=False)
PERIODS: tuple[Period, ...] = get_args(Period)
DEFAULT_METRICS = ["revenue"]


def labels_around(console: Console, period: Period, now: datetime) -> list[str]:
    """The current period's label and the next two: the grid's quick choices."""
    first = period_start(period, local_date(epoch(now), console.settings.tz),
                         console.settings.week_start.weekday)  # fmt: skip
    return [period_label(period, next_period(period, first, n)) for n in range(3)]


async def _grid(console: Console, db: Db, now: datetime, scope: str, metrics: list[str],
                period: Period, starting: str) -> dict[str, Any]:  # fmt: skip
    """What the grid shows: its subjects, and each cell's value in force from ``starting``."""
    settings = console.settings
    targets = console_targets(console, db)
    roster = RosterRepository(db)
    kind: SubjectKind = "rep" if scope == "reps" else "team"
    if kind == "rep":
        found = await reps(roster, RepFilter(now=epoch(now)), 10_000, None)
        subjects = [(r.id, r.name, r.team_id) for r in found.items]
    else:
        subjects = [(i, n, None) for i, n in sorted((await roster.all_teams()).items())]
    book = await targets.book((await data_version(db)).targets)
    at = starting_at(period, starting, settings.tz, settings.week_start.weekday)
    cells = {
        (subject, metric): in_force(book.entries.get((kind, subject, metric, period), ()), at)
        for subject, _, _ in subjects
        for metric in metrics
    }
    return {
        "scope": scope, "kind": kind, "metrics": metrics, "period": period,
        "starting": starting, "subjects": subjects, "cells": cells,
        "choices": labels_around(console, period, now), "periods": PERIODS,
        "all_metrics": [m for m in CATALOGUE if not m.endswith("_attainment")],
    }  # fmt: skip


def _asked(console: Console, period: str, starting: str, now: datetime) -> tuple[Period, str]:
    chosen: Period = period if period in PERIODS else "month"
    settings = console.settings
    try:
        starting_at(chosen, starting, settings.tz, settings.week_start.weekday)
    except ValueError:
        starting = labels_around(console, chosen, now)[0]
    return chosen, starting


@router.get("/targets")
async def grid(
    console: Viewer, db: Db, now: Now, scope: str = "reps",
    metric: list[str] = Query(default=[]), period: str = "month",
    starting: str = "",
) -> Response:  # fmt: skip
    metrics = [m for m in metric if m in CATALOGUE] or DEFAULT_METRICS
    chosen, starting = _asked(console, period, starting, now)
    scope = scope if scope in ("reps", "teams") else "reps"
    shown = await _grid(console, db, now, scope, metrics, chosen, starting)
    return console.render("targets.html", **shown)


@router.post("/targets")
async def save_grid(console: Editor, db: Db, now: Now) -> Response:
    """Each changed cell (``cell.<subject>.<metric>`` differs from ``was.<...>``) saved from
    the chosen period on; any refusal shows in its cell, and nothing is saved."""
    form = console.form
    assert form is not None
    scope = "teams" if field_of(form, "scope") == "teams" else "reps"
    kind: SubjectKind = "rep" if scope == "reps" else "team"
    metrics = [m for m in form.getlist("metric") if isinstance(m, str) and m in CATALOGUE]
    chosen, starting = _asked(console, field_of(form, "period"), field_of(form, "starting"), now)
    targets = console_targets(console, db)
    errors: dict[str, str] = {}
    saved = 0
    for name, value in form.multi_items():
        if not name.startswith("cell.") or not isinstance(value, str):
            continue
        _, subject, metric = name.split(".", 2)
        if value.strip() == field_of(form, f"was.{subject}.{metric}") or not value.strip():
            continue
        try:
            body = TargetIn.model_validate({"value": value.strip().replace(",", "."),
                                            "starting": starting})  # fmt: skip
            key = TargetKey(kind, subject, metric, chosen)
            version = (await data_version(db)).targets
            await targets.save(key, body.value, body.starting, now, version)
            saved += 1
        except (ValidationError, Problem) as exc:
            errors[name] = _message(exc)
    if errors:
        shown = await _grid(console, db, now, scope, metrics or DEFAULT_METRICS, chosen, starting)
        values = {k: v for k, v in form.items() if isinstance(v, str)}
        raise Answer(console.render("targets.html", 422, errors=errors, values=values, **shown))
    query = "&".join([f"scope={scope}", f"period={chosen}", f"starting={starting}",
                      *(f"metric={m}" for m in metrics)])  # fmt: skip
    return console.redirect(f"/console/targets?{query}", "targets_saved" if saved else "nothing")


def _message(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return str(exc.errors(include_url=False)[0]["msg"])
    assert isinstance(exc, Problem)
    listed = exc.extensions.get("errors") or []
    return str(listed[0]["message"]) if listed else exc.detail


@router.get("/targets/history")
async def history(console: Viewer, db: Db, now: Now, scope: str, id: str, metric: str,
                  period: str) -> Response:  # fmt: skip
    kind: SubjectKind = "rep" if scope in ("rep", "reps") else "team"
    chosen: Period = period if period in PERIODS else "month"
    targets = console_targets(console, db)
    try:
        shown = await targets.shown(
            TargetKey(kind, id, metric, chosen), (await data_version(db)).targets, now
        )
    except Problem:
        shown = None
    return console.render("target_history.html", target=shown, kind=kind, id=id, metric=metric,
                          period=chosen)  # fmt: skip


@router.post("/targets/import")
async def import_csv(console: Editor, db: Db, now: Now) -> Response:
    """Preview (a dry run) or apply a CSV of targets, as ``POST /v1/targets/import``."""
    form = console.form
    apply = field_of(form, "action") == "apply"
    upload = form.get("file") if form is not None else None
    try:
        if isinstance(upload, UploadFile) and upload.filename:
            body = await upload.read(MAX_IMPORT_BYTES + 1)
        else:
            try:
                body = base64.b64decode(field_of(form, "csv_b64"), validate=True)
            except (binascii.Error, ValueError):
                body = b""
        if not body or len(body) > MAX_IMPORT_BYTES:
            message = console.t("import.no_file")
            raise Unprocessable(message, errors=[{"field": "file", "message": message}])
        items = await asyncio.to_thread(imports.from_csv, body)
        version = (await data_version(db)).targets
        counts = await import_targets(console_targets(console, db), items, now, version, not apply)
    except Problem as exc:
        raise console.refuse("targets_import.html", exc, counts=None, csv_b64="") from None
    if apply:
        return console.redirect("/console/targets", "imported")
    return console.render("targets_import.html", counts=counts,
                          csv_b64=base64.b64encode(body).decode())  # fmt: skip


@router.get("/targets/import")
async def import_page(console: Viewer) -> Response:
    return console.render("targets_import.html", counts=None, csv_b64="")
