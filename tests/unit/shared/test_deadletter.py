"""Dead-letter records always fit on the topic and never carry credentials."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import orjson

from shared.deadletter import MAX_BODY_BYTES, MAX_REASON_CHARS, dead_letter

KAFKA_DEFAULT_MAX_MESSAGE_BYTES = 1_048_588


def test_a_small_body_is_kept_whole() -> None:
    record = dead_letter(
        provider="aircall",
        reason="not tracked",
        body=b'{"a": 1}',
        now=datetime(2026, 1, 1, tzinfo=UTC),
    )
    letter = orjson.loads(record.value)
    assert base64.b64decode(letter["body_base64"]) == b'{"a": 1}'
    assert (letter["truncated"], letter["body_bytes"]) == (False, 8)
    assert (letter["provider"], letter["time"]) == ("aircall", "2026-01-01T00:00:00+00:00")
    assert record.key == b"aircall"


def test_a_body_past_the_bound_is_cut_and_the_record_fits_the_broker() -> None:
    body = b"x" * (4 * 1024 * 1024)
    record = dead_letter(provider="standard", reason="r" * 100_000, body=body)
    letter = orjson.loads(record.value)
    assert letter["truncated"] is True
    assert letter["body_bytes"] == len(body)
    assert base64.b64decode(letter["body_base64"]) == body[:MAX_BODY_BYTES]
    assert len(letter["reason"]) == MAX_REASON_CHARS
    assert len(record.value) < KAFKA_DEFAULT_MAX_MESSAGE_BYTES - 64 * 1024  # room for headers


def test_credential_and_signature_headers_are_never_kept() -> None:
    headers = {
        "Authorization": "Basic c2VjcmV0",
        "Cookie": "session=secret",
        "X-Twilio-Signature": "secret",
        "X-HubSpot-Signature": "secret",
        "X-HubSpot-Signature-v3": "secret",
        "webhook-signature": "v1,secret",
        "user-agent": "HubSpot Webhooks",
        "x-request-id": "r" * 10_000,
    }
    record = dead_letter(provider="hubspot", reason="r", body=b"{}", headers=headers)
    letter = orjson.loads(record.value)
    assert b"secret" not in record.value
    assert set(letter["headers"]) == {"user-agent", "x-request-id"}
    assert len(letter["headers"]["x-request-id"]) < 4096


def test_credentials_in_the_origin_url_are_dropped() -> None:
    origin = "https://hook:pass@sales.example.com/webhooks/twilio/voice?x=1"
    record = dead_letter(provider="twilio", reason="r", body=b"", origin=origin)
    assert (
        orjson.loads(record.value)["origin"]
        == "https://sales.example.com/webhooks/twilio/voice?x=1"
    )
