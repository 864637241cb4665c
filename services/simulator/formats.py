"""Signed deliveries in each provider's own format, for the simulator and the benchmarks.

Each builder turns one piece of simulated activity into (path, body, headers) exactly as that
provider would send it, signed with the same secret the ingest verifies.
"""

from __future__ import annotations

import base64
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlencode

import orjson
from standardwebhooks import Webhook

from services.ingest.providers.hubspot import signature_v3
from services.ingest.providers.twilio import signature as twilio_signature

Request = tuple[str, bytes, dict[str, str]]


@dataclass(frozen=True)
class Rep:
    rep_id: str
    name: str
    team_id: str
    number: int  # seeds the rep's numeric ids at Aircall, HubSpot and Pipedrive

    def identities(self) -> list[dict[str, str]]:
        return [
            {"provider": p, "external_id": x}
            for p, x in (
                ("sim", self.rep_id),
                ("twilio", f"client:{self.rep_id}"),
                ("aircall", str(100_000 + self.number)),
                ("hubspot", str(200_000 + self.number)),
                ("pipedrive", str(300_000 + self.number)),
            )
        ]


@dataclass(frozen=True)
class Secrets:
    standard: str | None = None
    twilio: str | None = None
    aircall: str | None = None
    hubspot: str | None = None
    pipedrive: tuple[str, str] | None = None

    def providers(self) -> list[str]:
        names = ("standard", "twilio", "aircall", "hubspot", "pipedrive")
        return [n for n in names if getattr(self, n)]


def signed_headers(secret: str, body: bytes, msg_id: str | None = None) -> dict[str, str]:
    """Standard Webhooks headers for ``body`` (the ``standardwebhooks`` package signs it)."""
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    now = datetime.now(UTC)
    signature = Webhook(secret).sign(msg_id, now, body.decode())
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
        "content-type": "application/json",
    }


