"""The wallboard on a real floor, in a real headless Chromium: 40 reps and 200 reps in three
teams with 30 wins of the day, on a 1280x720, a 1920x1080 and a 3840x2160 TV and a portrait
1080x1920 screen. Whatever the size: nothing overflows, no row is cut, the pages reach every
rep; French and English are complete, with their own formats; both themes meet WCAG AA.

Screenshots of every size go to ``artifacts/`` (two of them are in the README, from ``docs/``).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from playwright.async_api import Page

from services.api.app import create_app
from shared.db.engine import create_engine
from shared.db.migrate import migrate
from shared.settings import Settings
from tests.api_support import served
from tests.conftest import ADMIN_KEY, IN_CI, READ_KEY
from tests.e2e.conftest import ARTIFACTS, HAVE_CHROMIUM, chromium_page, put_contest
from tests.e2e.floor import seed

SIZES = {"720p": (1280, 720), "1080p": (1920, 1080), "4k": (3840, 2160), "portrait": (1080, 1920)}
FLOORS = (40, 200)
NNBSP, NBSP = "\u202f", "\xa0"
Floor = tuple[str, dict[str, Any]]  # the site's URL, what was booked
# One floor (its server and its database) serves every test of the module: one event loop.
pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(
    scope="module", loop_scope="module", params=FLOORS, ids=[f"{n}-reps" for n in FLOORS]
)
async def floor(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Floor]:
    """The API on a SQLite file holding a floor of 40 or 200 reps and a day of activity."""
    if not HAVE_CHROMIUM:
        if IN_CI:
            pytest.fail("Chromium missing: .ci/run installs Debian's chromium")
        pytest.skip("Chromium not installed (apt-get install chromium)")
    reps = request.param
    path = tmp_path_factory.mktemp("floor") / "floor.db"
    db = create_engine(f"sqlite:///{path}")
    await migrate(db)
    settings = Settings(
        database_url=f"sqlite:///{path}", api_keys=f"{ADMIN_KEY}:read+admin,{READ_KEY}:read"
    )
    async with served(create_app(settings, db)) as url:
        booked = await seed(url, db, reps, wins=30)
        yield url, booked
    await db.dispose()


async def _open(page: Page, url: str, query: str, ready: str = "#rows tr") -> None:
    await page.goto(f"{url}/wallboard?key={READ_KEY}{query}")
    await page.locator(ready).first.wait_for(timeout=15_000)
    await page.wait_for_function("document.querySelector('#ticker').dataset.state === 'wins'")
    await page.wait_for_timeout(300)  # the teams panel and the ticker laid out


FITS = """() => {
    // What would be wrong on this screen: overflow of the page, a shown row outside the
    // viewport or its box. Rows inside a hidden view do not count.
    const problems = [];
    const root = document.documentElement;
    if (root.scrollWidth > innerWidth) problems.push(`page ${root.scrollWidth}px wide`);
    if (root.scrollHeight > innerHeight) problems.push(`page ${root.scrollHeight}px tall`);
    const inside = (el, box) => {
        const r = el.getBoundingClientRect(), b = box.getBoundingClientRect();
        return r.top >= b.top - 0.5 && r.bottom <= b.bottom + 0.5
            && r.left >= b.left - 0.5 && r.right <= b.right + 0.5;
    };
    const view = {top: 0, left: 0, bottom: innerHeight, right: innerWidth};
    const screen = {getBoundingClientRect: () => view};
    for (const [rows, box] of [['#rows tr', '#board-box'], ['#rest .entry', '#rest'],
                               ['#teams li', '#teams'], ['#podium .step', '#standings']]) {
        const holder = document.querySelector(box);
        if (!holder || holder.closest('[hidden]')) continue;
        for (const row of document.querySelectorAll(rows)) {
            if (!inside(row, screen)) problems.push(`${rows} ${row.dataset.id} off screen`);
            else if (!inside(row, holder)) problems.push(`${rows} ${row.dataset.id} cut`);
        }
    }
    return problems;
}"""


async def _every_page(page: Page, rows: str) -> list[str]:
    """Go through every page (as the rotation does); the ids shown, checking each page fits."""
    seen: list[str] = []
    pages = await page.evaluate("wallboard.pages")
    for n in range(pages):
        await page.evaluate(f"wallboard.show({n})")
        assert await page.evaluate(FITS) == [], f"page {n + 1} of {pages}"
        seen += await page.eval_on_selector_all(rows, "rows => rows.map(r => r.dataset.id)")
        if pages > 1:
            indicator = await page.locator("#page").inner_text()
            assert re.fullmatch(rf"Page {n + 1} (sur|of) {pages}", indicator), indicator
    return seen


@pytest.mark.parametrize("size", list(SIZES))
async def test_the_board_fits_any_screen_and_its_pages_reach_every_rep(
    floor: Floor, size: str
) -> None:
    url, booked = floor
    reps = len(booked["reps"])
    async with chromium_page(*SIZES[size]) as page:
        await _open(page, url, "&metrics=calls_total&windows=today")
        await page.screenshot(path=str(ARTIFACTS / f"wallboard-{reps}-reps-{size}.png"))
        rows_per_page = await page.evaluate("document.querySelectorAll('#rows tr').length")
        seen = await _every_page(page, "#rows tr")
    assert sorted(seen) == sorted(booked["reps"]), "every rep, once"
    assert rows_per_page >= 8, "a page holds a useful number of rows"


@pytest.mark.parametrize("size", list(SIZES))
async def test_a_contest_of_the_whole_floor_fits_and_pages_below_its_podium(
    floor: Floor, size: str
) -> None:
    url, booked = floor
    reps = len(booked["reps"])
    await put_contest(url, "floor", name="Blitz de décembre", goal=30)
    async with chromium_page(*SIZES[size]) as page:
        await _open(page, url, "&contest=floor&lang=fr", ready="#podium .step")
        await page.screenshot(path=str(ARTIFACTS / f"wallboard-contest-{reps}-reps-{size}.png"))
        below = await _every_page(page, "#rest .entry")
        podium = await page.eval_on_selector_all(
            "#podium .entry", "entries => entries.map(e => e.dataset.id)"
        )
    async with httpx.AsyncClient(base_url=url) as client:
        standings = await client.get("/v1/contests/floor", params={"key": READ_KEY, "limit": 1000})
    everyone = [r["rep_id"] for r in standings.json()["rows"]]
    assert sorted(podium + below) == sorted(everyone)


@pytest.mark.parametrize(
    ("lang", "expected"),
    [
        (
            "fr",
            {
                "title": "Chiffre d'affaires · aujourd'hui",
                "heads": ["Rang", "±", "Commercial", "Équipe", "Chiffre d'affaires"],
                "teams": "Équipes\nChiffre d'affaires · ce mois-ci",
                "money": rf"\d{{1,3}}({NNBSP}\d{{3}})*{NBSP}€",
                "page": r"Page 1 sur \d+",
                "status": {"en direct", r"données de \d\d:\d\d"},
            },
        ),
        (
            "en",
            {
                "title": "Revenue · today",
                "heads": ["Rank", "±", "Rep", "Team", "Revenue"],
                "teams": "Teams\nRevenue · this month",
                "money": r"€\d{1,3}(,\d{3})*",
                "page": r"Page 1 of \d+",
                "status": {"live", r"as of \d\d:\d\d"},
            },
        ),
    ],
)
async def test_french_and_english_are_complete_with_their_own_formats(
    floor: Floor, lang: str, expected: dict[str, Any]
) -> None:
    url, booked = floor
    async with chromium_page(1920, 1080) as page:
        await _open(page, url, f"&metrics=revenue&windows=today&lang={lang}")
        assert await page.evaluate("document.documentElement.lang") == lang
        assert await page.locator("#title").inner_text() == expected["title"]
        heads = await page.eval_on_selector_all("#board thead th", "h => h.map(c => c.textContent)")
        assert heads == expected["heads"]
        assert await page.locator("#teams-head").inner_text() == expected["teams"]
        values = await page.eval_on_selector_all("#rows td.num", "c => c.map(x => x.textContent)")
        ticker = await page.eval_on_selector_all(
            "#ticker .win:not([aria-hidden])", "w => w.map(x => x.textContent)"
        )
        clock = await page.locator("#clock").inner_text()
        status = await page.locator("#status").inner_text()
        indicator = await page.locator("#page").inner_text()
        await page.screenshot(path=str(ARTIFACTS / f"wallboard-{lang}-revenue.png"))
    money = expected["money"]
    assert all(re.fullmatch(money, v) for v in values if v != "\u2013"), values  # or a dash
    if lang == "fr":
        assert f"540{NNBSP}200{NBSP}€" in " ".join(ticker)
    else:
        assert "€540,200" in " ".join(ticker)
    assert all(re.fullmatch(rf"\d\d:\d\d★ .+ · {money}", w) for w in ticker), ticker
    assert len(ticker) == 30
    assert re.fullmatch(r"\d\d:\d\d", clock), clock  # 24-hour, both languages
    assert any(re.fullmatch(s, status) for s in expected["status"]), status
    if len(booked["reps"]) > 20:
        assert re.fullmatch(expected["page"], indicator), indicator


async def test_the_board_pages_by_itself_at_the_rotation_speed(floor: Floor) -> None:
    url, _ = floor
    async with chromium_page(1920, 1080) as page:
        await _open(page, url, "&metrics=calls_total&windows=today&rotate=5&lang=en")
        assert await page.evaluate("wallboard.pages") > 1
        assert await page.locator("#page").inner_text() == (
            f"Page 1 of {await page.evaluate('wallboard.pages')}"
        )
        first = await page.eval_on_selector_all("#rows tr", "r => r.map(x => x.dataset.id)")
        await page.wait_for_function("wallboard.page === 1", timeout=8_000)
        second = await page.eval_on_selector_all("#rows tr", "r => r.map(x => x.dataset.id)")
        assert (await page.locator("#page").inner_text()).startswith("Page 2 of ")
    assert not set(first) & set(second)


async def test_a_top_n_board_shows_only_its_top_rows(floor: Floor) -> None:
    url, _ = floor
    async with chromium_page(1280, 720) as page:
        await _open(page, url, "&metrics=calls_total&windows=today&limit=5")
        shown = await _every_page(page, "#rows tr")
        ranks = await page.eval_on_selector_all("#rows td.rank", "c => c.map(x => x.textContent)")
    assert len(shown) == 5
    numbers = [int(r) for r in ranks]
    assert numbers == sorted(numbers)
    assert numbers[0] == 1


@pytest.mark.parametrize("theme", ["dark", "light"])
async def test_both_themes_meet_wcag_aa_contrast(floor: Floor, theme: str) -> None:
    """Every colour text is drawn in, on the background and the panels: at least 4.5:1."""
    url, _ = floor
    async with chromium_page(1280, 720) as page:
        await _open(page, url, f"&metrics=calls_total&theme={theme}")
        ratios: dict[str, float] = await page.evaluate(
            """() => {
            const style = getComputedStyle(document.documentElement);
            const rgb = (name) => {
                const probe = document.createElement('i');
                probe.style.color = style.getPropertyValue(name);
                document.body.appendChild(probe);
                const [r, g, b] = getComputedStyle(probe).color.match(/\\d+/g).map(Number);
                probe.remove();
                return [r, g, b];
            };
            const lum = ([r, g, b]) => [r, g, b].map((c) => {
                c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
            }).reduce((s, c, i) => s + c * [0.2126, 0.7152, 0.0722][i], 0);
            const ratio = (a, b) => {
                const [x, y] = [lum(rgb(a)), lum(rgb(b))].sort((p, q) => q - p);
                return (x + 0.05) / (y + 0.05);
            };
            const found = {};
            for (const fg of ['--text', '--muted', '--up', '--down', '--accent', '--new']) {
                for (const bg of ['--bg', '--panel']) found[`${fg} on ${bg}`] = ratio(fg, bg);
            }
            return found;
        }"""
        )
        await page.screenshot(path=str(ARTIFACTS / f"wallboard-theme-{theme}.png"))
    weak = {pair: round(r, 2) for pair, r in ratios.items() if r < 4.5}
    assert weak == {}, weak


async def test_a_board_for_one_team_names_it_and_shows_only_its_reps(floor: Floor) -> None:
    url, _ = floor
    async with chromium_page(1920, 1080) as page:
        await _open(page, url, "&metrics=calls_total&team=ouest&lang=en")
        await page.wait_for_function("document.querySelector('#title').textContent.includes('·')")
        await page.wait_for_timeout(500)  # the teams panel names the team
        title = await page.locator("#title").inner_text()
        teams = set()
        for n in range(await page.evaluate("wallboard.pages")):
            await page.evaluate(f"wallboard.show({n})")
            teams |= set(
                await page.eval_on_selector_all("#rows td.team", "c => c.map(x => x.textContent)")
            )
    assert title == "Calls · today · Grand Ouest"
    assert teams == {"Grand Ouest"}
