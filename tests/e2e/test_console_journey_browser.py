"""The whole onboarding of a 40-rep floor in the console, in Chromium, against ``salespulse
serve`` (one process: ingest, the KPI consumer, the API and the worker on one SQLite file and
its log bus), as the sales-ops manager does it, in French:

1. sign in with the admin key;
2. import the roster from a CSV saved by French Excel (``;``, Windows-1252), see the preview,
   apply it;
3. set next month's revenue targets in the grid;
4. create a week-long points contest and open it on the TV;
5. create a ``deal_won`` alert to a local receiver, send a test, and see it delivered;
6. give an unassigned identity to a rep;
7. drill into a rep's calls, exclude one with a reason, and see the number drop;
8. build a wallboard URL.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import orjson
import pytest
from fastapi import FastAPI, Request, Response
from playwright.async_api import Page

from services.simulator import signed_headers
from tests.api_support import ADMIN, served
from tests.conftest import ADMIN_KEY, READ_KEY, WEBHOOK_SECRET, canonical
from tests.e2e.conftest import ARTIFACTS, HAVE_CHROMIUM, chromium_page
from tests.e2e.console_support import sign_in
from tests.reliability.test_serve_crashes import Serve

pytestmark = pytest.mark.e2e
TEAMS = ("paris", "lyon", "lille", "nantes")
TZ = ZoneInfo("Europe/Paris")


@dataclass
class Receiver:
    """A webhook receiver standing in for the customer's: records each POST, answers 204."""

    hits: list[dict[str, object]] = field(default_factory=list)

    def app(self) -> FastAPI:
        app = FastAPI()
        app.add_api_route("/healthz", lambda: {"ok": True}, methods=["GET"])
        app.add_api_route("/hook", self._receive, methods=["POST"])
        return app

    async def _receive(self, request: Request) -> Response:
        self.hits.append(
            {"headers": dict(request.headers), "body": orjson.loads(await request.body())}
        )
        return Response(status_code=204)


def french_excel_roster() -> bytes:
    """40 reps in 4 teams, one Aircall identity each, as French Excel saves a CSV."""
    lines = ["rep_id;name;team_id;provider;external_id;email"]
    for n in range(1, 41):
        team = TEAMS[(n - 1) % 4]
        lines.append(
            f"r{n:02d};Chloé Élodie {n:02d};{team};aircall;{10000 + n};r{n:02d}@exemple.fr"
        )
    return ("\r\n".join(lines) + "\r\n").encode("cp1252")


def next_month() -> str:
    today = datetime.now(TZ).date().replace(day=1)
    return (today + timedelta(days=32)).replace(day=1).strftime("%Y-%m")


async def until(check: Callable[[], Awaitable[bool]], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not await check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.3)


async def reloaded_until(page: Page, selector: str, text: str, seconds: float = 30) -> None:
    """Reload ``page`` until ``selector`` shows ``text`` (the KPI service works in the
    background)."""

    async def shows() -> bool:
        await page.wait_for_load_state()  # a navigation under way is not reloaded mid-way
        await page.reload()
        found = page.locator(selector)
        return await found.count() > 0 and (await found.first.inner_text()).strip() == text

    await until(shows, seconds)


async def post_events(serve: Serve, *bodies: dict[str, object]) -> None:
    raw = orjson.dumps(list(bodies))
    async with httpx.AsyncClient() as client:
        answer = await client.post(
            f"{serve.ingest}/webhooks/events",
            content=raw,
            headers=signed_headers(WEBHOOK_SECRET, raw),
        )
        assert answer.status_code == 202, answer.text


