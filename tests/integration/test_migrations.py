"""The versioned schema on SQLite and PostgreSQL: head matches the models, a database that is
behind is refused by the services, one that is not SalesPulse's shape is left alone."""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import SQLModel

from services.kpi.app import build_kpi_service
from shared.bus.memory import MemoryBus
from shared.db.adopt import UnrecognisedSchema
from shared.db.engine import create_engine
from shared.db.migrate import SchemaBehind, current_revision, head_revision, migrate
from shared.settings import Settings
from tests.kpi_rig import SALESPULSE, free_port


def _differences(connection: Connection) -> list[object]:
    return list(compare_metadata(MigrationContext.configure(connection), SQLModel.metadata))


async def test_a_migrated_database_is_at_head_and_matches_the_models(db: AsyncEngine) -> None:
    assert await current_revision(db) == head_revision()
    async with db.connect() as conn:
        assert await conn.run_sync(_differences) == []
    await migrate(db)  # again: nothing to do
    assert await current_revision(db) == head_revision()


async def test_the_kpi_service_refuses_a_schema_that_is_behind(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = make_settings(database_url=f"sqlite:///{tmp_path / 'behind.db'}")
    db = create_engine(settings.database_url)
    try:
        service = build_kpi_service(settings, MemoryBus(), db)
        with pytest.raises(SchemaBehind, match="salespulse migrate"):
            await asyncio.wait_for(service.run(asyncio.Event()), 10)
    finally:
        await db.dispose()


def test_the_api_process_refuses_to_start_on_a_schema_that_is_behind(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "SALESPULSE_DATABASE_URL": f"sqlite:///{tmp_path / 'behind.db'}",
        "SALESPULSE_API_PORT": str(free_port()),
        "SALESPULSE_API_KEYS": "k:read",
    }
    done = subprocess.run(
        [str(SALESPULSE), "api"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode != 0
    assert "salespulse migrate" in done.stderr


async def test_tables_of_an_unknown_shape_are_not_adopted(tmp_path: Path) -> None:
    db = create_engine(f"sqlite:///{tmp_path / 'odd.db'}")
    try:
        async with db.begin() as conn:
            await conn.execute(text("CREATE TABLE kpi_buckets (something TEXT)"))
        with pytest.raises(UnrecognisedSchema, match=r"kpi_buckets\.value"):
            await migrate(db)
        assert await current_revision(db) is None
    finally:
        await db.dispose()


async def test_the_version_rows_exist_before_any_change(db: AsyncEngine) -> None:
    """Concurrent first roster changes update one row; none races to insert it."""
    async with db.connect() as conn:
        roster = (await conn.execute(text("SELECT id, version FROM roster_version"))).all()
        targets = (await conn.execute(text("SELECT id FROM targets_version"))).all()
    assert [tuple(r) for r in roster] == [(1, 0)]
    assert [tuple(r) for r in targets] == [(1,)]
