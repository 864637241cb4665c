"""The edge owns the transaction: one connection per request, one transaction per write.

- A read (``GET``) uses one connection for all its queries, opened when first needed and
  closed once the handler has built its response.
- A write uses one transaction: begun when first needed, committed after the handler has
  succeeded, rolled back if it raises. On a deadlock or a serialisation failure the handler runs
  again, whole, in a new transaction (``retrying``): two admins saving at once both succeed.

Routes get the connection as ``Db``; repositories and queries take it and never begin, commit or
roll back. Work that runs outside a request (the leaderboard cache, the live boards, seeding)
opens its own connection from the engine.

What may happen only once a write is committed (a correction published on the bus: whoever reads
it must find its row) a route hands to ``AfterCommit``: run after the commit, before the answer
leaves, never for an attempt rolled back (a run again after a conflict hands its own).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Request, Response
from fastapi.routing import APIRoute
from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared.db.retry import retrying

log = logging.getLogger(__name__)
T = TypeVar("T")
Database = AsyncEngine | AsyncConnection  # a connection, or an engine to take one from
READS = frozenset({"GET", "HEAD"})


class _UnitOfWork:
    """One request's connection (opened lazily: a request may need none) and its fate."""

    def __init__(self, db: AsyncEngine, write: bool) -> None:
        self._db, self._write = db, write
        self._conn: AsyncConnection | None = None
        self._after_commit: list[Callable[[], Awaitable[None]]] = []

    def after_commit(self, action: Callable[[], Awaitable[None]]) -> None:
        self._after_commit.append(action)

    async def connection(self) -> AsyncConnection:
        if self._conn is None:
            self._conn = await self._db.connect()
            if self._write:
                await self._conn.begin()
        return self._conn

    async def finish(self, succeeded: bool) -> None:
        """Commit a write that succeeded; then close, which rolls back anything left open;
        then, the write committed, its ``after_commit`` actions, in order."""
        if self._conn is not None:
            try:
                if self._write and succeeded:
                    await self._conn.commit()
            finally:
                await self._conn.close()
        if succeeded:
            for action in self._after_commit:
                try:
                    await action()
                except Exception:  # committed already: neither a reason to run the write again
                    # (a retry would write it twice) nor to fail an answer whose write stands
                    log.exception("an action after a commit failed", extra={"action": action})


class UnitOfWorkRoute(APIRoute):
    """A route whose request runs as one unit of work on one connection (see the module)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()
        methods = self.methods or set()
        write = not methods <= READS

        async def once(request: Request) -> Response:
            unit = _UnitOfWork(request.app.state.db, write)
            request.state.unit_of_work = unit
            try:
                response = await handle(request)
            except BaseException:
                await unit.finish(succeeded=False)
                raise
            await unit.finish(succeeded=True)
            return response

        if not write:
            return once
        what = f"{'/'.join(sorted(methods))} {self.path}"

        async def run_again_on_conflict(request: Request) -> Response:
            return await retrying(lambda: once(request), what=what)

        return run_again_on_conflict


def api_router(**options: Any) -> APIRouter:
    """A feature's router: each of its requests is one unit of work (``UnitOfWorkRoute``)."""
    return APIRouter(route_class=UnitOfWorkRoute, **options)


async def request_connection(request: Request) -> AsyncConnection:
    unit: _UnitOfWork | None = getattr(request.state, "unit_of_work", None)
    assert unit is not None, "a route that uses the database is made by api_router()"
    return await unit.connection()


Db = Annotated[AsyncConnection, Depends(request_connection)]


def after_commit(request: Request) -> Callable[[Callable[[], Awaitable[None]]], None]:
    """Where a route hands what must run once its write is committed (see the module)."""
    unit: _UnitOfWork | None = getattr(request.state, "unit_of_work", None)
    assert unit is not None, "a route that writes is made by api_router()"
    return unit.after_commit


AfterCommit = Annotated[Callable[[Callable[[], Awaitable[None]]], None], Depends(after_commit)]


@asynccontextmanager
async def connected(db: Database) -> AsyncIterator[AsyncConnection]:
    """``db`` itself when it is a connection; else a connection of the engine, for this block."""
    if isinstance(db, AsyncConnection):
        yield db
        return
    async with db.connect() as conn:
        yield conn


async def in_transaction(
    db: AsyncEngine, work: Callable[[AsyncConnection], Awaitable[T]], *, what: str
) -> T:
    """``work`` as a transaction of its own, run again on a conflict: what a write request
    gets from ``UnitOfWorkRoute``, for callers outside a request (seeding, tests, benchmarks)."""

    async def once() -> T:
        async with db.begin() as conn:
            return await work(conn)

    return await retrying(once, what=what)


async def upsert(conn: AsyncConnection, table: Table, key: str, row: dict[str, Any]) -> None:
    """Insert ``row`` into ``table``, or update its other columns where ``key`` is taken: one
    statement, so two first saves of one id at once both succeed (the second updates)."""
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    statement = insert(table).values(**row)
    changed = {column: statement.excluded[column] for column in row if column != key}
    await conn.execute(statement.on_conflict_do_update(index_elements=[key], set_=changed))
