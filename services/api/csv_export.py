"""``Accept: text/csv`` on every GET that returns rows."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from pydantic import BaseModel


def wants_csv(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "text/csv" in accept and "application/json" not in accept.split(",")[0]


def csv_response(
    rows: Sequence[BaseModel],
    headers: dict[str, str],
    name: str,
    columns: Sequence[str] | None = None,
) -> Response:
    data = [row.model_dump(mode="json") for row in rows]
    fields = list(columns or (data[0].keys() if data else []))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(_flat(r) for r in data)
    return Response(
        buffer.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={**headers, "Content-Disposition": f'attachment; filename="{name}.csv"'},
    )


def _flat(row: dict[str, Any]) -> dict[str, Any]:
    return {k: "" if v is None else v for k, v in row.items()}
