"""Every webhook route fuzzed with correctly signed deliveries, on a real Apache Kafka.

Bodies mix good and bad canonical items, odd types, huge strings and deep nesting. Whatever
comes: no answer is a 5xx, every event id answered as accepted is on the activity topic, and no
dead letter carries a provider secret.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import urlencode

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator

from services.ingest.app import create_app
from shared.bus.kafka import KafkaBus
from shared.settings import Settings
from tests.conftest import (
    AIRCALL_TOKEN,
    HUBSPOT_SECRET,
    PIPEDRIVE_PASSWORD,
    PUBLIC_BASE_URL,
    TWILIO_TOKEN,
    WEBHOOK_SECRET,
    canonical,
)
from tests.providers_support import Providers, fixture

pytestmark = [pytest.mark.kafka]
EXAMPLES = 60  # per route: the whole file stays well under 30 s
SECRETS = (AIRCALL_TOKEN, HUBSPOT_SECRET, PIPEDRIVE_PASSWORD, TWILIO_TOKEN, WEBHOOK_SECRET)
DELETE = object()  # a field removed instead of replaced

# -- values --------------------------------------------------------------------------------
leaves = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
json_values = st.recursive(
    leaves,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)
huge_text = st.integers(min_value=257, max_value=150_000).map(lambda n: "é" * n)
# Values that have broken parsers before: extremes, non-ASCII digits, numbers as text, bad times.
tricky = st.sampled_from(
    [
        2**63 - 1,
        -(2**63),
        1e308,
        -1,
        0,
        "²",
        "NaN",
        "-Infinity",
        "1e999",
        "-5",
        "1.23456",
        "",
        "2026-13-45",
        "9999-12-31T23:59:59Z",
        "12:99:99",
        "٣",
    ]
)
odd = tricky | json_values | huge_text
garbage = st.text(max_size=40).map(str.encode)


def replaced(base: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    copy = dict(base)
    if value is DELETE:
        copy.pop(key, None)
    else:
        copy[key] = value
    return copy


def overrides(base: dict[str, Any], keys: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    """``base`` with up to three of ``keys`` replaced by odd values or removed."""
    change = st.tuples(st.sampled_from(keys), odd | st.just(DELETE))

    def apply(changes: list[tuple[str, Any]]) -> dict[str, Any]:
        result = dict(base)
        for key, value in changes:
            result = replaced(result, key, value)
        return result

    # Half the time untouched, so that good deliveries, and good neighbours, are common too.
    return st.just(dict(base)) | st.lists(change, min_size=1, max_size=3).map(apply)


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


# -- canonical events (/webhooks/events) ---------------------------------------------------
TYPES = ["call.placed", "call.received", "call.missed", "deal.updated", "lead.created"]


@st.composite
def good_events(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(TYPES))
    actor = draw(st.sampled_from(["u-1", "u-2", "u-3"]))
    return canonical(kind, actor=actor, event_id=f"fz-{draw(st.uuids()).hex}")


@st.composite
def bad_events(draw: st.DrawFn) -> dict[str, Any]:
    event = draw(good_events())
    where = draw(st.sampled_from(["envelope", "data", "actor"]))
    if where == "envelope":
        keys = ["id", "source", "time", "type", "specversion", "data", "note"]
        return draw(overrides(event, keys))
    if where == "data":
        keys = ["call_id", "amount", "currency", "talk_seconds", "outcome", "actor", "queue"]
        return {**event, "data": draw(overrides(event["data"], keys))}
    actor = draw(overrides(event["data"]["actor"], ["provider", "external_id"]))
    return {**event, "data": {**event["data"], "actor": actor}}


def with_deep_extension(pair: tuple[dict[str, Any], int]) -> bytes:
    event, depth = pair
    return orjson.dumps(event)[:-1] + b',"deep":' + nested(depth) + b"}"


standard_bodies = st.one_of(
    st.lists(good_events() | bad_events() | odd, min_size=1, max_size=6).map(orjson.dumps),
    (good_events() | bad_events()).map(orjson.dumps),
    st.tuples(good_events(), st.integers(200, 1100)).map(
        lambda pair: b"[" + orjson.dumps(pair[0]) + b"," + nested(pair[1]) + b"]"
    ),
    st.tuples(good_events(), st.integers(1, 1100)).map(with_deep_extension),
    st.integers(995, 1005).map(lambda n: b"[" + b",".join([b"{}"] * n) + b"]"),
    odd.map(orjson.dumps),
    garbage,
)

# -- HubSpot -------------------------------------------------------------------------------


@st.composite
def hubspot_items(draw: st.DrawFn) -> dict[str, Any]:
    item = {
        "eventId": draw(st.integers(1, 10**9)),
        "subscriptionId": 2101,
        "portalId": 62515,
        "appId": 54321,
        "occurredAt": int(time.time() * 1000) - draw(st.integers(0, 10**9)),
        "subscriptionType": draw(st.sampled_from(["deal.creation", "deal.propertyChange"])),
        "objectId": draw(st.integers(1, 10**6)),
        "propertyName": draw(
            st.sampled_from(["dealstage", "amount", "deal_currency_code", "hubspot_owner_id"])
        ),
        "propertyValue": draw(
            st.sampled_from(["closedwon", "12.50", "EUR", "USD", "JPY", "", "-3", "1.23456"])
            | st.text(max_size=10)
        ),
    }
    return draw(overrides(item, list(item)))


hubspot_bodies = st.one_of(
    st.lists(hubspot_items() | odd, max_size=8).map(orjson.dumps),
    st.lists(hubspot_items(), min_size=1, max_size=3).map(
        lambda items: orjson.dumps(items)[:-1] + b"," + nested(600) + b"]"
    ),
    odd.map(orjson.dumps),
    garbage,
)

# -- Twilio, Aircall, Pipedrive: their fixtures, with fields replaced ------------------------
TWILIO = [
    "twilio_outbound_completed",
    "twilio_outbound_ringing",
    "twilio_inbound_busy",
    "twilio_inbound_parent_completed",
    "twilio_child_completed",
    "twilio_child_no_answer",
]
AIRCALL = [
    "aircall_call_ended_outbound",
    "aircall_call_ended_inbound_answered",
    "aircall_call_ended_inbound_missed",
    "aircall_call_hungup",
    "aircall_contact_created",
]
PIPEDRIVE = [
    "pipedrive_deal_created",
    "pipedrive_deal_won",
    "pipedrive_deal_renamed",
    "pipedrive_activity_call_done",
    "pipedrive_person_created",
]


@st.composite
def twilio_params(draw: st.DrawFn) -> dict[str, str]:
    params: dict[str, str] = fixture(draw(st.sampled_from(TWILIO)))
    params["CallSid"] = f"CA{draw(st.uuids()).hex}"
    text = st.text(max_size=30) | huge_text
    keys = st.sampled_from([*params, "Timestamp", "AnsweredBy", "Extra"])
    for key, value in draw(st.lists(st.tuples(keys, text), max_size=3)):
        params[key] = value
    return params


@st.composite
def aircall_bodies(draw: st.DrawFn) -> bytes:
    payload: dict[str, Any] = fixture(draw(st.sampled_from(AIRCALL)))
    payload["data"]["id"] = draw(st.integers(1, 10**12))
    data_keys = [*payload["data"], "answered_at", "started_at", "ended_at", "user", "number"]
    if draw(st.booleans()):
        payload["data"] = draw(overrides(payload["data"], data_keys))
    else:
        payload = draw(overrides(payload, ["event", "resource", "timestamp", "data"]))
    return orjson.dumps({**payload, "token": AIRCALL_TOKEN})  # signed: the token is right


@st.composite
def pipedrive_bodies(draw: st.DrawFn) -> bytes:
    payload: dict[str, Any] = fixture(draw(st.sampled_from(PIPEDRIVE)))
    payload["meta"]["id"] = str(draw(st.uuids()))
    keys = ["value", "currency", "add_time", "owner_id", "status", "type", "done", "duration"]
    where = draw(st.sampled_from(["data", "meta", "payload"]))
    if where == "data" and isinstance(payload.get("data"), dict):
        payload["data"] = draw(overrides(payload["data"], [*payload["data"], *keys]))
    elif where == "meta":
        payload["meta"] = draw(overrides(payload["meta"], ["action", "entity", "timestamp"]))
    else:
        payload = draw(overrides(payload, ["meta", "data", "previous"]))
    return orjson.dumps(payload)


# -- the rig -------------------------------------------------------------------------------
Post = Callable[[Providers, Any], Coroutine[Any, Any, httpx.Response]]


async def post_twilio(send: Providers, params: dict[str, str]) -> httpx.Response:
    url = f"{PUBLIC_BASE_URL}/webhooks/twilio/voice"
    signature = RequestValidator(TWILIO_TOKEN).compute_signature(url, params)
    return await send.client.post(
        "/webhooks/twilio/voice",
        content=urlencode(params),
        headers={
            "content-type": "application/x-www-form-urlencoded",
            "x-twilio-signature": signature,
        },
    )


ROUTES: dict[str, tuple[st.SearchStrategy[Any], Post]] = {
    "standard": (standard_bodies, lambda send, body: send.standard_body(body)),
    "hubspot": (hubspot_bodies, lambda send, body: send.hubspot_body(body)),
    "twilio": (twilio_params(), post_twilio),
    "aircall": (aircall_bodies(), lambda send, body: send.aircall_body(body)),
    "pipedrive": (pipedrive_bodies(), lambda send, body: send.pipedrive_body(body)),
}


async def read_topic(servers: str, topic: str, bus: KafkaBus) -> list[bytes]:
    """Every record value of ``topic`` up to its end offsets as of now (no consumer group)."""
    ends = await bus.end_offsets(topic)
    consumer = AIOKafkaConsumer(bootstrap_servers=servers, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, p) for p in ends])
        await consumer.seek_to_beginning()
        values: list[bytes] = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500, max_records=5000)
            values += [m.value for messages in batches.values() for m in messages]
            positions = {p: await consumer.position(TopicPartition(topic, p)) for p in ends}
            if all(positions[p] >= end for p, end in ends.items()):
                break
        return values
    finally:
        await consumer.stop()


def check_answer(response: httpx.Response, accepted: set[str], statuses: Counter[int]) -> None:
    statuses[response.status_code] += 1
    assert response.status_code < 500, response.text[:2000]
    if response.status_code == 202:
        answer = response.json()
        assert answer["accepted"] + answer["duplicates"] == len(answer["ids"])
        accepted.update(answer["ids"])
    else:
        assert response.headers["content-type"] == "application/problem+json"


def assert_no_secret(letters: list[bytes]) -> None:
    for value in letters:
        letter = orjson.loads(value)
        body = base64.b64decode(letter["body_base64"])
        for secret in SECRETS:
            assert secret.encode() not in value
            assert secret.encode() not in body


@pytest.mark.parametrize("route", sorted(ROUTES))
def test_signed_fuzz_never_5xx_and_loses_no_accepted_event(
    route: str, kafka_bootstrap: str, topic_prefix: str, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(
        kafka_bootstrap_servers=kafka_bootstrap, topic_prefix=topic_prefix, fx_rates="USD:0.9"
    )
    strategy, post = ROUTES[route]
    accepted: set[str] = set()
    statuses: Counter[int] = Counter()
    with asyncio.Runner() as runner:
        bus = KafkaBus(kafka_bootstrap, partitions=2)
        runner.run(bus.ensure_topics([settings.activity_topic, settings.deadletter_topic]))
        runner.run(bus.start())
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(create_app(settings, bus)), base_url="http://internal"
        )
        send = Providers(client)

        @hypothesis_settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        @given(delivery=strategy)
        def deliver(delivery: Any) -> None:
            check_answer(runner.run(post(send, delivery)), accepted, statuses)

        try:
            deliver()
            events = runner.run(read_topic(kafka_bootstrap, settings.activity_topic, bus))
            letters = runner.run(read_topic(kafka_bootstrap, settings.deadletter_topic, bus))
        finally:
            runner.run(client.aclose())
            runner.run(bus.stop())
    on_topic = {orjson.loads(value)["id"] for value in events}
    assert accepted <= on_topic, sorted(accepted - on_topic)[:10]
    assert_no_secret(letters)
    print(f"{route}: {len(accepted)} accepted, {len(letters)} dead letters, {dict(statuses)}")
