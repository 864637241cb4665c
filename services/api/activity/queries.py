"""Activity SQL: a subject's rows of the activity record at instants of a window's tiling, newest
event first, and what goes with them (the corrections in force, where the record starts).

Rows come in the order (event time, event key, row id), all descending: an event's rows have
its time and key, so they come together, and a page resumes after the last event it listed
(keyset pagination). The metric's counters select the rows by their ``mask`` (a bitwise AND,
the same on SQLite and PostgreSQL), so a call drill-down never reads the deals' rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import BigInteger, ColumnElement, LargeBinary, and_, literal, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.db.chunks import chunks
from shared.db.models import (
    ActivityRecord,
    Correction,
    Identity,
    KpiState,
    activity,
    kpi_rollups,
    table,
)

_record, _corrections, _identities = table(ActivityRecord), table(Correction), table(Identity)
_states = table(KpiState)
_a = activity.c
Span = tuple[int, int]  # [lo, hi): epoch seconds


class Row(NamedTuple):
    id: int
    event_key: bytes
    event_id: str
    source: str
    type: str
    time: int
    actor: str | None
    call_id: str | None
    deal_id: str | None
    scope: str
    subject: str
    team_id: str | None
    at: int
    counters: str  # JSON {base counter: signed int}
    correction: str | None  # the correction that booked it, if one did


Position = tuple[int, bytes, int]  # (time, event key, row id): the scan resumes below it


@dataclass(frozen=True, slots=True)
class Whose:
    """Whose rows: a rep's, a team's (through the rows' team), an unknown identity's."""

    scope: str  # rep | team | unassigned
    id: str

    def where(self) -> list[ColumnElement[bool]]:
        if self.scope == "team":
            return [_a.team_id == self.id]
        return [_a.scope == self.scope, _a.subject == self.id]


def merged(spans: Iterable[Span]) -> list[Span]:
    """The union of ``spans`` as disjoint spans, ascending."""
    union: list[Span] = []
    for lo, hi in sorted(spans):
        if union and lo <= union[-1][1]:
            union[-1] = (union[-1][0], max(union[-1][1], hi))
        elif lo < hi:
            union.append((lo, hi))
    return union


class ActivityQueries:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def rows(
        self, whose: Whose, spans: Sequence[Span], bits: int, below: Position, limit: int
    ) -> list[Row]:
        """Up to ``limit`` of ``whose`` rows booked in ``spans`` with a counter of ``bits``,
        in scan order, from below ``below`` on."""
        if not spans:
            return []
        time, key, row = below
        query = (
            select(*(_a[name] for name in Row._fields))
            .where(
                *whose.where(),
                or_(*(and_(_a.at >= lo, _a.at < hi) for lo, hi in spans)),
                _a.mask.op("&")(literal(bits, BigInteger)) != 0,
                tuple_(_a.time, _a.event_key, _a.id)
                < tuple_(
                    literal(time, BigInteger), literal(key, LargeBinary), literal(row, BigInteger)
                ),
            )
            .order_by(_a.time.desc(), _a.event_key.desc(), _a.id.desc())
            .limit(limit)
        )
        found = await self._conn.execute(query)
        return [_row(tuple(r)) for r in found]

    async def of_deal(self, deal_id: str) -> list[Row]:
        """Every row of the deal ``deal_id`` (of any source), in the order they were booked."""
        query = (
            select(*(_a[name] for name in Row._fields))
            .where(_a.deal_id == deal_id)
            .order_by(_a.time, _a.event_key, _a.id)
        )
        return [_row(tuple(r)) for r in await self._conn.execute(query)]

    async def of_event(self, event_id: str) -> list[Row]:
        """The rows of the event(s) with id ``event_id`` (ids are unique per source), oldest
        first."""
        query = (
            select(*(_a[name] for name in Row._fields))
            .where(_a.event_id == event_id)
            .order_by(_a.id)
        )
        return [_row(tuple(r)) for r in await self._conn.execute(query)]

    async def deal_states(self, deal_id: str) -> list[str]:
        """The KPI service's state of the deal ``deal_id`` (JSON), one per source naming it;
        its key is ``source|deal_id``."""
        query = select(_states.c.key, _states.c.state).where(
            _states.c.kind == "deal", _states.c.key.like(f"%|{_escaped(deal_id)}", escape="\\")
        )
        rows = await self._conn.execute(query)
        return [state for key, state in rows if key.rpartition("|")[2] == deal_id]

    async def in_force(self, keys: Sequence[bytes]) -> dict[bytes, list[str]]:
        """The corrections in force on each event of ``keys``: applied, and not undone (their
        undo not applied yet), oldest first."""
        c = _corrections.c
        found: dict[bytes, list[str]] = {}
        for chunk in chunks(sorted(set(keys))):
            rows = await self._conn.execute(
                select(c.event_key, c.id)
                .where(
                    c.event_key.in_(list(chunk)),
                    c.applied_at.is_not(None),
                    c.undo_applied_at.is_(None),
                )
                .order_by(c.made_at, c.id)
            )
            for key, correction in rows:
                found.setdefault(bytes(key), []).append(correction)
        return found

    async def unrecorded_before(self) -> int | None:
        """Before this instant, buckets may hold bookings the record has no rows for."""
        found = await self._conn.execute(select(_record.c.unrecorded_before))
        value: Any = found.scalar()
        return None if value is None else int(value)

    async def has_unassigned(self, identity: str) -> bool:
        """Whether any bucket holds activity of the unknown ``identity``."""
        query = (
            select(kpi_rollups.c.subject_id)
            .where(kpi_rollups.c.scope == "unassigned", kpi_rollups.c.subject_id == identity)
            .limit(1)
        )
        return (await self._conn.execute(query)).first() is not None

    async def owner_of(self, identity: str) -> str | None:
        """The rep who holds ``identity`` (``provider:external_id``) now, if any."""
        provider, _, external_id = identity.partition(":")
        query = select(_identities.c.rep_id).where(
            _identities.c.provider == provider, _identities.c.external_id == external_id
        )
        value: str | None = (await self._conn.execute(query)).scalar()
        return value


def _row(values: tuple[Any, ...]) -> Row:
    """A row as the drivers give it (``event_key`` a memoryview on PostgreSQL) made a ``Row``."""
    return Row._make((values[0], bytes(values[1]), *values[2:]))


def _escaped(value: str) -> str:
    """``value`` as a literal inside a LIKE pattern."""
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