class Formats:
    def __init__(self, secrets: Secrets, base_url: str, rng: random.Random) -> None:
        self._secrets = secrets
        self._base = base_url.rstrip("/")
        self._rng = rng
        self.builders: dict[str, Callable[[Rep], Request]] = {
            "standard": self.standard,
            "twilio": self.twilio,
            "aircall": self.aircall,
            "hubspot": self.hubspot,
            "pipedrive": self.pipedrive,
        }

    def _number(self) -> str:
        return f"+3361{self._rng.randrange(10**7):07d}"

    def standard(self, rep: Rep) -> Request:
        kind, data = self._rng.choices(
            self._canonical_facts(uuid.uuid4().hex), weights=[35, 15, 20, 10, 10, 6, 4]
        )[0]
        if kind.startswith("call"):
            data["counterpart"] = self._number()
        event = {
            "specversion": "1.0",
            "id": f"sim-{uuid.uuid4().hex}",
            "source": "sim://floor",
            "type": kind,
            "time": datetime.now(UTC).isoformat(),
            "data": {**data, "actor": {"provider": "sim", "external_id": rep.rep_id}},
        }
        body = orjson.dumps(event)
        assert self._secrets.standard
        return "/webhooks/events", body, signed_headers(self._secrets.standard, body)

    def _canonical_facts(self, call_id: str) -> list[tuple[str, dict[str, Any]]]:
        """What a rep may do, as (type, data), in the order ``standard`` weighs them."""
        return [
            (
                "call.placed",
                {
                    "call_id": call_id,
                    "outcome": "connected",
                    "talk_seconds": self._rng.randint(30, 900),
                },
            ),
            ("call.placed", {"call_id": call_id, "outcome": "no_answer"}),
            ("call.received", {"call_id": call_id, "talk_seconds": self._rng.randint(20, 600)}),
            ("call.missed", {"call_id": call_id, "reason": "no_answer"}),
            ("meeting.held", {"meeting_id": uuid.uuid4().hex}),
            (
                "deal.updated",
                {
                    "deal_id": f"D-{uuid.uuid4().hex[:8]}",
                    "status": "won",
                    "amount": str(self._rng.randrange(1_000, 50_000, 250)),
                    "currency": "EUR",
                },
            ),
            ("deal.updated", {"deal_id": f"D-{uuid.uuid4().hex[:8]}", "status": "lost"}),
        ]

    def twilio(self, rep: Rep) -> Request:
        assert self._secrets.twilio
        path = "/webhooks/twilio/voice"
        inbound = self._rng.random() < 0.4
        status = self._rng.choices(["completed", "no-answer", "busy"], weights=[70, 20, 10])[0]
        params = {
            "AccountSid": "ACsimulator",
            "ApiVersion": "2010-04-01",
            "CallSid": f"CA{uuid.uuid4().hex}",
            "CallStatus": status,
            "Direction": "outbound-dial" if inbound else "outbound-api",
            "From": self._number() if inbound else f"client:{rep.rep_id}",
            "To": f"client:{rep.rep_id}" if inbound else self._number(),
            "CallDuration": str(self._rng.randint(20, 600) if status == "completed" else 0),
            "Timestamp": format_datetime(datetime.now(UTC)),
            "SequenceNumber": "3",
        }
        signature = twilio_signature(self._secrets.twilio, self._base + path, list(params.items()))
        return (
            path,
            urlencode(params).encode(),
            {"content-type": "application/x-www-form-urlencoded", "x-twilio-signature": signature},
        )

    def aircall(self, rep: Rep) -> Request:
        assert self._secrets.aircall
        now = int(time.time())
        inbound = self._rng.random() < 0.5
        answered = self._rng.random() < 0.75
        started = now - self._rng.randint(60, 900)
        call = {
            "id": self._rng.randrange(10**9),
            "direction": "inbound" if inbound else "outbound",
            "status": "done",
            "started_at": started,
            "answered_at": started + self._rng.randint(3, 20) if answered else None,
            "ended_at": now,
            "raw_digits": self._number(),
            "missed_call_reason": None if answered or not inbound else "agents_did_not_answer",
            "user": {"id": 100_000 + rep.number, "name": rep.name},
            "number": {"id": 1},
        }
        body = orjson.dumps(
            {
                "resource": "call",
                "event": "call.ended",
                "timestamp": now,
                "token": self._secrets.aircall,
                "data": call,
            }
        )
        return "/webhooks/aircall", body, {"content-type": "application/json"}

    def hubspot(self, rep: Rep) -> Request:
        assert self._secrets.hubspot
        path = "/webhooks/hubspot"
        deal, now = self._rng.randrange(10**8), int(time.time() * 1000)
        won = self._rng.random() < 0.7

        def change(offset: int, name: str, value: str) -> dict[str, Any]:
            return {
                "eventId": self._rng.randrange(10**9),
                "portalId": 4242,
                "objectId": deal,
                "occurredAt": now + offset,
                "subscriptionType": "deal.propertyChange",
                "propertyName": name,
                "propertyValue": value,
                "attemptNumber": 0,
            }

        body = orjson.dumps(
            [
                change(0, "hubspot_owner_id", str(200_000 + rep.number)),
                change(1, "amount", str(self._rng.randrange(2_000, 80_000, 500))),
                change(2, "dealstage", "closedwon" if won else "closedlost"),
            ]
        )
        stamp = str(now)
        signature = signature_v3(self._secrets.hubspot, "POST", self._base + path, body, stamp)
        return (
            path,
            body,
            {
                "content-type": "application/json",
                "x-hubspot-request-timestamp": stamp,
                "x-hubspot-signature-v3": signature,
            },
        )

    def pipedrive(self, rep: Rep) -> Request:
        assert self._secrets.pipedrive
        user, password = self._secrets.pipedrive
        owner = 300_000 + rep.number
        meta = {
            "id": str(uuid.uuid4()),
            "action": "change",
            "company_id": 77,
            "timestamp": datetime.now(UTC).isoformat(),
            "version": "2.0",
        }
        if self._rng.random() < 0.5:
            payload = self._pipedrive_call_done(meta, owner)
        else:
            payload = self._pipedrive_deal_won(meta, owner)
        credentials = base64.b64encode(f"{user}:{password}".encode()).decode()
        return (
            "/webhooks/pipedrive",
            orjson.dumps(payload),
            {"content-type": "application/json", "authorization": f"Basic {credentials}"},
        )

    def _pipedrive_call_done(self, meta: dict[str, Any], owner: int) -> dict[str, Any]:
        return {
            "meta": {**meta, "entity": "activity"},
            "data": {
                "id": self._rng.randrange(10**8),
                "type": "call",
                "done": True,
                "owner_id": owner,
                "duration": f"00:{self._rng.randint(1, 40):02d}",
            },
            "previous": {"done": False},
        }

    def _pipedrive_deal_won(self, meta: dict[str, Any], owner: int) -> dict[str, Any]:
        return {
            "meta": {**meta, "entity": "deal"},
            "data": {
                "id": self._rng.randrange(10**8),
                "status": "won",
                "value": self._rng.randrange(1_000, 30_000, 100),
                "currency": "EUR",
                "owner_id": owner,
            },
            "previous": {"status": "open"},
        }