async def test_onboarding_a_40_rep_floor_in_the_console(tmp_path: Path) -> None:
    if not HAVE_CHROMIUM:
        pytest.skip("Chromium not installed")
    serve = Serve(f"sqlite:///{tmp_path / 'floor.db'}", tmp_path / "serve.log")
    serve.env.update(
        {"SALESPULSE_ALLOW_PRIVATE_CHANNELS": "1", "SALESPULSE_DISPATCH_POLL_SECONDS": "0.2"}
    )
    serve.start()
    receiver = Receiver()
    api = f"http://127.0.0.1:{serve.api_port}"
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            await serve.until_ready(client)
        async with served(receiver.app()) as hook_url, chromium_page(1440, 900) as page:
            # 1. sign in
            await sign_in(page, api, ADMIN_KEY)
            assert await page.locator("h1").inner_text() == "Vue d'ensemble"

            # 2. the roster from French Excel: preview, then apply
            csv_file = tmp_path / "equipe.csv"
            csv_file.write_bytes(french_excel_roster())
            await page.goto(f"{api}/console/roster/import")
            await page.set_input_files("#f-file", str(csv_file))
            await page.click("form[enctype] button[type=submit]")
            counts = await page.locator("#import-counts").inner_text()
            assert "Équipes : 4 créée(s)" in counts
            assert "Commerciaux : 40 créé(s)" in counts
            assert await page.locator("text=nouveau").count() == 40
            await page.screenshot(path=str(ARTIFACTS / "console-journey-import-preview.png"))
            await page.click("text=Appliquer l'import")
            await page.wait_for_url("**/console/reps?done=imported")
            assert "40 commercial(aux)" in await page.locator("#reps-table caption").inner_text()
            assert "Chloé Élodie 07" in await page.locator("#reps-table").inner_text()

            # 3. next month's revenue targets, typed into the grid
            month = next_month()
            await page.goto(
                f"{api}/console/targets?scope=reps&metric=revenue&period=month&starting={month}"
            )
            cells = page.locator("input[name^='cell.'][name$='.revenue']")
            assert await cells.count() == 40
            for n in range(40):
                await cells.nth(n).fill(str(30000 + 500 * n))
            assert "40 case(s)" in await page.locator("#changed-count").inner_text()  # our script
            await page.click("#targets-grid button[type=submit]")
            assert await page.locator(".flash").inner_text() == "Objectifs enregistrés."
            async with httpx.AsyncClient(base_url=api, headers=ADMIN) as client:
                listed = (
                    await client.get("/v1/targets", params={"metric": "revenue", "limit": 100})
                ).json()
            assert len(listed["items"]) == 40
            assert {i["history"][-1]["starting"] for i in listed["items"]} == {month}
            assert (
                next(i for i in listed["items"] if i["id"] == "r03")["history"][-1]["value"]
                == 31000
            )

            # 4. a week-long points contest, opened on the TV
            await page.goto(f"{api}/console/contests/new")
            await page.fill("#f-id", "semaine")
            await page.fill("#f-name", "Semaine des points")
            await page.check("input[name=score_kind][value=points]")
            await page.fill("#f-points", "deals_won=10\nmeetings_booked=3\ncalls_total=1")
            await page.click("main form[method=post] button.primary")
            await page.wait_for_url("**/console/contests/semaine?done=contest_saved")
            starts = datetime.fromisoformat(await page.input_value("#f-starts_at"))
            ends = datetime.fromisoformat(await page.input_value("#f-ends_at"))
            assert ends - starts == timedelta(days=7)
            await page.fill("#tv-key", READ_KEY)
            async with page.expect_popup() as popup:
                await page.click("#open-tv")
            tv = await popup.value
            assert "/wallboard?contest=semaine" in tv.url
            await tv.wait_for_function(
                "document.body.innerText.includes('Semaine des points')", timeout=15_000
            )
            await tv.screenshot(path=str(ARTIFACTS / "console-journey-tv.png"))
            await tv.close()

            # 5. a deal_won alert to a local receiver; a test, delivered
            await page.goto(f"{api}/console/alerts")
            await page.fill("#f-channel_id", "crm")
            await page.fill("#ch-url", f"{hook_url}/hook")
            await page.click("#channel-form button[type=submit]")
            assert "whsec_" in await page.locator("#channel-secret").inner_text()
            await page.fill("#f-alert_id", "gagne")
            await page.fill("#al-name", "Affaire gagnée")
            await page.select_option("#al-trigger", "deal_won")
            assert await page.locator("#al-value").is_hidden()  # our script: deal_won has no value
            await page.check("#alert-form input[name=channels][value=crm]")
            await page.click("#alert-form button[type=submit]")
            assert await page.locator(".flash").inner_text() == "Alerte enregistrée."
            async with page.expect_navigation():  # the form posts, then redirects
                await page.click("form[action='/console/alerts/gagne/test'] button")
            await reloaded_until(
                page, "#deliveries-table tr[data-status] td:nth-child(5)", "remise"
            )
            hit = receiver.hits[-1]
            assert hit["body"]["type"] == "salespulse.alert.deal_won"  # type: ignore[index]
            assert hit["body"]["data"]["test"] is True  # type: ignore[index]
            assert "webhook-signature" in hit["headers"]  # type: ignore[operator]

            # 6. an identity nobody holds, given to a rep
            await post_events(
                serve,
                *(canonical("call.placed", provider="aircall", actor="99999") for _ in range(2)),
                *(canonical("call.placed", provider="aircall", actor="10001") for _ in range(3)),
            )
            await page.goto(f"{api}/console/unassigned")
            await reloaded_until(page, "tr[data-identity='aircall:99999'] td:nth-child(2)", "2")
            row = page.locator("tr[data-identity='aircall:99999']")
            await row.locator("select").select_option("r02")
            await row.locator("button").click()
            assert "Identité attribuée" in await page.locator(".flash").inner_text()
            async with httpx.AsyncClient(base_url=api, headers=ADMIN) as client:
                r02 = (await client.get("/v1/reps/r02")).json()
            assert {"provider": "aircall", "external_id": "99999"} in r02["identities"]

            # 7. a rep's calls: one excluded with a reason, the number drops
            await page.goto(
                f"{api}/console/activity?scope=rep&id=r01&metric=calls_total&window=today"
            )
            await reloaded_until(page, "#drill-value", "3")
            first = page.locator("#activity-table tbody tr").first
            await first.locator("summary").click()
            await first.locator("input[name=reason]").fill("appel de test du standard")
            await first.locator("button[type=submit]").click()
            assert "Correction enregistrée" in await page.locator(".flash").inner_text()
            await reloaded_until(page, "#drill-value", "2")
            await page.goto(f"{api}/console/corrections")
            audit = await page.locator("#corrections-table").inner_text()
            assert "appel de test du standard" in audit
            assert "key-" in audit  # who: the key's name, never the key

            # 8. a wallboard URL, previewed
            await page.goto(f"{api}/console/wallboards")
            await page.fill("#w-key", READ_KEY)
            await page.uncheck("input[name=metrics][value=deals_won]")
            await page.select_option("#w-team", "paris")
            await page.select_option("#w-theme", "light")
            url = await page.locator("#wall-url").inner_text()
            assert url.startswith(f"{api}/wallboard?key={READ_KEY}&metrics=calls_total,revenue")
            assert "team=paris" in url
            assert "theme=light" in url
            frame = page.frame_locator("#wall-preview")
            await frame.locator("body").wait_for(timeout=10_000)
            assert READ_KEY in (await page.locator("#wall-preview").get_attribute("src") or "")
            await page.screenshot(path=str(ARTIFACTS / "console-journey-wallboards.png"))
    finally:
        assert serve.stop() == 0
