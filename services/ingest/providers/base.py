"""What every provider adapter is: verify a delivery, then translate it into canonical events.

``translate`` is a pure function of the verified delivery (and the adapter's configuration):
adding a provider is adding one module with one adapter class.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson
from starlette.datastructures import Headers

from shared.problems import BadRequest, Unprocessable

# One request carries at most this many items (events, or HubSpot changes): parsing, validating
# and answering a request stays bounded, and a sender of more is told to split them.
MAX_BATCH_ITEMS = 1000


@dataclass(frozen=True, slots=True)
class Delivery:
    """One HTTP request from a provider, as received."""

    method: str
    # The public URL the provider called (rebuilt from PUBLIC_BASE_URL behind proxies), worked
    # out when asked: only some providers sign over it, and most deliveries need it nowhere else.
    locate: Callable[[], str]
    headers: Headers  # case-insensitive
    body: bytes
    received_at: datetime

    @property
    def url(self) -> str:
        return self.locate()

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
    """What a delivery says. Its events are validated by the caller, one by one."""

    events: list[Any] = field(default_factory=list)  # canonical event bodies, not yet validated
    ignored: int = 0  # progress reports the KPIs do not count (e.g. "ringing")
    unusable: list[Unusable] = field(default_factory=list)
    # For batches: the item each event came from, dead-lettered as it was sent if the event is
    # invalid. Empty for single deliveries: the whole delivery is the item.
    origins: list[Any] = field(default_factory=list)
    # A lone canonical event: its sender can fix it, so it is refused (422), not dead-lettered.
    refuse_invalid: bool = False

    def add(self, event: dict[str, Any] | Unusable, origin: Any) -> None:
        """One item of a batch: an event to validate (from ``origin``), or an unusable one."""
        if isinstance(event, Unusable):
            self.unusable.append(event)
        else:
            self.events.append(event)
            self.origins.append(origin)


class Adapter(Protocol):
    provider: str  # label in metrics and dead letters
    path: str  # the route
    secret_fields: tuple[str, ...]  # top-level JSON keys never copied into a dead letter

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


def epoch(value: Any, *, millis: bool = False, field: str = "timestamp") -> datetime:
    """A provider timestamp (seconds or milliseconds since the epoch) as an aware datetime;
    a 422 naming ``field`` when it is not one."""
    try:
        number = float(value)
        return datetime.fromtimestamp(number / 1000 if millis else number, UTC)
    except (TypeError, ValueError, OverflowError, OSError):  # not a number, NaN, out of range
        raise Unprocessable(
            f"{field} {clip(repr(value))} is not a time",
            errors=[{"field": field, "message": "not a time"}],
        ) from None


def require(mapping: Mapping[str, Any], *names: str, where: str) -> None:
    missing = [n for n in names if mapping.get(n) in (None, "")]
    if missing:
        raise Unprocessable(
            f"{where}: missing {', '.join(missing)}",
            errors=[{"field": f"{where}.{n}", "message": "required"} for n in missing],
        )


def clip(text: str, limit: int = 80) -> str:
    """Sender-controlled text quoted in a reason or detail, cut so it cannot bloat either."""
    return text if len(text) <= limit else f"{text[:limit]}..."


def bounded_items(payload: Any, where: str) -> list[Any]:
    """A JSON array of at most ``MAX_BATCH_ITEMS`` items, or a 422 naming the body."""
    if not isinstance(payload, list):
        raise Unprocessable(
            f"{where}: body must be a JSON array",
            errors=[{"field": "body", "message": "must be a JSON array"}],
        )
    if len(payload) > MAX_BATCH_ITEMS:
        message = f"at most {MAX_BATCH_ITEMS} items per request, got {len(payload)}"
        raise Unprocessable(f"body: {message}", errors=[{"field": "body", "message": message}])
    return payload


def item_body(item: Any) -> bytes | None:
    """One item of a batch as JSON, for its dead letter; None (the whole delivery) if it cannot
    be written back (nested deeper than the encoder goes)."""
    try:
        return orjson.dumps(item)
    except orjson.JSONEncodeError:
        return None


def without_fields(body: bytes, names: tuple[str, ...]) -> bytes:
    """A JSON object body without the given top-level keys (secrets), re-encoded.

    A body that cannot be re-encoded is withheld rather than kept with its secret in it.
    """
    if not names:
        return body
    try:
        payload = orjson.loads(body)
        if not isinstance(payload, dict) or not any(n in payload for n in names):
            return body
        return orjson.dumps({k: v for k, v in payload.items() if k not in names})
    except (orjson.JSONDecodeError, orjson.JSONEncodeError):
        return b'{"withheld": "the body could not be stripped of its secrets"}'
