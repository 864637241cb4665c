"""The activity behind a number, a deal's history and corrections, on a real SQLite database:
events booked by the KPI store, corrections sent through the database's bus and applied by the
real KPI consumer."""

from __future__ import annotations

import asyncio
import csv
import io
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import openpyxl
import pytest
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncEngine

from services.api.app import create_app
from services.kpi.app import build_kpi_service
from services.worker.resend import RESEND_AFTER_S, resend_pending
from shared.bus.log import LogBus
from shared.db.engine import create_engine
from shared.db.migrate import migrate
from shared.db.models import BusLogRecord
from shared.settings import Settings
from tests.api_support import ADMIN, READ, api_client, book, fields, floor
from tests.conftest import ADMIN_KEY, READ_KEY, canonical, fresh_postgres_database

NOW = datetime.now(UTC).replace(second=0, microsecond=0)
WINDOW = {
    "from": (NOW - timedelta(hours=6)).isoformat(),
    "to": (NOW + timedelta(minutes=1)).isoformat(),
}


def ago(minutes: int) -> datetime:
    return NOW - timedelta(minutes=minutes)


class Rig:
    def __init__(self, client: httpx.AsyncClient, db: AsyncEngine, bus: LogBus, settings: Settings):
        self.client, self.db, self.bus, self.settings = client, db, bus, settings

    async def apply(self) -> None:
        """What the KPI service does with the bus's corrections: read them to the end."""
        kpi = build_kpi_service(self.settings, self.bus, self.db)
        until = await self.bus.end_offsets(self.settings.activity_topic)
        await asyncio.wait_for(kpi.consumer.run(asyncio.Event(), until=until), 20)

    async def kpi(self, path: str, metric: str) -> Any:
        found = await self.client.get(
            f"{path}/kpis", params={**WINDOW, "metrics": metric}, headers=READ
        )
        assert found.status_code == 200, found.text
        return found.json()["metrics"][metric]

    async def drill(self, path: str, metric: str, **params: Any) -> httpx.Response:
        return await self.client.get(
            f"{path}/activity", params={**WINDOW, "metric": metric, **params}, headers=READ
        )

    async def items(self, path: str, metric: str, limit: int = 1000) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": limit}
            if cursor:
                params["cursor"] = cursor
            found = await self.drill(path, metric, **params)
            assert found.status_code == 200, found.text
            items += found.json()["items"]
            cursor = found.json()["next_cursor"]
            if cursor is None:
                return items


@pytest.fixture(params=["sqlite", "postgres"])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """The API's database: SQLite in a file, and a fresh PostgreSQL database."""
    async with AsyncExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite:///{tmp_path / 'api.db'}"
        else:
            admin = request.getfixturevalue("postgres_admin_url")
            url = await stack.enter_async_context(fresh_postgres_database(admin))
        engine = create_engine(url)
        stack.push_async_callback(engine.dispose)
        await migrate(engine)
        yield engine


@pytest.fixture
async def rig(make_settings: Callable[..., Settings], db: AsyncEngine) -> AsyncIterator[Rig]:
    settings = make_settings(api_keys=f"ops@{ADMIN_KEY}:read+admin,{READ_KEY}:read")
    bus = LogBus(db)
    await bus.start()
    try:
        async with api_client(create_app(settings, db, bus=bus)) as client:
            await floor(client)
            await book(
                db,
                canonical("call.placed", actor="u-1", time=ago(50)),
                canonical(
                    "call.placed", actor="u-1", time=ago(40), outcome="no_answer", talk_seconds=0
                ),
                canonical("call.received", actor="u-2", time=ago(30)),
                canonical("call.placed", actor="u-3", time=ago(20)),
                canonical("call.placed", actor="u-9", time=ago(15), event_id="evt-stranger"),
                canonical(
                    "deal.updated",
                    actor="u-1",
                    time=ago(60),
                    deal_id="D1",
                    status="open",
                    amount="100.00",
                ),
                canonical(
                    "deal.updated",
                    actor="u-1",
                    time=ago(45),
                    deal_id="D1",
                    status="won",
                    amount="100.00",
                ),
                canonical(
                    "deal.updated",
                    actor="u-2",
                    time=ago(25),
                    deal_id="D2",
                    status="lost",
                    amount="80.00",
                ),
            )
            # the amount edited in a later batch: its own signed item
            await book(db, canonical("deal.updated", actor="u-1", time=ago(35), deal_id="D1",
                                     status="won", amount="250.00"))  # fmt: skip
            yield Rig(client, db, bus, settings)
    finally:
        await bus.stop()


