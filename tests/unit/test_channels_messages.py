"""The pure parts of a delivery: secrets, the classification of answers, Retry-After."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest
from standardwebhooks import Webhook

from shared.notify.messages import Channel, new_secret, secret_problem
from shared.notify.outcome import outcome_of_status, retry_after_seconds, scrubbed

NOW = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)


def test_secrets_are_standard_webhooks_ones() -> None:
    secret = new_secret()
    assert secret_problem(secret) is None
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 32
    Webhook(secret).sign("msg", NOW, "{}")
    for size, fine in ((23, False), (24, True), (64, True), (65, False)):
        candidate = "whsec_" + base64.b64encode(b"k" * size).decode()
        assert (secret_problem(candidate) is None) is fine
    assert "whsec_" in (secret_problem("sk_live_abc") or "")
    assert "base64" in (secret_problem("whsec_not base64!") or "")


def test_a_channel_never_shows_its_secret() -> None:
    secret = new_secret()
    assert secret not in repr(Channel("c", "webhook", "https://example.com/", secret))


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, "delivered"),
        (202, "delivered"),
        (204, "delivered"),
        (301, "failed"),
        (400, "failed"),
        (401, "failed"),
        (404, "failed"),
        (408, "retry"),
        (410, "failed"),
        (429, "retry"),
        (500, "retry"),
        (503, "retry"),
    ],
)
def test_answers_are_classified(status: int, outcome: str) -> None:
    assert outcome_of_status(status) == outcome


def test_retry_after_in_seconds_or_as_a_date() -> None:
    assert retry_after_seconds("120", NOW) == 120.0
    assert retry_after_seconds("Thu, 26 Nov 2026 12:01:30 GMT", NOW) == 90.0
    assert retry_after_seconds("Thu, 26 Nov 2026 11:00:00 GMT", NOW) == 0.0  # past: now
    for bad in (None, "", "soon", "-5", "1.5"):
        assert retry_after_seconds(bad, NOW) is None


def test_errors_are_scrubbed_and_clipped() -> None:
    assert scrubbed("POST https://h/T/B/tok failed", ["https://h/T/B/tok", None]) == (
        "POST *** failed"
    )
    assert len(scrubbed("x" * 1000, [])) == 300
