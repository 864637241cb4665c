"""Pipedrive webhooks v2 (``/webhooks/pipedrive``): JSON ``{meta, data, previous}``, HTTP Basic.

Deals become ``deal.updated`` carrying the fields that changed (``previous`` lists them), plus
the owner as actor; when the status changes, the amount and currency come along so the won deal
has its value even if its creation was never seen. Activities marked done become touches: a call
is a placed call, a meeting a held meeting, an email a sent email.
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from typing import Any

from services.ingest.providers.base import (
    Delivery,
    Translation,
    Unusable,
    canonical_event,
    clip,
    epoch,
    require,
    same_secret,
)
from shared.problems import Problem, Unauthorized, Unprocessable

PROVIDER = "pipedrive"
DEAL_FIELDS = {
    "status": "status",
    "value": "amount",
    "currency": "currency",
    "stage_id": "stage",
    "owner_id": "actor",
    "add_time": "created_at",
}


class PipedriveAdapter:
    provider = PROVIDER
    path = "/webhooks/pipedrive"
    secret_fields: tuple[str, ...] = ()  # the credentials come in the Authorization header

    def __init__(self, user: str, password: str) -> None:
        self._user, self._password = user, password

    def verify(self, delivery: Delivery) -> None:
        scheme, _, encoded = delivery.headers.get("authorization", "").partition(" ")
        try:
            user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            user, password = "", ""
        # Both compared in full (no short-circuit) so timing does not tell which was wrong.
        good_user = same_secret(user, self._user)
        good_password = same_secret(password, self._password)
        if scheme.lower() != "basic" or not (good_user & good_password):
            raise Unauthorized(
                "HTTP Basic credentials do not match the configured ones",
                slug="bad-credentials",
                headers={"WWW-Authenticate": 'Basic realm="pipedrive"'},
            )

    def translate(self, delivery: Delivery) -> Translation:
        payload = delivery.json()
        if not isinstance(payload, dict):
            raise Unprocessable("pipedrive: body must be a JSON object {meta, data, previous}")
        meta, data = payload.get("meta"), payload.get("data")
        if not isinstance(meta, dict):
            raise Unprocessable("pipedrive: missing meta")
        require(meta, "id", "action", "entity", "timestamp", where="pipedrive.meta")
        entity, action = meta["entity"], meta["action"]
        if action not in ("create", "change") or not isinstance(data, dict):
            what = f"pipedrive {clip(repr(action))} of {clip(repr(entity))} not tracked"
            return Translation(unusable=[Unusable(what)])
        previous = payload.get("previous") if isinstance(payload.get("previous"), dict) else {}
        translate = {"deal": _deal, "activity": _activity}.get(str(entity))
        if translate is None:
            reason = f"pipedrive entity {clip(repr(entity))} is not tracked"
            return Translation(unusable=[Unusable(reason)])
        _when(meta)  # an unreadable envelope time is the sender's to fix: refused (422)
        try:  # the entity's own fields: a bad one is this delivery's dead letter, not a refusal
            return translate(meta, data, previous if action == "change" else None)
        except Problem as problem:
            return Translation(unusable=[Unusable(f"invalid_event: {problem.summary()}")])


def _when(meta: dict[str, Any]) -> datetime:
    stamp = meta["timestamp"]
    if isinstance(stamp, int | float) or str(stamp).isdigit():
        return epoch(stamp, field="pipedrive.meta.timestamp")
    try:
        return datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
    except ValueError:
        raise Unprocessable(
            f"pipedrive.meta.timestamp {clip(repr(stamp))} is neither ISO 8601 nor epoch",
            errors=[{"field": "meta.timestamp", "message": "bad timestamp"}],
        ) from None


def _source(meta: dict[str, Any]) -> str:
    return f"pipedrive://{meta.get('company_id', 'company')}"


def _deal(
    meta: dict[str, Any], deal: dict[str, Any], previous: dict[str, Any] | None
) -> Translation:
    require(deal, "id", where="pipedrive.data")
    changed = set(DEAL_FIELDS) if previous is None else set(previous) & set(DEAL_FIELDS)
    if "status" in changed:
        changed |= {"value", "currency"}
    changed.discard("owner_id")  # the owner is the actor, sent every time
    if previous is not None and not changed and "owner_id" not in (previous or {}):
        return Translation(ignored=1)  # e.g. a rename: understood, nothing the KPIs use
    data: dict[str, Any] = {"deal_id": str(deal["id"])}
    if deal.get("owner_id"):
        data["actor"] = {"provider": PROVIDER, "external_id": str(deal["owner_id"])}
    for field in sorted(changed):
        value = deal.get(field)
        if value is not None:
            data[DEAL_FIELDS[field]] = _deal_value(field, value)
    return Translation(
        events=[
            canonical_event(
                event_id=str(meta["id"]),
                source=_source(meta),
                type_="deal.updated",
                time=_when(meta),
                data=data,
            )
        ]
    )


def _deal_value(field: str, value: Any) -> Any:
    if field in ("value", "stage_id"):
        return str(value)
    if field == "add_time":  # ISO 8601 in v2; older payloads say "2024-09-27 14:25:27" (UTC)
        try:
            parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            raise Unprocessable(
                f"pipedrive.data.add_time {clip(repr(value))} is not ISO 8601",
                errors=[{"field": "pipedrive.data.add_time", "message": "not ISO 8601"}],
            ) from None
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).isoformat()
    return value


def _activity(
    meta: dict[str, Any], activity: dict[str, Any], previous: dict[str, Any] | None
) -> Translation:
    require(activity, "id", "type", where="pipedrive.data")
    fact = _activity_fact(activity, previous)
    if fact is None:
        return Translation(ignored=1)
    type_, data = fact
    if activity.get("deal_id") and type_ != "call.placed":
        data["deal_id"] = str(activity["deal_id"])
    event = canonical_event(
        event_id=str(meta["id"]), source=_source(meta), type_=type_, time=_when(meta), data=data
    )
    return Translation(events=[event])


def _activity_fact(
    activity: dict[str, Any], previous: dict[str, Any] | None
) -> tuple[str, dict[str, Any]] | None:
    """(type, data) of what an activity change tells: a meeting booked (created, not done), or
    a call, meeting or email just marked done; None for anything else."""
    done = bool(activity.get("done"))
    owner = activity.get("owner_id")
    base: dict[str, Any] = {
        "actor": {"provider": PROVIDER, "external_id": str(owner)} if owner else None
    }
    if activity["type"] == "meeting" and previous is None and not done:
        return "meeting.booked", {"meeting_id": str(activity["id"]), **base}
    just_done = done and (previous is None or previous.get("done") is False)
    return _done_fact(activity, base) if just_done else None


def _done_fact(activity: dict[str, Any], base: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    kind, key = activity["type"], str(activity["id"])
    if kind == "call":
        talk = _duration(activity.get("duration"))
        data = {"call_id": f"activity-{key}", "outcome": "connected", "talk_seconds": talk}
        return "call.placed", {**data, **base}
    if kind == "meeting":
        return "meeting.held", {"meeting_id": key, **base}
    if kind == "email":
        return "email.sent", {"id": key, **base}
    return None


def _duration(value: Any) -> int:
    """Pipedrive durations: ``HH:MM`` or ``HH:MM:SS`` text, or seconds."""
    if value in (None, ""):
        return 0
    if isinstance(value, int | float):
        return int(value)
    # ASCII digits only, and few of them: int() refuses "²" and numbers of thousands of digits.
    parts = [int(p) for p in str(value).split(":") if p.isascii() and p.isdigit() and len(p) < 10]
    if len(parts) == 2:
        return parts[0] * 3600 + parts[1] * 60
    if len(parts) == 3:
        return parts[0] * 3600 + parts[1] * 60 + parts[2]
    return 0
