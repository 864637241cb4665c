"""Deliveries to a real HTTP receiver on 127.0.0.1 (ALLOW_PRIVATE_CHANNELS on, as in dev mode):
each webhook delivery verifies with the official ``standardwebhooks`` package and keeps its id
on a second attempt; Slack and Teams get their own bodies; every kind of answer (or its
absence) is classified for the dispatcher; with the guard on, nothing reaches the receiver."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import orjson
import pytest
from fastapi import FastAPI, Request, Response
from standardwebhooks import Webhook

from shared.notify.guard import guarded_client
from shared.notify.messages import Channel, ChannelKind, Notification, new_secret
from shared.notify.send import deliver
from tests.api_support import served
from tests.kpi_rig import free_port

TOKEN = "XXXXsl4ckT0k3nXXXX"  # a Slack URL's last part: a credential
NOTE = Notification(
    id="ntf_01HZY3",
    kind="deal_won",
    time=datetime(2026, 11, 26, 10, 2, 14, tzinfo=UTC),
    data={
        "alert_id": "big-deals",
        "kind": "deal_won",
        "subject": {"scope": "rep", "id": "alice", "name": "Alice"},
        "window": None,
        "metric": "revenue_won",
        "value": 15000,
        "text": "Alice closed 15,000 € <!channel> & more",
    },
)


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    body: bytes


class Receiver:
    """A real HTTP server: records every POST and answers as its path says."""

    def __init__(self) -> None:
        self.seen: list[Seen] = []
        self.app = FastAPI()
        self.app.add_api_route("/healthz", self._health, methods=["GET"])
        self.app.add_api_route("/{path:path}", self._receive, methods=["POST"])

    async def _health(self) -> dict[str, bool]:
        return {"ok": True}

    async def _receive(self, request: Request, path: str) -> Response:
        self.seen.append(Seen(path, dict(request.headers), await request.body()))
        answer = path.rsplit("/", 1)[-1]
        if answer == "slow":
            await asyncio.sleep(2)
        later = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
        status, headers, text = {
            "accepted": (202, {}, ""),
            "busy": (429, {"retry-after": "7"}, "slow down"),
            "later": (503, {"retry-after": later}, ""),
            "broken": (500, {}, "oops"),
            "gone": (404, {}, f"no such hook: {request.url}"),  # echoes the URL's token
            "moved": (301, {"location": "http://10.0.0.1/"}, ""),
            "huge": (400, {}, "x" * 1_000_000),
        }.get(answer, (200, {}, "ok"))
        return Response(text, status_code=status, headers=headers)


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    found = Receiver()
    async with served(found.app) as url:
        yield found, url


def channel(kind: ChannelKind, url: str, secret: str | None = None) -> Channel:
    return Channel(id=f"{kind}-1", kind=kind, url=url, secret=secret)


async def test_each_webhook_delivery_verifies_and_a_second_one_keeps_the_id(
    receiver: tuple[Receiver, str],
) -> None:
    found, url = receiver
    secret = new_secret()
    hook = channel("webhook", f"{url}/hooks/ok", secret)
    async with guarded_client(allow_private=True) as client:
        first = await deliver(client, hook, NOTE)
        second = await deliver(client, hook, NOTE, datetime.now(UTC) + timedelta(seconds=3))
    assert first.outcome == second.outcome == "delivered"
    assert [s.headers["webhook-id"] for s in found.seen] == [NOTE.id, NOTE.id]
    for seen in found.seen:
        verified = Webhook(secret).verify(seen.body, seen.headers)
        assert verified == {
            "type": "salespulse.alert.deal_won",
            "id": NOTE.id,
            "time": "2026-11-26T10:02:14Z",
            "data": dict(NOTE.data),
        }
        assert seen.headers["content-type"] == "application/json"
    assert found.seen[0].body == found.seen[1].body  # the same bytes, signed anew
    stamps = [int(s.headers["webhook-timestamp"]) for s in found.seen]
    assert stamps[1] - stamps[0] >= 2
    with pytest.raises(Exception, match="signature"):
        Webhook(new_secret()).verify(found.seen[0].body, found.seen[0].headers)


async def test_slack_gets_escaped_text_and_teams_an_adaptive_card(
    receiver: tuple[Receiver, str],
) -> None:
    found, url = receiver
    async with guarded_client(allow_private=True) as client:
        slack = await deliver(client, channel("slack", f"{url}/services/T/B/{TOKEN}"), NOTE)
        teams = await deliver(client, channel("teams", f"{url}/workflows/x/accepted"), NOTE)
    assert slack.outcome == teams.outcome == "delivered"
    assert teams.status == 202
    assert orjson.loads(found.seen[0].body) == {
        "text": "Alice closed 15,000 € &lt;!channel&gt; &amp; more"
    }
    assert "webhook-signature" not in found.seen[0].headers
    card_message = orjson.loads(found.seen[1].body)
    assert card_message["type"] == "message"
    [attachment] = card_message["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["$schema"] == "http://adaptivecards.io/schemas/adaptive-card.json"
    assert (card["type"], card["version"]) == ("AdaptiveCard", "1.4")
    assert card["body"][0] == {
        "type": "TextBlock",
        "text": "Alice closed 15,000 € \\<\\!channel\\> & more",  # Markdown-escaped
        "wrap": True,
        "weight": "Bolder",
    }
    assert {"title": "Subject", "value": "Alice"} in card["body"][1]["facts"]


async def test_every_answer_is_classified_for_the_dispatcher(
    receiver: tuple[Receiver, str],
) -> None:
    _, url = receiver
    secret = new_secret()
    async with guarded_client(allow_private=True, timeout=0.5) as client:

        async def to(path: str) -> tuple[str, int | None, float | None, str | None]:
            result = await deliver(client, channel("webhook", f"{url}/{path}", secret), NOTE)
            return result.outcome, result.status, result.retry_after, result.error

        assert await to("ok") == ("delivered", 200, None, None)
        assert (await to("busy"))[:3] == ("retry", 429, 7.0)
        outcome, status, wait, _ = await to("later")
        assert (outcome, status) == ("retry", 503)
        assert wait is not None
        assert 100 < wait <= 120
        assert (await to("broken"))[:3] == ("retry", 500, None)
        outcome, status, wait, error = await to(f"services/T/B/{TOKEN}/gone")
        assert (outcome, status, wait) == ("failed", 404, None)
        assert error == "http_404 (Not Found)"  # the class, never the receiver's answer
        assert (await to("moved"))[:2] == ("failed", 301)  # redirects are not followed
        assert len((await to("huge"))[3] or "") <= 300
        outcome, status, _, error = await to("slow")
        assert (outcome, status) == ("retry", None)
        assert error == "timeout (ReadTimeout)"
        refused = await deliver(
            client, channel("slack", f"http://127.0.0.1:{free_port()}/{TOKEN}"), NOTE
        )
        unsupported = await deliver(client, channel("slack", "ftp://127.0.0.1/x"), NOTE)
    assert (unsupported.outcome, unsupported.error) == (
        "failed",
        "invalid_channel (UnsupportedProtocol)",
    )
    assert (refused.outcome, refused.status) == ("retry", None)
    assert refused.error == "connection_failed (ConnectError)"


async def test_with_the_guard_on_nothing_reaches_a_local_receiver(
    receiver: tuple[Receiver, str],
) -> None:
    found, url = receiver
    port = url.rsplit(":", 1)[1]
    errors = []
    async with guarded_client(allow_private=False) as client:
        for target in (f"https://localhost:{port}/ok", f"https://127.0.0.1:{port}/ok", url):
            result = await deliver(client, channel("slack", target), NOTE)
            assert result.outcome == "failed"
            assert result.status is None
            assert (result.error or "").startswith("destination_refused (")
            errors.append(result.error)
    assert errors[0] == "destination_refused (localhost is not a public address)"
    assert found.seen == []


async def test_the_connection_goes_to_the_resolved_address_under_the_host_name(
    receiver: tuple[Receiver, str],
) -> None:
    found, url = receiver
    port = url.rsplit(":", 1)[1]
    asked: list[str] = []

    async def dns(host: str, _port: int) -> list[str]:
        asked.append(host)
        return ["127.0.0.1"]

    async with guarded_client(allow_private=True, resolver=dns) as client:
        target = f"http://receiver.example.test:{port}/ok"
        result = await deliver(client, channel("teams", target), NOTE)
    assert result.outcome == "delivered"
    assert asked == ["receiver.example.test"]
    assert found.seen[0].headers["host"] == f"receiver.example.test:{port}"
