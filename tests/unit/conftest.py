from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.db.engine import create_engine
from shared.db.migrate import migrate


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """A real SQLite database in a file, with the schema."""
    engine = create_engine(f"sqlite:///{tmp_path / 'api.db'}")
    await migrate(engine)
    yield engine
    await engine.dispose()
