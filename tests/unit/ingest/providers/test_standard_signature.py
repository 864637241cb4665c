"""The Standard Webhooks check of the ingest gives the ``standardwebhooks`` package's verdict.

The ingest checks signatures in one pass of its own (the package's check was the costliest step
of a webhook); here both judge the same deliveries, well-formed and not, and must agree.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError
from starlette.datastructures import Headers

from services.ingest.providers.standard import SignatureRejected, check_signature, secret_key

Header = tuple[bytes, bytes]
latin1 = st.text(st.characters(min_codepoint=32, max_codepoint=255), max_size=12)
ids = st.one_of(
    *[st.text(st.characters(min_codepoint=33, max_codepoint=255), min_size=1)] * 6, latin1
)


def package_verdict(secret: str, body: bytes, raw: list[Header]) -> str:
    """What the package says of a delivery, given its headers as the ingest used to pass them."""
    headers = {k: v for k, v in Headers(raw=raw).items() if k.lower().startswith("webhook-")}
    try:
        Webhook(secret).verify(body, headers, json_parse=False)
    except WebhookVerificationError as exc:
        return f"rejected: {exc}"
    except (ValueError, binascii.Error):
        return "malformed"
    return "ok"


def ingest_verdict(secret: str, body: bytes, raw: list[Header]) -> str:
    mac = hmac.new(secret_key(secret), digestmod=hashlib.sha256)
    try:
        check_signature(mac, body, Headers(raw=raw), datetime.now(UTC))
    except SignatureRejected as exc:
        return f"rejected: {exc}"
    except (ValueError, binascii.Error):
        return "malformed"
    return "ok"


@st.composite
def stamps(draw: st.DrawFn) -> str:
    """webhook-timestamp values: fresh, stale, ahead (never near the 5-minute edge), odd."""
    now = int(time.time())
    offset = draw(st.sampled_from([0, 0, 0, -1, 3, -200, 250, -420, 400, -86_400, 10**6]))
    fresh = st.sampled_from([str(now + offset)] * 4 + [f"{now + offset}.75", f" {now + offset} "])
    odd = st.sampled_from(["", "nan", "inf", "-inf", "1e400", "abc", "99999999999999", "-1"])
    return draw(st.one_of(fresh, fresh, fresh, odd))


@st.composite
def signature_headers(draw: st.DrawFn, secret: str, body: bytes, msg_id: str, stamp: str) -> str:
    """webhook-signature values: the right one among others, wrong ones, malformed ones."""
    entries = []
    for _ in range(draw(st.sampled_from([1, 1, 1, 2, 3]))):
        kind = draw(
            st.sampled_from(["right"] * 8 + ["other-secret", "v2", "no-comma", "two-commas"])
        )
        if kind in ("right", "other-secret"):
            key = secret if kind == "right" else "whsec_" + base64.b64encode(b"other").decode()
            try:
                when = datetime.fromtimestamp(float(stamp), UTC)
                entries.append(Webhook(key).sign(msg_id, when, body.decode()))
            except (ValueError, OverflowError, OSError):
                entries.append("v1," + base64.b64encode(b"x" * 32).decode())
        elif kind == "v2":
            entries.append("v2," + base64.b64encode(b"y" * 32).decode())
        elif kind == "no-comma":
            entries.append(draw(st.sampled_from(["nonsense", "v1", ""])))
        else:
            entries.append("v1,a,b")
    if draw(st.integers(0, 5)) == 0:
        entries.append(draw(st.sampled_from(["v1,***", "v1,abc", "v1,"])))  # not base64
    return " ".join(entries)


@st.composite
def deliveries(draw: st.DrawFn) -> tuple[str, bytes, list[Header]]:
    secret = "whsec_" + base64.b64encode(draw(st.binary(min_size=1, max_size=40))).decode()
    body = draw(st.one_of(*[st.text(max_size=40).map(str.encode)] * 4, st.binary(max_size=40)))
    msg_id = draw(ids)
    stamp = draw(stamps())
    signature = draw(st.one_of(*[signature_headers(secret, body, msg_id, stamp)] * 5, latin1))
    raw: list[Header] = [(b"host", b"t"), (b"content-type", b"application/json")]
    for name, value in (
        (b"webhook-id", msg_id),
        (b"webhook-timestamp", stamp),
        (b"webhook-signature", signature),
    ):
        for _ in range(draw(st.sampled_from([1] * 12 + [0, 2]))):  # missing, once, twice
            raw.append((name, value.encode("latin-1")))
    if draw(st.integers(0, 5)) == 0:  # a second signature header: the last one is read
        raw.append((b"webhook-signature", draw(latin1).encode("latin-1")))
    return secret, body, draw(st.permutations(raw))


@given(deliveries())
@hypothesis_settings(
    max_examples=600, deadline=None, database=None, suppress_health_check=list(HealthCheck)
)
def test_the_ingest_and_the_package_agree_on_every_delivery(
    delivery: tuple[str, bytes, list[Header]],
) -> None:
    secret, body, raw = delivery
    assert ingest_verdict(secret, body, raw) == package_verdict(secret, body, raw)


def test_a_signed_delivery_checks_and_a_changed_one_does_not() -> None:
    secret = "whsec_" + base64.b64encode(b"0123456789abcdef").decode()
    body, now = b'{"id": "\xc3\xa9"}', datetime.now(UTC)
    signature = Webhook(secret).sign("msg_1", now, body.decode())
    raw = [
        (b"webhook-id", b"msg_1"),
        (b"webhook-timestamp", str(int(now.timestamp())).encode()),
        (b"webhook-signature", f"v2,abc {signature}".encode()),
    ]
    assert ingest_verdict(secret, body, raw) == "ok"
    assert ingest_verdict(secret, body + b" ", raw) == "rejected: No matching signature found"
    assert ingest_verdict(secret, b"\xff" + body, raw) == "malformed"  # not UTF-8


def test_an_empty_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        secret_key("whsec_")
