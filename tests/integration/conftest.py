from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.db.engine import create_engine
from shared.db.migrate import migrate
from tests.conftest import fresh_postgres_database


@pytest.fixture(params=["sqlite", "postgres"])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """The same tests on the embedded SQLite and on a real PostgreSQL."""
    async with AsyncExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite:///{tmp_path / 'kpi.db'}"
        else:
            admin_url = request.getfixturevalue("postgres_admin_url")
            url = await stack.enter_async_context(fresh_postgres_database(admin_url))
        engine = create_engine(url)
        await migrate(engine)
        yield engine
        await engine.dispose()
