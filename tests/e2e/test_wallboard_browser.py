"""The wallboard in a real headless Chromium (Debian's, driven by Playwright): it shows the
reps' names, teams and values, updates by itself when a new event arrives, says "reconnecting…"
rather than "live" while its stream cannot refresh the board, keeps its column headers readable
on a TV and on a small screen, and draws pace bars for reps with targets (``?show=pace``).

The contest view (``?contest=``) is tested in ``test_wallboard_contest_browser.py`` on the same
fixture (``site``) and helper (``chromium_page``), both in ``conftest.py``."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from playwright.async_api import Page
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.api_support import ADMIN, book
from tests.conftest import READ_KEY, canonical
from tests.e2e.conftest import ARTIFACTS, Site, chromium_page

BOARD = f"/wallboard?key={READ_KEY}&metrics=calls_total&windows=today&lang=en"
ROWS = "#rows tr"


async def test_wallboard_shows_the_board_and_updates_live(site: Site) -> None:
    url, db, _ = site
    await book(
        db,
        *(canonical("call.placed", actor="u-3") for _ in range(3)),
        canonical("call.placed", actor="u-1"),
    )
    async with chromium_page() as page:
        await page.goto(f"{url}{BOARD}")
        rows = page.locator(ROWS)
        await rows.first.wait_for(timeout=10_000)
        first = await rows.nth(0).inner_text()
        assert "Carol" in first
        assert "3" in first
        assert "Alice" in await rows.nth(1).inner_text()
        assert await page.locator("#title").inner_text() == "Calls · today"
        assert await page.locator("#status").inner_text() == "live"

        await book(db, *(canonical("call.placed", actor="u-1") for _ in range(4)))
        await page.wait_for_function(
            "document.querySelector('#rows tr td.name').textContent === 'Alice'", timeout=5_000
        )
        assert "5" in await rows.nth(0).inner_text()
        await page.screenshot(path=str(ARTIFACTS / "wallboard.png"))  # kept out of git


async def test_wallboard_says_reconnecting_while_its_stream_cannot_refresh(site: Site) -> None:
    url, db, flaky = site
    status = "document.querySelector('#status').textContent"
    async with chromium_page() as page:
        await page.goto(f"{url}{BOARD}")
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


async def test_wallboard_page_works_offline_and_is_served_without_a_key(site: Site) -> None:
    url, _, _ = site
    async with httpx.AsyncClient(base_url=url) as client:
        page = await client.get("/wallboard")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert "http" not in page.text.replace("http-equiv", "")  # no CDN: nothing external
        assert (await client.get("/wallboard/static/wallboard.js")).status_code == 200
        assert (await client.get("/v1/leaderboards/calls_total")).status_code == 401


async def _board_rows(url: str) -> list[dict[str, object]]:
    """The rows of today's calls board as the API answers them (what the page is fed)."""
    async with httpx.AsyncClient(base_url=url) as client:
        got = await client.get("/v1/leaderboards/calls_total", params={"key": READ_KEY})
        assert got.status_code == 200, got.text
        rows: list[dict[str, object]] = got.json()["rows"]
        return rows


async def _cells(page: Page, column: str) -> dict[str, str]:
    """Rep name -> the text of that row's cell of class ``column``, once the board is shown."""
    await page.locator(ROWS).first.wait_for(timeout=10_000)
    return dict(
        await page.eval_on_selector_all(
            ROWS,
            f"rows => rows.map(r => [r.querySelector('td.name').textContent, "
            f"r.querySelector('td.{column}').textContent])",
        )
    )


async def test_wallboard_team_column_names_the_team(site: Site) -> None:
    """``team_name`` when the row has it, else ``team_id``: what the rows carry."""
    url, db, _ = site
    await book(db, canonical("call.placed", actor="u-1"), canonical("call.placed", actor="u-3"))
    expected = {r["name"]: r.get("team_name") or r["team_id"] for r in await _board_rows(url)}
    async with chromium_page() as page:
        await page.goto(f"{url}{BOARD}")
        teams = await _cells(page, "team")
    assert teams == expected
    assert teams == {"Alice": "North", "Bob": "North", "Carol": "South"}


