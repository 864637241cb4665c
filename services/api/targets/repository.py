"""Targets SQL, and the targets version. Statements run on the connection given (the edge owns
its transaction)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from services.api.common.freshness import bump_version
from services.api.common.params import SubjectKind
from shared.calendar import Period
from shared.db.chunks import chunks
from shared.db.models import Rep, Target, TargetsVersion, Team, table
from shared.db.targets import read_targets
from shared.targets import TargetBook

_targets, _version = table(Target), table(TargetsVersion)
_reps, _teams = table(Rep), table(Team)


class TargetKey(NamedTuple):
    kind: SubjectKind  # the column is ``scope``
    subject: str
    metric: str
    period: Period


Step = tuple[TargetKey, int, float]  # a target, the start of the period it applies from, value


class TargetRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def save(self, steps: Sequence[Step]) -> None:
        """Each value from the period starting at its instant on (replacing one set there)."""
        if not steps:
            return
        insert = postgresql.insert if self._conn.dialect.name == "postgresql" else sqlite.insert
        rows = [
            {"scope": k.kind, "subject_id": k.subject, "metric": k.metric, "period": k.period,
             "starting": starting, "value": value}
            for k, starting, value in steps
        ]  # fmt: skip
        for chunk in chunks(rows, len(rows[0])):
            statement = insert(_targets).values(list(chunk))
            await self._conn.execute(
                statement.on_conflict_do_update(
                    index_elements=["scope", "subject_id", "metric", "period", "starting"],
                    set_={"value": statement.excluded.value},
                )
            )

    async def delete(self, key: TargetKey, starting: int | None = None) -> int:
        """The target's whole history, or its value from ``starting``: how many were."""
        t = _targets.c
        query = delete(_targets).where(
            t.scope == key.kind, t.subject_id == key.subject, t.metric == key.metric,
            t.period == key.period,
        )  # fmt: skip
        if starting is not None:
            query = query.where(t.starting == starting)
        return (await self._conn.execute(query)).rowcount or 0

    async def book(self) -> TargetBook:
        return await read_targets(self._conn)

    async def missing_subjects(self, wanted: set[tuple[SubjectKind, str]]) -> set[tuple[str, str]]:
        """Those of ``(rep|team, id)`` that are on no roster."""
        found: set[tuple[str, str]] = set()
        for kind, names in (("rep", _reps), ("team", _teams)):
            ids = sorted(s for k, s in wanted if k == kind)
            for chunk in chunks(ids):
                rows = await self._conn.execute(select(names.c.id).where(names.c.id.in_(chunk)))
                found |= {(kind, i) for (i,) in rows}
        asked: set[tuple[str, str]] = {(kind, subject) for kind, subject in wanted}
        return asked - found

    async def changed(self) -> None:
        """Bump the targets version (not the roster's: the KPI service has no use for it)."""
        await bump_version(self._conn, _version)
