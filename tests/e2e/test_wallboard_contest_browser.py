"""The wallboard's contest view (``/wallboard?contest=<id>``) in a real headless Chromium, fed
by the real API's standings stream: the podium in rank order (ties share a step), the countdown
in each phase, the goal, live updates, "reconnecting…", and the winners once completed."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from playwright.async_api import Page

from services.api.contests.settlement import Settlement
from shared.settings import Settings
from tests.api_support import ADMIN, book
from tests.conftest import READ_KEY, canonical
from tests.e2e.conftest import ARTIFACTS, Site, chromium_page, put_contest, this_minute

PODIUM = "#podium .step"


def _calls(actor: str, count: int, at: datetime | None = None) -> list[dict[str, Any]]:
    at = at or datetime.now(UTC) - timedelta(minutes=1)
    return [canonical("call.placed", actor=actor, time=at) for _ in range(count)]


async def _podium(page: Page) -> list[tuple[str, list[str]]]:
    """The podium's steps in rank order: (rank, the names on that step)."""
    await page.locator(PODIUM).first.wait_for(timeout=10_000)
    steps: list[tuple[str, list[str]]] = await page.eval_on_selector_all(
        PODIUM,
        "steps => steps.map(s => [s.dataset.rank, "
        "[...s.querySelectorAll('.who')].map(w => w.textContent)])",
    )
    return [(rank, names) for rank, names in steps]


async def _open(page: Page, url: str, contest_id: str) -> None:
    await page.goto(f"{url}/wallboard?contest={contest_id}&key={READ_KEY}&lang=en")


async def test_contest_shows_the_podium_countdown_and_goal_and_updates_live(site: Site) -> None:
    url, db, _ = site
    await put_contest(url, "blitz")
    await book(db, *_calls("u-3", 3), *_calls("u-1", 1))
    async with chromium_page(1920, 1080) as page:
        await _open(page, url, "blitz")
        assert await _podium(page) == [("1", ["Carol"]), ("2", ["Alice"]), ("3", ["Bob"])]
        assert await page.locator("#title").inner_text() == "Call blitz"
        assert await page.locator("#status").inner_text() == "live"
        assert await page.locator("#rules").inner_text() == "Calls · goal 2"
        countdown = await page.locator("#countdown").inner_text()
        assert re.fullmatch(r"ends in (5\d:\d\d|1:00:00)", countdown), countdown
        # The goal: a bar per participant against it, a mark for who has reached it.
        step = page.locator(f"{PODIUM}[data-rank='1']")
        assert await step.locator(".goal-mark").count() == 1
        assert await page.locator("#podium .goal-mark").count() == 1
        alice = page.locator(f"{PODIUM}[data-rank='2'] .goal-bar")
        assert await alice.get_attribute("aria-valuenow") == "50"  # 1 call of 2
        assert await page.locator("#leaderboard").is_hidden()

        await book(db, *_calls("u-1", 4))
        await page.wait_for_function(
            "document.querySelector('#podium .step .who').textContent === 'Alice'",
            timeout=5_000,
        )
        assert await _podium(page) == [("1", ["Alice"]), ("2", ["Carol"]), ("3", ["Bob"])]
        assert await page.locator("#podium .goal-mark").count() == 2
        await page.screenshot(path=str(ARTIFACTS / "wallboard-contest.png"))  # kept out of git


