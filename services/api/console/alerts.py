"""Alerts and channels: create them, send a test, and see the deliveries with their errors.

Channels and alerts are saved by their services (``channels.service.save``: the SSRF guard,
secrets shown once; ``alerts.service.save``: the API's ``AlertIn``). A test is a notification
of the alert written to the outbox (``shared.outbox``) as the KPI service writes a real one,
marked ``test``: the worker's dispatcher delivers it like any other, and the page lists its
deliveries."""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

from fastapi.responses import Response
from pydantic import TypeAdapter, ValidationError

from services.api.alerts import service as alerts_service
from services.api.alerts.repository import AlertRepository, NotificationRepository
from services.api.channels import service as channels_service
from services.api.channels.repository import ChannelRepository
from services.api.channels.schemas import ChannelIn, ChannelSaved
from services.api.common.database import Db, api_router
from services.api.common.exports import Export
from services.api.common.params import ID_PATTERN
from services.api.console import queries
from services.api.console.views import Answer, Console, Editor, Viewer, field_of
from shared import outbox
from shared.alerting import Crossing, Watched
from shared.alerts import DEFAULT_MESSAGES, AlertIn, Trigger
from shared.problems import Problem, Unprocessable
from shared.settings import voice_of

router = api_router(prefix="/console", include_in_schema=False)
KINDS = list(DEFAULT_MESSAGES)
TRIGGER_FIELDS = {  # the form's fields each trigger kind takes
    "threshold": ("metric", "window", "scope", "op", "value"),
    "target_reached": ("metric", "period", "scope"),
    "deal_won": ("min_amount",),
    "new_leader": ("metric", "window", "scope"),
    "behind_pace": ("metric", "period", "scope", "below"),
    "contest_won": ("contest_id",),
}
NUMBERS = ("value", "min_amount", "below")
TRIGGER: TypeAdapter[Any] = TypeAdapter(Trigger)


async def _page(console: Console, db: Db, status: int = 200, **extra: Any) -> Response:
    context = {**await _page_context(console, db), **extra}
    return console.render("alerts.html", status, **context)


@router.get("/alerts")
async def alerts(console: Viewer, db: Db, export: Export) -> Response:
    if export.wanted:
        shown = await alerts_service.notifications(NotificationRepository(db), None, None, 1000)
        rows = alerts_service.csv_rows(shown)
        return export.of(rows, "notifications", alerts_service.CSV_COLUMNS)
    return await _page(console, db)


def _id(console: Console, name: str) -> str:
    found = field_of(console.form, name)
    if not re.fullmatch(ID_PATTERN, found) or len(found) > 64:
        raise Unprocessable(name, errors=[{"field": name, "message": console.t("help.id")}])
    return found


@router.post("/channels")
async def save_channel(console: Editor, db: Db) -> Response:
    form = console.form
    try:
        channel_id = _id(console, "channel_id")
        body = ChannelIn.model_validate({
            "kind": field_of(form, "kind"), "url": field_of(form, "url"),
            "secret": field_of(form, "secret") or None,
        })  # fmt: skip
        saved: ChannelSaved = await channels_service.save(
            ChannelRepository(db), channel_id, body, console.settings.allow_private_channels
        )
    except (ValidationError, Problem) as exc:
        raise _refused(console, await _page_context(console, db), exc, "channel") from None
    if saved.secret:  # shown this once: no redirect that would lose it
        return await _page(console, db, shown_secret=(saved.id, saved.secret))
    return console.redirect("/console/alerts", "channel_saved")


async def _page_context(console: Console, db: Db) -> dict[str, Any]:
    notifications = await alerts_service.notifications(NotificationRepository(db), None, None, 50)
    return {
        "alerts": await alerts_service.listed(AlertRepository(db)),
        "channels": await queries.channels(db), "notifications": notifications, "kinds": KINDS,
        "kind_options": [(k, console.t(f"alerts.kind.{k}")) for k in KINDS],
        "trigger_fields": TRIGGER_FIELDS, "shown_secret": None, "sent": None,
    }  # fmt: skip


def _refused(console: Console, context: dict[str, Any], exc: Exception, form: str) -> Answer:
    """The page again, the refusal next to the fields of the form that was sent."""
    values = {k: v for k, v in console.form.items() if isinstance(v, str)}  # type: ignore[union-attr]
    values["channels"] = console.form.getlist("channels")  # type: ignore[union-attr,assignment]
    return console.refuse("alerts.html", exc, values=values, sent=form, **context)


def _trigger(console: Console) -> dict[str, Any]:
    form = console.form
    kind = field_of(form, "trigger")
    trigger: dict[str, Any] = {"kind": kind}
    for name in TRIGGER_FIELDS.get(kind, ()):
        value = field_of(form, name)
        if value:
            trigger[name] = value.replace(",", ".") if name in NUMBERS else value
    return trigger


@router.post("/alerts")
async def save_alert(console: Editor, db: Db) -> Response:
    form = console.form
    assert form is not None
    try:
        alert_id = _id(console, "alert_id")
        body = AlertIn.model_validate({
            "name": field_of(form, "name"),
            "channels": [c for c in form.getlist("channels") if isinstance(c, str)],
            "enabled": field_of(form, "enabled") == "1",
            "message": field_of(form, "message") or None,
            "trigger": _trigger(console),
        })  # fmt: skip
        await alerts_service.save(AlertRepository(db), alert_id, body)
    except (ValidationError, Problem) as exc:
        raise _refused(console, await _page_context(console, db), exc, "alert") from None
    return console.redirect("/console/alerts", "alert_saved")


@router.post("/alerts/{alert_id}/test")
async def send_test(alert_id: str, console: Editor, db: Db) -> Response:
    """A notification of the alert, marked ``test``, to each of its channels: in the outbox,
    delivered by the worker as any other (retries, signature, errors listed here)."""
    alert = await alerts_service.shown(AlertRepository(db), alert_id)
    watched = Watched(alert.id, alert.name, tuple(alert.channels), alert.message,
                      _parsed_trigger(alert.trigger))  # fmt: skip
    values = {"test": True, "metric": "revenue", "value": 1000, "amount": 1000,
              "window": "today", "target": 1000, "contest": alert.name}  # fmt: skip
    crossing = Crossing(watched, "rep", "test", f"test:{uuid.uuid4().hex}", values)
    await outbox.write(db, [crossing], time.time(), voice_of(console.settings))
    return console.redirect("/console/alerts", "test_sent")


def _parsed_trigger(trigger: dict[str, Any]) -> Any:
    return TRIGGER.validate_python(trigger)


@router.post("/alerts/{alert_id}/delete")
async def delete_alert(alert_id: str, console: Editor, db: Db) -> Response:
    try:
        await alerts_service.delete(AlertRepository(db), alert_id)
    except Problem:
        return console.redirect("/console/alerts", "not_found")
    return console.redirect("/console/alerts", "alert_deleted")
