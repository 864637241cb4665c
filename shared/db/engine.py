"""Async engines for SQLite (embedded default) and PostgreSQL, built where they are used."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlmodel import SQLModel

from shared.db import models as _models  # noqa: F401  (registers the tables)

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
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    engine = create_async_engine(async_url(url), **kwargs)
    if engine.dialect.name == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


_SCHEMA_LOCK = 0x5A1E5  # advisory lock id: services starting together create tables one by one


async def create_schema(engine: AsyncEngine) -> None:
    """Create missing tables and add missing columns (idempotent; several services may race to
    do it at start). Only additive changes are made this way: anything else needs a migration."""
    async with engine.begin() as conn:
        if is_postgres(engine):
            await conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _SCHEMA_LOCK})
        await conn.run_sync(SQLModel.metadata.create_all, checkfirst=True)
        await conn.run_sync(_add_missing_columns)


def _add_missing_columns(conn: Connection) -> None:
    """A column added to a model reaches a database created before it (with its default)."""
    inspector = inspect(conn)
    for table in SQLModel.metadata.sorted_tables:
        present = {c["name"] for c in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name in present:
                continue
            kind = column.type.compile(dialect=conn.dialect)
            default = getattr(column.default, "arg", None)
            if default is None and not column.nullable:
                raise RuntimeError(f"{table.name}.{column.name} needs a migration: no default")
            tail = f" NOT NULL DEFAULT {int(default)}" if default is not None else ""
            statement = f"ALTER TABLE {table.name} ADD COLUMN {column.name} {kind}{tail}"
            conn.execute(text(statement))  # names from our own metadata, not from input


def is_postgres(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "postgresql"
