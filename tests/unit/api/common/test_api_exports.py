"""Every GET that returns rows answers JSON, CSV (RFC 4180 and excel-fr) and xlsx: the same table
in each, typed in the workbook, each format with its own validators."""

from __future__ import annotations

import asyncio
import csv
import io
import threading
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services.api.app import create_app
from services.api.common.exports import RenderedFile
from services.api.common.params import request_now
from shared.settings import Settings
from tests.api_support import ADMIN, READ, api_client, book, floor, put_targets
from tests.conftest import canonical
from tests.export_support import (
    XLSX,
    Sheet,
    csv_table,
    excel_fr_table,
    french_number,
    iso_time,
    number,
    xlsx_sheet,
)
from tests.unit.api.alerts.test_alerts_api import notify
from tests.unit.api.contests.test_contests_api import contest

PARIS = ZoneInfo("Europe/Paris")  # the settings' default TIMEZONE
ROW_RETURNING_GETS = (
    "/v1/leaderboards/calls_total",
    "/v1/team-leaderboards/calls_total",
    "/v1/reps/alice/kpis",
    "/v1/teams/north/kpis",
    "/v1/reps/alice/timeseries/calls_total",
    "/v1/teams/north/timeseries/calls_total",
    "/v1/unassigned",
    "/v1/metrics",
    "/v1/contests/c1",
    "/v1/notifications",
    "/v1/wins",
    "/v1/reports/reps",
    "/v1/reports/teams",
    "/v1/teams",
    "/v1/reps",
    "/v1/targets",
)


@pytest.fixture
async def client(
    make_settings: Callable[..., Settings], db: AsyncEngine
) -> AsyncIterator[httpx.AsyncClient]:
    """The API with its clock stopped: the six formats of one read are fetched one after the
    other, and pace (a value over elapsed time) would differ between them in the last digits."""
    app = create_app(make_settings(), db)
    now = datetime.now(UTC).replace(microsecond=0)
    app.dependency_overrides[request_now] = lambda: now
    async with api_client(app) as stopped:
        yield stopped


async def busy_floor(client: httpx.AsyncClient, db: AsyncEngine) -> None:
    """Three reps with calls, a won deal with cents, a target, an unknown caller, a contest
    and a notification: a row for every export."""
    await floor(client)
    await put_targets(client, "reps", "revenue", "day", alice=2000)
    assert (await client.put("/v1/contests/c1", json=contest(), headers=ADMIN)).status_code == 200
    await book(
        db,
        canonical("call.placed", actor="u-1"),
        canonical("call.placed", actor="u-1"),
        canonical("call.missed", actor="u-2"),
        canonical("deal.updated", actor="u-1", deal_id="D-1", amount="1234.56"),
        canonical("call.placed", actor="x"),
    )
    await notify(db, "n1", datetime.now(UTC).replace(microsecond=0))


@pytest.mark.parametrize("path", ROW_RETURNING_GETS)
async def test_every_row_returning_get_answers_json_csv_and_xlsx(
    path: str, client: httpx.AsyncClient, db: AsyncEngine
) -> None:
    await busy_floor(client, db)
    answers = {
        "json": await client.get(path, headers=READ),
        "csv": await client.get(path, params={"format": "csv"}, headers=READ),
        "csv by Accept": await client.get(path, headers={**READ, "accept": "text/csv"}),
        "excel-fr": await client.get(path, params={"dialect": "excel-fr"}, headers=READ),
        "xlsx": await client.get(path, params={"format": "xlsx"}, headers=READ),
        "xlsx by Accept": await client.get(path, headers={**READ, "accept": XLSX}),
    }
    assert answers["json"].headers["content-type"] == "application/json"
    table = csv_table(answers["csv"])
    assert len(table) > 1, "a header and at least one row"
    assert csv_table(answers["csv by Accept"]) == table
    assert answers["csv"].headers["content-disposition"].endswith('.csv"')
    sheet = xlsx_sheet(answers["xlsx"])
    assert xlsx_sheet(answers["xlsx by Accept"]).rows == sheet.rows
    french = excel_fr_table(answers["excel-fr"])
    assert french[0] == table[0]
    assert_same_table(table, french, sheet)
    if path == "/v1/notifications":  # deliveries change with no data version: never a 304
        assert not any("etag" in answer.headers for answer in answers.values())
        return
    etags = {name: answer.headers["etag"] for name, answer in answers.items()}
    assert len(set(etags.values())) == len(etags), etags  # one per representation
    assert {answer.headers["cache-control"] for answer in answers.values()} == {"no-cache"}
    again = await client.get(
        path, params={"format": "xlsx"}, headers={**READ, "if-none-match": etags["xlsx"]}
    )
    assert again.status_code == 304


