"""What the console's browser tests share: signing in through the form, every page of the
console, and a page's horizontal overflow."""

from __future__ import annotations

from playwright.async_api import Page

PAGES = {  # a name for the screenshot -> the page
    "overview": "/console",
    "reps": "/console/reps",
    "rep": "/console/reps/alice",
    "rep-new": "/console/reps/new",
    "roster-import": "/console/roster/import",
    "unassigned": "/console/unassigned",
    "targets": "/console/targets?metric=revenue&metric=calls_total",
    "target-history": "/console/targets/history?scope=rep&id=alice&metric=revenue&period=month",
    "targets-import": "/console/targets/import",
    "contests": "/console/contests",
    "contest": "/console/contests/blitz",
    "contest-new": "/console/contests/new",
    "alerts": "/console/alerts",
    "activity": "/console/activity?scope=rep&id=carol&metric=calls_total&window=today",
    "corrections": "/console/corrections",
    "connections": "/console/connections",
    "wallboards": "/console/wallboards",
    "settings": "/console/settings",
}


async def sign_in(page: Page, url: str, key: str, then: str = "/console") -> None:
    """Sign in through the form, as a person does."""
    await page.goto(f"{url}/console/sign-in?next={then}")
    await page.fill("#f-key", key)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{url}{then}*")


async def overflow(page: Page) -> int:
    """How many pixels the page is wider than the window (0: no horizontal scroll)."""
    found: int = await page.evaluate("document.scrollingElement.scrollWidth - window.innerWidth")
    return found
