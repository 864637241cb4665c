"""Rows as a table, and the table as CSV (two dialects) or as an Excel workbook: pure, no I/O.

- ``table_of``: rows (pydantic models or mappings) as columns and Python values; a nested
  object's fields become columns of their own (``labels.fr``, ``parts.calls_total``), a list
  becomes compact JSON in one cell.
- ``csv_text``: RFC 4180 (``,``, ``.``, CRLF; what programs expect, whatever the locale), or
  ``excel-fr`` (``;``, a decimal comma, a UTF-8 BOM, local times: what French Excel opens as
  numbers and dates).
- ``xlsx_bytes``: one sheet with typed cells (numbers, dates, text, booleans), a bold and
  frozen header row in the organisation's language, a filter on it, columns sized to their
  text. Written by XlsxWriter in constant-memory mode, row after row.

Formula injection. A spreadsheet runs a CSV cell beginning with ``=``, ``+``, ``-``, ``@``, tab
or carriage return as a formula: a rep named ``=HYPERLINK(...)`` would become a link, or worse,
on the screen of whoever opens the export. Such text cells are prefixed with a single quote, as
OWASP recommends (CSV injection), so the spreadsheet shows them as text; numbers are left as
numbers (a movement of -2 is a number, not a formula). Separators and quotes inside a cell are
quoted by the CSV writer, so no text can begin a cell of its own. In a workbook a text cell is
a string cell, which Excel never evaluates: it is written as it is, and XlsxWriter is told never
to turn a string into a formula, a number or a link.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any, Literal
from zoneinfo import ZoneInfo

import xlsxwriter
from pydantic import BaseModel

from shared import i18n
from shared.i18n import Language

Dialect = Literal["rfc4180", "excel-fr"]
Row = BaseModel | Mapping[str, Any]
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
BOM = "\ufeff"
MAX_WIDTH = 60  # characters: wider text wraps past the screen anyway
WIDTH_SAMPLE = 2000  # rows read to size the columns
SHEET_NAME_MAX = 31  # Excel's limit
DATETIME_FORMATS: dict[Language, str] = {"fr": "dd/mm/yyyy hh:mm:ss", "en": "yyyy-mm-dd hh:mm:ss"}
DATE_FORMATS: dict[Language, str] = {"fr": "dd/mm/yyyy", "en": "yyyy-mm-dd"}


@dataclass(frozen=True, slots=True)
class Column:
    """A column of an export: its key (the CSV header, a field's dotted path); in a workbook,
    its header (``labels``: French, English; default: ``header``'s) and number format."""

    key: str
    labels: tuple[str, str] | None = None
    number_format: str | None = None

    def header(self, language: Language) -> str:
        if self.labels is not None:
            return self.labels[0] if language == "fr" else self.labels[1]
        return header_of(self.key, language)


@dataclass(frozen=True, slots=True)
class Table:
    columns: list[Column]
    rows: list[list[Any]]  # Python values: str, int, float, bool, datetime, date or None


def table_of(rows: Sequence[Row], columns: Sequence[str | Column] | None = None) -> Table:
    """``rows`` flattened; the ``columns`` given (a value they do not name is left out), or
    every column any row has, in the order they first appear."""
    flat = [flat_row(_plain(row)) for row in rows]
    chosen = [c if isinstance(c, Column) else Column(c) for c in columns or _every_key(flat)]
    keys = [c.key for c in chosen]
    return Table(chosen, [[row.get(key) for key in keys] for row in flat])


def _plain(row: Row) -> Mapping[str, Any]:
    return row.model_dump(by_alias=True) if isinstance(row, BaseModel) else row


def flat_row(row: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """One cell per value: a nested object's fields become columns of their own
    (``labels.fr``); a list is one cell of compact JSON."""
    flat: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, BaseModel):
            value = value.model_dump(by_alias=True)
        if isinstance(value, Mapping):
            flat.update(flat_row(value, f"{prefix}{key}."))
        elif isinstance(value, list | tuple | set):
            flat[prefix + key] = json.dumps(list(value), separators=(",", ":"), default=str)
        else:
            flat[prefix + key] = value
    return flat


def _every_key(rows: Iterable[dict[str, Any]]) -> list[str]:
    """Every key, in first-seen order; a key that some row has as an object (``pace.target``)
    and another as null (``pace``) is the object's columns only."""
    seen = dict.fromkeys(key for row in rows for key in row)
    parents = {key.rsplit(".", 1)[0] for key in seen if "." in key}
    return [key for key in seen if key not in parents]


# --- CSV ----------------------------------------------------------------------------------


def neutralised(value: Any) -> Any:
    """A text cell a spreadsheet would run as a formula, made inert; anything else as it is."""
    if isinstance(value, str) and value.startswith(FORMULA_TRIGGERS):
        return "'" + value
    return value


def csv_text(table: Table, dialect: Dialect, tz: ZoneInfo) -> str:
    """The table as CSV in ``dialect`` (``excel-fr``: times in ``tz``, the organisation's)."""
    french = dialect == "excel-fr"
    buffer = io.StringIO()
    if french:
        buffer.write(BOM)
    writer = csv.writer(buffer, delimiter=";" if french else ",", lineterminator="\r\n")
    writer.writerow([neutralised(c.key) for c in table.columns])
    for row in table.rows:
        writer.writerow([csv_cell(value, french, tz) for value in row])
    return buffer.getvalue()


def csv_cell(value: Any, french: bool, tz: ZoneInfo) -> str:
    """One value as CSV text: numbers in positional notation (a decimal comma in French),
    times in ISO 8601 (French: local ``YYYY-MM-DD HH:MM:SS``, which Excel reads as a date),
    text neutralised."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float | Decimal):
        text = _positional(value)
        return text.replace(".", ",") if french else text
    if isinstance(value, datetime):
        return _local(value, tz).isoformat(sep=" ") if french else _iso(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Enum):
        value = value.value
    return str(neutralised(str(value)))


def _positional(value: float | Decimal) -> str:
    """``0.00001``, not ``1e-05``: French Excel reads the first as a number, not the second."""
    if isinstance(value, float) and not math.isfinite(value):
        return ""
    text = repr(float(value)) if isinstance(value, float) else str(value)
    if "e" in text or "E" in text:
        text = format(Decimal(text), "f")
    return text


def _iso(moment: datetime) -> str:
    """As the JSON answers write it (pydantic): ``Z`` for UTC."""
    text = moment.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _local(moment: datetime, tz: ZoneInfo) -> datetime:
    """A naive time on the organisation's clock (a spreadsheet has no time zones); whole
    seconds, as people read them."""
    aware = moment.astimezone(tz) if moment.tzinfo is not None else moment
    return aware.replace(tzinfo=None, microsecond=0)


# --- xlsx ---------------------------------------------------------------------------------


def xlsx_bytes(table: Table, sheet: str, language: Language, tz: ZoneInfo) -> bytes:
    """The table as a workbook of one sheet (see the module)."""
    output = io.BytesIO()
    workbook = xlsxwriter.Workbook(
        output,
        {
            "constant_memory": True,  # rows are streamed to a temporary file, not held
            "strings_to_formulas": False,
            "strings_to_numbers": False,
            "strings_to_urls": False,
            "default_date_format": DATETIME_FORMATS[language],
        },
    )
    worksheet = workbook.add_worksheet(sheet_name(sheet))
    _Sheet(workbook, worksheet, table, language, tz).write()
    workbook.close()
    return output.getvalue()


class _Sheet:
    """One worksheet being written: the formats it uses, made once."""

    def __init__(
        self, workbook: Any, worksheet: Any, table: Table, language: Language, tz: ZoneInfo
    ) -> None:
        self._sheet, self._table, self._tz = worksheet, table, tz
        self._language = language
        self._bold = workbook.add_format({"bold": True})
        self._datetime = workbook.add_format({"num_format": DATETIME_FORMATS[language]})
        self._date = workbook.add_format({"num_format": DATE_FORMATS[language]})
        self._numbers = [
            workbook.add_format({"num_format": c.number_format}) if c.number_format else None
            for c in table.columns
        ]

    def write(self) -> None:
        sheet, table = self._sheet, self._table
        headers = [c.header(self._language) for c in table.columns]
        for col, header in enumerate(headers):
            sheet.write_string(0, col, header, self._bold)
        for r, row in enumerate(table.rows, start=1):
            for col, value in enumerate(row):
                self._cell(r, col, value)
        sheet.freeze_panes(1, 0)
        if headers:
            sheet.autofilter(0, 0, len(table.rows), len(headers) - 1)
        for col, width in enumerate(self._widths(headers)):
            sheet.set_column(col, col, width)

    def _cell(self, r: int, col: int, value: Any) -> None:
        kind = type(value)  # the common cases first, by type: a report has 100,000 cells
        if kind is float or kind is int:
            if math.isfinite(value):
                self._sheet.write_number(r, col, value, self._numbers[col])
        elif kind is str:
            if value:  # else a blank cell, as in the CSV
                self._sheet.write_string(r, col, value)
        elif value is not None:
            self._other(r, col, value)

    def _other(self, r: int, col: int, value: Any) -> None:
        sheet = self._sheet
        if isinstance(value, bool):
            sheet.write_boolean(r, col, value)
        elif isinstance(value, int | float | Decimal):
            if math.isfinite(value):
                sheet.write_number(r, col, float(value), self._numbers[col])
        elif isinstance(value, datetime):
            sheet.write_datetime(r, col, _local(value, self._tz), self._datetime)
        elif isinstance(value, date):
            sheet.write_datetime(r, col, datetime.combine(value, datetime.min.time()), self._date)
        else:
            text = str(value.value if isinstance(value, Enum) else value)
            if text:
                sheet.write_string(r, col, text)

    def _widths(self, headers: list[str]) -> list[float]:
        """Each column as wide as its header or its longest value among the first rows."""
        widths = [len(h) + 3 for h in headers]  # the filter's button takes room too
        for row in self._table.rows[:WIDTH_SAMPLE]:
            for col, value in enumerate(row):
                widths[col] = max(widths[col], _shown_length(value))
        return [min(w + 1, MAX_WIDTH) for w in widths]


def _shown_length(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, datetime):
        return 19
    if isinstance(value, float):
        return min(len(f"{value:,.2f}"), 16)
    return len(str(value))


def sheet_name(name: str) -> str:
    """A name Excel accepts for a sheet: no ``[]:*?/\\``, at most 31 characters."""
    cleaned = re.sub(r"[\[\]:*?/\\]", "-", name).strip("'") or "export"
    return cleaned[:SHEET_NAME_MAX]


# --- headers ------------------------------------------------------------------------------


def header_of(key: str, language: Language) -> str:
    """What a column is called in a workbook: each part of its dotted key by name (a metric,
    or a field of ``i18n.COLUMNS``), joined with `` · ``; an unknown part as it is."""
    return " · ".join(_part(part, language) for part in key.split("."))


def _part(name: str, language: Language) -> str:
    if name in i18n.METRICS:
        return i18n.label(i18n.METRICS, name, language)
    return i18n.label(i18n.COLUMNS, name, language)
