"""Twilio Voice status callbacks (``/webhooks/twilio/voice``), form-encoded.

A call is one fact. Terminal callbacks only count; progress (queued, ringing, in-progress) is
acknowledged and ignored. An inbound call forwarded with ``<Dial>`` reports ``completed`` on its
parent leg even when nobody answered, so the parent leg never counts as answered: the child leg
(``Direction=outbound-dial``) says whether the rep it rang answered (received) or not (missed).
A parent leg that ends unanswered itself (busy, no-answer, ...) never reached a rep: it is a
missed call for the number that was called.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from services.ingest.providers.base import (
    Delivery,
    Translation,
    canonical_event,
    require,
    same_secret,
)
from shared.problems import BadRequest, Unauthorized

PROVIDER = "twilio"
TERMINAL = {"completed", "busy", "no-answer", "failed", "canceled"}
PLACED_OUTCOME = {
    "completed": "connected",
    "busy": "busy",
    "no-answer": "no_answer",
    "failed": "failed",
    "canceled": "no_answer",
}
MISSED_REASON = {
    "busy": "busy",
    "no-answer": "no_answer",
    "canceled": "abandoned",
    "failed": "other",
    "completed": "other",
}


def signature(token: str, url: str, params: list[tuple[str, str]]) -> str:
    """base64(HMAC-SHA1(auth token, URL + each name+value, names sorted, values sorted))."""
    values: dict[str, set[str]] = {}
    for name, value in params:
        values.setdefault(name, set()).add(value)
    payload = url + "".join(
        name + value for name in sorted(values) for value in sorted(values[name])
    )
    digest = hmac.new(token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def url_variants(url: str) -> list[str]:
    """The URL as given, and with the default port added or the explicit one removed (as
    Twilio's own library tries both)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        other = parts._replace(netloc=host)
    else:
        other = parts._replace(netloc=f"{host}:{443 if parts.scheme == 'https' else 80}")
    return [url, urlunsplit(other)]


class TwilioAdapter:
    provider = PROVIDER
    path = "/webhooks/twilio/voice"
    secret_fields: tuple[str, ...] = ()  # form-encoded, and the auth token is never in it

    def __init__(self, auth_token: str) -> None:
        self._token = auth_token

    def verify(self, delivery: Delivery) -> None:
        presented = delivery.headers.get("x-twilio-signature")
        if not presented:
            raise Unauthorized("missing X-Twilio-Signature header", slug="bad-signature")
        params = _form(delivery)
        if not any(
            same_secret(presented, signature(self._token, url, params))
            for url in url_variants(delivery.url)
        ):
            raise Unauthorized(
                f"X-Twilio-Signature does not match a signature of {delivery.url} "
                "(is SALESPULSE_PUBLIC_BASE_URL the URL Twilio calls?)",
                slug="bad-signature",
            )

    def translate(self, delivery: Delivery) -> Translation:
        form = dict(_form(delivery))
        require(form, "CallSid", "CallStatus", "Direction", where="twilio")
        status, direction = form["CallStatus"], form["Direction"]
        if status not in TERMINAL:
            return Translation(ignored=1)
        event = _call_fact(form, status, direction, delivery)
        return Translation(events=[event]) if event else Translation(ignored=1)


def _form(delivery: Delivery) -> list[tuple[str, str]]:
    content_type = delivery.headers.get("content-type", "")
    if not content_type.startswith("application/x-www-form-urlencoded"):
        raise BadRequest(f"expected application/x-www-form-urlencoded, got {content_type!r}")
    try:
        return parse_qsl(delivery.body.decode(), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        raise BadRequest("form body is not UTF-8") from None


def _call_fact(
    form: dict[str, str], status: str, direction: str, delivery: Delivery
) -> dict[str, Any] | None:
    """The one fact a terminal callback tells, by the leg it is about; None: nothing to count."""
    if direction == "outbound-dial":
        return _dialled_leg(form, status, delivery)
    if direction == "inbound":
        return _inbound_parent(form, status, delivery)
    # outbound-api (and any other outbound): the rep placed the call
    return _placed(form, status, delivery)


def _dialled_leg(form: dict[str, str], status: str, delivery: Delivery) -> dict[str, Any]:
    """The child leg of a ``<Dial>``ed inbound call: received or missed by the rep it rang."""
    rep, other = form.get("To", ""), form.get("From")
    if status == "completed":
        return _event(
            form,
            "call.received",
            delivery,
            actor=_actor(rep),
            counterpart=other,
            talk_seconds=_seconds(form.get("CallDuration")),
        )
    return _event(
        form,
        "call.missed",
        delivery,
        actor=_actor(rep),
        counterpart=other,
        reason=MISSED_REASON[status],
    )


def _inbound_parent(form: dict[str, str], status: str, delivery: Delivery) -> dict[str, Any] | None:
    """The parent leg of an inbound call: missed by the queue if nobody was dialled."""
    if status == "completed":  # the child leg says who answered or missed
        return None
    return _event(
        form,
        "call.missed",
        delivery,
        queue=form.get("To") or "twilio",
        counterpart=form.get("From"),
        reason=MISSED_REASON[status],
    )


def _placed(form: dict[str, str], status: str, delivery: Delivery) -> dict[str, Any]:
    """A call the rep placed; an answering machine makes it a voicemail."""
    outcome = PLACED_OUTCOME[status]
    if outcome == "connected" and form.get("AnsweredBy", "").startswith("machine"):
        outcome = "voicemail"
    talk = _seconds(form.get("CallDuration")) if outcome == "connected" else 0
    return _event(
        form,
        "call.placed",
        delivery,
        actor=_actor(form.get("From", "")),
        counterpart=form.get("To"),
        outcome=outcome,
        talk_seconds=talk,
    )


def _event(form: dict[str, str], type_: str, delivery: Delivery, **data: Any) -> dict[str, Any]:
    when = delivery.received_at
    if form.get("Timestamp"):
        # An unreadable Timestamp is not worth refusing the callback: the receipt time stands.
        with contextlib.suppress(TypeError, ValueError, OverflowError, IndexError):
            when = parsedate_to_datetime(form["Timestamp"])
    body = {"call_id": form["CallSid"], **{k: v for k, v in data.items() if v is not None}}
    # One fact per call: its CallSid is the id, whichever terminal callback (or retry) says it.
    return canonical_event(
        event_id=form["CallSid"],
        source=f"twilio://{form.get('AccountSid', 'account')}",
        type_=type_,
        time=when,
        data=body,
    )


def _actor(identity: str) -> dict[str, str] | None:
    """The rep: ``client:<identity>`` (Voice SDK) or the rep's own number, as on the roster."""
    return {"provider": PROVIDER, "external_id": identity} if identity else None


def _seconds(value: str | None) -> int:
    try:
        return max(int(value or 0), 0)
    except ValueError:
        return 0