@pytest.mark.parametrize("size", [(1920, 1080), (1280, 720)], ids=["tv", "small"])
@pytest.mark.parametrize("show", ["", "&show=pace"], ids=["plain", "pace"])
async def test_wallboard_column_headers_are_not_cut(
    site: Site, size: tuple[int, int], show: str
) -> None:
    url, db, _ = site
    await book(db, canonical("call.placed", actor="u-1"))
    async with chromium_page(*size) as page:
        await page.goto(f"{url}{BOARD}{show}")
        await page.locator(ROWS).first.wait_for(timeout=10_000)
        heads = await page.eval_on_selector_all(
            "#board thead th",
            "cells => cells.map(c => [c.textContent, c.scrollWidth, c.clientWidth])",
        )
        move = page.locator("#move-head")
        assert await move.inner_text() == "±"
        assert await move.get_attribute("title") == "Movement"
        assert await move.get_attribute("aria-label") == "Movement"
        shot = f"wallboard-{size[0]}x{size[1]}{'-pace' if show else ''}.png"
        await page.screenshot(path=str(ARTIFACTS / shot))
    assert [text for text, *_ in heads] == ["Rank", "±", "Rep", "Team"] + (
        ["Pace"] if show else []
    ) + ["Calls"]
    cut = [text for text, scroll, client in heads if scroll > client]
    assert cut == [], f"headers cut at {size}: {cut}"


async def _alice_with_a_target(url: str, db: AsyncEngine) -> dict[str, dict[str, Any]]:
    """Alice: a daily target of 20 calls and 5 calls; Bob: 1 call; nobody else has a target.
    Answers the board's rows by name, as the API gives them."""
    async with httpx.AsyncClient(base_url=url) as client:
        put = await client.put(
            "/v1/targets/rep/alice/calls_total/day", json={"value": 20}, headers=ADMIN
        )
        assert put.status_code == 200, put.text
    await book(
        db,
        *(canonical("call.placed", actor="u-1") for _ in range(5)),
        canonical("call.placed", actor="u-2"),
    )
    return {str(r["name"]): r for r in await _board_rows(url)}


async def _pace_bars(page: Page) -> dict[str, dict[str, Any] | None]:
    """Rep name -> its pace bar (state, fill width in %, whether it has a mark), or None."""
    await page.locator(ROWS).first.wait_for(timeout=10_000)
    bars: dict[str, dict[str, Any] | None] = dict(
        await page.eval_on_selector_all(
            ROWS,
            """rows => rows.map(r => {
                const bar = r.querySelector('td.pace .pace-bar');
                return [r.querySelector('td.name').textContent, bar && {
                    state: ['ahead', 'behind', 'unknown'].find(c => bar.classList.contains(c)),
                    width: Math.round(parseFloat(bar.querySelector('.fill').style.width) * 10) / 10,
                    marked: bar.querySelector('.mark') !== null}];
            })""",
        )
    )
    return bars


def _bar_for(row: dict[str, Any]) -> dict[str, Any] | None:
    """The bar a row's JSON calls for: none without `pace` (no target)."""
    pace = row.get("pace")
    if not pace:
        return None
    state = "unknown" if pace["pace"] is None else "ahead" if pace["pace"] >= 1 else "behind"
    width = round(min(1.0, max(0.0, (row["value"] or 0) / pace["target"])) * 100, 1)
    return {"state": state, "width": width, "marked": pace["expected"] is not None}


async def test_wallboard_pace_bars_follow_the_rows_pace(site: Site) -> None:
    """With ``?show=pace`` every row has a pace cell; a bar exactly where the row's JSON has
    `pace` (value against target, a mark at `expected`, colored by pace), none where it is
    null or absent."""
    url, db, _ = site
    rows = await _alice_with_a_target(url, db)
    pace = rows["Alice"].get("pace")
    assert isinstance(pace, dict), f"leaderboard rows carry no pace yet: {rows['Alice']}"
    assert rows["Bob"].get("pace") is None
    async with chromium_page() as page:
        await page.goto(f"{url}{BOARD}&show=pace")
        bars = await _pace_bars(page)
        await page.screenshot(path=str(ARTIFACTS / "wallboard-pace.png"))
    assert bars == {name: _bar_for(row) for name, row in rows.items()}
    alice = bars["Alice"]
    assert alice is not None
    assert alice["width"] == 25  # 5 calls of 20
    assert alice["state"] == ("ahead" if pace["pace"] >= 1 else "behind")
    assert alice["marked"]
    assert (bars["Bob"], bars["Carol"]) == (None, None)  # no target, no bar


async def test_wallboard_without_show_pace_has_no_pace_column(site: Site) -> None:
    url, db, _ = site
    await book(db, canonical("call.placed", actor="u-1"))
    async with chromium_page() as page:
        await page.goto(f"{url}{BOARD}")
        await page.locator(ROWS).first.wait_for(timeout=10_000)
        assert await page.locator("#board .pace-col, #board td.pace").count() == 0
