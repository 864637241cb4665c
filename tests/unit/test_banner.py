"""What ``make run`` prints at start: URLs that work as printed, with their keys, only for what
runs, and every secret a provider needs."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import SecretStr

from services.api.app import create_app
from services.dev import banner, with_demo_secrets
from shared.db.engine import create_engine
from shared.db.migrate import migrate
from shared.settings import Settings
from tests.api_support import api_client


async def test_every_url_the_banner_prints_answers_as_printed(tmp_path: Path) -> None:
    settings, admin = with_demo_secrets(Settings(database_url=f"sqlite:///{tmp_path / 'b.db'}"))
    printed = banner(settings, admin)
    urls = re.findall(r"http://127\.0\.0\.1:8000(\S+)", printed)
    assert {u.split("?")[0] for u in urls} >= {
        "/wallboard",
        "/console",
        "/docs",
        "/v1/leaderboards/calls_total",
    }
    db = create_engine(settings.database_url)
    await migrate(db)
    try:
        async with api_client(create_app(settings, db)) as client:
            for url in urls:  # in a browser: no header, the key is in the URL when one is needed
                # (the console's: its sign-in page)
                assert (await client.get(url, follow_redirects=True)).status_code == 200, url
    finally:
        await db.dispose()


def test_the_banner_prints_every_provider_secret_and_the_keys() -> None:
    settings, admin = with_demo_secrets(Settings())
    printed = banner(settings, admin)
    secrets = (settings.webhook_secret, settings.twilio_auth_token, settings.aircall_token,
               settings.hubspot_client_secret, settings.pipedrive_password)  # fmt: skip
    for secret in secrets:
        assert isinstance(secret, SecretStr)
        assert secret.get_secret_value() in printed
    assert f"admin key  {admin}" in printed
    assert "contest" in printed  # the simulator runs the demo contest
    quiet, admin = with_demo_secrets(Settings(simulate=False))
    assert "contest=" not in banner(quiet, admin)  # no simulator: no demo contest to show
