"""Rows as a table, as CSV in two dialects and as a workbook (``common.spreadsheets``), and the
format an ``Accept`` header asks for (``common.exports``): pure functions."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook
from pydantic import BaseModel

from services.api.common.exports import XLSX, negotiated
from services.api.common.spreadsheets import (
    Column,
    csv_cell,
    csv_text,
    header_of,
    sheet_name,
    table_of,
    xlsx_bytes,
)

PARIS = ZoneInfo("Europe/Paris")
WINTER_NOON = datetime(2026, 1, 15, 11, 0, 5, 250_000, tzinfo=UTC)  # 12:00:05 in Paris


class Pace(BaseModel):
    target: float
    pace: float | None


class Row(BaseModel):
    name: str
    value: float | None
    pace: Pace | None = None
    tags: list[str] = []


@pytest.mark.parametrize(
    ("accept", "chosen"),
    [
        ("", "json"),
        ("*/*", "json"),
        ("text/csv", "csv"),
        ("text/csv, */*", "csv"),
        ("application/json, text/csv", "json"),
        ("text/csv;q=0.4, application/json;q=0.8", "json"),
        (f"text/csv;q=0.5, {XLSX}", "xlsx"),
        (f"{XLSX};q=0", "json"),
        ("TEXT/CSV; charset=utf-8", "csv"),
        ("text/csv;q=x", "json"),
    ],
)
def test_the_accept_header_chooses_by_q_value_then_order(accept: str, chosen: str) -> None:
    assert negotiated(accept) == chosen


def test_nested_objects_become_columns_and_a_null_object_leaves_its_columns_blank() -> None:
    rows = [
        Row(name="a", value=1.5),
        Row(name="b", value=None, pace=Pace(target=10, pace=0.5), tags=["x", "y"]),
    ]
    table = table_of(rows)
    assert [c.key for c in table.columns] == ["name", "value", "tags", "pace.target", "pace.pace"]
    assert table.rows == [["a", 1.5, "[]", None, None], ["b", None, '["x","y"]', 10.0, 0.5]]
    chosen = table_of(rows, ["pace.pace", "name", "missing"])
    assert chosen.rows == [[None, "a", None], [0.5, "b", None]]


@pytest.mark.parametrize(
    ("value", "rfc", "french"),
    [
        (None, "", ""),
        (3, "3", "3"),
        (-2, "-2", "-2"),
        (0.5, "0.5", "0,5"),
        (1234.56, "1234.56", "1234,56"),
        (1e-05, "0.00001", "0,00001"),
        (1.5e20, "150000000000000000000", "150000000000000000000"),
        (float("nan"), "", ""),
        (True, "True", "True"),
        (WINTER_NOON, "2026-01-15T11:00:05.250000Z", "2026-01-15 12:00:05"),
        (date(2026, 1, 15), "2026-01-15", "2026-01-15"),
        ("=1+1", "'=1+1", "'=1+1"),
        ("-x", "'-x", "'-x"),
        ("Zoé", "Zoé", "Zoé"),
    ],
)
def test_a_cell_in_each_dialect(value: object, rfc: str, french: str) -> None:
    assert csv_cell(value, False, PARIS) == rfc
    assert csv_cell(value, True, PARIS) == french


def test_excel_fr_is_semicolons_with_a_bom_and_rfc4180_is_commas_with_crlf() -> None:
    table = table_of([{"name": "Dupont; Jean", "revenue": 1200.5}])
    assert csv_text(table, "rfc4180", PARIS) == "name,revenue\r\nDupont; Jean,1200.5\r\n"
    assert csv_text(table, "excel-fr", PARIS) == '\ufeffname;revenue\r\n"Dupont; Jean";1200,5\r\n'


def test_a_workbook_has_typed_cells_a_frozen_bold_header_and_no_formula() -> None:
    rows: list[dict[str, object]] = [
        {"name": "=HYPERLINK(1)", "n": 3, "ratio": 0.25, "at": WINTER_NOON, "ok": True},
        {"name": "", "n": None, "ratio": float("inf"), "at": date(2026, 2, 1), "ok": False},
    ]
    columns = [
        Column("name"),
        Column("n"),
        Column("ratio", ("Taux", "Rate"), "0.0%"),
        Column("at"),
        Column("ok"),
    ]
    data = xlsx_bytes(table_of(rows, columns), "report: [reps]", "fr", PARIS)
    sheet = load_workbook(io.BytesIO(data)).worksheets[0]
    assert sheet.title == "report- -reps-"
    assert sheet.freeze_panes == "A2"
    header, first, second = (list(r) for r in sheet.iter_rows())
    assert [c.value for c in header] == ["Nom", "n", "Taux", "at", "ok"]
    assert all(c.font.b for c in header)
    assert [c.data_type for c in first] == ["s", "n", "n", "d", "b"]
    assert [c.value for c in first] == [
        "=HYPERLINK(1)",  # a string cell: shown as written, never run
        3,
        0.25,
        datetime(2026, 1, 15, 12, 0, 5),  # the organisation's clock, whole seconds
        True,
    ]
    assert first[2].number_format == "0.0%"
    assert first[3].number_format == "dd/mm/yyyy hh:mm:ss"
    assert (second[3].value, second[3].number_format) == (datetime(2026, 2, 1), "dd/mm/yyyy")
    assert [c.value for c in second[:3]] == [None, None, None]  # blank, not "" nor inf
    assert sheet.auto_filter.ref == "A1:E3"


def test_a_workbook_in_english_writes_iso_dates() -> None:
    data = xlsx_bytes(table_of([{"won_at": WINTER_NOON}]), "wins", "en", PARIS)
    sheet = load_workbook(io.BytesIO(data)).worksheets[0]
    assert sheet["A1"].value == "Won at"
    assert sheet["A2"].number_format == "yyyy-mm-dd hh:mm:ss"


@pytest.mark.parametrize(
    ("key", "french", "english"),
    [
        ("revenue", "Chiffre d'affaires", "Revenue"),
        ("team_name", "Équipe", "Team"),
        ("parts.calls_total", "Détail · Appels", "Parts · Calls"),
        ("pace.target", "Rythme · Objectif", "Pace · Target"),
        ("something_new", "something_new", "something_new"),
    ],
)
def test_workbook_headers_name_each_part_of_a_key(key: str, french: str, english: str) -> None:
    assert (header_of(key, "fr"), header_of(key, "en")) == (french, english)


def test_sheet_names_fit_excel() -> None:
    assert sheet_name("x" * 40) == "x" * 31
    assert sheet_name("''") == "export"
