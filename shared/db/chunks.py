"""Bulk statements under the drivers' limit on bound parameters (architecture decision 15).

A statement may carry at most ``PARAMETER_LIMIT`` bound parameters whatever the database:

- asyncpg refuses more than 32,767 in one statement (PostgreSQL's wire protocol counts them in
  a 16-bit integer), and raises "the number of query arguments cannot exceed 32767";
- SQLite refuses more than 32,766 (``SQLITE_MAX_VARIABLE_NUMBER`` since 3.32; 999 before, but
  the schema's ``RETURNING`` statements already need 3.35).

So every statement whose parameters grow with its input (a multi-row ``INSERT … VALUES``, an
``IN`` list) is run once per ``chunks`` of its items. ``executemany`` of a list of rows
(``conn.execute(insert, [row, ...])``) needs nothing: SQLAlchemy's "insertmanyvalues" pages it
(at most 1,000 rows and 32,700 parameters a statement), and other executemany statements run
once per row.

``guard`` is the net under all of it: installed on an engine (``create_engine`` does when
``SALESPULSE_GUARD_PARAMETERS=1``, as the test suite sets), it refuses any statement over the
limit before the driver sees it and records it, so a test fails even where the caller would
have isolated the error.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.engine.interfaces import ExecuteStyle

T = TypeVar("T")

PARAMETER_LIMIT = 32_766  # the lower of asyncpg's (32,767) and SQLite's (32,766)
# Left in each chunked statement for its other parameters: a window's tiling (a few ranges of
# three), a scope, a metric. No statement of ours has more than a few dozen.
RESERVED = 766
GUARD_ENV = "SALESPULSE_GUARD_PARAMETERS"


def per_chunk(params_per_item: int, reserved: int = RESERVED) -> int:
    """How many items, of ``params_per_item`` parameters each, one statement may carry."""
    if params_per_item < 1:
        raise ValueError("an item carries at least one parameter")
    return max(1, (PARAMETER_LIMIT - reserved) // params_per_item)


def chunks(
    items: Sequence[T], params_per_item: int = 1, *, reserved: int = RESERVED
) -> Iterator[Sequence[T]]:
    """``items`` in consecutive slices small enough for one statement each; none if empty."""
    size = per_chunk(params_per_item, reserved)
    for start in range(0, len(items), size):
        yield items[start : start + size]


class TooManyParameters(AssertionError):
    """A statement carries more bound parameters than the drivers take (a bug: chunk it)."""


violations: list[str] = []  # what the guard refused, for the test suite to fail on


def parameter_count(parameters: Any, executemany: bool) -> int:
    """The parameters of the largest single statement among ``parameters`` (as the DBAPI
    cursor gets them: a sequence or a mapping, or for ``executemany`` a list of those)."""
    if not parameters:
        return 0
    return max(len(one) for one in parameters) if executemany else len(parameters)


def _check(
    conn: Connection,
    cursor: Any,
    statement: str,
    parameters: Any,
    context: Any,
    executemany: bool,
) -> None:
    # A page of "insertmanyvalues" comes flat, one statement's, though flagged executemany.
    paged = getattr(context, "execute_style", None) is ExecuteStyle.INSERTMANYVALUES
    count = parameter_count(parameters, executemany and not paged)
    if count > PARAMETER_LIMIT:
        problem = f"{count} bound parameters (limit {PARAMETER_LIMIT}) in: {statement[:200]}"
        violations.append(problem)
        raise TooManyParameters(problem)


def guard(engine: Engine) -> None:
    """Refuse (and record in ``violations``) every statement of ``engine`` over the limit."""
    if not event.contains(engine, "before_cursor_execute", _check):
        event.listen(engine, "before_cursor_execute", _check)
