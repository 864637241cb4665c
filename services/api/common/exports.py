"""Every GET that returns rows answers JSON, CSV or an Excel workbook: the ``Export`` dependency.

A route takes ``export: Export`` and, when ``export.wanted``, answers ``export.of(rows, name)``
instead of its JSON; the rows are written by ``spreadsheets`` (flattened, typed, formula-safe).
The format is chosen by ``?format=json|csv|xlsx``, else by the ``Accept`` header (``text/csv``,
``application/vnd.openxmlformats-officedocument.spreadsheetml.sheet``; the first listed wins
among equal q-values), else JSON. ``?dialect=excel-fr`` gives a CSV as French Excel opens it
(and asks for CSV by itself when nothing else asked for a file).

Every format keeps the read's validators (``freshness``): the ETag covers the query string and
the ``Accept`` header, so each format has its own.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import Depends, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from starlette.types import Receive, Scope, Send

from services.api.common.freshness import cache_headers
from services.api.common.params import AppSettings
from services.api.common.spreadsheets import Column, Dialect, Row, csv_text, table_of, xlsx_bytes
from shared.settings import Settings

Format = Literal["json", "csv", "xlsx"]
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MEDIA_TYPES: dict[str, Format] = {"application/json": "json", "text/csv": "csv", XLSX: "xlsx"}
FORMAT_DOC = "json, csv or xlsx (Excel); default: by the Accept header, else json"
DIALECT_DOC = (
    "CSV dialect: rfc4180 (`,` and `.`, what programs expect) or excel-fr (`;`, a decimal "
    "comma, a UTF-8 BOM and local times, as French Excel opens them; implies format=csv)"
)


def negotiated(accept: str) -> Format:
    """The format an ``Accept`` header prefers: the highest q-value, the first listed among
    equals; JSON when it names none of the three."""
    best: tuple[float, int, Format] | None = None
    for position, item in enumerate(accept.split(",")):
        media, *params = (part.strip() for part in item.split(";"))
        found = MEDIA_TYPES.get(media.lower())
        weight = _quality(params)
        if found is not None and weight > 0:
            candidate = (-weight, position, found)
            best = candidate if best is None or candidate < best else best
    return best[2] if best is not None else "json"


def _quality(params: list[str]) -> float:
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "q":
            try:
                return float(value)
            except ValueError:
                return 0.0
    return 1.0


@dataclass(frozen=True, slots=True)
class ExportAnswer:
    """What the client asked for; and the answer in that format, with the read's validators."""

    format: Format
    dialect: Dialect
    response: Response  # the one FastAPI sends, where ``fresh`` set ETag and Cache-Control
    settings: Settings  # the organisation's language (a workbook's headers) and time zone

    @property
    def wanted(self) -> bool:
        """Whether the client asked for a file (CSV or xlsx) rather than the route's JSON."""
        return self.format != "json"

    def of(
        self, rows: Sequence[Row], name: str, columns: Sequence[str | Column] | None = None
    ) -> Response:
        """``rows`` as the file asked for, named ``name`` (``.csv`` or ``.xlsx``); ``columns``
        chooses and orders them (default: every field of the rows, nested ones flattened)."""
        settings, dialect = self.settings, self.dialect
        if self.format == "xlsx":
            media_type, filename = XLSX, f"{name}.xlsx"

            def render() -> bytes:
                return xlsx_bytes(table_of(rows, columns), name, settings.language, settings.tz)

        else:
            media_type, filename = "text/csv; charset=utf-8", f"{name}.csv"

            def render() -> bytes:
                return csv_text(table_of(rows, columns), dialect, settings.tz).encode()

        disposition = {"Content-Disposition": f'attachment; filename="{filename}"'}
        headers = {**cache_headers(self.response), **disposition}
        return RenderedFile(render, media_type, headers)


class RenderedFile(Response):
    """A file written in a worker thread as it is sent: a workbook of 10,000 rows takes most of
    a second of CPU, which every other request on the event loop would otherwise wait for."""

    def __init__(self, render: Callable[[], bytes], media_type: str, headers: dict[str, str]):
        super().__init__(media_type=media_type, headers=headers)
        self._render = render

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.body = await run_in_threadpool(self._render)
        self.headers["content-length"] = str(len(self.body))
        await super().__call__(scope, receive, send)


def export_answer(
    request: Request,
    response: Response,
    settings: AppSettings,
    format_: Annotated[Format | None, Query(alias="format", description=FORMAT_DOC)] = None,
    dialect: Annotated[Dialect, Query(description=DIALECT_DOC)] = "rfc4180",
) -> ExportAnswer:
    chosen = format_ or negotiated(request.headers.get("accept", ""))
    if format_ is None and chosen == "json" and dialect == "excel-fr":
        chosen = "csv"
    return ExportAnswer(chosen, dialect, response, settings)


Export = Annotated[ExportAnswer, Depends(export_answer)]
