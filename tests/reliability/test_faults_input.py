"""Faults at the edges of input (issue 18, items 2, 3, 6 and 8), on SQLite and a real PostgreSQL,
through the API in-process and a real HTTP receiver:

- a NUL or another control character in any text of a body (or in the filter of a read) is a
  422 naming the field, never a 500 (PostgreSQL refuses NUL in text); a canonical event holding
  one is refused at ingest, or dead-lettered in a batch;
- ``NaN``, ``Infinity``, ``1e400`` and numbers beyond their bounds are a 422 naming the field;
- eight reps claiming one identity at once: one 200, seven 409 naming it, no 500;
- eight first PUTs of one webhook channel at once: only the answer whose secret is stored
  shows it;
- a receiver's 404 echoing a token, and a channel URL with a token in its path: the token is
  in no ``last_error``, no answer of ``GET /v1/notifications``, no log line.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI, Request, Response
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from standardwebhooks import Webhook

from services.api.app import create_app
from services.ingest.app import create_app as create_ingest_app
from services.simulator.formats import signed_headers
from shared.bus.memory import MemoryBus
from shared.db.engine import create_engine
from shared.db.migrate import migrate
from shared.observability import JsonFormatter, configure_logging
from shared.settings import Settings
from tests.api_support import ADMIN, READ, api_client, floor, served
from tests.conftest import WEBHOOK_SECRET, canonical, fresh_postgres_database
from tests.integration.test_dispatcher import (
    add_channel,
    delivery,
    dispatcher,
    eventually,
    raise_notification,
    running,
)

TOKEN = "tok3n-1n-th3-p4th-XYZ"  # a Slack-like credential in a channel's URL
LOCAL = "http://127.0.0.1:9/hook"  # a channel URL (private channels allowed in these tests)
Case = tuple[str, str, Any, str]  # (path, content type, body, the field the 422 names)


@pytest.fixture(params=["sqlite", "postgres"])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """The same tests on the embedded SQLite and on a real PostgreSQL."""
    async with AsyncExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite:///{tmp_path / 'api.db'}"
        else:
            admin_url = request.getfixturevalue("postgres_admin_url")
            url = await stack.enter_async_context(fresh_postgres_database(admin_url))
        engine = create_engine(url)
        await migrate(engine)
        yield engine
        await engine.dispose()


@pytest.fixture
async def pg(postgres_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(postgres_url)
    await migrate(engine)
    yield engine
    await engine.dispose()


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(allow_private_channels=True)


@pytest.fixture
async def api(settings: Settings, db: AsyncEngine) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(create_app(settings, db)) as client:
        yield client


async def send(client: httpx.AsyncClient, path: str, media: str, body: Any) -> httpx.Response:
    """``body`` to ``path``: PUT, or POST for the import; JSON as given (a str is sent as it is,
    so ``NaN`` and ``1e400`` reach the server as a client could write them)."""
    if media == "json" and not isinstance(body, str):
        body = orjson.dumps(body).decode()
    content_type = "text/csv" if media == "csv" else "application/json"
    method = "POST" if path.endswith("/import") else "PUT"
    headers = {**ADMIN, "content-type": content_type}
    return await client.request(method, path, content=body.encode(), headers=headers)


def named(response: httpx.Response) -> list[str] | str:
    """The fields a 422 problem names; or what came instead."""
    if (
        response.status_code != 422
        or response.headers["content-type"] != "application/problem+json"
    ):
        return f"{response.status_code} {response.text[:200]}"
    return [e["field"] for e in response.json()["errors"]]


def contest(**changes: Any) -> dict[str, Any]:
    start = (datetime.now(UTC) + timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
    body = {
        "name": "Blitz",
        "starts_at": start.isoformat(),
        "ends_at": (start + timedelta(hours=1)).isoformat(),
        "score": {"metric": "calls_total"},
    }
    return {**body, **changes}


def rep(**changes: Any) -> dict[str, Any]:
    identity = {"provider": "crm", "external_id": "u-9"}
    return {"name": "Ann", "team_id": "north", "identities": [identity], **changes}


def alert(**changes: Any) -> dict[str, Any]:
    return {"name": "Big deals", "channels": ["ops"], "trigger": {"kind": "deal_won"}, **changes}


CSV = "rep_id,name,team_id,provider,external_id\n"
TEXT_CASES: list[Case] = [
    ("/v1/teams/t9", "json", {"name": "North\x00"}, "body.name"),
    ("/v1/teams/t9", "json", {"name": "North\x1b[31m"}, "body.name"),
    ("/v1/reps/r9", "json", rep(name="Ann\x00"), "body.name"),
    ("/v1/reps/r9", "json", rep(team_id="no\x00rth"), "body.team_id"),
    (
        "/v1/reps/r9",
        "json",
        rep(identities=[{"provider": "crm", "external_id": "u\x009"}]),
        "body.identities.0.external_id",
    ),
    (
        "/v1/reps/r9",
        "json",
        rep(identities=[{"provider": "c\x00rm", "external_id": "u-9"}]),
        "body.identities.0.provider",
    ),
    ("/v1/alerts/a9", "json", alert(name="Big\x00deals"), "body.name"),
    ("/v1/alerts/a9", "json", alert(message="{subject} won\x00"), "body.message"),
    ("/v1/alerts/a9", "json", alert(channels=["op\x00s"]), "body.channels.0"),
    ("/v1/channels/c9", "json", {"kind": "webhook", "url": LOCAL + "\x00"}, "body.url"),
    ("/v1/channels/c9", "json", {"kind": "slack", "url": "http://127.0.0.1:9/\x7f"}, "body.url"),
    ("/v1/contests/k9", "json", contest(name="Blitz\x00"), "body.name"),
    ("/v1/contests/k9", "json", contest(team_ids=["no\x00rth"]), "body.team_ids.0"),
    ("/v1/roster/import", "json", {"teams": [{"id": "t9", "name": "T\x00"}]}, "teams[0].name"),
    (
        "/v1/roster/import",
        "json",
        {
            "reps": [
                {
                    "id": "r9",
                    "name": "R",
                    "identities": [{"provider": "crm", "external_id": "\x00"}],
                }
            ]
        },
        "reps[0].identities[0].external_id",
    ),
    ("/v1/roster/import", "csv", CSV + "r9,Ann\x00,north,crm,u-9\n", "line 2: name"),
    ("/v1/roster/import", "csv", CSV + "r9,Ann,north,crm,u-\x009\n", "line 2: external_id"),
]


async def test_a_control_character_in_any_text_is_a_422_naming_the_field(
    api: httpx.AsyncClient,
) -> None:
    await floor(api)
    channel = {"kind": "webhook", "url": LOCAL}
    assert (await api.put("/v1/channels/ops", json=channel, headers=ADMIN)).status_code == 200
    answers = {case[3] + " of " + case[0]: named(await send(api, *case[:3])) for case in TEXT_CASES}
    assert answers == {case[3] + " of " + case[0]: [case[3]] for case in TEXT_CASES}
    for path in ("/v1/teams/t9", "/v1/reps/r9", "/v1/alerts/a9", "/v1/contests/k9"):
        assert (await api.get(path, headers=READ)).status_code == 404  # nothing was stored
    filtered = await api.get("/v1/notifications", params={"alert": "a\x00"}, headers=READ)
    assert named(filtered) == ["query.alert"]  # a read's filter goes to SQL as well
    alright = alert(message="Bravo {subject}!\n\tThat makes {amount}.")
    assert (await api.put("/v1/alerts/a9", json=alright, headers=ADMIN)).status_code == 200


NON_FINITE = ("NaN", "Infinity", "-Infinity", "1e400")  # json.loads reads 1e400 as inf
N = "<number>"  # where each case puts its number, as a client would write it


def number_cases() -> Iterator[Case]:
    """Each number the API takes, given each non-finite spelling and a value past its bound."""
    threshold = {"kind": "threshold", "metric": "calls_total", "window": "today", "value": N}
    pace = {"kind": "behind_pace", "metric": "calls_total", "period": "month", "below": N}
    target = "/v1/targets/reps/alice/calls_total/month"
    bodies: dict[str, tuple[str, dict[str, Any], str]] = {  # field: (path, body, beyond)
        "body.score.points.calls_total": (
            "/v1/contests/k9",
            contest(score={"points": {"calls_total": N}}),
            "2e6",
        ),
        "body.goal": ("/v1/contests/k9", contest(goal=N), "1e16"),
        "body.value": (target, {"value": N}, "1e16"),
        "body.trigger.value": ("/v1/alerts/a9", alert(trigger=threshold), "-1e16"),
        "body.trigger.min_amount": (
            "/v1/alerts/a9",
            alert(trigger={"kind": "deal_won", "min_amount": N}),
            "1e16",
        ),
        "body.trigger.below": ("/v1/alerts/a9", alert(trigger=pace), "1.5"),
    }
    for field, (path, body, beyond) in bodies.items():
        raw = orjson.dumps(body).decode()
        for number in (*NON_FINITE, beyond):
            yield path, "json", raw.replace(f'"{N}"', number), field
    yield target, "json", '{"value": 1e-9}', "body.value"  # value / target would overflow


async def test_a_number_that_is_not_finite_or_beyond_its_bound_is_a_422_naming_it(
    api: httpx.AsyncClient,
) -> None:
    await floor(api)
    channel = {"kind": "webhook", "url": LOCAL}
    assert (await api.put("/v1/channels/ops", json=channel, headers=ADMIN)).status_code == 200
    cases = list(number_cases())
    assert len(cases) == 6 * 5 + 1
    answers = {case[2]: named(await send(api, *case[:3])) for case in cases}
    assert answers == {case[2]: [case[3]] for case in cases}
    target = "/v1/targets/reps/alice/calls_total/month"
    assert (await api.get(target, headers=READ)).status_code == 404  # nothing was stored


async def test_a_canonical_event_with_a_control_character_is_refused_or_dead_lettered(
    make_settings: Callable[..., Settings],
) -> None:
    bus = MemoryBus()
    app = create_ingest_app(make_settings(), bus)
    poisoned = canonical("deal.updated", event_id="bad", deal_id="D-1", stage="won\x00")
    good = canonical("call.placed", event_id="good")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as c:

        async def post(body: Any) -> httpx.Response:
            raw = orjson.dumps(body)
            return await c.post(
                "/webhooks/events", content=raw, headers=signed_headers(WEBHOOK_SECRET, raw)
            )

        alone = await post(poisoned)
        batch = await post([good, poisoned])
    assert named(alone) == ["data.stage"]
    assert batch.status_code == 202
    assert (batch.json()["accepted"], batch.json()["deadlettered"]) == (1, 1)
    assert [orjson.loads(r.value)["id"] for r in bus.records("sales.activity.v1")] == ["good"]
    [letter] = [orjson.loads(r.value) for r in bus.records("sales.deadletter.v1")]
    assert "data.stage" in letter["reason"]
    assert "control characters" in letter["reason"]


# --- races ----------------------------------------------------------------------------------


async def test_reps_claiming_one_identity_at_once_get_one_200_and_409s(
    settings: Settings, pg: AsyncEngine
) -> None:
    async with api_client(create_app(settings, pg)) as api:
        assert (
            await api.put("/v1/teams/north", json={"name": "N"}, headers=ADMIN)
        ).status_code == 200
        claim = {
            "name": "Rep",
            "team_id": "north",
            "identities": [{"provider": "crm", "external_id": "shared"}],
        }
        answers = await asyncio.gather(
            *(api.put(f"/v1/reps/r{i}", json=claim, headers=ADMIN) for i in range(8))
        )
        statuses = sorted(a.status_code for a in answers)
        assert statuses == [200] + [409] * 7, [a.text[:200] for a in answers]
        [winner] = [i for i, a in enumerate(answers) if a.status_code == 200]
        for answer in answers:
            if answer.status_code == 409:
                assert answer.headers["content-type"] == "application/problem+json"
                assert f"identity crm:shared belongs to rep r{winner}" in answer.json()["detail"]
                assert [e["field"] for e in answer.json()["errors"]] == [
                    "body.identities.0.external_id"
                ]
        held = (await api.get(f"/v1/reps/r{winner}", headers=READ)).json()["identities"]
        assert held == [{"provider": "crm", "external_id": "shared"}]
        for i in range(8):  # the losers were not created half-way
            expected = 200 if i == winner else 404
            assert (await api.get(f"/v1/reps/r{i}", headers=READ)).status_code == expected


async def stored_secret(db: AsyncEngine, channel_id: str) -> str | None:
    async with db.connect() as conn:
        query = text("SELECT secret FROM channels WHERE id = :id")
        secret: str | None = (await conn.execute(query, {"id": channel_id})).scalar_one()
        return secret


async def test_first_puts_of_a_webhook_channel_at_once_show_only_the_stored_secret(
    settings: Settings, db: AsyncEngine
) -> None:
    async with api_client(create_app(settings, db)) as api:
        body = {"kind": "webhook", "url": LOCAL}
        answers = await asyncio.gather(
            *(api.put("/v1/channels/hook", json=body, headers=ADMIN) for _ in range(8))
        )
        assert [a.status_code for a in answers] == [200] * 8
        shown = [a.json()["secret"] for a in answers if a.json()["secret"] is not None]
        stored = await stored_secret(db, "hook")
        assert stored is not None
        assert shown == [stored]  # one answer shows it: the one whose secret was stored
        signed = Webhook(stored).sign("msg_1", datetime.now(UTC), "{}")
        assert signed.startswith("v1,")
        again = await api.put("/v1/channels/hook", json=body, headers=ADMIN)
        assert again.json()["secret"] is None
        assert await stored_secret(db, "hook") == stored  # a PUT without a secret keeps it


# --- delivery errors ------------------------------------------------------------------------


def echoing_receiver() -> FastAPI:
    """A receiver whose 404 page repeats the URL asked for, and a token besides."""
    app = FastAPI()
    app.add_api_route("/healthz", lambda: {"ok": True}, methods=["GET"])

    async def gone(request: Request, path: str) -> Response:
        page = f"no hook at {request.url} (token {TOKEN}); try https://evil.example/{TOKEN}"
        return Response(page, status_code=404, headers={"x-token": TOKEN})

    app.add_api_route("/{path:path}", gone, methods=["POST"])
    return app


@contextmanager
def production_logging(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """The services' own logging set-up at DEBUG (what an operator might run), captured."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    configure_logging("DEBUG")
    root.addHandler(caplog.handler)
    caplog.handler.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


async def test_a_token_in_a_receivers_answer_or_a_channel_url_is_never_shown_nor_logged(
    settings: Settings, db: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    async with served(echoing_receiver()) as url:
        await add_channel(db, f"{url}/services/T0/B0/{TOKEN}")
        await raise_notification(db, "n-404")
        with production_logging(caplog):
            async with running(dispatcher(db, settings)):

                async def failed() -> bool:
                    return bool((await delivery(db, "n-404"))["status"] == "failed")

                await eventually(failed)
    row = await delivery(db, "n-404")
    assert row["last_error"] == "http_404 (Not Found)"
    async with api_client(create_app(settings, db)) as api:
        listed = await api.get("/v1/notifications", headers=READ)
        exported = await api.get("/v1/notifications", headers={**READ, "accept": "text/csv"})
    assert (
        listed.json()["notifications"][0]["deliveries"][0]["last_error"] == "http_404 (Not Found)"
    )
    assert TOKEN not in listed.text
    assert TOKEN not in exported.text
    lines = [JsonFormatter().format(record) for record in caplog.records]
    assert any("delivery failed for good" in line for line in lines)  # the log was captured
    assert [line for line in lines if TOKEN in line] == []
