from __future__ import annotations

from tests.providers_support import fixture
from tests.unit.providers.conftest import Ingest, assert_problem


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
