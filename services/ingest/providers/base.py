"""What every provider adapter is: verify a delivery, then translate it into canonical events.

``translate`` is a pure function of the verified delivery (and the adapter's configuration):
adding a provider is adding one module with one adapter class.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson

from shared.problems import BadRequest, Unprocessable


@dataclass(frozen=True, slots=True)
class Delivery:
    """One HTTP request from a provider, as received."""

    method: str
    url: str  # the public URL the provider called (rebuilt from PUBLIC_BASE_URL behind proxies)
    headers: Mapping[str, str]  # case-insensitive
    body: bytes
    received_at: datetime

    def json(self) -> Any:
        try:
            return orjson.loads(self.body)
        except orjson.JSONDecodeError as exc:
            raise BadRequest(f"body is not valid JSON: {exc}") from None


@dataclass(frozen=True, slots=True)
class Unusable:
    """Understood but not bookable: acknowledged, and written to the dead-letter topic."""

    reason: str
    body: bytes | None = None  # the part concerned; None = the whole delivery


@dataclass(slots=True)
class Translation:
    events: list[dict[str, Any]] = field(default_factory=list)  # canonical event bodies
    ignored: int = 0  # progress reports the KPIs do not count (e.g. "ringing")
    unusable: list[Unusable] = field(default_factory=list)


class Adapter(Protocol):
    provider: str  # label in metrics and dead letters
    path: str  # the route

    def verify(self, delivery: Delivery) -> None:
        """Raise ``Unauthorized`` unless the delivery is authentic."""
        ...

    def translate(self, delivery: Delivery) -> Translation:
        """Canonical events from a verified delivery; ``BadRequest``/``Unprocessable`` if bad."""
        ...


def same_secret(presented: str | bytes, expected: str | bytes) -> bool:
    """Constant-time comparison of two secrets (text is compared as UTF-8)."""
    a = presented.encode() if isinstance(presented, str) else presented
    b = expected.encode() if isinstance(expected, str) else expected
    return hmac.compare_digest(a, b)


def canonical_event(
    *, event_id: str, source: str, type_: str, time: datetime, data: dict[str, Any]
) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": event_id,
        "source": source,
        "type": type_,
        "time": time.astimezone(UTC).isoformat(),
        "data": data,
    }


def epoch(value: Any, *, millis: bool = False) -> datetime:
    """A provider timestamp (seconds or milliseconds since the epoch) as an aware datetime."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise Unprocessable(f"timestamp {value!r} is not a number") from None
    return datetime.fromtimestamp(number / 1000 if millis else number, UTC)


def require(mapping: Mapping[str, Any], *names: str, where: str) -> None:
    missing = [n for n in names if mapping.get(n) in (None, "")]
    if missing:
        raise Unprocessable(
            f"{where}: missing {', '.join(missing)}",
            errors=[{"field": f"{where}.{n}", "message": "required"} for n in missing],
        )
