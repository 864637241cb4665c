from __future__ import annotations

import base64
from urllib.parse import urlencode

import pytest
from twilio.request_validator import RequestValidator

from services.ingest.providers.twilio import signature, url_variants
from tests.conftest import PUBLIC_BASE_URL, TWILIO_TOKEN
from tests.providers_support import fixture
from tests.unit.ingest.providers.conftest import Ingest, assert_problem


async def test_outbound_call_is_one_placed_call_by_the_sdk_identity(ingest: Ingest) -> None:
    response = await ingest.send.twilio(fixture("twilio_outbound_completed"))
    assert response.status_code == 202
    [event] = ingest.events()
    assert event["type"] == "call.placed"
    assert event["id"] == "CA11111111111111111111111111111111"
    assert event["time"] == "2026-11-25T10:02:14Z"
    assert event["data"]["actor"] == {"provider": "twilio", "external_id": "client:alice"}
    assert (event["data"]["outcome"], event["data"]["talk_seconds"]) == ("connected", 125)


async def test_retry_of_a_callback_is_the_same_event(ingest: Ingest) -> None:
    first = await ingest.send.twilio(fixture("twilio_outbound_completed"))
    again = await ingest.send.twilio(fixture("twilio_outbound_completed"))
    assert first.json()["ids"] == again.json()["ids"]
    assert again.json()["duplicates"] == 1
    assert len(ingest.events()) == 1


async def test_progress_callbacks_are_acknowledged_and_not_counted(ingest: Ingest) -> None:
    response = await ingest.send.twilio(fixture("twilio_outbound_ringing"))
    assert response.status_code == 202
    assert response.json()["ignored"] == 1
    assert ingest.events() == []


async def test_dialed_inbound_call_unanswered_counts_once_as_missed_by_the_rep(
    ingest: Ingest,
) -> None:
    await ingest.send.twilio(fixture("twilio_inbound_parent_completed"))  # says "completed"
    await ingest.send.twilio(fixture("twilio_child_no_answer"))  # the truth
    [event] = ingest.events()
    assert event["type"] == "call.missed"
    assert event["data"]["actor"]["external_id"] == "client:alice"
    assert event["data"]["reason"] == "no_answer"
    assert event["data"]["counterpart"] == "+33698765432"


async def test_dialed_inbound_call_answered_counts_once_as_received_by_the_rep_number(
    ingest: Ingest,
) -> None:
    await ingest.send.twilio(fixture("twilio_child_completed"))
    [event] = ingest.events()
    assert event["type"] == "call.received"
    assert event["data"]["actor"] == {"provider": "twilio", "external_id": "+33611111111"}
    assert event["data"]["talk_seconds"] == 240


async def test_inbound_call_that_never_reached_a_rep_is_missed_for_the_number(
    ingest: Ingest,
) -> None:
    await ingest.send.twilio(fixture("twilio_inbound_busy"))
    [event] = ingest.events()
    assert event["type"] == "call.missed"
    assert event["data"]["queue"] == "+33180000000"
    assert "actor" not in event["data"]


async def test_forged_signature_is_refused(ingest: Ingest) -> None:
    response = await ingest.send.twilio(fixture("twilio_outbound_completed"), token="wrong")
    assert_problem(response, 401, "X-Twilio-Signature does not match")
    assert ingest.events() == []


async def test_tampered_parameter_is_refused(ingest: Ingest) -> None:
    params = fixture("twilio_outbound_completed")
    url = f"{PUBLIC_BASE_URL}/webhooks/twilio/voice"
    signed = RequestValidator(TWILIO_TOKEN).compute_signature(url, params)
    params["CallDuration"] = "9999"
    response = await ingest.send.client.post(
        "/webhooks/twilio/voice",
        content=urlencode(params),
        headers={"x-twilio-signature": signed, "content-type": "application/x-www-form-urlencoded"},
    )
    assert_problem(response, 401, "does not match")


async def test_signature_is_over_the_public_url_with_or_without_explicit_port(
    ingest: Ingest,
) -> None:
    with_port = "https://sales.example.com:443/webhooks/twilio/voice"
    response = await ingest.send.twilio(fixture("twilio_outbound_completed"), signed_url=with_port)
    assert response.status_code == 202
    internal = "http://internal:8001/webhooks/twilio/voice"  # what the app sees behind the proxy
    refused = await ingest.send.twilio(fixture("twilio_child_completed"), signed_url=internal)
    assert refused.status_code == 401


async def test_missing_signature_and_malformed_bodies(ingest: Ingest) -> None:
    client = ingest.send.client
    form = {"content-type": "application/x-www-form-urlencoded"}
    assert_problem(
        await client.post("/webhooks/twilio/voice", content="a=b", headers=form),
        401,
        "missing X-Twilio-Signature",
    )
    incomplete = {"CallSid": "CA1", "AccountSid": "AC1"}
    assert_problem(await ingest.send.twilio(incomplete), 422, "missing CallStatus, Direction")


def test_own_signature_matches_twilios_library() -> None:
    url = "https://x.example/hook?b=2&a=1"
    params = {"To": "+331", "From": "client:bob", "Body": "héllo wörld"}
    assert signature("tok", url, list(params.items())) == RequestValidator("tok").compute_signature(
        url, params
    )


@pytest.mark.parametrize(
    ("url", "other"),
    [
        ("https://h.example/p", "https://h.example:443/p"),
        ("http://h.example:80/p?q=1", "http://h.example/p?q=1"),
    ],
)
def test_url_variants(url: str, other: str) -> None:
    assert url_variants(url) == [url, other]


async def test_a_callback_whose_event_is_invalid_is_dead_lettered_not_refused(
    ingest: Ingest,
) -> None:
    params = {**fixture("twilio_outbound_completed"), "CallDuration": "99999999"}  # > 7 days
    response = await ingest.send.twilio(params)
    assert response.status_code == 202, response.text
    assert (response.json()["accepted"], response.json()["deadlettered"]) == (0, 1)
    [letter] = ingest.dead_letters()
    assert letter["reason"].startswith("invalid_event: data.talk_seconds: Input should be less")
    assert "x-twilio-signature" not in letter["headers"]
    assert b"CallDuration=99999999" in base64.b64decode(letter["body_base64"])