async def test_contest_ties_share_a_step_and_the_rest_is_listed_below(site: Site) -> None:
    url, db, _ = site
    async with httpx.AsyncClient(base_url=url) as client:
        body = {"name": "Dan", "team_id": "south", "effective_from": "2020-01-01T00:00:00Z",
                "identities": [{"provider": "crm", "external_id": "u-4"}]}  # fmt: skip
        assert (await client.put("/v1/reps/dan", json=body, headers=ADMIN)).status_code == 200
    await put_contest(url, "tie", goal=None)
    await book(db, *_calls("u-1", 2), *_calls("u-2", 2), *_calls("u-3", 1))
    async with chromium_page(1280, 720) as page:
        await _open(page, url, "tie")
        assert await _podium(page) == [("1", ["Alice", "Bob"]), ("3", ["Carol"])]
        rest = page.locator("#rest .entry")
        assert await rest.count() == 1
        assert re.fullmatch(r"4\s*Dan\s*South\s*0", await rest.inner_text())
        assert await page.locator(".goal-bar").count() == 0  # no goal, no bars
        assert await page.locator("#rules").inner_text() == "Calls"
        await page.screenshot(path=str(ARTIFACTS / "wallboard-contest-tie-1280x720.png"))


@pytest.mark.parametrize(
    ("starts", "ends", "said"),
    [
        (timedelta(hours=2), timedelta(hours=3), r"starts in (1:5\d:\d\d|2:00:00)"),
        (timedelta(hours=-1), timedelta(0), r"final standings in [345]:\d\d"),
    ],
    ids=["scheduled", "settling"],
)
async def test_contest_countdown_counts_to_the_start_and_to_the_final_standings(
    site: Site, starts: timedelta, ends: timedelta, said: str
) -> None:
    url, _, _ = site
    now = this_minute()
    times = {"starts_at": (now + starts).isoformat(), "ends_at": (now + ends).isoformat()}
    await put_contest(url, "soon", **times)
    async with chromium_page() as page:
        await _open(page, url, "soon")
        await page.wait_for_function(
            "document.querySelector('#countdown').textContent !== ''", timeout=10_000
        )
        countdown = await page.locator("#countdown").inner_text()
        assert re.fullmatch(said, countdown), countdown


async def test_a_completed_contest_shows_its_winners(site: Site) -> None:
    url, db, _ = site
    start = this_minute().replace(minute=0) - timedelta(
        days=3
    )  # past the kept minutes: on the hour
    await book(db, *_calls("u-2", 2, start + timedelta(minutes=10)), *_calls("u-3", 1, start))
    await put_contest(
        url, "march", name="March madness", starts_at=start.isoformat(),
        ends_at=(start + timedelta(hours=1)).isoformat(),
    )  # fmt: skip
    assert await Settlement(db, Settings()).settle_due(datetime.now(UTC)) == 1  # as the worker
    async with chromium_page(1920, 1080) as page:
        await _open(page, url, "march")
        winners = page.locator("#winners")
        await winners.wait_for(timeout=10_000)
        assert await page.locator("#winner-names").inner_text() == "Bob"
        assert await page.locator("#winners-head").inner_text() == "Winner"
        assert await page.locator("#final-score").inner_text() == "March madness: 2"
        assert await page.locator("#standings").is_hidden()
        assert await page.locator("#countdown").inner_text() == "final standings"
        await page.screenshot(path=str(ARTIFACTS / "wallboard-contest-winners.png"))


async def test_contest_says_reconnecting_while_its_stream_cannot_refresh(site: Site) -> None:
    url, db, flaky = site
    await put_contest(url, "blitz")
    status = "document.querySelector('#status').textContent"
    async with chromium_page() as page:
        await _open(page, url, "blitz")
        await page.wait_for_function(f"{status} === 'live'", timeout=10_000)
        flaky.down = True
        await page.wait_for_function(f"{status} === 'reconnecting…'", timeout=5_000)
        await book(db, *_calls("u-2", 1))
        flaky.down = False
        await page.wait_for_function(f"{status} === 'live'", timeout=5_000)
        await page.wait_for_function(
            "document.querySelector('#podium .step .who').textContent === 'Bob'", timeout=5_000
        )


async def test_an_unknown_contest_is_named_on_the_screen(site: Site) -> None:
    url, _, _ = site
    async with chromium_page() as page:
        await _open(page, url, "nope")
        await page.wait_for_function(
            "document.querySelector('#title').textContent === 'No contest “nope”'", timeout=10_000
        )
        assert await page.locator("#status").inner_text() == "reconnecting…"
