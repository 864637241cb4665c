"""``Accept: text/csv`` on every GET that returns rows.

Exports are opened in spreadsheets, which run a cell beginning with ``=``, ``+``, ``-``, ``@``,
tab or carriage return as a formula: a rep named ``=HYPERLINK(...)`` would become a link, or
worse, on the screen of whoever opens the export. Such text cells are prefixed with a single
quote, as OWASP recommends (CSV injection), so the spreadsheet shows them as text; numbers are
left as numbers (a movement of -2 is a number, not a formula). Separators and quotes inside a
cell are quoted by the CSV writer, so no text can begin a cell of its own.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel

from services.api.common.freshness import cache_headers

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def wants_csv(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "text/csv" in accept and "application/json" not in accept.split(",")[0]


def csv_response(
    rows: Sequence[BaseModel],
    headers: dict[str, str],
    name: str,
    columns: Sequence[str] | None = None,
) -> Response:
    data = [_flat(row.model_dump(mode="json")) for row in rows]
    fields = list(columns or (data[0].keys() if data else []))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(data)
    return Response(
        buffer.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={**headers, "Content-Disposition": f'attachment; filename="{name}.csv"'},
    )


@dataclass(frozen=True, slots=True)
class CsvAnswer:
    """Whether the client asked for CSV; and the answer in CSV, with the read's validators."""

    wanted: bool
    response: Response  # the one FastAPI sends, where ``fresh`` set ETag and Cache-Control

    def of(
        self, rows: Sequence[BaseModel], name: str, columns: Sequence[str] | None = None
    ) -> Response:
        return csv_response(rows, cache_headers(self.response), name, columns)


def csv_answer(request: Request, response: Response) -> CsvAnswer:
    return CsvAnswer(wants_csv(request), response)


Csv = Annotated[CsvAnswer, Depends(csv_answer)]


def neutralised(value: Any) -> Any:
    """A text cell a spreadsheet would run as a formula, made inert; anything else as it is."""
    if isinstance(value, str) and value.startswith(FORMULA_TRIGGERS):
        return "'" + value
    return value


def _flat(row: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """One cell per value: a nested object's fields become columns of their own
    (``labels.fr``)."""
    flat: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[prefix + key] = "" if value is None else neutralised(value)
    return flat