@pytest.mark.parametrize(
    "metric", ["calls_total", "calls_placed", "talk_seconds", "revenue", "deals_won"]
)
@pytest.mark.parametrize(
    "path", ["/v1/reps/alice", "/v1/reps/bob", "/v1/teams/north", "/v1/teams/south"]
)
async def test_contributions_add_up_to_the_kpi(rig: Rig, path: str, metric: str) -> None:
    items = await rig.items(path, metric, limit=2)
    value = await rig.kpi(path, metric)
    assert round(sum(i["contribution"] for i in items), 2) == value
    assert len({(i["event_id"], i["rep_id"]) for i in items}) == len(items)  # no duplicates


async def test_pages_cover_every_event_once(rig: Rig) -> None:
    whole = await rig.items("/v1/teams/north", "calls_total", limit=1000)
    paged = await rig.items("/v1/teams/north", "calls_total", limit=1)
    assert paged == whole
    assert len(whole) == 3
    assert [i["time"] for i in whole] == sorted((i["time"] for i in whole), reverse=True)


async def test_a_ratio_says_where_each_item_counts(rig: Rig) -> None:
    found = (await rig.drill("/v1/teams/north", "win_rate")).json()
    counts = {i["deal_id"]: i["counts_in"] for i in found["items"]}
    assert counts == {"D1": "both", "D2": "denominator"}
    assert found["value"] == 0.5
    assert (found["numerator"], found["denominator"]) == (1, 2)
    assert all(i["contribution"] is None for i in found["items"])


async def test_an_amount_edit_is_its_own_signed_item(rig: Rig) -> None:
    items = await rig.items("/v1/reps/alice", "revenue")
    assert sorted(i["contribution"] for i in items) == [100.0, 150.0]


async def test_csv_and_xlsx(rig: Rig) -> None:
    plain = await rig.drill("/v1/reps/alice", "calls_total", format="csv")
    rows = list(csv.DictReader(io.StringIO(plain.text)))
    assert plain.status_code == 200
    assert len(rows) == 2
    assert rows[0]["contribution"] == "1"
    french = await rig.drill("/v1/reps/alice", "revenue", dialect="excel-fr")
    assert french.text.startswith("\ufeff")
    assert ";" in french.text.splitlines()[0]
    assert "150,0" in french.text
    book_ = await rig.drill("/v1/reps/alice", "revenue", format="xlsx")
    sheet = openpyxl.load_workbook(io.BytesIO(book_.content)).active
    assert sheet is not None
    assert sheet.max_row == 3


async def test_a_deals_history(rig: Rig) -> None:
    found = await rig.client.get("/v1/deals/D1", headers=READ)
    assert found.status_code == 200, found.text
    deal = found.json()
    assert (deal["status"], deal["amount"], deal["state_from"]) == ("won", "250.00", "kpi_state")
    booked = [(c["what"], c["revenue"], c["rep_id"], c["team_id"]) for c in deal["changes"]]
    assert ("won", 100.0, "alice", "north") in booked
    assert ("amount_edit", 150.0, "alice", "north") in booked
    assert (await rig.client.get("/v1/deals/nope", headers=READ)).status_code == 404


async def test_a_correction_moves_the_number_and_its_undo_moves_it_back(rig: Rig) -> None:
    calls = await rig.items("/v1/reps/alice", "calls_total")
    event_id = calls[0]["event_id"]
    body = {"event_id": event_id, "action": "reassign", "rep_id": "carol", "reason": "wrong line"}
    made = await rig.client.post("/v1/corrections", json=body, headers=ADMIN)
    assert made.status_code == 201, made.text
    correction = made.json()
    assert (correction["made_by"], correction["status"]) == ("ops", "pending")
    await rig.apply()
    assert await rig.kpi("/v1/reps/alice", "calls_total") == 1
    assert await rig.kpi("/v1/teams/south", "calls_total") == 2
    carol = await rig.items("/v1/reps/carol", "calls_total")
    assert [i["corrected"] for i in carol if i["event_id"] == event_id] == [[correction["id"]]]
    assert round(sum(i["contribution"] for i in carol)) == 2
    again = await rig.client.post("/v1/corrections", json=body, headers=ADMIN)
    assert again.status_code == 409
    assert again.json()["errors"][0]["field"] == "body.event_id"
    undone = await rig.client.delete(f"/v1/corrections/{correction['id']}", headers=ADMIN)
    assert undone.json()["status"] == "undo_pending"
    await rig.apply()
    assert await rig.kpi("/v1/reps/alice", "calls_total") == 2
    listed = (await rig.client.get("/v1/corrections", headers=READ)).json()["items"]
    assert [(c["id"], c["status"], c["undone_by"]) for c in listed] == [
        (correction["id"], "undone", "ops")
    ]


