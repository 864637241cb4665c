"""The schema is versioned (architecture decision 13): Alembic migrations under
``shared/db/migrations``, applied by ``salespulse migrate`` (or ``alembic upgrade head``).

Services do not change the schema: at start they check that the database is at the revision
this code needs, and refuse to start otherwise, saying which command to run. ``make run`` and
the tests migrate their own databases.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

MIGRATIONS = Path(__file__).parent / "migrations"


class SchemaBehind(RuntimeError):
    """The database is not at the revision this release needs."""


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "no migration found"
    return head


async def migrate(db: AsyncEngine, revision: str = "head") -> None:
    """Bring the database to the head revision (or ``revision``), adopting one made before
    migrations."""
    async with db.begin() as conn:
        await conn.run_sync(lambda sync: command.upgrade(alembic_config(sync), revision))


async def current_revision(db: AsyncEngine) -> str | None:
    async with db.connect() as conn:
        return await conn.run_sync(
            lambda sync: MigrationContext.configure(sync).get_current_revision()
        )


async def require_current(db: AsyncEngine) -> None:
    """Raise ``SchemaBehind`` unless the database is at the head revision."""
    current, head = await current_revision(db), head_revision()
    if current != head:
        raise SchemaBehind(
            f"the database schema is at {current or 'no revision'} and this release needs "
            f"{head}: run `salespulse migrate` (or `alembic upgrade head`) first"
        )
