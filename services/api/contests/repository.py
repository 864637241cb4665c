"""Contests SQL: definitions, settlement, the contests version, and when each participant
reached the goal. Statements run on the connection given (the edge owns its transaction)."""

from __future__ import annotations

import json
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy import ColumnElement, Text, and_, delete, func, or_, select, tuple_, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from services.api.common.database import upsert
from services.api.common.freshness import bump_version
from services.api.contests.scoring import Contest, GoalTest, Participants, Score, Status
from shared.db.models import Contest as ContestRecord
from shared.db.models import ContestsVersion, kpi_rollups, table
from shared.db.rows import values_table

_contests = table(ContestRecord)
_version = table(ContestsVersion)
Final = dict[str, list[dict[str, Any]]]  # the stored standings: {"rows": [...], "winners": [...]}


def score_json(score: Score) -> str:
    if score.metric:
        return json.dumps({"metric": score.metric})
    return json.dumps({"points": dict(score.points)})


def _score(text: str) -> Score:
    raw = json.loads(text)
    if "metric" in raw:
        return Score(metric=raw["metric"])
    return Score(points=tuple((m, float(w)) for m, w in raw["points"].items()))


def _contest(m: RowMapping) -> Contest:
    return Contest(
        id=m["id"],
        name=m["name"],
        starts_at=m["starts_at"],
        ends_at=m["ends_at"],
        participants=cast(Participants, m["participants"]),
        team_ids=tuple(json.loads(m["team_ids"])) if m["team_ids"] is not None else None,
        score=_score(m["score"]),
        goal=m["goal"],
        minutes_from=m["minutes_from"],
        settled_at=m["settled_at"],
    )


def _definition(contest: Contest) -> dict[str, object]:
    return {
        "name": contest.name,
        "starts_at": contest.starts_at,
        "ends_at": contest.ends_at,
        "participants": contest.participants,
        "team_ids": None if contest.team_ids is None else json.dumps(list(contest.team_ids)),
        "score": score_json(contest.score),
        "goal": contest.goal,
        "minutes_from": contest.minutes_from,
    }


class ContestRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def get(self, contest_id: str) -> tuple[Contest, Final | None] | None:
        row = (
            await self._conn.execute(select(_contests).where(_contests.c.id == contest_id))
        ).first()
        if row is None:
            return None
        final = row._mapping["final"]
        return _contest(row._mapping), (json.loads(final) if final is not None else None)

    async def page(
        self, status: Status | None, now: int, limit: int, after: tuple[int, str] | None
    ) -> list[tuple[Contest, list[dict[str, Any]]]]:
        """Up to ``limit`` contests in ``(starts_at, id)`` order after ``after``, in ``status``
        at ``now``, each with its winners: only those are read of the final standings (a
        settled contest of 10,000 participants stores them all)."""
        c = _contests.c
        winners: ColumnElement[Any]
        if self._conn.dialect.name == "postgresql":
            winners = sa.cast(sa.cast(c.final, JSONB)["winners"], Text)
        else:
            winners = func.json_extract(c.final, "$.winners")
        definition = [col for col in _contests.columns if col.name != "final"]
        query = select(*definition, winners.label("winners")).order_by(c.starts_at, c.id)
        if status == "completed":
            query = query.where(c.settled_at.is_not(None))
        elif status is not None:
            early = c.starts_at > now if status == "scheduled" else c.starts_at <= now
            query = query.where(c.settled_at.is_(None), early)
        if after is not None:
            query = query.where(tuple_(c.starts_at, c.id) > tuple_(*after))
        rows = await self._conn.execute(query.limit(limit))
        return [(_contest(r), json.loads(r.winners) if r.winners else []) for r in rows.mappings()]

    async def due(self, now: int, settle_s: int) -> list[Contest]:
        """The contests whose standings are to be stored as final."""
        rows = await self._conn.execute(
            select(_contests).where(
                _contests.c.settled_at.is_(None), _contests.c.ends_at + settle_s <= now
            )
        )
        return [_contest(r) for r in rows.mappings()]

    async def save(self, contest: Contest) -> None:
        values = _definition(contest)
        await upsert(self._conn, _contests, "id", {"id": contest.id, **values})

    async def delete(self, contest_id: str) -> bool:
        query = delete(_contests).where(_contests.c.id == contest_id)
        return bool((await self._conn.execute(query)).rowcount)

    async def settle(self, contest: Contest, final: Final, at: int) -> bool:
        """Store the final standings, once, of the contest as defined then: False if it was
        settled meanwhile (another instance) or redefined since it was read."""
        values = _definition(contest)
        query = (
            update(_contests)
            .where(
                _contests.c.id == contest.id,
                _contests.c.settled_at.is_(None),
                *(
                    _contests.c[k].is_(None) if v is None else _contests.c[k] == v
                    for k, v in values.items()
                ),
            )
            .values(final=json.dumps(final), settled_at=at)
        )
        return bool((await self._conn.execute(query)).rowcount)

    async def changed(self) -> None:
        await bump_version(self._conn, _version)

    async def goal_reached(
        self,
        scope: str,
        thresholds: dict[str, float],
        test: GoalTest,
        tiles: list[tuple[str, int, int]],
    ) -> dict[str, int]:
        """Per subject of ``thresholds`` (subject -> the factor ``test.threshold`` is
        multiplied by: 1, or its target), the start of the first bucket of ``tiles`` after
        which its running score passes ``test``; subjects that never do are left out.

        One statement: the running sums are window functions over each subject's buckets in
        time order, so no bucket leaves the database."""
        if not thresholds or not tiles:
            return {}
        r = kpi_rollups.c
        wanted = values_table(
            self._conn.dialect.name == "postgresql",
            subject=list(thresholds),
            factor=[float(f) for f in thresholds.values()],
        )
        # from the subject's first bucket to this one, in time order
        running: dict[str, Any] = {
            "partition_by": r.subject_id,
            "order_by": r.bucket_start,
            "rows": (None, 0),
        }

        def total(form: dict[str, float] | tuple[str, ...]) -> ColumnElement[Any]:
            weighted = [r[c] * (form[c] if isinstance(form, dict) else 1) for c in sorted(form)]
            return func.sum(sum(weighted[1:], weighted[0])).over(**running)

        columns = [r.subject_id, r.bucket_start, wanted.c.factor, total(test.numerator).label("n")]
        if test.denominator:
            columns.append(total(test.denominator).label("d"))
        if test.volume:
            columns.append(total(test.volume).label("v"))
        inner = (
            select(*columns)
            .join(wanted, wanted.c.subject == r.subject_id)
            .where(
                r.scope == scope,
                or_(
                    *(
                        and_(r.grain == grain, r.bucket_start >= lo, r.bucket_start < hi)
                        for grain, lo, hi in tiles
                    )
                ),
            )
            .subquery()
        )
        goal = test.threshold * (inner.c.factor if test.per_target else 1.0)
        held = [inner.c.n >= goal * (inner.c.d if test.denominator else 1.0)]
        if test.denominator:
            held.append(inner.c.d > 0)
        if test.volume:
            held.append(inner.c.v >= test.min_volume)
        query = (
            select(inner.c.subject_id, func.min(inner.c.bucket_start))
            .where(*held)
            .group_by(inner.c.subject_id)
        )
        return {subject: int(at) for subject, at in await self._conn.execute(query)}
