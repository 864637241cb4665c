"""The wallboard's celebrations and wins ticker in a real headless Chromium, fed by the real
API: a deal won while the page is open takes over the screen with the rep's name and the amount
for ``?celebrate=<seconds>`` (``0``: never), from ``GET /v1/stream/notifications``; several are
shown one after another; the takeover has no animation under ``prefers-reduced-motion``; and the
ticker shows today's wins from the data (``GET /v1/wins``), whatever alerts exist, or says it
is waiting only when there are none. On the leaderboards and on the contest view alike."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from playwright.async_api import Page

from tests.api_support import ADMIN, book
from tests.conftest import READ_KEY, canonical
from tests.e2e.conftest import ARTIFACTS, Site, chromium_page, put_contest

WAITING = "Waiting for the first win of the day…"
OVERLAY = "#celebration"
VIEWS = {
    "leaderboard": "/wallboard?key={key}&metrics=calls_total&windows=today&lang=en",
    "contest": "/wallboard?key={key}&contest=blitz&lang=en",
}
# Notification texts are written once, by the server, in the organisation's LOCALE (fr-FR).
ALICE_WON = "Alice a conclu une affaire de 15\u202f000\xa0€"


@pytest.fixture
async def wins_site(site: Site) -> Site:
    """``site`` with an alert on every deal won, to no channel: its notifications only reach
    the screens."""
    url, _, _ = site
    body = {"name": "Wins", "channels": [], "trigger": {"kind": "deal_won"}}
    async with httpx.AsyncClient(base_url=url) as client:
        put = await client.put("/v1/alerts/wins", json=body, headers=ADMIN)
        assert put.status_code == 200, put.text
    return site


async def _win(db: Any, actor: str = "u-1", deal: str = "D-1", amount: str = "15000.00") -> None:
    await book(db, canonical("deal.updated", actor=actor, deal_id=deal, amount=amount))


async def _open(page: Page, url: str, view: str, extra: str = "") -> None:
    """Open the page; wait until its notification stream is connected and its ticker read."""
    if view == "contest":
        await put_contest(url, "blitz")
    await page.goto(url + VIEWS[view].format(key=READ_KEY) + extra)
    await page.wait_for_function(
        "document.documentElement.dataset.notifications === 'live'"
        " && document.querySelector('#ticker').dataset.state !== undefined",
        timeout=10_000,
    )


RECORD = """() => {
    // Every celebration shown: its name, amount, text, and when it appeared and went.
    window.shown = [];
    const overlay = document.querySelector('#celebration');
    const look = () => {
        const last = window.shown[window.shown.length - 1];
        const id = overlay.hidden ? null : overlay.dataset.id;
        if (last && last.hidden_at === null && last.id !== id) last.hidden_at = performance.now();
        if (id !== null && (!last || last.id !== id || last.hidden_at !== null)) {
            window.shown.push({id, name: document.querySelector('#celebration-name').textContent,
                amount: document.querySelector('#celebration-amount').textContent,
                text: document.querySelector('#celebration-text').textContent,
                shown_at: performance.now(), hidden_at: null});
        }
    };
    new MutationObserver(look).observe(overlay, {attributes: true, subtree: true,
                                                 childList: true, characterData: true});
}"""


async def _shown(page: Page) -> list[dict[str, Any]]:
    shown: list[dict[str, Any]] = await page.evaluate("window.shown")
    return shown


@pytest.mark.parametrize("view", list(VIEWS))
async def test_a_deal_won_while_the_page_is_open_takes_over_the_screen(
    wins_site: Site, view: str
) -> None:
    url, db, _ = wins_site
    async with chromium_page(1920, 1080) as page:
        await _open(page, url, view, "&celebrate=1")
        assert await page.locator(OVERLAY).is_hidden()
        await page.evaluate(RECORD)
        await _win(db)
        overlay = page.locator(OVERLAY)
        await overlay.wait_for(state="visible", timeout=10_000)
        assert await page.locator("#celebration-name").inner_text() == "Alice"
        assert await page.locator("#celebration-amount").inner_text() == "€15,000"
        assert await page.locator("#celebration-kind").inner_text() == "DEAL WON!"
        assert await page.locator("#celebration-text").inner_text() == ALICE_WON
        await overlay.wait_for(state="hidden", timeout=5_000)
        # The same win is in the ticker, which no longer waits.
        await page.wait_for_function(
            "document.querySelector('#ticker').textContent.includes('Alice')", timeout=5_000
        )
        ticker = await page.locator("#ticker").inner_text()
        assert "Alice · €15,000" in ticker
        assert WAITING not in ticker
        shown = await _shown(page)
    assert [(s["name"], s["text"]) for s in shown] == [("Alice", ALICE_WON)]
    seconds = (shown[0]["hidden_at"] - shown[0]["shown_at"]) / 1000
    assert 0.8 <= seconds <= 2.5, seconds  # ?celebrate=1


async def test_wins_arriving_together_are_celebrated_one_after_another(wins_site: Site) -> None:
    url, db, _ = wins_site
    async with chromium_page() as page:
        await _open(page, url, "leaderboard", "&celebrate=1")
        await page.evaluate(RECORD)
        await book(
            db,
            canonical("deal.updated", actor="u-1", deal_id="D-1", amount="15000.00"),
            canonical("deal.updated", actor="u-2", deal_id="D-2", amount="2500.50"),
        )
        await page.wait_for_function(
            "window.shown.length === 2 && window.shown[1].hidden_at !== null", timeout=10_000
        )
        shown = await _shown(page)
        ticker = await page.locator("#ticker").inner_text()
    assert sorted((s["name"], s["amount"]) for s in shown) == [
        ("Alice", "€15,000"),
        ("Bob", "€2,500.50"),
    ]
    assert shown[1]["shown_at"] >= shown[0]["hidden_at"] - 50  # one after the other
    assert "Alice · €15,000" in ticker
    assert "Bob · €2,500.50" in ticker


@pytest.mark.parametrize("view", list(VIEWS))
async def test_a_page_opened_after_a_win_of_today_shows_it_in_the_ticker(
    wins_site: Site, view: str
) -> None:
    url, db, _ = wins_site
    await _win(db)
    await _win(db, actor="u-3", deal="D-3", amount="900.00")
    async with chromium_page() as page:
        await _open(page, url, view)
        ticker = page.locator("#ticker")
        assert await ticker.get_attribute("data-state") == "wins"
        text = await ticker.inner_text()
        items = await page.locator("#ticker .win:not([aria-hidden])").all_inner_texts()
        assert await page.locator(OVERLAY).is_hidden()  # past wins are not celebrated again
        await page.screenshot(path=str(ARTIFACTS / f"wallboard-ticker-{view}.png"))
    assert WAITING not in text
    assert len(items) == 2
    assert re.fullmatch(r"\d\d:\d\d\s*★ Carol · €900", items[0]), items[0]  # newest first
    assert re.fullmatch(r"\d\d:\d\d\s*★ Alice · €15,000", items[1]), items[1]


@pytest.mark.parametrize("view", list(VIEWS))
async def test_a_page_with_no_win_today_says_it_is_waiting(wins_site: Site, view: str) -> None:
    url, db, _ = wins_site
    await book(db, canonical("call.placed", actor="u-1"))  # activity, but no win
    async with chromium_page() as page:
        await _open(page, url, view)
        assert await page.locator("#ticker").inner_text() == WAITING
        assert await page.locator("#ticker").get_attribute("data-state") == "waiting"


async def test_the_ticker_shows_the_day_s_wins_when_no_alert_watches_deals(site: Site) -> None:
    """No deal_won alert at all (the demo's case): the ticker reads the wins from the data."""
    url, db, _ = site
    await _win(db)
    async with chromium_page() as page:
        await _open(page, url, "leaderboard")
        items = await page.locator("#ticker .win:not([aria-hidden])").all_inner_texts()
    assert len(items) == 1
    assert items[0].endswith("★ Alice · €15,000")


async def test_celebrate_0_shows_no_takeover(wins_site: Site) -> None:
    url, db, _ = wins_site
    async with chromium_page() as page:
        await _open(page, url, "leaderboard", "&celebrate=0")
        await page.evaluate(RECORD)
        await _win(db)
        await page.wait_for_function(  # the win did arrive: the ticker shows it
            "document.querySelector('#ticker').textContent.includes('Alice')", timeout=10_000
        )
        await page.wait_for_timeout(500)
        assert await page.locator(OVERLAY).is_hidden()
        assert await _shown(page) == []


@pytest.mark.parametrize("reduced", [True, False], ids=["reduced-motion", "motion"])
async def test_the_takeover_respects_prefers_reduced_motion(wins_site: Site, reduced: bool) -> None:
    url, db, _ = wins_site
    async with chromium_page() as page:
        await page.emulate_media(reduced_motion="reduce" if reduced else "no-preference")
        await _open(page, url, "leaderboard", "&celebrate=3")
        await _win(db)
        await page.locator(OVERLAY).wait_for(state="visible", timeout=10_000)
        assert await page.locator("#celebration-name").inner_text() == "Alice"
        animation = await page.eval_on_selector(
            "#celebration .celebration-card", "card => getComputedStyle(card).animationName"
        )
        if not reduced:
            await page.wait_for_timeout(700)  # past the entrance
        shot = "wallboard-celebration.png" if reduced else "wallboard-celebration-animated.png"
        await page.screenshot(path=str(ARTIFACTS / shot))  # kept out of git
    assert animation == ("none" if reduced else "celebration-in")


async def test_sound_1_plays_a_chime_with_each_celebration_and_none_without_it(
    wins_site: Site,
) -> None:
    url, db, _ = wins_site
    async with chromium_page() as page:
        await _open(page, url, "leaderboard", "&celebrate=1&sound=1")
        await _win(db)
        await page.locator(OVERLAY).wait_for(state="visible", timeout=10_000)
        chimes = await page.evaluate("document.documentElement.dataset.chimes")
    async with chromium_page() as quiet:
        await _open(quiet, url, "leaderboard", "&celebrate=1")
        await _win(db, deal="D-2")
        await quiet.locator(OVERLAY).wait_for(state="visible", timeout=10_000)
        silent = await quiet.evaluate("document.documentElement.dataset.chimes")
    assert chimes == "1"
    assert silent is None
