"""The wallboard in a real headless Chromium (Debian's, driven by Playwright): it shows the
reps' names and values, updates by itself when a new event arrives, and says "reconnecting…"
rather than "live" while its stream cannot refresh the board."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
from playwright.async_api import async_playwright
from sqlalchemy.ext.asyncio import AsyncEngine

from services.api.app import create_app
from shared.db.engine import create_engine
from shared.db.migrate import migrate
from shared.settings import Settings
from tests.api_support import FlakyVersion, book, flaky_hub, floor, served
from tests.conftest import IN_CI, READ_KEY, canonical

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
    async with served(app) as url:
        async with httpx.AsyncClient(base_url=url) as client:
            await floor(client)
        yield url, db, flaky
    await db.dispose()


async def test_wallboard_shows_the_board_and_updates_live(site: Site) -> None:
    url, db, _ = site
    await book(
        db,
        *(canonical("call.placed", actor="u-3") for _ in range(3)),
        canonical("call.placed", actor="u-1"),
    )
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            page = await browser.new_page(viewport={"width": 1600, "height": 900})
            await page.goto(f"{url}/wallboard?key={READ_KEY}&metrics=calls_total&windows=today")
            rows = page.locator("#rows tr")
            await rows.first.wait_for(timeout=10_000)
            first = await rows.nth(0).inner_text()
            assert "Carol" in first
            assert "3" in first
            assert "Alice" in await rows.nth(1).inner_text()
            assert await page.locator("#title").inner_text() == "Calls total · today"
            assert await page.locator("#status").inner_text() == "live"

            await book(db, *(canonical("call.placed", actor="u-1") for _ in range(4)))
            await page.wait_for_function(
                "document.querySelector('#rows tr td.name').textContent === 'Alice'", timeout=5_000
            )
            assert "5" in await rows.nth(0).inner_text()
            await page.screenshot(path=str(ARTIFACTS / "wallboard.png"))  # kept out of git
        finally:
            await browser.close()


async def test_wallboard_says_reconnecting_while_its_stream_cannot_refresh(site: Site) -> None:
    url, db, flaky = site
    status = "document.querySelector('#status').textContent"
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            page = await browser.new_page(viewport={"width": 1600, "height": 900})
            await page.goto(f"{url}/wallboard?key={READ_KEY}&metrics=calls_total&windows=today")
            await page.wait_for_function(f"{status} === 'live'", timeout=10_000)
            flaky.down = True
            await page.wait_for_function(f"{status} === 'reconnecting…'", timeout=5_000)
            assert await page.locator("#status").get_attribute("title") == "database unavailable"
            await book(db, canonical("call.placed", actor="u-2"))
            flaky.down = False
            await page.wait_for_function(f"{status} === 'live'", timeout=5_000)
            await page.wait_for_function(
                "document.querySelector('#rows tr td.name').textContent === 'Bob'", timeout=5_000
            )
        finally:
            await browser.close()


async def test_wallboard_page_works_offline_and_is_served_without_a_key(site: Site) -> None:
    url, _, _ = site
    async with httpx.AsyncClient(base_url=url) as client:
        page = await client.get("/wallboard")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert "http" not in page.text.replace("http-equiv", "")  # no CDN: nothing external
        assert (await client.get("/wallboard/static/wallboard.js")).status_code == 200
        assert (await client.get("/v1/leaderboards/calls_total")).status_code == 401