def assert_same_table(table: list[list[str]], french: list[list[str]], sheet: Sheet) -> None:
    """The CSV, its excel-fr twin and the workbook hold the same values, the workbook's typed:
    numbers as numbers, times as dates on the organisation's clock, text as text."""
    assert len(sheet.headers) == len(table[0])
    assert all(sheet.headers)
    assert sheet.bold_header
    assert sheet.frozen == "A2"
    assert all(width is not None and width >= 4 for width in sheet.widths)
    assert len(sheet.rows) == len(french) - 1 == len(table) - 1
    for line, (text_row, french_row) in enumerate(zip(table[1:], french[1:], strict=True)):
        cells = zip(text_row, french_row, sheet.rows[line], sheet.types[line], strict=True)
        for text, in_french, cell, kind in cells:
            assert kind != "f", f"a formula cell: {cell!r}"
            assert_same_cell(text, in_french, cell, kind)


def assert_same_cell(text: str, in_french: str, cell: object, kind: str) -> None:
    if text == "":
        assert (in_french, cell) == ("", None)
    elif text in ("True", "False"):
        assert (kind, cell, in_french) == ("b", text == "True", text)
    elif (value := number(text)) is not None:
        # each answer is read at its own instant: a pace moves with the clock between them
        assert (kind, cell) == ("n", pytest.approx(value, rel=1e-3)), text
        assert french_number(in_french) == pytest.approx(value, rel=1e-3), (text, in_french)
    elif (moment := iso_time(text)) is not None and moment.tzinfo is not None:
        local = moment.astimezone(PARIS).replace(tzinfo=None, microsecond=0)
        assert kind == "d", (text, cell)
        assert isinstance(cell, datetime)
        assert abs(cell - local) < timedelta(seconds=1), (text, cell)
        assert in_french == local.isoformat(sep=" ")
    else:
        assert (kind, in_french) == ("s", text), cell
        assert text in (cell, f"'{cell}"), (text, cell)  # the CSV may neutralise it


async def test_csv_columns_are_the_rows_fields_nested_ones_flattened(
    client: httpx.AsyncClient, db: AsyncEngine
) -> None:
    await floor(client)
    await book(db, canonical("call.placed", actor="u-1"), canonical("call.placed", actor="x"))
    csv_accept = {**READ, "accept": "text/csv"}
    board = await client.get("/v1/leaderboards/calls_total", headers=csv_accept)
    assert board.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(board.text)))
    assert rows[0]["rep_id"] == "alice"
    assert rows[0]["value"] == "1"
    assert rows[0]["rank"] == "1"
    teams = await client.get("/v1/team-leaderboards/calls_total", headers=csv_accept)
    assert "team_id" in teams.text.splitlines()[0]
    series = await client.get("/v1/reps/alice/timeseries/calls_total", headers=csv_accept)
    assert series.text.splitlines()[0] == "start,end,value"
    catalogue = await client.get("/v1/metrics", headers=csv_accept)
    assert catalogue.text.splitlines()[0] == "name,kind,unit,definition,labels.fr,labels.en"
    unassigned = await client.get("/v1/unassigned", headers=csv_accept)
    assert next(iter(csv.DictReader(io.StringIO(unassigned.text))))["identity"] == "crm:x"


