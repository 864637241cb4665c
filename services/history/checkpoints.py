"""Where each import got to (``history_imports``): read at start, written after every batch the
bus acknowledged, forgotten on ``--restart``. The loader's only SQL."""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.db.models import HistoryImport, table

_imports = table(HistoryImport)


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """An input's lines up to ``line`` are published (``published`` events in all runs); the
    input resumes from ``mark``, its own resume point."""

    line: int
    mark: str
    published: int
    finished: bool = False


class Checkpoints:
    def __init__(self, db: AsyncEngine) -> None:
        self._db = db

    async def get(self, key: str) -> Checkpoint | None:
        query = select(
            _imports.c.line, _imports.c.mark, _imports.c.published, _imports.c.finished_at
        ).where(_imports.c.key == key)
        async with self._db.connect() as conn:
            found = (await conn.execute(query)).first()
        if found is None:
            return None
        line, mark, published, finished_at = found
        return Checkpoint(int(line), str(mark), int(published), finished_at is not None)

    async def save(self, key: str, label: str, checkpoint: Checkpoint) -> None:
        now = int(time.time())
        values = {
            "line": checkpoint.line,
            "mark": checkpoint.mark,
            "published": checkpoint.published,
            "updated_at": now,
            "finished_at": now if checkpoint.finished else None,
        }
        insert = postgresql.insert if self._db.dialect.name == "postgresql" else sqlite.insert
        statement = insert(_imports).values(key=key, label=label[:1024], **values)
        statement = statement.on_conflict_do_update(index_elements=["key"], set_=values)
        async with self._db.begin() as conn:
            await conn.execute(statement)

    async def forget(self, key: str) -> None:
        async with self._db.begin() as conn:
            await conn.execute(delete(_imports).where(_imports.c.key == key))
