"""``/docs`` and ``/redoc`` in a real headless Chromium with the network cut off but for the
API's own origin: every request to another host is aborted, and none is even attempted.
Swagger UI is authorized with a read key through its "Authorize" dialog and runs
``GET /v1/metrics`` with "Try it out": the request carries the key, the page shows the 200 and
the catalogue. ReDoc draws its menu and the API's title."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

from playwright.async_api import ConsoleMessage, Page, Request, Route

from tests.conftest import READ_KEY
from tests.e2e.conftest import ARTIFACTS, Site, chromium_page

METRICS_OPERATION = "#operations-kpis-metric_catalogue_v1_metrics_get"


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class Offline:
    """What the page asked for: ``ours`` went through, ``elsewhere`` was aborted; and what its
    Content-Security-Policy ``refused`` (a refused load never reaches the network)."""

    def __init__(self, own: str) -> None:
        self.own, self.ours, self.elsewhere = own, list[Request](), list[str]()
        self.refused = list[str]()

    def heard(self, message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            self.refused.append(message.text)

    def refused_only_elsewhere(self) -> bool:
        """Whether each refusal was of another origin's URL (never one of ours, an inline
        script or an eval: the policy does not get in the docs' way)."""
        urls = [re.search(r"'(https?://[^']+)'", text) for text in self.refused]
        return all(url is not None and origin(url.group(1)) != self.own for url in urls)

    async def handle(self, route: Route) -> None:
        if origin(route.request.url) == self.own:
            self.ours.append(route.request)
            await route.continue_()
        else:
            self.elsewhere.append(route.request.url)
            await route.abort("internetdisconnected")


@asynccontextmanager
async def offline_page(url: str) -> AsyncIterator[tuple[Page, Offline]]:
    """A page whose every request (documents, scripts, styles, fonts, images, fetches,
    workers) leaves only for ``url``'s origin."""
    network = Offline(origin(url))
    async with chromium_page(1280, 1000) as page:
        await page.context.route("**/*", network.handle)
        page.on("console", network.heard)
        yield page, network


async def test_swagger_ui_authorizes_with_a_key_and_runs_a_call_offline(site: Site) -> None:
    url, _, _ = site
    async with offline_page(url) as (page, network):
        await page.goto(f"{url}/docs")
        await page.locator(".swagger-ui .info .title").filter(has_text="SalesPulse API").wait_for()

        await page.locator(".scheme-container button.authorize").click()
        dialog = page.locator(".modal-ux")
        await dialog.locator("input[aria-label='auth-bearer-value']").fill(READ_KEY)
        await dialog.locator("button.modal-btn.auth.authorize").first.click()
        await dialog.get_by_role("button", name="Remove authorization").wait_for()  # "Logout"
        await page.screenshot(path=str(ARTIFACTS / "api-docs-authorize.png"))
        await dialog.locator("button.btn-done").first.click()

        operation = page.locator(METRICS_OPERATION)
        await operation.locator(".opblock-summary").click()
        await operation.locator("button.try-out__btn").click()
        await operation.locator("button.execute").click()
        status = operation.locator(".live-responses-table .response-col_status")
        await status.filter(has_text="200").wait_for()
        answer = operation.locator(".live-responses-table")
        assert "calls_total" in await answer.inner_text()
        await answer.scroll_into_view_if_needed()
        await page.screenshot(path=str(ARTIFACTS / "api-docs-swagger.png"))

        call = [r for r in network.ours if urlsplit(r.url).path == "/v1/metrics"]
        assert len(call) == 1
        assert await call[0].header_value("authorization") == f"Bearer {READ_KEY}"
        assert any(urlsplit(r.url).path.endswith("swagger-ui-bundle.js") for r in network.ours)
    assert network.elsewhere == []  # nothing was even attempted elsewhere
    assert network.refused == []


async def test_redoc_renders_offline(site: Site) -> None:
    url, _, _ = site
    async with offline_page(url) as (page, network):
        await page.goto(f"{url}/redoc")
        await page.locator(".menu-content").get_by_text("leaderboards").first.wait_for()
        await page.locator("h1").filter(has_text="SalesPulse API").wait_for()
        await page.screenshot(path=str(ARTIFACTS / "api-docs-redoc.png"))
        assert any(urlsplit(r.url).path == "/openapi.json" for r in network.ours)
    assert network.elsewhere == []
    # ReDoc's script names its logo on cdn.redoc.ly: the page's policy refuses it unrequested
    assert network.refused_only_elsewhere(), network.refused
