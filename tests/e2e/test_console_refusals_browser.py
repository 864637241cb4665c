"""What the console refuses, in Chromium against the API served over HTTP: a wrong key; a form
posted from another page without the session's CSRF token; anything written with a read key,
even a form posted directly; and a session past its expiry, which sends back to sign-in and
then to the page asked for."""

from __future__ import annotations

import time

import httpx
import pytest

from services.api.console.session import COOKIE, Session, Signer, secret_of
from shared.settings import KeyScope, Settings
from tests.api_support import ADMIN
from tests.conftest import ADMIN_KEY, READ_KEY
from tests.e2e.conftest import Site, chromium_page
from tests.e2e.console_support import sign_in

pytestmark = pytest.mark.e2e
FORGED = """async (action) => {
  const body = new URLSearchParams({id: "forged", name: "Forged"});
  const answer = await fetch(action, {method: "POST", body, credentials: "include"});
  return answer.status;
}"""


async def team_names(url: str) -> list[str]:
    async with httpx.AsyncClient(base_url=url, headers=ADMIN) as client:
        return [t["name"] for t in (await client.get("/v1/teams")).json()["items"]]


async def test_the_console_refuses_what_it_must(site: Site, make_settings: type[Settings]) -> None:
    url, _, _ = site
    async with chromium_page(1280, 800) as page:
        # a wrong key
        await page.goto(f"{url}/console/reps")
        assert "/console/sign-in?next=%2Fconsole%2Freps" in page.url
        await page.fill("#f-key", "not-a-key")
        await page.click("button[type=submit]")
        assert await page.locator("[role=alert]").inner_text() == "Clé inconnue."
        assert await page.locator("#f-key").get_attribute("aria-invalid") == "true"

        # a form without the session's CSRF token (forged: no token) is refused, a real one not
        await sign_in(page, url, ADMIN_KEY, "/console/reps")
        assert await page.evaluate(FORGED, f"{url}/console/teams") == 403
        await page.fill("#f-id", "west")
        await page.fill("#f-name", "West")
        await page.click("form[action='/console/teams'] button")
        assert await page.locator(".flash").inner_text() == "Équipe enregistrée."
        assert await team_names(url) == ["North", "South", "West"]

        # the session cookie: HttpOnly, SameSite=Strict, the key's name only
        cookie = next(c for c in await page.context.cookies() if c["name"] == COOKIE)
        assert cookie["httpOnly"] is True
        assert cookie["sameSite"] == "Strict"
        assert ADMIN_KEY not in cookie["value"]

        # signing out ends the session
        await page.click("text=Se déconnecter")
        assert await page.locator(".flash").inner_text() == "Vous êtes déconnecté."
        await page.goto(f"{url}/console/reps")
        assert "/console/sign-in" in page.url

    async with chromium_page(1280, 800) as page:
        # a read key sees everything, has no button that writes, and cannot post directly
        await sign_in(page, url, READ_KEY, "/console/reps")
        assert await page.locator(".badge").inner_text() == "lecture seule"
        assert await page.locator("form[action='/console/teams']").count() == 0
        await page.goto(f"{url}/console/reps/alice")
        assert await page.locator("main form[method=post] button.primary").count() == 0
        token = await page.locator("input[name=csrf]").first.get_attribute("value")
        direct = await page.evaluate(
            """async ([action, csrf]) => (await fetch(action, {method: "POST", credentials:
              "include", body: new URLSearchParams({csrf, id: "east", name: "East"})})).status""",
            [f"{url}/console/teams", token],
        )
        assert direct == 403
        assert await team_names(url) == ["North", "South", "West"]

    async with chromium_page(1280, 800) as page:
        # a session past its expiry: back to sign-in, then to the page asked for
        settings = make_settings()
        expired = Session(
            "admin", frozenset({KeyScope.read, KeyScope.admin}), "t", int(time.time()) - 5
        )
        value = Signer(secret_of(settings)).dumps(expired)
        await page.context.add_cookies(
            [{"name": COOKIE, "value": value, "domain": "127.0.0.1", "path": "/console"}]
        )
        await page.goto(f"{url}/console/targets")
        assert page.url.startswith(f"{url}/console/sign-in?next=%2Fconsole%2Ftargets")
        await page.fill("#f-key", ADMIN_KEY)
        await page.click("button[type=submit]")
        await page.wait_for_url(f"{url}/console/targets")
