from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest

from tests.conftest import AIRCALL_TOKEN
from tests.providers_support import fixture
from tests.unit.ingest.providers.conftest import Ingest, assert_problem


async def test_answered_inbound_call_is_received_with_talk_and_wait_time(ingest: Ingest) -> None:
    assert (
        await ingest.send.aircall(fixture("aircall_call_ended_inbound_answered"))
    ).status_code == 202
    [event] = ingest.events()
    assert event["type"] == "call.received"
    assert event["id"] == "call-812345678"
    assert event["data"]["actor"] == {
        "provider": "aircall",
        "external_id": "456789",
        "email": "alice@example.com",  # the rep is matched by it if 456789 is nobody's yet
    }
    assert (event["data"]["talk_seconds"], event["data"]["wait_seconds"]) == (258, 12)
    assert event["time"] == "2026-11-25T10:04:30Z"


async def test_hungup_then_ended_describe_one_call_counted_on_ended(ingest: Ingest) -> None:
    hungup = await ingest.send.aircall(fixture("aircall_call_hungup"))
    assert hungup.json()["ignored"] == 1
    await ingest.send.aircall(fixture("aircall_call_ended_inbound_answered"))
    await ingest.send.aircall(fixture("aircall_call_ended_inbound_answered"))  # a retry
    assert [e["type"] for e in ingest.events()] == ["call.received"]


async def test_unanswered_inbound_call_is_missed_with_the_reason(ingest: Ingest) -> None:
    await ingest.send.aircall(fixture("aircall_call_ended_inbound_missed"))
    [event] = ingest.events()
    assert event["type"] == "call.missed"
    assert event["data"]["reason"] == "no_answer"
    assert event["data"]["actor"]["external_id"] == "456789"


async def test_outbound_call_is_placed_and_connected(ingest: Ingest) -> None:
    await ingest.send.aircall(fixture("aircall_call_ended_outbound"))
    [event] = ingest.events()
    assert (event["type"], event["data"]["outcome"], event["data"]["talk_seconds"]) == (
        "call.placed",
        "connected",
        180,
    )


async def test_untracked_resource_is_acknowledged_and_dead_lettered(ingest: Ingest) -> None:
    response = await ingest.send.aircall(fixture("aircall_contact_created"))
    assert response.status_code == 202
    assert response.json()["deadlettered"] == 1
    [letter] = ingest.dead_letters()
    assert letter["provider"] == "aircall"
    assert "contact.created" in letter["reason"]
    assert ingest.events() == []


async def test_wrong_token_and_malformed_body_are_refused(ingest: Ingest) -> None:
    payload = fixture("aircall_call_ended_outbound")
    payload["token"] = "not-the-token"
    assert_problem(await ingest.send.aircall(payload), 401, "token does not match")
    broken = await ingest.send.client.post("/webhooks/aircall", content=b"{nope")
    assert_problem(broken, 400, "not valid JSON")
    no_event = {"token": fixture("aircall_contact_created")["token"], "data": {}}
    assert_problem(await ingest.send.aircall(no_event), 422, "missing event")
    assert ingest.events() == []


async def test_a_dead_letter_never_carries_the_token(ingest: Ingest) -> None:
    response = await ingest.send.aircall(fixture("aircall_contact_created"))
    assert response.status_code == 202
    [record] = ingest.bus.records("sales.deadletter.v1")
    letter = orjson.loads(record.value)
    body = base64.b64decode(letter["body_base64"])
    assert AIRCALL_TOKEN.encode() not in record.value
    assert AIRCALL_TOKEN.encode() not in body
    assert "token" not in orjson.loads(body)
    assert orjson.loads(body)["data"] == fixture("aircall_contact_created")["data"]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ({"answered_at": "later"}, "aircall.data.answered_at: not a timestamp"),
        ({"raw_digits": 33612345678}, "data.counterpart: Input should be a valid string"),
        ({"id": "9" * 300}, "data.call_id: String should have at most 256 characters"),
        ({"direction": None}, "aircall.data.direction: required"),
    ],
)
async def test_a_call_that_cannot_be_translated_is_dead_lettered_not_refused(
    ingest: Ingest, data: dict[str, Any], reason: str
) -> None:
    payload = fixture("aircall_call_ended_outbound")
    payload["data"] = {**payload["data"], **data}
    response = await ingest.send.aircall(payload)
    assert response.status_code == 202, response.text
    assert (response.json()["accepted"], response.json()["deadlettered"]) == (0, 1)
    [letter] = ingest.dead_letters()
    assert letter["reason"].startswith("invalid_event: ")
    assert reason in letter["reason"]
    assert AIRCALL_TOKEN not in base64.b64decode(letter["body_base64"]).decode()
    assert ingest.events() == []


async def test_a_users_email_that_is_not_one_is_left_out_and_the_call_counts(
    ingest: Ingest,
) -> None:
    payload = fixture("aircall_call_ended_inbound_answered")
    payload["data"]["user"]["email"] = "not an email"
    assert (await ingest.send.aircall(payload)).status_code == 202
    [event] = ingest.events()
    assert event["data"]["actor"] == {"provider": "aircall", "external_id": "456789"}
