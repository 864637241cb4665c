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
    epoch,
    require,
    same_secret,
)
from shared.problems import Unauthorized, Unprocessable

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
        if not isinstance(data, dict):
            raise Unprocessable("aircall: data must be an object")
        if not event.startswith("call."):
            return Translation(unusable=[Unusable(f"aircall event {event!r} is not tracked")])
        if event != "call.ended":
            return Translation(ignored=1)
        require(data, "id", "direction", where="aircall.data")
        return Translation(events=[_call(data, payload.get("timestamp"))])


def _call(call: dict[str, Any], timestamp: Any) -> dict[str, Any]:
    started = call.get("started_at")
    answered = call.get("answered_at")
    ended = call.get("ended_at") or timestamp or started
    talk = max(int(ended) - int(answered), 0) if answered and ended else 0
    user = call.get("user") or {}
    actor = {"provider": PROVIDER, "external_id": str(user["id"])} if user.get("id") else None
    counterpart = call.get("raw_digits")
    if call["direction"] == "outbound":
        outcome = (
            "connected" if answered else ("voicemail" if call.get("voicemail") else "no_answer")
        )
        return _event(
            call,
            "call.placed",
            ended,
            actor=actor,
            counterpart=counterpart,
            outcome=outcome,
            talk_seconds=talk,
        )
    if answered is None or call.get("missed_call_reason"):
        reason = (
            "voicemail"
            if call.get("voicemail")
            else MISSED_REASON.get(call.get("missed_call_reason") or "", "no_answer")
        )
        number = (call.get("number") or {}).get("id")
        return _event(
            call,
            "call.missed",
            ended,
            actor=actor,
            counterpart=counterpart,
            reason=reason,
            queue=f"aircall-number:{number}" if number else "aircall",
        )
    wait = max(int(answered) - int(started), 0) if started else 0
    return _event(
        call,
        "call.received",
        ended,
        actor=actor,
        counterpart=counterpart,
        talk_seconds=talk,
        wait_seconds=wait,
    )


def _event(call: dict[str, Any], type_: str, when: Any, **data: Any) -> dict[str, Any]:
    body = {"call_id": str(call["id"]), **{k: v for k, v in data.items() if v is not None}}
    return canonical_event(
        event_id=f"call-{call['id']}",
        source="aircall://calls",
        type_=type_,
        time=epoch(when),
        data=body,
    )
