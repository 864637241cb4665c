"""Reading exports back as a spreadsheet program would: CSV in either dialect; xlsx (openpyxl)."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
from openpyxl import load_workbook
from openpyxl.utils import get_column_letter

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
BOM = "\ufeff"


def csv_table(response: httpx.Response) -> list[list[str]]:
    """An RFC 4180 CSV answer: comma-separated, CRLF line ends, no BOM."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert int(response.headers["content-length"]) == len(response.content)
    assert not response.text.startswith(BOM)
    assert response.content.endswith(b"\r\n")
    return list(csv.reader(io.StringIO(response.text, newline="")))


def excel_fr_table(response: httpx.Response) -> list[list[str]]:
    """A CSV answer as French Excel opens it: a UTF-8 BOM, then ``;``-separated rows."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert int(response.headers["content-length"]) == len(response.content)
    assert response.content.startswith(BOM.encode())
    return list(
        csv.reader(io.StringIO(response.content.decode("utf-8-sig"), newline=""), delimiter=";")
    )


@dataclass
class Sheet:
    title: str
    headers: list[str]
    rows: list[list[Any]]  # each cell's value as openpyxl reads it (typed)
    types: list[list[str]]  # each cell's openpyxl data type: n, s, d, b, f (a formula)
    formats: list[list[str]]  # each cell's number format
    bold_header: bool
    frozen: str | None
    widths: list[float]


def xlsx_sheet(response: httpx.Response) -> Sheet:
    """The only sheet of an xlsx answer, with what a person sees of it."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == XLSX
    assert int(response.headers["content-length"]) == len(response.content)
    assert response.headers["content-disposition"].endswith('.xlsx"')
    book = load_workbook(io.BytesIO(response.content))
    assert len(book.worksheets) == 1
    sheet = book.worksheets[0]
    cells = [list(row) for row in sheet.iter_rows()]
    header, body = (cells[0], cells[1:]) if cells else ([], [])
    letters = [get_column_letter(i) for i in range(1, len(header) + 1)]
    return Sheet(
        title=sheet.title,
        headers=[str(c.value) for c in header],
        rows=[[c.value for c in row] for row in body],
        types=[[c.data_type for c in row] for row in body],
        formats=[[c.number_format for c in row] for row in body],
        bold_header=all(c.font.b for c in header),
        frozen=sheet.freeze_panes,
        widths=[sheet.column_dimensions[x].width for x in letters],
    )


def french_number(text: str) -> float | None:
    """A cell of an excel-fr CSV as French Excel reads it: a number with a decimal comma."""
    if "." in text:
        return None
    try:
        return float(text.replace(",", "."))
    except ValueError:
        return None


def number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def iso_time(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None
