"""Targets SQL, and the targets version. Statements run on the connection given (the edge owns
its transaction)."""

from __future__ import annotations

from typing import NamedTuple, cast

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from services.api.common.freshness import bump_version
from services.api.common.params import SubjectKind
from shared.calendar import Period
from shared.db.models import Target, TargetsVersion, table

_targets = table(Target)
_version = table(TargetsVersion)


class TargetKey(NamedTuple):
    kind: SubjectKind  # the column is ``scope``
    subject: str
    metric: str
    period: Period


class TargetRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def save(self, key: TargetKey, value: float) -> None:
        insert = postgresql.insert if self._conn.dialect.name == "postgresql" else sqlite.insert
        statement = insert(_targets).values(
            scope=key.kind,
            subject_id=key.subject,
            metric=key.metric,
            period=key.period,
            value=value,
        )
        await self._conn.execute(
            statement.on_conflict_do_update(
                index_elements=["scope", "subject_id", "metric", "period"],
                set_={"value": statement.excluded.value},
            )
        )

    async def delete(self, key: TargetKey) -> bool:
        result = await self._conn.execute(
            delete(_targets).where(
                _targets.c.scope == key.kind,
                _targets.c.subject_id == key.subject,
                _targets.c.metric == key.metric,
                _targets.c.period == key.period,
            )
        )
        return bool(result.rowcount)

    async def all(self) -> dict[TargetKey, float]:
        rows = await self._conn.execute(
            select(
                _targets.c.scope,
                _targets.c.subject_id,
                _targets.c.metric,
                _targets.c.period,
                _targets.c.value,
            )
        )
        return {
            TargetKey(cast(SubjectKind, k), s, m, cast(Period, p)): float(v)
            for k, s, m, p, v in rows
        }

    async def changed(self) -> None:
        """Bump the targets version (not the roster's: the KPI service has no use for it)."""
        await bump_version(self._conn, _version)
