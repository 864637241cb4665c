"""The activity record's invariant, for any test to check: its rows, put into the buckets of
their instants, are exactly the aggregates (every scope, subject, grain, bucket and counter)."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from shared import events as ev
from shared.buckets import bucket_starts
from shared.catalogue import BASE_COUNTERS
from shared.corrections import CorrectionMessage, Target, TargetData, rep_actor
from shared.db.models import activity, kpi_rollups

Cell = tuple[str, str, str, int, str]  # scope, subject, grain, bucket start, counter


async def from_the_record(db: AsyncEngine, tz: ZoneInfo) -> dict[Cell, int]:
    """The buckets the activity record adds up to."""
    cells: Counter[Cell] = Counter()
    query = select(
        activity.c.scope, activity.c.subject, activity.c.team_id, activity.c.at, activity.c.counters
    )
    async with db.connect() as conn:
        rows = (await conn.execute(query)).all()
    for scope, subject, team, at, counters in rows:
        places = [(scope, subject)] + ([("team", team)] if team else [])
        for grain, start in bucket_starts(int(at), tz):
            for name, value in orjson.loads(counters).items():
                for where, who in places:
                    cells[where, who, grain, start, name] += value
    return {cell: value for cell, value in cells.items() if value}


async def from_the_buckets(db: AsyncEngine) -> dict[Cell, int]:
    cells: dict[Cell, int] = {}
    async with db.connect() as conn:
        rows = (await conn.execute(select(kpi_rollups))).mappings().all()
    for row in rows:
        for name in BASE_COUNTERS:
            if row[name]:
                key = (row["scope"], row["subject_id"], row["grain"], row["bucket_start"], name)
                cells[key] = row[name]
    return cells


async def assert_the_record_adds_up(db: AsyncEngine, tz: ZoneInfo) -> None:
    record, buckets = await from_the_record(db, tz), await from_the_buckets(db)
    missing = {k: v for k, v in buckets.items() if record.get(k) != v}
    extra = {k: v for k, v in record.items() if buckets.get(k) != v}
    assert not missing, f"buckets the record does not explain: {list(missing.items())[:5]}"
    assert not extra, f"record rows in no bucket: {list(extra.items())[:5]}"


def target(body: dict[str, Any]) -> Target:
    data = body["data"]
    actor = data.get("actor")
    return Target(
        id=body["id"],
        source=body["source"],
        type=body["type"],
        time=datetime.fromisoformat(body["time"]),
        actor=ev.Actor(**actor) if actor else None,
        data=TargetData(call_id=data.get("call_id"), deal_id=data.get("deal_id")),
    )


def reassign(body: dict[str, Any], rep: str) -> CorrectionMessage:
    return CorrectionMessage(
        id=f"c-{uuid.uuid4().hex[:8]}", action="reassign", rep_id=rep, target=target(body)
    )


def exclude(body: dict[str, Any]) -> CorrectionMessage:
    return CorrectionMessage(id=f"c-{uuid.uuid4().hex[:8]}", action="exclude", target=target(body))


def undo(correction: CorrectionMessage) -> CorrectionMessage:
    return correction.model_copy(update={"undo": True})


def as_rep(body: dict[str, Any], rep: str) -> dict[str, Any]:
    """The event as if its rep had sent it (a correction made at the source)."""
    return {**body, "data": {**body["data"], "actor": rep_actor(rep).model_dump()}}
