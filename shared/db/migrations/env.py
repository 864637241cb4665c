"""Alembic's environment: the database of ``SALESPULSE_DATABASE_URL`` (or the connection that
``shared.db.migrate`` hands over), the metadata of ``shared.db.models``.

Before migrating, a database made by a release that had no migrations yet (no
``alembic_version`` table, SalesPulse tables present) is adopted: its shape is checked against
the baseline revision and it is stamped with it, so ``alembic upgrade head`` upgrades it in
place with its data.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import Connection, text
from sqlmodel import SQLModel

from shared.db.adopt import adopt_unversioned
from shared.db.engine import create_engine
from shared.settings import Settings

target_metadata = SQLModel.metadata


MIGRATION_LOCK = 0x5A1E5  # processes migrating at once (replicas' init steps) go one by one


def run_migrations(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":  # held until the transaction ends
        connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": MIGRATION_LOCK})
    adopt_unversioned(connection)
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters by copying
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_on_settings_database() -> None:
    engine = create_engine(Settings().database_url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(run_migrations)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported: run them on a database")
handed_over = context.config.attributes.get("connection")
if handed_over is not None:
    run_migrations(handed_over)
else:
    asyncio.run(run_on_settings_database())
