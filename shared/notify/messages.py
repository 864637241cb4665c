"""What each kind of channel is sent, and the ``whsec_`` secrets (pure: no I/O).

Guarantees:

- a webhook body is ``{type: "salespulse.alert.<kind>", id, time, data}``, the same bytes for
  every attempt of one notification (the signature is what changes, with its timestamp);
- a Slack body is ``{text}``, with ``&``, ``<`` and ``>`` escaped as Slack requires, so a name
  in an alert cannot mention ``<!channel>`` or forge a link;
- a Teams body is a message with one Adaptive Card attachment, as Teams workflow webhooks take;
  its text and facts are Markdown-escaped (``teams_escape``: a backslash before each character
  the TextBlock's Markdown subset, CommonMark, gives a meaning), so a rep named
  ``[Reset your password](https://…)`` shows as those characters, never as a link, bold or a
  list;
- a generated secret is ``whsec_`` + base64 of 32 random bytes; a given one is accepted when it
  decodes to 24 to 64 bytes (the Standard Webhooks range);
- a ``Channel``'s secret never shows in its repr.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import orjson

ChannelKind = Literal["webhook", "slack", "teams"]
SECRET_PREFIX = "whsec_"  # noqa: S105 (the prefix, not a secret)
SECRET_BYTES = (24, 64)  # the Standard Webhooks range of a secret's length
FACTS = ("subject", "metric", "window", "value")  # shown under the text on a Teams card
# What CommonMark gives a meaning to, inline or at a line's start (links, emphasis, code,
# headings, quotes, lists, autolinks and HTML, tables, strikethrough), each escaped by a
# backslash; and the "1." of an ordered list.
_MARKDOWN = re.compile(r"([\\`*_\[\](){}#<>+\-!~|])")
_LIST_NUMBER = re.compile(r"^(\s*\d+)([.)])", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class Channel:
    id: str
    kind: ChannelKind
    url: str
    secret: str | None = field(default=None, repr=False)  # webhook only: whsec_...


@dataclass(frozen=True, slots=True)
class Notification:
    """One notification, as the outbox holds it. ``id`` is stable across retries (the
    receiver deduplicates on it); ``data`` holds ``alert_id, kind, subject, window, metric,
    value, text`` (JSON values)."""

    id: str
    kind: str  # the alert's trigger kind: threshold, deal_won, ...
    time: datetime  # when it was raised
    data: Mapping[str, Any]

    @property
    def text(self) -> str:
        text = self.data.get("text")
        return str(text) if text else f"SalesPulse alert: {self.kind}"


# --- secrets ------------------------------------------------------------------------------


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def secret_problem(secret: str) -> str | None:
    """Why ``secret`` is not a Standard Webhooks secret (never repeating it), or None."""
    low, high = SECRET_BYTES
    if not secret.startswith(SECRET_PREFIX):
        return f"must start with {SECRET_PREFIX}"
    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        return f"must be {SECRET_PREFIX} followed by base64"
    if not low <= len(key) <= high:
        return f"must encode {low} to {high} bytes (it encodes {len(key)})"
    return None


# --- bodies -------------------------------------------------------------------------------


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def webhook_body(notification: Notification) -> bytes:
    return orjson.dumps(
        {
            "type": f"salespulse.alert.{notification.kind}",
            "id": notification.id,
            "time": _iso(notification.time),
            "data": dict(notification.data),
        }
    )


def slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_body(notification: Notification) -> bytes:
    return orjson.dumps({"text": slack_escape(notification.text)})


def teams_escape(text: str) -> str:
    """``text`` as literal characters in an Adaptive Card's Markdown (a TextBlock, a fact)."""
    return _LIST_NUMBER.sub(r"\1\\\2", _MARKDOWN.sub(r"\\\1", text))


def _fact_value(value: Any) -> str:
    if isinstance(value, Mapping):
        value = value.get("name") or value.get("id") or orjson.dumps(value).decode()
    return teams_escape(str(value))


def teams_card(notification: Notification) -> dict[str, Any]:
    facts = [
        {"title": name.capitalize(), "value": _fact_value(notification.data[name])}
        for name in FACTS
        if notification.data.get(name) is not None
    ]
    body: list[dict[str, Any]] = [
        {
            "type": "TextBlock",
            "text": teams_escape(notification.text),
            "wrap": True,
            "weight": "Bolder",
        }
    ]
    if facts:
        body.append({"type": "FactSet", "facts": facts})
    return {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
    }


def teams_body(notification: Notification) -> bytes:
    attachment = {
        "contentType": "application/vnd.microsoft.card.adaptive",
        "contentUrl": None,
        "content": teams_card(notification),
    }
    return orjson.dumps({"type": "message", "attachments": [attachment]})


BODIES = {"webhook": webhook_body, "slack": slack_body, "teams": teams_body}
