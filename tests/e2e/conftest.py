"""What the wallboard's browser tests share: the ``site`` fixture (the API on a real SQLite file
with Alice, Bob and Carol), a page in a headless Chromium (``chromium_page``), where screenshots
go (``ARTIFACTS``, kept out of git) and ``put_contest``."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Page, async_playwright
from sqlalchemy.ext.asyncio import AsyncEngine

from services.api.app import create_app
from services.api.live.hub import BoardHub
from shared.db.engine import create_engine
from shared.db.migrate import migrate
from shared.settings import Settings
from tests.api_support import ADMIN, FlakyVersion, flaky_hub, floor, served
from tests.conftest import IN_CI

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
ARTIFACTS.mkdir(exist_ok=True)
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
HAVE_CHROMIUM = Path(CHROMIUM).exists()
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


Site = tuple[str, AsyncEngine, FlakyVersion]  # its URL, its database, the switch of its version


@pytest.fixture
async def site(make_settings: Callable[..., Settings], tmp_path: Path) -> AsyncIterator[Site]:
    if not HAVE_CHROMIUM:
        if IN_CI:
            pytest.fail("Chromium missing: .ci/run installs Debian's chromium")
        pytest.skip("Chromium not installed (apt-get install chromium)")
    db = create_engine(f"sqlite:///{tmp_path / 'wall.db'}")
    await migrate(db)
    app = create_app(make_settings(), db)
    flaky = flaky_hub(app, db, poll_s=0.25)
    app.state.contest_hub = BoardHub(  # the contests' live standings through the same switch
        app.state.standings, db, 0.25, 0.5, max_backoff_s=0.2, version=flaky, event="standings"
    )
    async with served(app) as url:
        async with httpx.AsyncClient(base_url=url) as client:
            await floor(client)
        yield url, db, flaky
    await db.dispose()


@asynccontextmanager
async def chromium_page(width: int = 1600, height: int = 900) -> AsyncIterator[Page]:
    """A page in a fresh headless Chromium with this viewport, closed at the end."""
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            yield await browser.new_page(viewport={"width": width, "height": height})
        finally:
            await browser.close()


def this_minute() -> datetime:
    return datetime.now(UTC).replace(second=0, microsecond=0)


async def put_contest(url: str, contest_id: str, **changes: Any) -> None:
    """A contest "Call blitz" on calls, started an hour ago, ending in an hour, with a goal of 2;
    ``changes`` override any of its fields."""
    now = this_minute()
    body = {
        "name": "Call blitz",
        "starts_at": (now - timedelta(hours=1)).isoformat(),
        "ends_at": (now + timedelta(hours=1)).isoformat(),
        "score": {"metric": "calls_total"},
        "goal": 2,
        **changes,
    }
    async with httpx.AsyncClient(base_url=url) as client:
        put = await client.put(f"/v1/contests/{contest_id}", json=body, headers=ADMIN)
        assert put.status_code == 200, put.text
