"""Records for ``sales.deadletter.v1``: what could not be understood or booked, and why."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from datetime import UTC, datetime

import orjson

from shared.bus import OutgoingRecord


def dead_letter(
    *,
    provider: str,
    reason: str,
    body: bytes,
    headers: Mapping[str, str] | None = None,
    origin: str | None = None,
    now: datetime | None = None,
) -> OutgoingRecord:
    """The original body (base64), the headers of interest, the provider, the reason, the time."""
    payload = {
        "provider": provider,
        "reason": reason,
        "time": (now or datetime.now(UTC)).isoformat(),
        "origin": origin,
        "headers": dict(headers or {}),
        "body_base64": base64.b64encode(body).decode(),
    }
    return OutgoingRecord(key=provider.encode(), value=orjson.dumps(payload))
