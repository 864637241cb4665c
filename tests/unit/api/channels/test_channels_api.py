"""Channels over the API: a webhook's secret is shown once, by the PUT that generated it, and
never by a read; each refusal is a 422 naming its field; the SSRF guard refuses destinations
that are not public https, unless ALLOW_PRIVATE_CHANNELS (which the dev mode sets)."""

from __future__ import annotations

import logging
from collections.abc import Callable

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from standardwebhooks import Webhook

from services.api.app import create_app
from services.dev import with_demo_secrets
from shared.notify.messages import new_secret
from shared.settings import Settings
from tests.api_support import ADMIN, READ, api_client, fields

PUBLIC = "https://93.184.216.34/hooks/salespulse?token=t0ps3cret"  # an IP literal: no DNS
SLACK = "https://3.5.140.2/services/T000/B000/XXXXXXXX"


async def put(client: httpx.AsyncClient, channel_id: str, **body: object) -> httpx.Response:
    return await client.put(f"/v1/channels/{channel_id}", json=body, headers=ADMIN)


async def test_a_generated_secret_is_shown_once_and_never_read_back(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    created = await put(client, "ops", kind="webhook", url=PUBLIC)
    assert created.status_code == 200, created.text
    secret = created.json()["secret"]
    assert secret.startswith("whsec_")
    Webhook(secret)  # the official package takes it
    assert created.json() | {"secret": None} == {
        "id": "ops",
        "kind": "webhook",
        "url": "https://93.184.216.34/…",
        "has_secret": True,
        "secret": None,
    }

    read = await client.get("/v1/channels/ops", headers=READ)
    assert read.status_code == 200
    assert read.json() == {
        "id": "ops",
        "kind": "webhook",
        "url": "https://93.184.216.34/…",
        "has_secret": True,
    }
    assert secret not in read.text
    assert "t0ps3cret" not in read.text

    again = await put(client, "ops", kind="webhook", url=PUBLIC + "&v=2")
    assert again.status_code == 200
    assert again.json()["secret"] is None  # kept, not regenerated, and not shown again
    # aiosqlite's own DEBUG records repeat statement parameters: configure_logging must keep it
    # above DEBUG (it is a third party's record, not one of ours); every other record is clean.
    ours = [r.getMessage() for r in caplog.records if not r.name.startswith("aiosqlite")]
    assert not any(secret in message for message in ours)


async def test_a_given_secret_is_kept_and_not_echoed(client: httpx.AsyncClient) -> None:
    mine = new_secret()
    saved = await put(client, "mine", kind="webhook", url=PUBLIC, secret=mine)
    assert saved.status_code == 200
    assert saved.json()["secret"] is None
    assert saved.json()["has_secret"] is True
    assert mine not in saved.text


async def test_slack_and_teams_channels_have_no_secret(client: httpx.AsyncClient) -> None:
    for kind in ("slack", "teams"):
        saved = await put(client, kind, kind=kind, url=SLACK)
        assert saved.status_code == 200
        assert saved.json() == {
            "id": kind,
            "kind": kind,
            "url": "https://3.5.140.2/…",
            "has_secret": False,
            "secret": None,
        }
    # a Slack channel turned webhook gets a secret of its own, shown by that PUT
    turned = await put(client, "slack", kind="webhook", url=PUBLIC)
    assert turned.json()["secret"].startswith("whsec_")


async def test_refusals_name_their_field(client: httpx.AsyncClient) -> None:
    assert fields(await put(client, "x", kind="email", url=PUBLIC)) == ["body.kind"]
    assert fields(await put(client, "x", kind="webhook", url="")) == ["body.url"]
    assert fields(await put(client, "x", kind="slack", url=SLACK, secret=new_secret())) == [
        "body.secret"
    ]
    short = "whsec_" + "QUJD" * 4  # 12 bytes
    for bad in ("not-a-secret", "whsec_%%%%", short):
        answer = await put(client, "x", kind="webhook", url=PUBLIC, secret=bad)
        assert fields(answer) == ["body.secret"]
        assert bad not in answer.text  # a refused secret is not repeated either
    assert fields(await put(client, "x", kind="webhook", url=PUBLIC, extra=1)) == ["body.extra"]
    assert (await client.get("/v1/channels/x", headers=READ)).status_code == 404


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://93.184.216.34/hook", "must use https"),
        ("ftp://93.184.216.34/hook", "https://"),
        ("https:///no-host", "https://"),
        ("https://10.0.0.1/hook", "private"),
        ("https://169.254.169.254/latest/meta-data", "link-local"),
        ("https://[::1]/hook", "loopback"),
        ("https://224.0.0.1/hook", "multicast"),
        ("https://0.0.0.0/hook", "unspecified"),
        ("https://[::ffff:127.0.0.1]/hook", "loopback"),
        ("https://100.64.0.1/hook", "not a public address"),  # carrier-grade NAT
        ("https://[2002:a00:1::1]/hook", "embeds 10.0.0.1 is a private"),  # 6to4
        ("https://[2001:0:4136:e378:8000:63bf:f5ff:fffe]/hook", "embeds 10.0.0.1"),  # Teredo
        ("https://localhost/hook", "localhost is not a public address"),
        ("https://2130706433/hook", "2130706433 is not a public address"),  # 127.0.0.1 as a number
        ("https://no-such-host.invalid/hook", "does not resolve"),
    ],
)
async def test_the_guard_refuses_what_is_not_public_https(
    client: httpx.AsyncClient, url: str, reason: str
) -> None:
    answer = await put(client, "x", kind="webhook", url=url)
    assert fields(answer) == ["body.url"]
    assert reason in answer.json()["detail"]


