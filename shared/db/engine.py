"""Async engines for SQLite (embedded default) and PostgreSQL, built where they are used."""

from __future__ import annotations

import os
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from shared.db import models as _models  # noqa: F401  (registers the tables)
from shared.db.chunks import GUARD_ENV, guard

_ASYNC_DRIVERS = {
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
    "sqlite": "sqlite+aiosqlite",
}


def async_url(url: str) -> str:
    """``postgresql://u:p@h/db`` -> ``postgresql+asyncpg://...``; the driver is our business."""
    parsed = make_url(url)
    driver = _ASYNC_DRIVERS.get(parsed.drivername)
    if driver is None and parsed.drivername not in _ASYNC_DRIVERS.values():
        raise ValueError(f"unsupported database URL scheme {parsed.drivername!r}")
    return parsed.set(drivername=driver or parsed.drivername).render_as_string(hide_password=False)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # FULL: a commit is on disk when it returns, so an event answered 202 survives a power cut,
    # not only a crash of the process (NORMAL, in WAL mode, may lose the last commits to one).
    # The log's group commit makes it one fsync per group: about 10 % fewer single-event
    # webhooks a second in the bench, batches alike.
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    # A statement's values never appear in an error's text (a failed write of a channel would
    # otherwise log its secret and its URL's token with the traceback).
    kwargs.setdefault("hide_parameters", True)
    engine = create_async_engine(async_url(url), **kwargs)
    if engine.dialect.name == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    if os.environ.get(GUARD_ENV) == "1":  # the test suite's net under every bulk statement
        guard(engine.sync_engine)
    return engine
