"""The retry every write transaction goes through: a conflict runs the transaction again, any
other failure reaches the caller at once."""

from __future__ import annotations

import pytest
from sqlalchemy import exc as sa_exc

from shared.db.retry import is_conflict, is_unavailable, retrying


class DriverError(Exception):
    """What asyncpg raises: the SQLSTATE as an attribute."""

    def __init__(self, sqlstate: str) -> None:
        super().__init__(f"SQLSTATE {sqlstate}")
        self.sqlstate = sqlstate


def wrapped(sqlstate: str) -> sa_exc.DBAPIError:
    """The same error as SQLAlchemy hands it over (``orig`` holds the driver's)."""
    return sa_exc.OperationalError("UPDATE roster_version ...", {}, DriverError(sqlstate))


class Transaction:
    """A transaction that fails with ``errors`` in turn, then commits."""

    def __init__(self, *errors: Exception) -> None:
        self.errors, self.runs = list(errors), 0

    async def __call__(self) -> str:
        self.runs += 1
        if self.errors:
            raise self.errors.pop(0)
        return "committed"


@pytest.mark.parametrize("error", [DriverError("40P01"), wrapped("40P01"), wrapped("40001")])
def test_deadlocks_and_serialisation_failures_are_conflicts(error: Exception) -> None:
    assert is_conflict(error)
    assert not is_unavailable(error)


def test_sqlite_busy_is_a_conflict_and_a_refused_connection_is_unavailable() -> None:
    assert is_conflict(sa_exc.OperationalError("x", {}, Exception("database is locked")))
    assert is_unavailable(ConnectionRefusedError("connection refused"))
    assert is_unavailable(wrapped("57P01"))  # admin shutdown: PostgreSQL restarting
    assert not is_conflict(wrapped("23505"))  # a unique violation: about the data


async def test_a_deadlock_runs_the_transaction_again() -> None:
    transaction = Transaction(wrapped("40P01"), DriverError("40001"))
    assert await retrying(transaction, what="test") == "committed"
    assert transaction.runs == 3


async def test_other_failures_are_not_retried() -> None:
    transaction = Transaction(wrapped("23505"))
    with pytest.raises(sa_exc.OperationalError):
        await retrying(transaction, what="test")
    assert transaction.runs == 1


async def test_a_conflict_that_persists_is_raised_after_the_last_attempt() -> None:
    transaction = Transaction(*(wrapped("40P01") for _ in range(5)))
    with pytest.raises(sa_exc.OperationalError):
        await retrying(transaction, attempts=3, what="test")
    assert transaction.runs == 3


def test_usage_errors_named_like_an_asyncpg_outage_are_not_outages() -> None:
    import sqlite3

    from sqlalchemy import exc as sa_exc

    from shared.db.retry import is_unavailable

    assert not is_unavailable(sqlite3.InterfaceError("Error binding parameter"))
    assert not is_unavailable(sa_exc.InterfaceError("stmt", {}, Exception("usage")))


def test_an_asyncpg_interface_error_is_an_outage_only_when_the_connection_is_gone() -> None:
    """asyncpg raises InterfaceError for a closed connection and for misuses alike; a misuse
    (a statement over the parameter limit) taken for an outage was retried for ever."""
    from asyncpg.exceptions import InterfaceError
    from sqlalchemy import exc as sa_exc

    from shared.db.retry import is_unavailable

    too_many = InterfaceError("the number of query arguments cannot exceed 32767")
    assert not is_unavailable(too_many)
    assert not is_unavailable(sa_exc.InterfaceError("INSERT ...", None, too_many))
    assert not is_unavailable(
        InterfaceError("cannot perform operation: another operation is in progress")
    )
    assert is_unavailable(InterfaceError("cannot perform operation: connection is closed"))
    assert is_unavailable(
        sa_exc.InterfaceError("SELECT 1", None, InterfaceError("connection is closed"))
    )
    assert is_unavailable(InterfaceError("pool is closing"))
