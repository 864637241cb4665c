"""Standard Webhooks: our generic door for canonical events (``/webhooks/events``).

The signature check is the one of the ``standardwebhooks`` package (a test holds the two to the
same verdict on every input), done in one pass: the package copies every header, decodes the
body to text and encodes it back, and signs through base64 and back for each delivery, which
made it the costliest step of a webhook.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from datetime import UTC, datetime, timedelta
from math import floor

from starlette.datastructures import Headers

from services.ingest.providers.base import Delivery, Translation, bounded_items
from shared.problems import Unauthorized, Unprocessable

TOLERANCE = timedelta(minutes=5)  # how far webhook-timestamp may be from now, either way
SECRET_PREFIX = "whsec_"  # noqa: S105 (the prefix, not a secret)
SIGNATURE_HEADERS = frozenset((b"webhook-id", b"webhook-timestamp", b"webhook-signature"))


class SignatureRejected(Exception):
    """Why a delivery's Standard Webhooks signature does not check."""


def secret_key(secret: str) -> bytes:
    """The HMAC key a ``whsec_...`` secret stands for (base64, padding optional)."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX) + "==")
    if not key:
        raise ValueError("webhook secret may not be empty")
    return key


def signature_headers(headers: Headers) -> dict[str, str]:
    """webhook-id, -timestamp and -signature, in one pass; the last of one sent twice, as the
    package reads them (from a copy of the headers as a dict)."""
    return {
        name.decode("latin-1"): value.decode("latin-1")
        for name, value in headers.raw
        if name in SIGNATURE_HEADERS
    }


def signed_at(stamp: str, now: datetime) -> int:
    """webhook-timestamp as the whole seconds it signs, if within ``TOLERANCE`` of now."""
    try:
        when = datetime.fromtimestamp(float(stamp), tz=UTC)
    except (ValueError, OverflowError, OSError):
        raise SignatureRejected("Invalid Signature Headers") from None
    if when < now - TOLERANCE:
        raise SignatureRejected("Message timestamp too old")
    if when > now + TOLERANCE:
        raise SignatureRejected("Message timestamp too new")
    return floor(when.timestamp())


def check_signature(mac: hmac.HMAC, body: bytes, headers: Headers, now: datetime) -> None:
    """Raise ``SignatureRejected``, or ``ValueError``/``binascii.Error`` for a malformed
    signature header or a body that is not UTF-8, unless one v1 signature matches.

    ``mac`` is an HMAC-SHA256 keyed with the secret and fed nothing yet (copied, not used)."""
    body.decode()  # the package signs the body as text: one that is not UTF-8 never checks
    wanted = signature_headers(headers)
    msg_id = wanted.get("webhook-id")
    stamp = wanted.get("webhook-timestamp")
    signatures = wanted.get("webhook-signature")
    if not (msg_id and stamp and signatures):
        raise SignatureRejected("Missing required headers")
    signing = mac.copy()
    signing.update(f"{msg_id}.{signed_at(stamp, now)}.".encode())
    signing.update(body)
    expected = signing.digest()
    for versioned in signatures.split(" "):
        version, signature = versioned.split(",")
        if version == "v1" and hmac.compare_digest(expected, base64.b64decode(signature)):
            return
    raise SignatureRejected("No matching signature found")


class StandardWebhooksAdapter:
    provider = "standard"
    path = "/webhooks/events"
    secret_fields: tuple[str, ...] = ()

    def __init__(self, secret: str) -> None:
        self._mac = hmac.new(secret_key(secret), digestmod=hashlib.sha256)

    def verify(self, delivery: Delivery) -> None:
        """id, timestamp (+-5 min of when the delivery was received) and signature must check."""
        try:
            check_signature(self._mac, delivery.body, delivery.headers, delivery.received_at)
        except SignatureRejected as exc:
            raise Unauthorized(f"webhook signature rejected: {exc}", slug="bad-signature") from None
        except (ValueError, binascii.Error):
            raise Unauthorized(
                "webhook signature rejected: malformed webhook-signature header or body encoding",
                slug="bad-signature",
            ) from None

    def translate(self, delivery: Delivery) -> Translation:
        """The body already is canonical: one event, or an array validated item by item."""
        payload = delivery.json()
        if isinstance(payload, dict):
            return Translation(events=[payload], refuse_invalid=True)
        if not isinstance(payload, list):
            raise Unprocessable(
                "body must be one event object or an array of events",
                errors=[{"field": "body", "message": "not an object or an array"}],
            )
        items = bounded_items(payload, "events")
        if not items:
            raise Unprocessable(
                "an empty array carries no event",
                errors=[{"field": "body", "message": "empty array"}],
            )
        return Translation(events=list(items), origins=list(items))
