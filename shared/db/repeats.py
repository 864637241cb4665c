"""Telling a bug from an outage (architecture decision 15).

An error classified as "the database is unavailable" that comes back identically, try after
try, while the database answers a trivial query, is not an outage: it is a bug (a statement the
driver refuses, say) that waiting will never fix. Retried silently as an outage, it once stopped
the KPI service for good. So a step that keeps failing counts its identical failures in a row
(``Repeats``), and past ``REPEATS`` of them probes the database: if it answers, the caller
treats the failure as a bug, isolated like bad data or reported loudly (``log_failure``).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

REPEATS = 3  # identical failures in a row before the database is asked whether it is up
PROBE_TIMEOUT_S = 5.0  # a database that takes longer to answer SELECT 1 is not healthy


def fingerprint(exc: BaseException) -> str:
    """What makes two failures "the same error": its kind and its message."""
    return f"{type(exc).__name__}: {exc}"[:2000]


class Repeats:
    """Consecutive failures of one step, and how many in a row were the same error."""

    def __init__(self) -> None:
        self.last: str | None = None
        self.count = 0

    def note(self, exc: BaseException) -> int:
        """Count ``exc``: how many identical failures in a row, it included."""
        seen = fingerprint(exc)
        self.count = self.count + 1 if seen == self.last else 1
        self.last = seen
        return self.count

    def clear(self) -> None:
        """The step succeeded: the next failure starts a new count."""
        self.last, self.count = None, 0


async def database_answers(db: AsyncEngine) -> bool:
    """Whether the database answers a trivial query now, within ``PROBE_TIMEOUT_S``."""
    try:
        async with asyncio.timeout(PROBE_TIMEOUT_S), db.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception:  # any failure means "not answering": not healthy
        return False
    return True


async def is_a_bug(repeats: Repeats, exc: BaseException, db: AsyncEngine) -> bool:
    """Count ``exc``; True once it has repeated ``REPEATS`` times identically and the
    database answers meanwhile."""
    return repeats.note(exc) >= REPEATS and await database_answers(db)


async def log_failure(
    log: logging.Logger, what: str, exc: BaseException, repeats: Repeats, db: AsyncEngine
) -> None:
    """A poller's failed round: a warning ("``what`` failed; retrying"), or an ERROR once the
    same error repeats on a database that answers, since waiting will not fix a bug."""
    extra: dict[str, Any] = {"error": repr(exc)[:300], "repeats": repeats.count + 1}
    if await is_a_bug(repeats, exc, db):
        log.error(f"{what} fails the same way on a healthy database: a bug, not an outage",
                  extra=extra)  # fmt: skip
    else:
        log.warning(f"{what} failed; retrying", extra=extra)
