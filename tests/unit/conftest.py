from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services.api.app import create_app
from shared.db.engine import create_engine
from shared.db.migrate import migrate
from shared.settings import Settings


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """A real SQLite database in a file, with the schema."""
    engine = create_engine(f"sqlite:///{tmp_path / 'api.db'}")
    await migrate(engine)
    yield engine
    await engine.dispose()


@pytest.fixture
async def client(
    make_settings: Callable[..., Settings], db: AsyncEngine
) -> AsyncIterator[httpx.AsyncClient]:
    """The API app over ``db``, called in-process."""
    app = create_app(make_settings(), db)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as c:
        yield c