async def test_a_team_s_kpis_export_one_row_per_metric_with_its_pace(
    client: httpx.AsyncClient, db: AsyncEngine
) -> None:
    await busy_floor(client, db)
    await put_targets(client, "teams", "calls_total", "day", north=10)
    path = "/v1/teams/north/kpis?metrics=calls_total,revenue"
    kpis = (await client.get(path, headers=READ)).json()
    answer = await client.get(path, headers={**READ, "accept": "text/csv"})
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert [(r["metric"], r["label"], r["value"]) for r in rows] == [
        ("calls_total", "Appels", "2"),
        ("revenue", "Chiffre d'affaires", "1234.56"),
    ]
    assert list(rows[0]) == [
        "metric", "label", "value", "pace.target", "pace.expected", "pace.pace", "pace.projected"
    ]  # fmt: skip
    assert float(rows[0]["pace.target"]) == kpis["pace"]["calls_total"]["target"] == 10
    assert rows[1]["pace.target"] == "2000.0"  # none of its own: its reps' targets summed
    assert 'filename="kpis-team-north.csv"' in answer.headers["content-disposition"]


async def test_a_workbook_s_headers_speak_the_organisation_s_language(
    client: httpx.AsyncClient, db: AsyncEngine
) -> None:
    await busy_floor(client, db)
    board = xlsx_sheet(await client.get("/v1/leaderboards/calls_total?format=xlsx", headers=READ))
    assert board.headers[:5] == ["Rang", "Rang précédent", "Évolution", "Id commercial", "Nom"]
    assert board.title == "leaderboard-calls_total"
    catalogue = xlsx_sheet(await client.get("/v1/metrics?format=xlsx", headers=READ))
    assert catalogue.headers[-2:] == ["Libellé · français", "Libellé · anglais"]
    wins = xlsx_sheet(await client.get("/v1/wins?format=xlsx", headers=READ))
    won_at = wins.headers.index("Gagnée le")
    assert wins.formats[0][won_at] == "dd/mm/yyyy hh:mm:ss"


async def test_a_format_nobody_knows_is_a_422_naming_it(client: httpx.AsyncClient) -> None:
    answer = await client.get("/v1/metrics?format=pdf&dialect=excel-de", headers=READ)
    assert answer.status_code == 422
    assert sorted(e["field"] for e in answer.json()["errors"]) == ["query.dialect", "query.format"]


async def test_json_wins_when_asked_first_and_accept_q_values_are_honoured(
    client: httpx.AsyncClient,
) -> None:
    async def kind(accept: str, query: str = "") -> str:
        answer = await client.get(f"/v1/metrics{query}", headers={**READ, "accept": accept})
        return answer.headers["content-type"].split(";")[0]

    assert await kind("application/json, text/csv") == "application/json"
    assert await kind("text/csv;q=0.5, application/json;q=0.9") == "application/json"
    assert await kind(f"text/csv;q=0.5, {XLSX}") == XLSX
    assert await kind("*/*") == "application/json"
    assert await kind("text/csv", "?format=json") == "application/json"  # the query wins


async def test_a_file_is_written_off_the_event_loop_and_sent_with_its_length() -> None:
    rendering = threading.Event()
    ticks_while_rendering = 0

    def render() -> bytes:
        rendering.set()
        time.sleep(0.3)  # a big workbook's CPU, standing for it
        rendering.clear()
        return b"a,b\r\n1,2\r\n"

    async def ticker() -> None:
        nonlocal ticks_while_rendering
        for _ in range(100):
            await asyncio.sleep(0.01)
            ticks_while_rendering += rendering.is_set()

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request"}

    response = RenderedFile(render, "text/csv", {"ETag": 'W/"x"'})
    scope = {"type": "http", "method": "GET", "path": "/"}
    await asyncio.gather(response(scope, receive, send), ticker())  # type: ignore[arg-type]
    assert ticks_while_rendering >= 10  # the loop went on serving meanwhile
    headers = dict(sent[0]["headers"])
    assert (headers[b"content-length"], headers[b"etag"]) == (b"10", b'W/"x"')
    assert sent[1]["body"] == b"a,b\r\n1,2\r\n"
