"""Exports cannot smuggle a formula into a spreadsheet (OWASP, CSV injection): CSV in both
dialects, and xlsx."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services.api.common.spreadsheets import neutralised
from tests.api_support import ADMIN, READ, book
from tests.conftest import canonical
from tests.export_support import excel_fr_table, xlsx_sheet

LINK = '=HYPERLINK("http://x","y")'


@pytest.mark.parametrize("text", [LINK, "+1+1", "-2+3", "@SUM(A1)", "\tcmd", "\rcmd"])
def test_text_a_spreadsheet_would_run_is_prefixed_with_a_quote(text: str) -> None:
    assert neutralised(text) == "'" + text


@pytest.mark.parametrize("value", ["Alice", "a=b", "", -2, -0.5, 3, None, True])
def test_plain_text_and_numbers_are_left_alone(value: Any) -> None:
    assert neutralised(value) == value


async def evil_floor(client: httpx.AsyncClient, db: AsyncEngine) -> None:
    """Reps named like formulas; two hours ago the formula led, since then both others
    overtook it: movement -2."""
    assert (
        await client.put("/v1/teams/north", json={"name": "North"}, headers=ADMIN)
    ).status_code == 200
    for rep_id, name, ident in (("evil", LINK, "u-1"), ("bob", "Bob", "u-2"), ("cy", "@Cy", "u-3")):
        body = {
            "name": name,
            "team_id": "north",
            "effective_from": "2020-01-01T00:00:00Z",
            "identities": [{"provider": "crm", "external_id": ident}],
        }
        assert (await client.put(f"/v1/reps/{rep_id}", json=body, headers=ADMIN)).status_code == 200
    # well inside the board's window and its movement interval (an hour), away from the edges
    earlier = datetime.now(UTC) - timedelta(hours=2)
    lately = datetime.now(UTC) - timedelta(minutes=10)
    await book(
        db,
        *(canonical("call.placed", actor="u-1", time=earlier) for _ in range(3)),
        *(canonical("call.placed", actor="u-2", time=earlier) for _ in range(2)),
        canonical("call.placed", actor="u-3", time=earlier),
        *(canonical("call.placed", actor="u-2", time=lately) for _ in range(5)),
        *(canonical("call.placed", actor="u-3", time=lately) for _ in range(5)),
    )


async def test_a_rep_named_like_a_formula_is_exported_as_text_and_movement_stays_a_number(
    client: httpx.AsyncClient, db: AsyncEngine
) -> None:
    await evil_floor(client, db)
    response = await client.get(
        "/v1/leaderboards/calls_total?window=last_24h", headers={**READ, "accept": "text/csv"}
    )
    assert response.headers["content-type"].startswith("text/csv")
    rows = {r["rep_id"]: r for r in csv.DictReader(io.StringIO(response.text))}
    assert rows["evil"]["name"] == "'" + LINK
    assert rows["cy"]["name"] == "'@Cy"
    assert rows["bob"]["name"] == "Bob"
    assert (rows["evil"]["rank"], rows["evil"]["previous_rank"]) == ("3", "1"), response.text
    assert rows["evil"]["movement"] == "-2"  # a number: not prefixed
    assert not any(line.startswith(("=", "+", "@")) for line in response.text.splitlines())
    assert ",=" not in response.text


@pytest.mark.parametrize("path", ["/v1/leaderboards/calls_total", "/v1/reports/reps"])
async def test_formulas_stay_inert_in_french_excel_s_csv_and_are_never_formulas_in_a_workbook(
    path: str, client: httpx.AsyncClient, db: AsyncEngine
) -> None:
    await evil_floor(client, db)
    query = {"window": "last_24h"}
    french = excel_fr_table(
        await client.get(path, params={**query, "dialect": "excel-fr"}, headers=READ)
    )
    names = [row[french[0].index("name")] for row in french[1:]]
    assert sorted(names) == sorted(["'" + LINK, "'@Cy", "Bob"])
    assert not any(cell.startswith(("=", "+", "@")) for row in french for cell in row)
    sheet = xlsx_sheet(await client.get(path, params={**query, "format": "xlsx"}, headers=READ))
    assert not any(kind == "f" for row in sheet.types for kind in row)
    name = sheet.headers.index("Nom")
    named = {row[name]: kinds[name] for row, kinds in zip(sheet.rows, sheet.types, strict=True)}
    assert named == {LINK: "s", "@Cy": "s", "Bob": "s"}  # text cells, shown as written
    if path.startswith("/v1/leaderboards"):
        movement = sheet.headers.index("Évolution")
        evil = next(row for row in sheet.rows if row[name] == LINK)
        assert evil[movement] == -2
