"""``GET /v1/reports/{reps|teams}``: every rep (or team) with the chosen metrics, the KPIs' own
values, in JSON, CSV and xlsx, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.catalogue import HEADLINE
from tests.api_support import ADMIN, READ, assert_problem, book, fields, floor, put_targets
from tests.conftest import canonical
from tests.export_support import csv_table, excel_fr_table, french_number, xlsx_sheet

WON = "deal.updated"


async def month_of_work(client: httpx.AsyncClient, db: AsyncEngine) -> None:
    """Alice and Bob (North) work; Carol (South) has a target and nothing done yet."""
    await floor(client)
    await put_targets(client, "reps", "revenue", "month", alice=10_000, bob=4_000, carol=5_000)
    await put_targets(client, "teams", "revenue", "month", north=20_000)
    now = datetime.now(UTC)
    await book(
        db,
        *(canonical("call.placed", actor="u-1") for _ in range(3)),
        canonical("call.received", actor="u-1"),
        canonical("call.missed", actor="u-1"),
        *(canonical("call.missed", actor="u-2") for _ in range(2)),
        canonical("meeting.held", actor="u-2"),
        canonical(WON, actor="u-1", deal_id="A", amount="2500.50"),
        canonical(WON, actor="u-1", deal_id="B", status="lost"),
        canonical(WON, actor="u-2", deal_id="C", amount="999.99"),
        canonical("call.placed", actor="u-2", time=now - timedelta(days=40)),  # not this month
    )


async def test_a_report_gives_each_rep_the_values_of_its_kpis(
    client: httpx.AsyncClient, db: AsyncEngine
) -> None:
    await month_of_work(client, db)
    answer = await client.get("/v1/reports/reps?window=this_month", headers=READ)
    assert answer.status_code == 200, answer.text
    report = answer.json()
    assert report["metrics"] == list(HEADLINE)
    assert (report["scope"], report["window"], report["team"]) == ("reps", "this_month", None)
    assert {"from", "to", "as_of"} <= report.keys()
    assert [(r["rep_id"], r["name"], r["team_id"], r["team_name"]) for r in report["rows"]] == [
        ("alice", "Alice", "north", "North"),
        ("bob", "Bob", "north", "North"),
        ("carol", "Carol", "south", "South"),
    ]  # by team name, then name
    for row in report["rows"]:
        kpis = await client.get(
            f"/v1/reps/{row['rep_id']}/kpis",
            params={"window": "this_month", "metrics": ",".join(HEADLINE)},
            headers=READ,
        )
        assert row["values"] == kpis.json()["metrics"], row["rep_id"]
    alice = report["rows"][0]["values"]
    assert (alice["calls_total"], alice["revenue"], alice["win_rate"]) == (4, 2500.5, 0.5)
    assert alice["quota_attainment"] == 0.25005
    carol = report["rows"][2]["values"]
    assert (carol["calls_total"], carol["win_rate"], carol["quota_attainment"]) == (0, None, 0.0)


async def test_a_report_of_teams_gives_each_team_the_values_of_its_kpis(
    client: httpx.AsyncClient, db: AsyncEngine
) -> None:
    await month_of_work(client, db)
    metrics = "revenue,quota_attainment,calls_missed,answer_rate"
    query = {"window": "this_month", "metrics": metrics}
    report = (await client.get("/v1/reports/teams", params=query, headers=READ)).json()
    assert report["metrics"] == metrics.split(",")
    assert [(r["rep_id"], r["team_id"], r["name"]) for r in report["rows"]] == [
        (None, "north", "North"),
        (None, "south", "South"),
    ]
    for row in report["rows"]:
        kpis = await client.get(f"/v1/teams/{row['team_id']}/kpis", params=query, headers=READ)
        assert row["values"] == kpis.json()["metrics"], row["team_id"]
    north = report["rows"][0]["values"]
    assert (north["revenue"], north["calls_missed"]) == (3500.49, 3)
    south = await client.get("/v1/reports/teams", params={**query, "team": "south"}, headers=READ)
    assert [r["team_id"] for r in south.json()["rows"]] == ["south"]


async def test_a_team_s_report_lists_its_reps_only(
    client: httpx.AsyncClient, db: AsyncEngine
) -> None:
    await month_of_work(client, db)
    north = await client.get("/v1/reports/reps?window=this_month&team=north", headers=READ)
    assert [r["rep_id"] for r in north.json()["rows"]] == ["alice", "bob"]
    assert north.json()["team"] == "north"
    nobody = await client.get("/v1/reports/reps?team=west", headers=READ)
    assert nobody.json()["rows"] == []


async def test_metrics_come_in_the_order_asked_and_unknown_ones_are_404s(
    client: httpx.AsyncClient, db: AsyncEngine
) -> None:
    await month_of_work(client, db)
    asked = "/v1/reports/reps?metrics=revenue,%20calls_total,revenue&window=this_month"
    report = (await client.get(asked, headers=READ)).json()
    assert report["metrics"] == ["revenue", "calls_total"]
    assert list(report["rows"][0]["values"]) == ["revenue", "calls_total"]
    unknown = await client.get("/v1/reports/reps?metrics=calls_total,bogus", headers=READ)
    assert_problem(unknown, 404, "bogus")
    assert (await client.get("/v1/reports/everyone", headers=READ)).status_code == 422
    assert fields(await client.get("/v1/reports/reps?window=fortnight", headers=READ)) == ["window"]
    assert (await client.get("/v1/reports/reps")).status_code == 401


async def test_a_custom_window_reports_what_happened_in_it(
    client: httpx.AsyncClient, db: AsyncEngine
) -> None:
    await month_of_work(client, db)
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    query = {
        "from": (now - timedelta(days=45)).isoformat(),
        "to": (now - timedelta(days=30)).isoformat(),
        "metrics": "calls_total",
    }
    report = (await client.get("/v1/reports/reps", params=query, headers=READ)).json()
    assert report["window"] == "custom"
    assert {r["rep_id"]: r["values"]["calls_total"] for r in report["rows"]} == {
        "alice": 0,
        "bob": 1,
        "carol": 0,
    }
    days = {  # dates alone: midnights on the organisation's clock
        "from": (now - timedelta(days=45)).date().isoformat(),
        "to": (now - timedelta(days=30)).date().isoformat(),
        "metrics": "calls_total",
    }
    by_dates = (await client.get("/v1/reports/reps", params=days, headers=READ)).json()
    assert [r["values"]["calls_total"] for r in by_dates["rows"]] == [0, 1, 0]
    assert by_dates["from"].startswith(days["from"])


async def test_a_report_as_csv_excel_fr_and_xlsx(
    client: httpx.AsyncClient, db: AsyncEngine
) -> None:
    await month_of_work(client, db)
    path = "/v1/reports/reps?window=this_month&metrics=calls_total,revenue,win_rate"
    report = (await client.get(path, headers=READ)).json()
    answer = await client.get(path, headers={**READ, "accept": "text/csv"})
    assert answer.headers["content-disposition"] == (
        'attachment; filename="report-reps-this_month.csv"'
    )
    table = csv_table(answer)
    assert table[0] == [
        "rep_id", "name", "team_id", "team_name", "calls_total", "revenue", "win_rate"
    ]  # fmt: skip
    assert table[1] == ["alice", "Alice", "north", "North", "4", "2500.5", "0.5"]
    assert table[3][-1] == ""  # Carol has no deal closed: no win rate
    french = excel_fr_table(await client.get(f"{path}&dialect=excel-fr", headers=READ))
    assert french[2] == ["bob", "Bob", "north", "North", "0", "999,99", "1,0"]
    assert french_number(french[1][5]) == report["rows"][0]["values"]["revenue"]
    sheet = xlsx_sheet(await client.get(f"{path}&format=xlsx", headers=READ))
    assert sheet.title == "report-reps-this_month"
    assert sheet.headers == [
        "Id commercial",
        "Nom",
        "Id équipe",
        "Équipe",
        "Appels",
        "Chiffre d'affaires (EUR)",
        "Taux de transformation",
    ]
    assert sheet.rows[0] == ["alice", "Alice", "north", "North", 4, 2500.5, 0.5]
    assert sheet.types[0] == ["s", "s", "s", "s", "n", "n", "n"]
    assert sheet.formats[0][4:] == ["#,##0", "#,##0.00", "0.0%"]
    assert sheet.rows[2][-1] is None
    teams = xlsx_sheet(await client.get("/v1/reports/teams?format=xlsx", headers=READ))
    assert teams.headers[:2] == ["Id équipe", "Nom"]


@contextmanager
def statements(db: AsyncEngine) -> Iterator[list[str]]:
    """The SQL statements ``db`` runs inside the block."""
    seen: list[str] = []

    def count(*args: Any) -> None:
        seen.append(args[2])

    event.listen(db.sync_engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(db.sync_engine, "before_cursor_execute", count)


async def test_a_report_costs_the_same_queries_for_3_reps_or_1500(
    client: httpx.AsyncClient, db: AsyncEngine
) -> None:
    await month_of_work(client, db)
    path = "/v1/reports/reps?window=this_month"
    await client.get(path, headers=READ)  # the roster, read once per version
    with statements(db) as few:
        assert len((await client.get(path, headers=READ)).json()["rows"]) == 3
    imported = {
        "teams": [{"id": "big", "name": "Big"}],
        "reps": [
            {"id": f"r{i}", "name": f"Rep {i}", "team_id": "big", "identities": []}
            for i in range(1500)
        ],
    }
    assert (await client.post("/v1/roster/import", json=imported, headers=ADMIN)).status_code == 200
    await client.get(path, headers=READ)
    with statements(db) as many:
        assert len((await client.get(path, headers=READ)).json()["rows"]) == 1503
    sums = [s for s in many if "kpi_rollups" in s]
    assert len(sums) == 1  # one query of the sums, for every rep and metric
    # the same statements, but PostgreSQL's settings for a scan of the whole scope (as a board's)
    assert len([s for s in many if not s.startswith("SET LOCAL")]) == len(few)
