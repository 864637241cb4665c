"""Records for ``sales.deadletter.v1``: what could not be understood or booked, and why.

A dead letter must always fit on the topic: one that the broker refuses (bigger than its
``max.message.bytes``, ~1 MiB by default) would fail the delivery it belongs to with a 503, and
the provider's retries would fail the same way for ever. So the body is cut to
``MAX_BODY_BYTES`` (base64 grows it by 4/3, ~683 KiB) and every other field is bounded too.
It never carries credentials: signature and credential headers are dropped whoever asks.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from datetime import UTC, datetime
from urllib.parse import urlsplit, urlunsplit

import orjson

from shared.bus import OutgoingRecord
from shared.problems import clip

MAX_BODY_BYTES = 512 * 1024
MAX_REASON_CHARS = 2000
MAX_TEXT_CHARS = 2048  # a header value, the origin
SECRET_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
        "x-twilio-signature",
        "webhook-signature",
    }
)
SECRET_HEADER_PREFIXES = ("x-hubspot-signature",)  # -v3, and the older unversioned ones


def _kept_headers(headers: Mapping[str, str] | None) -> dict[str, str]:
    kept: dict[str, str] = {}
    for name, value in (headers or {}).items():
        lower = name.lower()
        if lower in SECRET_HEADERS or lower.startswith(SECRET_HEADER_PREFIXES):
            continue
        kept[lower] = clip(value, MAX_TEXT_CHARS)
    return kept


def _without_userinfo(origin: str | None) -> str | None:
    """The origin URL without ``user:password@`` (a provider URL may carry Basic credentials)."""
    if origin is None:
        return None
    try:
        parts = urlsplit(origin)
    except ValueError:
        return None
    if parts.username is not None or parts.password is not None:
        parts = parts._replace(netloc=parts.netloc.rpartition("@")[2])
    return clip(urlunsplit(parts), MAX_TEXT_CHARS)


def dead_letter(
    *,
    provider: str,
    reason: str,
    body: bytes,
    headers: Mapping[str, str] | None = None,
    origin: str | None = None,
    now: datetime | None = None,
) -> OutgoingRecord:
    """The original body (base64, cut past ``MAX_BODY_BYTES`` with ``truncated``), the headers
    of interest without credentials, the provider, the reason, the time."""
    payload = {
        "provider": provider,
        "reason": clip(reason, MAX_REASON_CHARS),
        "time": (now or datetime.now(UTC)).isoformat(),
        "origin": _without_userinfo(origin),
        "headers": _kept_headers(headers),
        "body_base64": base64.b64encode(body[:MAX_BODY_BYTES]).decode(),
        "body_bytes": len(body),
        "truncated": len(body) > MAX_BODY_BYTES,
    }
    return OutgoingRecord(key=provider.encode(), value=orjson.dumps(payload))
