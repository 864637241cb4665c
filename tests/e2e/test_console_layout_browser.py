"""Every page of the console at 1280x800 and 1920x1080 in Chromium: nothing wider than the
window, every input labelled, and a screenshot of each in ``artifacts/`` (kept out of git)."""

from __future__ import annotations

import httpx
import pytest

from tests.api_support import book, put_targets
from tests.conftest import ADMIN_KEY, canonical
from tests.e2e.conftest import ARTIFACTS, Site, chromium_page, put_contest
from tests.e2e.console_support import PAGES, overflow, sign_in

pytestmark = pytest.mark.e2e
UNLABELLED = """[...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
  .filter(e => !e.labels?.length && !e.getAttribute('aria-label')).map(e => e.name || e.id)"""


async def test_every_page_fits_both_screens_and_labels_every_input(site: Site) -> None:
    url, db, _ = site
    await book(db, *(canonical("call.placed", actor=a) for a in ("u-3", "u-3", "u-1", "u-9")))
    await put_contest(url, "blitz")
    async with httpx.AsyncClient(base_url=url) as client:
        await put_targets(client, "reps", "revenue", "month", alice=20000, bob=15000)

    for width, height in ((1280, 800), (1920, 1080)):
        async with chromium_page(width, height) as page:
            await sign_in(page, url, ADMIN_KEY)
            for name, path in PAGES.items():
                answer = await page.goto(f"{url}{path}")
                assert answer is not None
                assert answer.status == 200, (name, answer.status)
                assert await overflow(page) <= 0, (name, width)
                assert await page.evaluate(UNLABELLED) == [], name
                await page.screenshot(
                    path=str(ARTIFACTS / f"console-{name}-{width}.png"), full_page=True
                )
