"""The console over HTTP, in-process on a real SQLite file: signing in, the session and its
CSRF token, a read key that cannot write, refusals next to their fields, and every page in
both languages. (The browser tests, tests/e2e/test_console_*_browser.py, drive it in Chromium.)"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from services.api.app import create_app
from services.api.console import messages
from services.api.console.session import COOKIE, Session, Signer, secret_of
from shared.db.engine import create_engine
from shared.db.migrate import migrate
from shared.events import EVENT_TYPES
from shared.settings import KeyScope, Settings
from tests.api_support import ADMIN, floor
from tests.conftest import ADMIN_KEY, READ_KEY

PAGES = [
    "/console",
    "/console/reps",
    "/console/reps/new",
    "/console/reps/alice",
    "/console/roster/import",
    "/console/unassigned",
    "/console/targets",
    "/console/targets/history?scope=rep&id=alice&metric=revenue&period=month",
    "/console/targets/import",
    "/console/contests",
    "/console/contests/new",
    "/console/contests/points",
    "/console/alerts",
    "/console/activity",
    "/console/activity?scope=rep&id=alice&metric=calls_total&window=today",
    "/console/corrections",
    "/console/connections",
    "/console/wallboards",
    "/console/settings",
]
TEMPLATES = Path(__file__).resolve().parents[4] / "services/api/console"


@pytest.fixture
async def console(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> AsyncIterator[tuple[httpx.AsyncClient, Settings]]:
    db = create_engine(f"sqlite:///{tmp_path / 'console.db'}")
    await migrate(db)
    settings = make_settings(console_secret="test-console-secret", allow_private_channels=True)
    app = create_app(settings, db)
    transport = httpx.ASGITransport(app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://t") as client,
    ):
        await floor(client)
        await with_alerts_and_a_points_contest(client)
        yield client, settings
    await db.dispose()


async def with_alerts_and_a_points_contest(client: httpx.AsyncClient) -> None:
    channel = {"kind": "webhook", "url": "http://127.0.0.1:9/hook"}
    assert (await client.put("/v1/channels/ops", json=channel, headers=ADMIN)).status_code == 200
    for alert_id, trigger in (
        ("won", {"kind": "deal_won"}),
        ("calls", {"kind": "threshold", "metric": "calls_total", "window": "today", "value": 50}),
    ):
        body = {"name": alert_id, "channels": ["ops"], "trigger": trigger}
        assert (
            await client.put(f"/v1/alerts/{alert_id}", json=body, headers=ADMIN)
        ).status_code == 200
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    contest = {
        "name": "Points", "starts_at": (now - timedelta(hours=1)).isoformat(),
        "ends_at": (now + timedelta(days=6)).isoformat(),
        "score": {"points": {"deals_won": 10, "calls_total": 1}},
    }  # fmt: skip
    assert (await client.put("/v1/contests/points", json=contest, headers=ADMIN)).status_code == 200


async def sign_in(client: httpx.AsyncClient, key: str) -> httpx.Response:
    page = await client.get("/console/sign-in")
    pre = re.search(r'name="pre" value="([^"]+)"', page.text)
    assert pre is not None
    return await client.post(
        "/console/sign-in", data={"key": key, "pre": pre[1], "next": "/console/reps"}
    )


def csrf_of(page: httpx.Response) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found is not None, page.text[:500]
    return found[1]


async def test_signing_in_with_a_key_opens_every_page_in_both_languages(
    console: tuple[httpx.AsyncClient, Settings],
) -> None:
    client, _ = console
    first = await client.get("/console/reps")
    assert first.status_code == 303
    assert first.headers["location"] == "/console/sign-in?next=%2Fconsole%2Freps"
    signed = await sign_in(client, ADMIN_KEY)
    assert signed.status_code == 303
    assert signed.headers["location"] == "/console/reps"
    cookie = signed.headers["set-cookie"]
    assert "httponly" in cookie.lower()
    assert "samesite=strict" in cookie.lower()
    assert ADMIN_KEY not in cookie
    for language in ("fr", "en"):
        for page in PAGES:
            sep = "&" if "?" in page else "?"
            answer = await client.get(f"{page}{sep}lang={language}")
            assert answer.status_code == 200, (page, answer.text[:2000])
            assert f'<html lang="{language}">' in answer.text


async def test_a_wrong_key_is_refused(console: tuple[httpx.AsyncClient, Settings]) -> None:
    client, _ = console
    refused = await sign_in(client, "not-a-key")
    assert refused.status_code == 401
    assert "Clé inconnue" in refused.text
    assert (await client.get("/console")).status_code == 303


async def test_a_form_without_the_sessions_csrf_token_is_refused(
    console: tuple[httpx.AsyncClient, Settings],
) -> None:
    client, _ = console
    await sign_in(client, ADMIN_KEY)
    forged = await client.post("/console/teams", data={"id": "west", "name": "West"})
    assert forged.status_code == 403
    wrong = await client.post("/console/teams", data={"id": "west", "name": "West", "csrf": "x"})
    assert wrong.status_code == 403
    page = await client.get("/console/reps")
    made = await client.post(
        "/console/teams", data={"id": "west", "name": "West", "csrf": csrf_of(page)}
    )
    assert made.status_code == 303
    assert "West" in (await client.get("/console/reps")).text


async def test_a_read_key_sees_everything_and_changes_nothing(
    console: tuple[httpx.AsyncClient, Settings],
) -> None:
    client, _ = console
    await sign_in(client, READ_KEY)
    page = await client.get("/console/reps")
    assert page.status_code == 200
    assert "Alice" in page.text
    assert 'action="/console/teams"' not in page.text  # no write forms
    token = csrf_of(page)  # the sign-out form's
    posted = await client.post("/console/teams", data={"id": "west", "name": "West", "csrf": token})
    assert posted.status_code == 403
    assert "West" not in (await client.get("/console/reps")).text


async def test_a_refusal_shows_next_to_its_field_with_what_was_typed(
    console: tuple[httpx.AsyncClient, Settings],
) -> None:
    client, _ = console
    await sign_in(client, ADMIN_KEY)
    token = csrf_of(await client.get("/console/reps/alice"))
    answer = await client.post(
        "/console/reps/alice",
        data={"csrf": token, "name": "Alice B", "email": "not-an-email", "team_id": "north",
              "identities": "crm:u-1", "effective_from": "", "left_at": ""},
    )  # fmt: skip
    assert answer.status_code == 422
    assert 'id="err-email"' in answer.text
    assert "not an email address" in answer.text
    assert 'value="Alice B"' in answer.text
    taken = await client.post(
        "/console/reps/alice",
        data={"csrf": token, "name": "Alice", "team_id": "north", "identities": "crm:u-2"},
    )
    assert taken.status_code == 422
    assert 'id="err-identities"' in taken.text
    assert "belongs to rep bob" in taken.text


async def test_an_expired_or_forged_session_sends_back_to_sign_in(
    console: tuple[httpx.AsyncClient, Settings],
) -> None:
    client, settings = console
    signer = Signer(secret_of(settings))
    past = Session("admin", frozenset({KeyScope.admin}), "t", int(time.time()) - 1)
    client.cookies.set(COOKIE, signer.dumps(past), path="/console")
    answer = await client.get("/console/contests")
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/console/sign-in?next=")
    forged = Signer(b"another secret").dumps(past.renewed(time.time(), 1))
    client.cookies.set(COOKIE, forged, path="/console")
    assert (await client.get("/console/contests")).status_code == 303


def test_every_text_the_console_shows_is_in_french_and_english() -> None:
    used: set[str] = set()
    for source in [*TEMPLATES.glob("templates/*.html"), *TEMPLATES.glob("*.py")]:
        text = source.read_text()
        used |= set(re.findall(r"""\bt\(\s*["']([a-z_]+\.[a-z_.]+|[a-z_]+)["']""", text))
    missing = sorted(k for k in used if k not in messages.MESSAGES and not k.endswith("."))
    assert not missing
    for key, (french, english) in messages.MESSAGES.items():
        assert french, key
        assert english, key
    # the activity tables name every event type in words
    assert [t for t in EVENT_TYPES if f"event.{t}" not in messages.MESSAGES] == []


async def test_connections_show_what_to_paste_and_the_last_deliveries(
    console: tuple[httpx.AsyncClient, Settings],
) -> None:
    client, settings = console
    from services.ingest.deliveries import DeliveryLog, write

    deliveries = DeliveryLog()
    deliveries.delivered("aircall", datetime.now(UTC).timestamp() - 60, 12, 1, 0)
    deliveries.refused("aircall", datetime.now(UTC).timestamp() - 30, "bad-token", "wrong token")
    db = client._transport.app.state.db  # type: ignore[attr-defined]
    await write(db, deliveries)
    await sign_in(client, READ_KEY)
    page = await client.get("/console/connections?lang=fr")
    assert page.status_code == 200
    aircall = page.text[page.text.index('id="connection-aircall"') :]
    aircall = aircall[: aircall.index("</section>")]
    assert f"{settings.public_base_url}/webhooks/aircall" in aircall
    assert "call.ended" in aircall
    assert "12 acceptés" in aircall
    assert "1 refusés" in aircall
    assert "bad-token: wrong token" in aircall
    assert 'id="base-unset"' not in page.text  # PUBLIC_BASE_URL is set
    overview = await client.get("/console?lang=en")
    health = overview.text[overview.text.index('id="connections-health"') :]
    assert "Aircall" in health[: health.index("</dd>")]
    assert "1 refused" in health[: health.index("</dd>")]
