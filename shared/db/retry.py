"""How a database failure is classified, and the retry every write transaction goes through.

Three kinds of failure reach a writer (architecture decision 11):

- a *conflict* between concurrent transactions (deadlock, serialisation failure, SQLite's
  "database is locked"): the same transaction, run again, succeeds; ``retrying`` does that;
- the database being *unavailable* (connection refused or lost, shutting down, out of
  connections): nothing to do but wait and try again later; the caller decides how long;
- anything else is about the data (a value too long for its column, a constraint) or a bug:
  retrying cannot help.

Errors arrive wrapped by SQLAlchemy (``DBAPIError.orig``) or, from the raw asyncpg writes of the
flush, unwrapped; both are recognised by their SQLSTATE.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

from sqlalchemy import exc as sa_exc

log = logging.getLogger(__name__)
T = TypeVar("T")

CONFLICT_SQLSTATES = frozenset({"40P01", "40001"})  # deadlock detected, serialization failure
# Connection exceptions (08), insufficient resources (53), operator intervention (57P01-57P03:
# admin/crash shutdown, cannot connect now).
_UNAVAILABLE_CLASSES = ("08", "53")
_UNAVAILABLE_SQLSTATES = frozenset({"57P01", "57P02", "57P03"})


class ConcurrentInsert(Exception):
    """A row this transaction found missing, then inserted, was inserted by another one first:
    a conflict, like a serialisation failure (running the transaction again finds the row)."""

    sqlstate = "40001"


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception, what it wraps (``orig``), and its causes, each once."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        todo += [getattr(current, "orig", None), current.__cause__, current.__context__]


def sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a database error, wrapped or not (None if it has none)."""
    for link in _chain(exc):
        code = getattr(link, "sqlstate", None) or getattr(link, "pgcode", None)
        if isinstance(code, str):
            return code
    return None


def is_conflict(exc: BaseException) -> bool:
    """A deadlock or serialisation failure: running the transaction again will do."""
    code = sqlstate(exc)
    if code in CONFLICT_SQLSTATES:
        return True
    return any("database is locked" in str(link) for link in _chain(exc))


def is_unavailable(exc: BaseException) -> bool:
    """The database cannot be reached or is going away: wait, then try again."""
    code = sqlstate(exc)
    if code is not None and (code[:2] in _UNAVAILABLE_CLASSES or code in _UNAVAILABLE_SQLSTATES):
        return True
    for link in _chain(exc):
        if isinstance(link, OSError | sa_exc.TimeoutError):  # refused, reset, timed out
            return True
        if isinstance(link, sa_exc.DBAPIError) and link.connection_invalidated:
            return True
        if _asyncpg_outage(link):
            return True
    return False


# asyncpg's names for a connection that is gone or was never made (matched by module and name:
# asyncpg is not imported where SQLite alone is in use; SQLAlchemy's and sqlite3's own
# InterfaceError are usage errors, not outages).
_UNAVAILABLE_DRIVER_ERRORS = frozenset(
    {
        "ConnectionDoesNotExistError",
        "ConnectionFailureError",
        "PostgresConnectionError",
        "CannotConnectNowError",
        "ConnectionRejectionError",
        "TooManyConnectionsError",
        "AdminShutdownError",
        "CrashShutdownError",
    }
)
# asyncpg's InterfaceError is mostly a misuse of the driver, i.e. a bug ("the number of query
# arguments cannot exceed 32767", "another operation is in progress"): an outage only when it
# says the connection (or the pool) is gone. Taken for an outage, a bug was retried for ever.
_CONNECTION_GONE = ("connection is closed", "connection was closed", "connection lost",
                    "pool is closed", "pool is closing")  # fmt: skip


def _asyncpg_outage(link: BaseException) -> bool:
    kind = type(link)
    if not kind.__module__.startswith("asyncpg"):
        return False
    if kind.__name__ == "InterfaceError":
        message = str(link).lower()
        return any(gone in message for gone in _CONNECTION_GONE)
    return kind.__name__ in _UNAVAILABLE_DRIVER_ERRORS


async def retrying(
    transaction: Callable[[], Awaitable[T]], *, attempts: int = 5, what: str = "transaction"
) -> T:
    """Run ``transaction`` (which opens, commits and closes its own transaction), again on a
    conflict, up to ``attempts`` times with a short, jittered backoff; other errors propagate."""
    for attempt in range(1, attempts + 1):
        try:
            return await transaction()
        except Exception as exc:
            if attempt == attempts or not is_conflict(exc):
                raise
            delay = 0.02 * 2**attempt * (0.5 + random.random())  # jitter
            log.warning(
                "transaction conflict; retrying",
                extra={"what": what, "attempt": attempt, "error": repr(exc)[:300]},
            )
            await asyncio.sleep(delay)
    raise AssertionError("unreachable")
