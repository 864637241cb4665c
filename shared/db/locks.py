"""A lock one process holds on a database for as long as it lives, and no longer.

The log's consumer takes one per group and topic: two processes reading one log would both
move its position. The lock dies with its holder, whatever kills it, so a restart after a
SIGKILL takes it at once (a lease in a table would make the restart wait out its term):

- on PostgreSQL, a session-level advisory lock on a connection kept for the purpose (the server
  releases it when that connection closes, as the kernel does for a killed process);
- on SQLite, an ``flock`` on a file beside the database (released when the process's descriptor
  closes). SQLite's own locks are per transaction; the database must be on a local disk, as
  SQLite's WAL mode requires anyway;
- on an in-memory SQLite database, a name held in this process (no other process can see it).
"""

from __future__ import annotations

import fcntl
import logging
import os
import zlib
from typing import ClassVar

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

log = logging.getLogger(__name__)

_NAMESPACE = 0x5A1E5  # the first key of our advisory locks: SalesPulse's, whatever the name


class HeldLock:
    """``try_acquire`` once, ``still_held`` now and then, ``release`` at the end."""

    _in_process: ClassVar[set[tuple[str, str]]] = set()

    def __init__(self, db: AsyncEngine, name: str) -> None:
        self._db = db
        self._name = name
        self._conn: AsyncConnection | None = None  # PostgreSQL: the session holding the lock
        self._fd: int | None = None  # SQLite on a file: the locked descriptor
        self._local: tuple[str, str] | None = None  # in-memory SQLite

    @property
    def held(self) -> bool:
        return self._conn is not None or self._fd is not None or self._local is not None

    async def try_acquire(self) -> bool:
        """Take the lock if nobody holds it; False (at once) if someone does."""
        if self.held:
            return True
        if self._db.dialect.name == "postgresql":
            return await self._try_advisory()
        path = make_url(str(self._db.url)).database
        if not path or path == ":memory:":
            key = (str(self._db.url), self._name)
            if key in HeldLock._in_process:
                return False
            HeldLock._in_process.add(key)
            self._local = key
            return True
        return self._try_flock(f"{path}.{_safe(self._name)}.lock")

    async def still_held(self) -> bool:
        """Whether the lock is still ours (a PostgreSQL session can be lost with its lock)."""
        if self._conn is None:
            return self.held
        try:
            await self._conn.execute(text("SELECT 1"))
            await self._conn.commit()
        except Exception as exc:  # the session is gone, and the lock with it
            log.warning("database lock lost", extra={"lock": self._name, "error": repr(exc)[:200]})
            await self._drop_connection()
            return False
        return True

    async def release(self) -> None:
        if self._conn is not None:
            try:
                await self._conn.execute(
                    text("SELECT pg_advisory_unlock(:ns, :key)"),
                    {"ns": _NAMESPACE, "key": _key(self._name)},
                )
                await self._conn.commit()
            except Exception:  # closing the session releases it anyway
                log.debug("advisory unlock failed; closing the session releases it")
            await self._drop_connection()
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None
        if self._local is not None:
            HeldLock._in_process.discard(self._local)
            self._local = None

    async def _try_advisory(self) -> bool:
        conn = await self._db.connect()
        try:
            got = await conn.scalar(
                text("SELECT pg_try_advisory_lock(:ns, :key)"),
                {"ns": _NAMESPACE, "key": _key(self._name)},
            )
            await conn.commit()  # a session lock outlives the transaction; none is left open
        except BaseException:
            await conn.close()
            raise
        if not got:
            await conn.close()
            return False
        self._conn = conn
        return True

    def _try_flock(self, path: str) -> bool:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    async def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                await conn.close()
            except Exception:  # already broken: nothing left to release
                log.debug("closing a lost lock's session failed")


def _key(name: str) -> int:
    """The second key of the advisory lock: a 31-bit hash of the name."""
    return zlib.crc32(name.encode()) & 0x7FFFFFFF


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
