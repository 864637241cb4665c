"""Contests SQL: definitions, settlement, the contests version, and the fine buckets a goal is
timed from. Statements run on the connection given (the edge owns its transaction)."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any, cast

from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from services.api.common.database import upsert
from services.api.common.freshness import bump_version
from services.api.contests.scoring import Contest, Counters, Participants, Score
from shared.db.models import Contest as ContestRecord
from shared.db.models import ContestsVersion, kpi_rollups, table

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


def _contest(row: Row[tuple[object, ...]]) -> Contest:
    m = row._mapping
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
        return _contest(row), (json.loads(final) if final is not None else None)

    async def all(self) -> list[tuple[Contest, Final | None]]:
        rows = await self._conn.execute(select(_contests).order_by(_contests.c.starts_at))
        return [
            (_contest(r), json.loads(r._mapping["final"]) if r._mapping["final"] else None)
            for r in rows
        ]

    async def due(self, now: int, settle_s: int) -> list[Contest]:
        """The contests whose standings are to be stored as final."""
        rows = await self._conn.execute(
            select(_contests).where(
                _contests.c.settled_at.is_(None), _contests.c.ends_at + settle_s <= now
            )
        )
        return [_contest(r) for r in rows]

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

    async def fine_buckets(
        self, scope: str, subjects: list[str], contest: Contest, counters: list[str]
    ) -> dict[str, list[tuple[int, Counters]]]:
        """Per subject, the finest buckets of the box in any order: minutes from
        ``minutes_from`` on, hours before it (hour-aligned there, see the service)."""
        if not subjects:
            return {}
        r = kpi_rollups.c
        split = max(contest.starts_at, min(contest.minutes_from, contest.ends_at))
        query = select(r.subject_id, r.bucket_start, *(r[c] for c in counters)).where(
            r.scope == scope,
            r.subject_id.in_(subjects),
            or_(
                and_(
                    r.grain == "hour", r.bucket_start >= contest.starts_at, r.bucket_start < split
                ),
                and_(
                    r.grain == "minute", r.bucket_start >= split, r.bucket_start < contest.ends_at
                ),
            ),
        )
        found: dict[str, list[tuple[int, Counters]]] = defaultdict(list)
        for subject, start, *values in await self._conn.execute(query):
            found[subject].append((start, dict(zip(counters, values, strict=True))))
        return found
