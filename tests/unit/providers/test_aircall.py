from __future__ import annotations

from tests.providers_support import fixture
from tests.unit.providers.conftest import Ingest, assert_problem


async def test_answered_inbound_call_is_received_with_talk_and_wait_time(ingest: Ingest) -> None:
    assert (
        await ingest.send.aircall(fixture("aircall_call_ended_inbound_answered"))
    ).status_code == 202
    [event] = ingest.events()
    assert event["type"] == "call.received"
    assert event["id"] == "call-812345678"
    assert event["data"]["actor"] == {"provider": "aircall", "external_id": "456789"}
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
