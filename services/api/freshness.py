"""Conditional reads: an ETag from the version of the data, so a poll that would get the same
answer gets ``304 Not Modified`` before any aggregate is read.

The version is one cheap query: the sum of the KPI service's stored offsets (it moves with every
flush), the time of the last flush, and the roster version (roster and target changes bump it).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Request, Response
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.db.models import ConsumerOffset, RosterVersion, table
from shared.problems import Problem

_offsets, _roster = table(ConsumerOffset), table(RosterVersion)
CACHE_CONTROL = "no-cache"  # store, but revalidate: a 304 costs one tiny query


@dataclass(frozen=True, slots=True)
class DataVersion:
    offsets: int
    updated_at_ms: int
    roster: int

    @property
    def as_of(self) -> datetime:
        """When the aggregates last changed (now, if they never did)."""
        if not self.updated_at_ms:
            return datetime.now(UTC)
        return datetime.fromtimestamp(self.updated_at_ms / 1000, UTC)


async def data_version(db: AsyncEngine) -> DataVersion:
    query = select(
        select(func.coalesce(func.sum(_offsets.c.next_offset), 0)).scalar_subquery(),
        select(func.coalesce(func.max(_offsets.c.updated_at), 0)).scalar_subquery(),
        select(func.coalesce(func.max(_roster.c.version), 0)).scalar_subquery(),
    )
    async with db.connect() as conn:
        offsets, updated, roster = (await conn.execute(query)).one()
    return DataVersion(int(offsets), int(updated), int(roster))


class NotModified(Problem):
    status, slug = 304, "not-modified"


async def fresh(request: Request, response: Response) -> DataVersion:
    """Dependency of every read: sets ETag and Cache-Control, answers 304 when they match."""
    version = await data_version(request.app.state.db)
    tag = etag(version, request)
    if tag in _tags(request.headers.get("if-none-match", "")):
        raise NotModified("not modified", headers={"ETag": tag, "Cache-Control": CACHE_CONTROL})
    response.headers["ETag"] = tag
    response.headers["Cache-Control"] = CACHE_CONTROL
    return version


def cache_headers(response: Response) -> dict[str, str]:
    """The validators set by ``fresh``, for a route that builds its own response."""
    return {k: v for k, v in response.headers.items() if k in ("etag", "cache-control")}


def etag(version: DataVersion, request: Request) -> str:
    """Weak: equal for equal data, whatever the representation's bytes (as_of aside)."""
    source = "|".join(
        [
            str(version.offsets),
            str(version.updated_at_ms),
            str(version.roster),
            request.url.path,
            str(sorted(request.query_params.multi_items())),
            request.headers.get("accept", ""),
        ]
    )
    return f'W/"{hashlib.sha256(source.encode()).hexdigest()[:32]}"'


def _tags(header: str) -> set[str]:
    return {t.strip() for t in header.split(",") if t.strip()}


Fresh = Annotated[DataVersion, Depends(fresh)]