async def test_an_unassigned_event_is_given_to_a_rep_by_a_correction(rig: Rig) -> None:
    listed = (await rig.client.get("/v1/unassigned", params=WINDOW, headers=READ)).json()["rows"]
    assert [(r["identity"], r["activity"]) for r in listed] == [
        ("crm:u-9", "/v1/unassigned/crm:u-9/activity")
    ]
    items = await rig.items("/v1/unassigned/crm:u-9", "calls_total")
    assert [i["event_id"] for i in items] == ["evt-stranger"]
    body = {"event_id": "evt-stranger", "action": "reassign", "rep_id": "bob", "reason": "Bob's"}
    assert (await rig.client.post("/v1/corrections", json=body, headers=ADMIN)).status_code == 201
    await rig.apply()
    assert await rig.kpi("/v1/reps/bob", "calls_total") == 2
    assert "evt-stranger" in [i["event_id"] for i in await rig.items("/v1/reps/bob", "calls_total")]


async def test_refusals_are_problems_naming_the_field(rig: Rig) -> None:
    post = rig.client.post
    base = {"action": "exclude", "reason": "test"}
    unknown = await post("/v1/corrections", json={**base, "event_id": "nope"}, headers=ADMIN)
    assert unknown.status_code == 404
    assert unknown.json()["errors"][0]["field"] == "body.event_id"
    no_rep = {"event_id": "evt-stranger", "action": "reassign", "rep_id": "zed", "reason": "x"}
    assert fields(await post("/v1/corrections", json=no_rep, headers=ADMIN)) == ["body.rep_id"]
    blank = {"event_id": "evt-stranger", "action": "exclude", "reason": "  "}
    assert fields(await post("/v1/corrections", json=blank, headers=ADMIN)) == ["body.reason"]
    read = await post("/v1/corrections", json={**base, "event_id": "evt-stranger"}, headers=READ)
    assert read.status_code == 403
    assert fields(await rig.drill("/v1/reps/alice", "calls_total", cursor="bad")) == [
        "query.cursor"
    ]
    assert (await rig.drill("/v1/reps/alice", "nope")).status_code == 404
    old = {"from": "2020-01-01T00:00:00Z", "to": "2020-01-02T00:00:00Z"}
    gone = await rig.client.get(
        "/v1/reps/alice/activity", params={**old, "metric": "calls_total"}, headers=READ
    )
    assert gone.status_code == 410
    assert gone.headers["content-type"] == "application/problem+json"


async def test_without_a_bus_a_correction_is_a_503(
    make_settings: Callable[..., Settings], db: AsyncEngine
) -> None:
    async with api_client(create_app(make_settings(), db)) as client:
        body = {"event_id": "e", "action": "exclude", "reason": "x"}
        found = await client.post("/v1/corrections", json=body, headers=ADMIN)
        assert found.status_code == 503
        assert "bus" in found.json()["detail"]


async def test_the_worker_sends_again_what_the_kpi_service_did_not_apply(rig: Rig) -> None:
    body = {"event_id": "evt-stranger", "action": "exclude", "reason": "a test call"}
    made = (await rig.client.post("/v1/corrections", json=body, headers=ADMIN)).json()
    async with rig.db.begin() as conn:  # as if the bus had lost it: nothing on the log
        await conn.execute(delete(BusLogRecord))
    later = int(time.time()) + RESEND_AFTER_S + 60
    assert await resend_pending(rig.db, rig.bus, rig.settings.activity_topic, later) == 1
    await rig.apply()
    listed = (await rig.client.get("/v1/corrections", headers=READ)).json()["items"]
    assert [(c["id"], c["status"]) for c in listed] == [(made["id"], "applied")]
    assert await resend_pending(rig.db, rig.bus, rig.settings.activity_topic, later) == 0
