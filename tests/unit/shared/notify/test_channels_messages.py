"""The pure parts of a delivery: secrets, the classification of answers and of errors,
Retry-After, and the Markdown escaping of Teams cards."""

from __future__ import annotations

import base64
import html
import re
from datetime import UTC, datetime

import orjson
import pytest
from markdown_it import MarkdownIt
from standardwebhooks import Webhook

from shared.notify.messages import (
    Channel,
    Notification,
    new_secret,
    secret_problem,
    teams_body,
    teams_escape,
)
from shared.notify.outcome import (
    answered,
    outcome_of_status,
    retry_after_seconds,
    scrubbed,
    status_error,
    urls_cut,
)

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


def test_an_answer_is_classified_never_quoted() -> None:
    """The receiver's words (its body, its reason phrase) are never kept: a 404 page may echo
    the URL's token. The class, and the standard phrase of the status."""
    assert answered(404, None, NOW).error == "http_404 (Not Found)"
    assert answered(404, None, NOW).outcome == "failed"
    busy = answered(429, "7", NOW)
    assert (busy.outcome, busy.error, busy.retry_after) == (
        "retry",
        "http_429 (Too Many Requests)",
        7,
    )
    assert answered(200, None, NOW).error is None
    assert status_error(599) == "http_599"  # no standard phrase: the class alone


def test_every_url_in_an_error_is_cut_after_its_host() -> None:
    text = "no such hook: https://user:pw@hooks.example.com:8443/T/B/tok?sig=abc (sorry)"
    assert urls_cut(text) == "no such hook: https://hooks.example.com:8443/… (sorry)"
    assert urls_cut("see http://h.example") == "see http://h.example"
    assert "tok" not in scrubbed("GET https://other.example/x/tok failed", [])


MARKUP = re.compile(r"<(?!/?p>)[a-z]")  # any element but the paragraph


def rendered(text: str) -> str:
    """What a CommonMark renderer (markdown-it, as the Adaptive Cards JS renderer uses) makes of
    ``text``."""
    out: str = MarkdownIt("commonmark").render(text)
    return out


@pytest.mark.parametrize(
    "name",
    [
        "[Reset your password](https://evil.example/login)",
        "![pixel](https://evil.example/p.png)",
        "**Boss** _urgent_ `code` ~~gone~~",
        "# Heading",
        "> quoted",
        "- item\n+ item\n* item",
        "1. first\n2) second",
        "<https://evil.example>",
        "<b>bold</b>",
        "back\\slash [x]\\(y)",
        "| a | b |",
    ],
)
def test_teams_text_is_shown_as_written_never_as_markup(name: str) -> None:
    escaped = teams_escape(name)
    html_out = rendered(escaped)
    assert MARKUP.search(html_out) is None, html_out
    shown = html.unescape(re.sub(r"</?p>", "", html_out)).strip()
    assert shown.split() == name.split()  # the same characters (line breaks aside)


def test_the_unescaped_name_would_have_been_a_link() -> None:
    # the test above means something: the renderer does make a link of the raw name
    assert '<a href="https://evil.example/login">' in rendered(
        "[Reset](https://evil.example/login)"
    )


def test_a_teams_card_escapes_the_text_and_the_facts() -> None:
    name = "[Reset your password](https://evil.example)"
    note = Notification(
        id="n1",
        kind="deal_won",
        time=NOW,
        data={"subject": {"scope": "rep", "id": "x", "name": name}, "text": f"{name} closed 10"},
    )
    card = orjson.loads(teams_body(note))["attachments"][0]["content"]
    texts = [card["body"][0]["text"], *(f["value"] for f in card["body"][1]["facts"])]
    assert texts == [teams_escape(f"{name} closed 10"), teams_escape(name)]
    assert all("<a " not in rendered(t) for t in texts)
