"""Conditional reads: an ETag from the version of the data, so a poll that would get the same
answer gets ``304 Not Modified`` before any aggregate is read.

The version is one cheap query: the sum of the KPI service's stored offsets (it moves with every
flush), the time of the last flush, the roster version (every roster change bumps it), the
targets version (every target change bumps it; the KPI service does not read targets, so it
does not reload its roster for them) and the contests version (every contest change or
settlement bumps it).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Request, Response
from sqlalchemy import Table, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from services.api.common.database import Database, Db, connected
from shared.db.models import ConsumerOffset, ContestsVersion, RosterVersion, TargetsVersion, table
from shared.problems import Problem

_offsets, _roster, _targets = table(ConsumerOffset), table(RosterVersion), table(TargetsVersion)
_contests = table(ContestsVersion)
CACHE_CONTROL = "no-cache"  # store, but revalidate: a 304 costs one tiny query


@dataclass(frozen=True, slots=True)
class DataVersion:
    offsets: int
    updated_at_ms: int
    roster: int
    targets: int
    contests: int = 0

    @property
    def as_of(self) -> datetime:
        """When the aggregates last changed (now, if they never did)."""
        if not self.updated_at_ms:
            return datetime.now(UTC)
        return datetime.fromtimestamp(self.updated_at_ms / 1000, UTC)


async def data_version(db: Database) -> DataVersion:
    query = select(
        select(func.coalesce(func.sum(_offsets.c.next_offset), 0)).scalar_subquery(),
        select(func.coalesce(func.max(_offsets.c.updated_at), 0)).scalar_subquery(),
        select(func.coalesce(func.max(_roster.c.version), 0)).scalar_subquery(),
        select(func.coalesce(func.max(_targets.c.version), 0)).scalar_subquery(),
        select(func.coalesce(func.max(_contests.c.version), 0)).scalar_subquery(),
    )
    async with connected(db) as conn:
        offsets, updated, roster, targets, contests = (await conn.execute(query)).one()
    return DataVersion(int(offsets), int(updated), int(roster), int(targets), int(contests))


async def bump_version(conn: AsyncConnection, versions: Table) -> None:
    """Count a change in the one-row table ``versions`` (the roster's or the targets'); the
    migrations create the row, so concurrent first changes cannot race to insert it."""
    bumped = await conn.execute(
        update(versions).where(versions.c.id == 1).values(version=versions.c.version + 1)
    )
    if bumped.rowcount != 1:
        raise RuntimeError(f"{versions.name} has no row: run `salespulse migrate`")


class NotModified(Problem):
    status, slug = 304, "not-modified"


async def fresh(request: Request, response: Response, db: Db) -> DataVersion:
    """Dependency of every read: sets ETag and Cache-Control, answers 304 when they match."""
    return _validators(await data_version(db), request, response)


async def fresh_apart(request: Request, response: Response) -> DataVersion:
    """``fresh`` on a connection of its own, given back at once: for a read whose work runs
    elsewhere (a board computes on its own connection), so the request holds none meanwhile."""
    return _validators(await data_version(request.app.state.db), request, response)


def _validators(version: DataVersion, request: Request, response: Response) -> DataVersion:
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
            str(version.targets),
            str(version.contests),
            request.url.path,
            str(sorted(request.query_params.multi_items())),
            request.headers.get("accept", ""),
        ]
    )
    return f'W/"{hashlib.sha256(source.encode()).hexdigest()[:32]}"'


def _tags(header: str) -> set[str]:
    return {t.strip() for t in header.split(",") if t.strip()}


Fresh = Annotated[DataVersion, Depends(fresh)]
FreshApart = Annotated[DataVersion, Depends(fresh_apart)]
