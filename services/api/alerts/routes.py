"""Alerts: ``PUT/GET/DELETE /v1/alerts/{id}``, ``GET /v1/alerts``; their notifications:
``GET /v1/notifications?alert=&status=&limit=`` (JSON or CSV) and
``GET /v1/stream/notifications`` (Server-Sent Events)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request, Response
from fastapi.responses import StreamingResponse

from services.api.alerts import service
from services.api.alerts.hub import NotificationHub, now_ms
from services.api.alerts.repository import AlertRepository, NotificationRepository
from services.api.alerts.schemas import AlertList, AlertOut, DeliveryStatus, NotificationList
from services.api.common.auth import ADMIN_ACCESS, READ_ACCESS
from services.api.common.database import Db, api_router
from services.api.common.exports import Export
from services.api.common.params import ID_PATTERN, Id
from services.api.common.sse import sse_response
from shared.alerts import AlertIn

router = api_router(prefix="/v1", tags=["alerts"])
REPLAY_LIMIT = 100  # notifications replayed after a Last-Event-ID


def alert_repository(db: Db) -> AlertRepository:
    return AlertRepository(db)


def notification_repository(db: Db) -> NotificationRepository:
    return NotificationRepository(db)


def app_notification_hub(request: Request) -> NotificationHub:
    hub: NotificationHub = request.app.state.notification_hub
    return hub


Alerts = Annotated[AlertRepository, Depends(alert_repository)]
Notifications = Annotated[NotificationRepository, Depends(notification_repository)]
AppNotificationHub = Annotated[NotificationHub, Depends(app_notification_hub)]


@router.put(
    "/alerts/{alert_id}",
    response_model=AlertOut,
    dependencies=ADMIN_ACCESS,
    summary="Create or replace an alert",
)
async def put_alert(alert_id: Id, body: AlertIn, alerts: Alerts) -> AlertOut:
    """Create or replace an alert; its channels (and its contest) must exist."""
    return await service.save(alerts, alert_id, body)


@router.get("/alerts", response_model=AlertList, dependencies=READ_ACCESS, summary="Every alert")
async def list_alerts(alerts: Alerts) -> AlertList:
    return AlertList(alerts=await service.listed(alerts))


@router.get(
    "/alerts/{alert_id}", response_model=AlertOut, dependencies=READ_ACCESS, summary="An alert"
)
async def get_alert(alert_id: Id, alerts: Alerts) -> AlertOut:
    return await service.shown(alerts, alert_id)


@router.delete(
    "/alerts/{alert_id}",
    status_code=204,
    dependencies=ADMIN_ACCESS,
    summary="Delete an alert (the notifications it raised stay)",
)
async def delete_alert(alert_id: Id, alerts: Alerts) -> Response:
    """Delete an alert; the notifications it raised stay (the history of what was sent)."""
    await service.delete(alerts, alert_id)
    return Response(status_code=204)


@router.get(
    "/notifications",
    response_model=NotificationList,
    dependencies=READ_ACCESS,
    summary="Notifications raised, newest first, with their deliveries",
)
async def list_notifications(
    found: Notifications,
    export: Export,
    alert: Annotated[
        str | None, Query(max_length=64, pattern=ID_PATTERN, description="only this alert's")
    ] = None,
    status: Annotated[
        DeliveryStatus | None, Query(description="only those with a delivery in this status")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> NotificationList | Response:
    """Newest first, each with its deliveries. As CSV: one row per notification, the channel
    ids per delivery status in a column each."""
    shown = await service.notifications(found, alert, status, limit)
    if export.wanted:
        return export.of(service.csv_rows(shown), "notifications", service.CSV_COLUMNS)
    return NotificationList(notifications=shown)


@router.get(
    "/stream/notifications",
    summary="Server-Sent Events: each notification as it is raised",
    description="`event: notification`, `id:` the notification's id, `data:` the notification "
    "(as in `GET /v1/notifications`, without its deliveries); `: heartbeat` comments every 15 s. "
    "Nothing raised before the connection is sent, unless the client sends `Last-Event-ID`: "
    f"then the last {REPLAY_LIMIT} raised after that notification come first.",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
    dependencies=READ_ACCESS,
)
async def stream_notifications(
    request: Request, found: Notifications, hub: AppNotificationHub
) -> StreamingResponse:
    since = now_ms()  # before the replay is read: what it misses, the stream sends
    last_seen = request.headers.get("last-event-id")
    replay = await found.after(last_seen, REPLAY_LIMIT) if last_seen else []
    return sse_response(hub.stream(since, replay, request), request)
