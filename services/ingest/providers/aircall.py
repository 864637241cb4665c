"""Aircall webhooks (``/webhooks/aircall``): JSON ``{resource, event, timestamp, token, data}``.

``call.hungup`` fires at once and ``call.ended`` about 30 s later with the final data: the call
is counted once, on ``call.ended``. The other call events are progress and are ignored; events
of resources we do not track are acknowledged and dead-lettered.
"""

from __future__ import annotations

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
from shared.events import actor_email
from shared.problems import Problem, Unauthorized, Unprocessable

PROVIDER = "aircall"
MISSED_REASON = {
    "out_of_opening_hours": "out_of_hours",
    "short_abandoned": "abandoned",
    "abandoned_in_ivr": "abandoned",
    "abandoned_in_classic": "abandoned",
    "no_available_agent": "no_answer",
    "agents_did_not_answer": "no_answer",
}


class AircallAdapter:
    provider = PROVIDER
    path = "/webhooks/aircall"
    secret_fields: tuple[str, ...] = ("token",)  # Aircall sends its webhook token in the body

    def __init__(self, token: str) -> None:
        self._token = token

    def verify(self, delivery: Delivery) -> None:
        payload = delivery.json()
        token = payload.get("token") if isinstance(payload, dict) else None
        if not isinstance(token, str) or not same_secret(token, self._token):
            raise Unauthorized(
                "the webhook token does not match SALESPULSE_AIRCALL_TOKEN", slug="bad-token"
            )

    def translate(self, delivery: Delivery) -> Translation:
        payload = delivery.json()
        require(payload, "event", "data", where="aircall")
        event, data = payload["event"], payload["data"]
        if not isinstance(data, dict) or not isinstance(event, str):
            raise Unprocessable(
                "aircall: event must be a string and data an object",
                errors=[{"field": "aircall", "message": "event must be a string, data an object"}],
            )
        if not event.startswith("call."):
            return Translation(
                unusable=[Unusable(f"aircall event {clip(repr(event))} is not tracked")]
            )
        if event != "call.ended":
            return Translation(ignored=1)
        try:  # the call's own fields: a bad one is this delivery's dead letter, not a refusal
            require(data, "id", "direction", where="aircall.data")
            return Translation(events=[_call(data, payload.get("timestamp"))])
        except Problem as problem:
            return Translation(unusable=[Unusable(f"invalid_event: {problem.summary()}")])


def _call(call: dict[str, Any], timestamp: Any) -> dict[str, Any]:
    started = _stamp(call, "started_at")
    answered = _stamp(call, "answered_at")
    ended = _stamp(call, "ended_at") or _number(timestamp, "aircall.timestamp") or started
    talk = max(ended - answered, 0) if answered and ended else 0
    user = _object(call, "user")
    email = user.get("email")
    actor = {"provider": PROVIDER, "external_id": str(user["id"])} if user.get("id") else None
    if actor is not None and isinstance(email, str) and _is_email(email):
        actor["email"] = email  # the rep is matched by it when the user id is not known yet
    who = {
        "actor": actor,
        "counterpart": call.get("raw_digits"),
    }
    if call["direction"] == "outbound":
        outcome = (
            "connected" if answered else ("voicemail" if call.get("voicemail") else "no_answer")
        )
        return _event(call, "call.placed", ended, **who, outcome=outcome, talk_seconds=talk)
    if answered is None or call.get("missed_call_reason"):
        return _event(call, "call.missed", ended, **who, **_missed(call))
    wait = max(answered - started, 0) if started else 0
    return _event(call, "call.received", ended, **who, talk_seconds=talk, wait_seconds=wait)


def _is_email(value: str) -> bool:
    """An email the event can carry (one it cannot is left out: the call still counts)."""
    try:
        actor_email(value)
    except ValueError:
        return False
    return len(value) <= 320


def _missed(call: dict[str, Any]) -> dict[str, str]:
    """Why an inbound call was missed, and the number (queue) it came in on."""
    reason = (
        "voicemail"
        if call.get("voicemail")
        else MISSED_REASON.get(str(call.get("missed_call_reason") or ""), "no_answer")
    )
    number = _object(call, "number").get("id")
    return {"reason": reason, "queue": f"aircall-number:{number}" if number else "aircall"}


def _stamp(call: dict[str, Any], name: str) -> int | None:
    """An epoch-seconds field of the call, None when absent."""
    return _number(call.get(name), f"aircall.data.{name}")


def _number(value: Any, field: str) -> int | None:
    if value in (None, "", 0):
        return None
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):
        raise Unprocessable(
            f"{field}: not a timestamp", errors=[{"field": field, "message": "not a timestamp"}]
        ) from None


def _object(call: dict[str, Any], name: str) -> dict[str, Any]:
    value = call.get(name)
    return value if isinstance(value, dict) else {}


def _event(call: dict[str, Any], type_: str, when: Any, **data: Any) -> dict[str, Any]:
    body = {"call_id": str(call["id"]), **{k: v for k, v in data.items() if v is not None}}
    return canonical_event(
        event_id=f"call-{call['id']}",
        source="aircall://calls",
        type_=type_,
        time=epoch(when, field="aircall.data.ended_at"),
        data=body,
    )


def call_event(call: dict[str, Any]) -> dict[str, Any]:
    """The canonical event of a finished call, as its ``call.ended`` webhook makes it: a call of
    Aircall's REST API has the shape of a webhook's ``data`` (a backfill; same id, same source)."""
    require(call, "id", "direction", where="aircall.data")
    return _call(call, None)