@pytest.mark.parametrize("url", ["https://localhost/hook", "https://2130706433/hook"])
async def test_a_refusal_never_says_what_a_name_resolves_to(
    client: httpx.AsyncClient, url: str
) -> None:
    answer = await put(client, "x", kind="webhook", url=url)
    assert fields(answer) == ["body.url"]
    assert answer.json()["detail"].endswith("is not a public address")
    assert "127.0.0.1" not in answer.text


async def test_allow_private_channels_lifts_the_guard(
    make_settings: Callable[..., Settings], db: AsyncEngine
) -> None:
    app = create_app(make_settings(allow_private_channels=True), db)
    async with api_client(app) as c:
        for url in ("http://127.0.0.1:9/hook", "https://localhost/hook", "http://10.0.0.1/"):
            assert (await put(c, "local", kind="slack", url=url)).status_code == 200
        assert fields(await put(c, "local", kind="slack", url="ftp://10.0.0.1/")) == ["body.url"]


def test_the_dev_mode_allows_private_channels() -> None:
    assert Settings().allow_private_channels is False
    assert with_demo_secrets(Settings())[0].allow_private_channels is True


async def test_admin_writes_read_reads_and_delete(client: httpx.AsyncClient) -> None:
    body = {"kind": "slack", "url": SLACK}
    assert (await client.put("/v1/channels/s", json=body, headers=READ)).status_code == 403
    assert (await client.get("/v1/channels/s", headers=READ)).status_code == 404
    assert (await put(client, "s", **body)).status_code == 200
    assert (await client.delete("/v1/channels/s", headers=READ)).status_code == 403
    assert (await client.delete("/v1/channels/s", headers=ADMIN)).status_code == 204
    assert (await client.delete("/v1/channels/s", headers=ADMIN)).status_code == 404
    assert (await client.get("/v1/channels/s", headers=READ)).status_code == 404


def test_debug_logging_keeps_the_drivers_statement_values_out() -> None:
    """aiosqlite logs each statement with its values (a channel's secret among them) at DEBUG:
    even at LOG_LEVEL=DEBUG, its records stay out."""
    import logging

    from shared.observability import configure_logging

    before = logging.getLogger().level
    try:
        configure_logging("DEBUG")
        assert not logging.getLogger("aiosqlite").isEnabledFor(logging.DEBUG)
    finally:
        configure_logging(logging.getLevelName(before))
