from __future__ import annotations

from typing import Any

import orjson
import pytest

from tests.conftest import PIPEDRIVE_PASSWORD
from tests.providers_support import fixture
from tests.unit.ingest.providers.conftest import Ingest, assert_problem


async def test_created_deal_carries_its_fields(ingest: Ingest) -> None:
    await ingest.send.pipedrive(fixture("pipedrive_deal_created"))
    [event] = ingest.events()
    assert event["id"] == "2f4ba4f3-5f0b-4a7e-9b4e-0c6f1a8f1a01"
    assert event["source"] == "pipedrive://12882925"
    assert event["data"] == {
        "deal_id": "501",
        "actor": {"provider": "pipedrive", "external_id": "18487521"},
        "amount": "3200",
        "currency": "EUR",
        "status": "open",
        "stage": "1",
        "created_at": "2026-11-20T09:00:00Z",
    }


async def test_won_deal_sends_what_changed_with_its_value(ingest: Ingest) -> None:
    await ingest.send.pipedrive(fixture("pipedrive_deal_won"))
    [event] = ingest.events()
    assert event["time"] == "2026-11-25T10:20:00Z"  # epoch timestamps are accepted too
    assert event["data"] == {
        "deal_id": "501",
        "actor": {"provider": "pipedrive", "external_id": "18487521"},
        "status": "won",
        "stage": "5",
        "amount": "3200",
        "currency": "EUR",
    }


async def test_change_of_nothing_tracked_is_ignored(ingest: Ingest) -> None:
    response = await ingest.send.pipedrive(fixture("pipedrive_deal_renamed"))
    assert response.json()["ignored"] == 1
    assert ingest.events() == []


async def test_call_activity_marked_done_is_a_placed_call(ingest: Ingest) -> None:
    await ingest.send.pipedrive(fixture("pipedrive_activity_call_done"))
    [event] = ingest.events()
    assert event["type"] == "call.placed"
    assert event["data"]["talk_seconds"] == 720
    assert event["data"]["actor"]["external_id"] == "18487521"


async def test_untracked_entity_is_dead_lettered(ingest: Ingest) -> None:
    response = await ingest.send.pipedrive(fixture("pipedrive_person_created"))
    assert response.json()["deadlettered"] == 1
    assert "person" in ingest.dead_letters()[0]["reason"]


async def test_wrong_credentials_and_bad_bodies_are_refused(ingest: Ingest) -> None:
    payload = fixture("pipedrive_deal_won")
    response = await ingest.send.pipedrive(payload, password="guess")
    assert_problem(response, 401, "Basic credentials")
    assert response.headers["www-authenticate"].startswith("Basic")
    assert_problem(await ingest.send.pipedrive(payload, user="intruder"), 401, "credentials")
    assert_problem(await ingest.send.pipedrive({"meta": {"id": "x"}}), 422, "missing action")
    assert ingest.events() == []


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"value": -50}, "data.amount: Input should be greater than or equal to 0"),
        ({"add_time": "yesterday"}, "pipedrive.data.add_time: not ISO 8601"),
        ({"id": None}, "pipedrive.data.id: required"),
    ],
)
async def test_a_deal_whose_event_is_invalid_is_dead_lettered_not_refused(
    ingest: Ingest, change: dict[str, Any], reason: str
) -> None:
    payload = fixture("pipedrive_deal_created")
    payload["data"] = {**payload["data"], **change}
    response = await ingest.send.pipedrive(payload)
    assert response.status_code == 202, response.text
    assert (response.json()["accepted"], response.json()["deadlettered"]) == (0, 1)
    [letter] = ingest.dead_letters()
    assert letter["reason"].startswith("invalid_event: ")
    assert reason in letter["reason"]
    assert "authorization" not in letter["headers"]
    assert PIPEDRIVE_PASSWORD not in orjson.dumps(letter).decode()


async def test_a_duration_in_other_digits_is_no_duration_not_an_error(ingest: Ingest) -> None:
    payload = fixture("pipedrive_activity_call_done")
    payload["data"]["duration"] = "0²:1٣"  # str.isdigit() says yes; int() says no
    response = await ingest.send.pipedrive(payload)
    assert response.status_code == 202, response.text
    [event] = ingest.events()
    assert event["data"]["talk_seconds"] == 0
