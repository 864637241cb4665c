"""What every bulk import shares (roster, targets): reading JSON or CSV as a spreadsheet writes
it, naming each fault by where it is, and keeping only the first faults of a body of junk.

- Faults are named like the fields they are in: ``reps[3].identities[0].external_id`` in JSON,
  ``line 14: value`` in CSV (the header is line 1). The first ``MAX_PROBLEMS`` are kept, the
  rest counted (``Errors``): a body of a million bad rows costs a counter, not a million objects.
- Items are validated one at a time (``validated``): a short call each, so a thread checking a
  big import lets the event loop run between them.
- CSV comes as Excel writes it (``shared.spreadsheet``): ``,`` or ``;``, UTF-8 with or without a
  BOM or Windows-1252, and decimal commas in the columns that hold numbers.
"""

from __future__ import annotations

import csv
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from shared import spreadsheet
from shared.problems import (
    MAX_FIELD_CHARS,
    MAX_MESSAGE_CHARS,
    MAX_PROBLEMS,
    Problem,
    Unprocessable,
    clip,
    describe,
)


@dataclass(frozen=True, slots=True)
class Error:
    field: str
    message: str


@dataclass(slots=True)
class Errors:
    """The faults of an import as they are found: the first ``MAX_PROBLEMS`` kept, the others
    only counted."""

    kept: list[Error] = field(default_factory=list)
    total: int = 0

    def add(self, error: Error) -> None:
        self.total += 1
        if len(self.kept) < MAX_PROBLEMS:
            self.kept.append(error)

    def extend(self, errors: Iterable[Error]) -> None:
        for error in errors:
            self.add(error)

    def refuse_if_any(self) -> None:
        if self.total:
            raise refusal(self.kept, total=self.total)


def listed(errors: list[Error]) -> list[dict[str, str]]:
    """``errors`` as problem+json lists them: the first ``MAX_PROBLEMS``, each clipped."""
    return [
        {"field": clip(e.field, MAX_FIELD_CHARS), "message": clip(e.message, MAX_MESSAGE_CHARS)}
        for e in errors[:MAX_PROBLEMS]
    ]


def refusal(errors: list[Error], *, status: int = 422, total: int | None = None) -> Problem:
    """The problem naming ``errors``, and how many there were in all (``total``, when only the
    first were kept)."""
    shown = listed(errors)
    count = len(errors) if total is None else total
    detail = f"nothing imported: {describe(shown)}"
    if status == 409:
        return Problem(detail, status=409, slug="conflict", errors=shown, errors_total=count)
    return Unprocessable(detail, errors=shown, errors_total=count)


def refuse_if(errors: list[Error]) -> None:
    if errors:
        raise refusal(errors)


def path(loc: Iterable[int | str], nested: bool = False) -> str:
    """A pydantic location as a path into the body: ``reps[12].identities[0].external_id``."""
    found = ""
    for part in loc:
        if isinstance(part, int):
            found += f"[{part}]"
        else:
            found += f".{part}" if found or nested else str(part)
    return found


def validated(
    model: type[BaseModel], items: Iterable[tuple[Any, str]], errors: Errors
) -> Iterator[Any]:
    """Each valid item of ``items`` (value, its place's prefix: ``reps[3]`` or ``line 4: ``) as
    ``model``; the faults of the others go to ``errors``."""
    for value, prefix in items:
        try:
            yield model.model_validate(value)
        except ValidationError as exc:
            for e in exc.errors(include_url=False, include_input=False, include_context=False):
                nested = not prefix.endswith(" ")  # "reps[3]" + ".name"; "line 4: " + "name"
                where = path(e["loc"], nested)
                errors.add(Error(prefix + where if where else prefix.rstrip(": "), e["msg"]))


def placed(name: str, values: list[Any]) -> Iterator[tuple[Any, str]]:
    """The items of the JSON list ``name``, each with its place (``name[i]``)."""
    return ((value, f"{name}[{i}]") for i, value in enumerate(values))


def json_lists(document: Any, bounds: dict[str, int]) -> dict[str, list[Any]]:
    """The lists a JSON import is made of (``bounds``: name -> most items), checked before any
    item is: an object of those lists only, each within its bound."""
    if not isinstance(document, dict):
        shape = ", ".join(f"{name}: [...]" for name in bounds)
        raise refusal([Error("body", f"must be an object {{{shape}}}")])
    errors = [Error(name, "unknown field") for name in document if name not in bounds]
    lists: dict[str, list[Any]] = {}
    for name, limit in bounds.items():
        value = document.get(name, [])
        if not isinstance(value, list):
            errors.append(Error(name, "must be a list"))
        elif len(value) > limit:
            errors.append(Error(name, f"more than {limit} {name}; split the import"))
        lists[name] = value if isinstance(value, list) else []
    refuse_if(errors)
    return lists


@dataclass(frozen=True, slots=True)
class Table:
    """A CSV import's rows (each a dict by column, numbers read as programs read them) and the
    line each ends on."""

    lines: list[int]
    rows: list[dict[str, str]]


def csv_table(
    body: bytes,
    columns: Collection[str],
    required: Collection[str],
    numbers: Collection[str],
    max_rows: int,
    errors: Errors,
) -> Table:
    """The rows of a CSV body whose header row names its ``columns`` (in any order, any case;
    ``required`` ones present). Rows of the wrong width go to ``errors``; more than
    ``max_rows`` is refused at once."""
    try:
        text = spreadsheet.decode(body)
    except spreadsheet.NotText as exc:
        raise refusal([Error("body", str(exc))]) from None
    comma_decimal = spreadsheet.delimiter(text) != ","
    found = Table([], [])
    named: list[str] | None = None
    try:
        for line, cells in spreadsheet.rows(text):
            if named is None:
                named = _header(cells, columns, required)
                continue
            if len(cells) != len(named):
                errors.add(Error(f"line {line}", _width(named, cells)))
            elif len(found.rows) == max_rows:
                raise refusal([Error("body", f"more than {max_rows} rows; split the import")])
            else:
                row = dict(zip(named, cells, strict=True))
                for column in numbers:
                    if row.get(column):
                        row[column] = spreadsheet.number(row[column], comma_decimal)
                found.lines.append(line)
                found.rows.append(row)
    except csv.Error as exc:
        errors.add(Error("body", f"not CSV: {exc}"))
    if named is None:
        raise refusal([Error("line 1", f"a header row is required: {','.join(columns)}")])
    return found


def _header(cells: list[str], columns: Collection[str], required: Collection[str]) -> list[str]:
    """The columns, by the header row: any order, any case; a 422 naming what is wrong."""
    named = [cell.strip().lower() for cell in cells]
    header = ",".join(columns)
    errors = [
        Error(f"line 1: {c}", f"unknown column; the columns are {header}")
        for c in named
        if c not in columns
    ]
    errors += [Error(f"line 1: {c}", "repeated column") for c in set(named) if named.count(c) > 1]
    errors += [Error(f"line 1: {c}", "missing column") for c in sorted(set(required) - set(named))]
    refuse_if(errors)
    return named


def _width(columns: list[str], cells: list[str]) -> str:
    return f"{len(cells)} values for {len(columns)} columns ({','.join(columns)})"
