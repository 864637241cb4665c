"""The KPI service's exactly-once flush (architecture decision 4).

One batch = one database transaction holding the new aggregate rows, the ids of the events
applied and the next offset of every partition, so a crash at any instant neither loses nor
double-counts an event. Its neighbours: ``offsets`` (where the consumer resumes), ``bulk`` (the
bulk statements), ``alerts`` (the outbox step), ``domain/`` (the pure engine, states, roster and
re-credit it drives); ``retention`` prunes what it wrote, from the worker.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import orjson
from sqlalchemy import bindparam, delete, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.kpi import metrics
from services.kpi.alerts import AlertWatch, live_only
from services.kpi.bulk import StateRow, writer_for
from services.kpi.domain.activity import rows as activity_rows
from services.kpi.domain.activity import subjects_of_row
from services.kpi.domain.engine import (
    STATE_TYPES,
    Applied,
    Deltas,
    Engine,
    Entry,
    Item,
    States,
    new_state,
)
from services.kpi.domain.recredit import MARKER, recredit_with_record, resolver, rewrite_state
from services.kpi.domain.roster import Roster
from services.kpi.domain.state import Booked, StateKey, Subjects
from services.kpi.offsets import Offsets, next_offsets
from shared import events as ev
from shared.bus import Record
from shared.catalogue import BASE_COUNTERS
from shared.corrections import CorrectionMessage
from shared.db.chunks import chunks
from shared.db.models import (
    ActivityRecord,
    AlertsVersion,
    AppliedEvent,
    Correction,
    Identity,
    KpiState,
    Rep,
    RosterVersion,
    Team,
    activity,
    event_key,
    kpi_rollups,
    table,
)
from shared.db.repeats import Repeats, is_a_bug
from shared.db.retry import retrying
from shared.roster import read_memberships

log = logging.getLogger(__name__)

_applied = table(AppliedEvent)
_states = table(KpiState)
_version = table(RosterVersion)
_alerts_version = table(AlertsVersion)
_identities = table(Identity)
_reps = table(Rep)
_teams = table(Team)
_activity = activity
_record = table(ActivityRecord)
_corrections = table(Correction)


@dataclass(slots=True)
class Booking:
    """What one batch carries into the transaction: decoded events with their counters."""

    records: Sequence[Record]
    booked: list[tuple[ev.Event, dict[str, int]]]
    corrections: list[CorrectionMessage] = field(default_factory=list)  # in the bus's order
    history: frozenset[tuple[str, str]] = frozenset()  # (source, id) of imported past events


@dataclass(slots=True)
class FlushResult:
    applied: list[ev.Event] = field(default_factory=list)
    duplicates: int = 0
    unassigned: int = 0
    next_offsets: dict[int, int] = field(default_factory=dict)
    # (scope, subject, metric) -> what the batch added, at day grain: for business counters
    booked: dict[tuple[str, str, str], int] = field(default_factory=dict)


BUSINESS = {"calls_placed", "calls_received", "calls_missed", "deals_won", "revenue_cents"}


class KpiStore:
    """The KPI service's database: ``db`` is where the aggregates live, ``kpi`` the engine
    that computes them, ``group`` and ``topic`` whose offsets are stored with them."""

    def __init__(
        self,
        db: AsyncEngine,
        kpi: Engine,
        group: str,
        topic: str,
        alerts: AlertWatch | None = None,
    ) -> None:
        self._db = db
        self.alerts = alerts or AlertWatch(kpi.tz)
        self._kpi = kpi
        self._writer = writer_for(db.dialect.name)
        self._roster = Roster()
        self._offsets = Offsets(group, topic, db.dialect.name)

    async def load_offsets(self, topic: str, partitions: list[int]) -> dict[int, int]:
        """Where to resume each partition: the offsets stored with the aggregates."""
        async with self._db.connect() as conn:
            return await self._offsets.load(conn, topic, partitions)

    async def is_a_bug(self, repeats: Repeats, exc: BaseException) -> bool:
        """Count ``exc`` among a step's failures: True once it has repeated identically
        enough times while the database answers (``shared.db.repeats``)."""
        return await is_a_bug(repeats, exc, self._db)

    async def team_ids(self) -> list[str]:
        async with self._db.connect() as conn:
            return list((await conn.execute(select(_teams.c.id))).scalars())

    async def roster_version(self) -> int:
        async with self._db.connect() as conn:
            return int((await conn.execute(select(_version.c.version))).scalar() or 0)

    def stored_offsets(self) -> dict[int, int]:
        """The next offset per partition as this process last stored it."""
        return self._offsets.stored()

    def caught_up(self, targets: dict[int, int]) -> bool:
        """Whether this process stored offsets at or past ``targets`` on every partition."""
        return self._offsets.caught_up(targets)

    async def clear(self) -> None:
        """Forget every aggregate, state, applied id, activity row and offset (the roster
        stays): for replay."""
        async with self._db.begin() as conn:
            for aggregate in (kpi_rollups, _applied, _states, _activity):
                await conn.execute(delete(aggregate))
            # rebuilt from the topic, every booking is recorded
            await conn.execute(update(_record).values(unrecorded_before=None))
            await self._offsets.forget(conn)

    async def flush(self, booking: Booking, *, dry_run: bool = False) -> FlushResult:
        """Apply one batch exactly once; retried whole on a deadlock or serialisation failure
        between instances (raised by SQLAlchemy or, from the bulk writes, by asyncpg).

        ``dry_run`` does every step, then rolls back: whether the batch *would* flush, for the
        consumer's search of an event at fault."""
        return await retrying(lambda: self._flush_once(booking, dry_run), what="flush")

    async def _flush_once(self, booking: Booking, dry_run: bool = False) -> FlushResult:
        """The ordered steps; each is marked in the body.

        1. refresh the roster snapshot if its version moved (one single-row read)
        2. claim the batch's event ids; a conflicting id is a duplicate and is skipped
        2b. learn the identities of actors nobody has whose email is a rep's, and re-credit
           what they did before
        3. apply the KPI engine to the newly claimed events only -> aggregate deltas; deal updates
           are merged into the deals' locked state rows, which book the difference; then the
           newly claimed corrections, each booking the difference it makes
        4. upsert the deltas, keys sorted so concurrent instances lock rows in one order
        4a. append what each event booked to the activity record (``domain/activity.py``)
        4b. write the notifications the events' aggregates cause (``alerts.py``): the outbox
        4c. mark the corrections applied (the API shows them so)
        5. record the next offset of every partition in the batch (only ever forward)
        6. commit; only after this may the caller acknowledge anything
        """
        result = FlushResult(next_offsets=next_offsets(booking.records))
        self._offsets.check_forward(result.next_offsets)
        roster = self._roster  # a rolled-back flush must not keep a roster it re-credited for
        try:
            async with self._db.begin() as conn:
                await self._writer.begin(conn)
                alerts_version, moved_calls = await self._refresh_roster(conn)  # 1
                fresh, corrections = await self._claim(conn, booking)  # 2
                moved_calls += await self._learn_identities(conn, fresh)  # 2b
                result.applied = [event for event, _ in fresh]
                result.duplicates = len(booking.booked) - len(fresh)
                result.unassigned = sum(1 for e in result.applied if self._unassigned(e))
                booked, corrected = await self._apply(conn, fresh, corrections, moved_calls)  # 3
                deltas = booked.deltas
                await self._upsert(conn, deltas)  # 4
                await self._upsert(conn, corrected.deltas)
                await self._record(conn, booked.ledger + corrected.ledger, fresh)  # 4a
                live, wins = live_only(booked, booking.history)  # past events decide none
                await self.alerts.raise_for(
                    conn, alerts_version, live, wins, members=self._roster.memberships
                )  # 4b: outbox (a correction raises none: it is history)
                await self._mark_applied(conn, corrections)  # 4c
                result.booked = (  # the business counters count what happens now
                    _business_of_live(booked.ledger, booking.history)
                    if booking.history
                    else _business(deltas)
                )
                await self._offsets.record(conn, result.next_offsets)  # 5
                if dry_run:
                    raise _RolledBack
        except _RolledBack:
            self._roster = roster
            return result
        except BaseException:
            self._roster = roster
            raise
        self._offsets.committed(result.next_offsets)  # 6 (the `begin()` block committed)
        return result

    def _unassigned(self, event: ev.Event) -> bool:
        """Booked under the actor's identity: no rep on the roster has it."""
        return not self._roster.knows(event.actor)

    async def _refresh_roster(self, conn: AsyncConnection) -> tuple[int, list[StateKey]]:
        """Reload the roster if its version moved, and re-credit newly known identities; the
        alerts version, read in the same round trip, is returned for step 4b, with the calls
        the re-credit moved (their callbacks are looked at again in step 3).

        The version row is read FOR SHARE: a roster change (an UPDATE of that row) waits for
        the flushes under way, and flushes after it see it. So no flush booking with an old
        roster can commit after the re-credit that follows the change."""
        alerts_version = select(_alerts_version.c.version).scalar_subquery()
        version_query = select(_version.c.version, alerts_version).with_for_update(read=True)
        version, alerts = (await conn.execute(version_query)).one()
        version, alerts = version or 0, int(alerts or 0)
        if version == self._roster.version:
            return alerts, []
        known = set(self._roster.identities)
        identities = await conn.execute(
            select(_identities.c.provider, _identities.c.external_id, _identities.c.rep_id)
        )
        emails = await conn.execute(
            select(_reps.c.email, _reps.c.id).where(_reps.c.email.is_not(None))
        )
        self._roster = Roster(
            int(version),
            {(p, x): rep for p, x, rep in identities},
            await read_memberships(conn),
            {str(email): str(rep) for email, rep in emails},
        )
        metrics.initialise_teams(self._roster.memberships.teams())
        log.info(
            "roster loaded", extra={"version": version, "identities": len(self._roster.identities)}
        )
        newly = [f"{p}:{x}" for p, x in set(self._roster.identities) - known]
        return alerts, await self._recredit(conn, newly) if newly else []

    async def _learn_identities(self, conn: AsyncConnection, fresh: list[Item]) -> list[StateKey]:
        """An actor that matches no identity is matched by its email to the rep with that
        email: the identity is hers from now on (marked learnt, and when), in this flush's
        transaction, and what it did before, unassigned, is re-credited to her. Another
        instance that learnt it first wins: its row is read back."""
        learn = self._roster.to_learn(event.actor for event, _ in fresh)
        if not learn:
            return []
        now = int(time.time())
        rows = [
            {"provider": p, "external_id": x, "rep_id": rep, "learned_from": "email",
             "learned_at": now}
            for (p, x), rep in sorted(learn.items())
        ]  # fmt: skip
        insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
        for chunk in chunks(rows, params_per_item=5):
            await conn.execute(insert(_identities).values(list(chunk)).on_conflict_do_nothing())
        pair = tuple_(_identities.c.provider, _identities.c.external_id)
        # a new snapshot: a flush rolled back goes back to the one it started with
        self._roster = replace(self._roster, identities=dict(self._roster.identities))
        for part in chunks(sorted(learn), params_per_item=2):
            owners = await conn.execute(
                select(
                    _identities.c.provider, _identities.c.external_id, _identities.c.rep_id
                ).where(pair.in_(list(part)))
            )
            for provider, external_id, rep in owners:
                self._roster.identities[provider, external_id] = rep
        log.info("identities learnt by email", extra={"identities": len(learn)})
        return await self._recredit(conn, [f"{p}:{x}" for p, x in learn])

    async def _recredit(self, conn: AsyncConnection, keys: list[str]) -> list[StateKey]:
        """Move the unassigned activity of ``keys`` to their reps (see ``recredit.py``), and
        the activity record's rows with it.

        Minute, hour and day rows go to the rep (and team) at the instant of each event the
        record explains, at their start for the rest; month rows are made again from the day
        rows, so that a month stays the sum of its days when the rep changed teams within it."""
        counters = [kpi_rollups.c[c] for c in BASE_COUNTERS]
        rows: dict[tuple[str, str, int], list[int]] = {}
        recorded: list[tuple[int, str, int, dict[str, int]]] = []
        for chunk in chunks(sorted(keys)):  # named in an IN list: under the drivers' limit
            moved = await conn.execute(
                delete(kpi_rollups)
                .where(kpi_rollups.c.scope == "unassigned", kpi_rollups.c.subject_id.in_(chunk))
                .returning(
                    kpi_rollups.c.grain,
                    kpi_rollups.c.bucket_start,
                    kpi_rollups.c.subject_id,
                    *counters,
                )
            )
            for grain, start, subject, *values in moved:
                if grain != "month":
                    rows[(subject, grain, int(start))] = values
            record = await conn.execute(
                select(
                    _activity.c.id, _activity.c.subject, _activity.c.at, _activity.c.counters
                ).where(_activity.c.scope == "unassigned", _activity.c.subject.in_(chunk))
            )
            recorded += [(i, s, int(a), orjson.loads(c)) for i, s, a, c in record]
        found = {subject for subject, _, _ in rows}
        deltas, moves = recredit_with_record(rows, recorded, resolver(self._roster), self._kpi.tz)
        await self._upsert(conn, deltas)
        if moves:
            await conn.execute(
                update(_activity)
                .where(_activity.c.id == bindparam("row"))
                .values(
                    scope=bindparam("to_scope"),
                    subject=bindparam("to_subject"),
                    team_id=bindparam("to_team"),
                ),
                [
                    {"row": i, "to_scope": p.scope, "to_subject": p.subject, "to_team": p.team_id}
                    for i, p in moves
                ],
            )
        if not found:
            return []
        log.info(
            "unassigned activity re-credited",
            extra={"identities": len(found), "first": sorted(found)[:10]},
        )
        return await self._rewrite_states(conn, found)

    async def _rewrite_states(self, conn: AsyncConnection, keys: set[str]) -> list[StateKey]:
        """Rewrite the states that booked to the unassigned subjects of ``keys``: one scan of
        the states that booked to any unassigned subject, however many identities became
        known (not one scan per identity: 10,000 scans for an import of 10,000). The rows it
        finds are locked, in key order, until the flush commits."""
        rows = await conn.execute(
            select(_states.c.kind, _states.c.key, _states.c.state)
            .where(_states.c.state.contains(MARKER, autoescape=True))
            .order_by(_states.c.kind, _states.c.key)
            .with_for_update()
        )
        rewritten = []
        resolve = resolver(self._roster)
        for kind, state_key, text in rows:
            state = orjson.loads(text)
            if rewrite_state(state, keys, resolve):
                rewritten.append((kind, state_key, orjson.dumps(state).decode()))
        if rewritten:
            await self._writer.save_states(conn, [], rewritten)
        return [("call", key) for kind, key, _ in rewritten if kind == "call"]

    async def _claim(
        self, conn: AsyncConnection, booking: Booking
    ) -> tuple[list[Item], list[CorrectionMessage]]:
        """The batch's events and corrections not applied before (their keys claimed now)."""
        unique: dict[bytes, Item] = {}
        for event, counters in booking.booked:
            unique.setdefault(event_key(event.source, event.id), (event, counters))
        corrections = {c.key: c for c in booking.corrections}
        if not unique and not corrections:
            return [], []
        keys = list(unique) + [k for k in corrections if k not in unique]
        claimed = await self._writer.claim(conn, keys, int(time.time()))
        return (
            [item for key, item in unique.items() if key in claimed],
            [c for key, c in corrections.items() if key in claimed],
        )

    async def _mark_applied(
        self, conn: AsyncConnection, corrections: list[CorrectionMessage]
    ) -> None:
        now = int(time.time())
        for undo in (False, True):
            ids = sorted({c.id for c in corrections if c.undo is undo})
            column = "undo_applied_at" if undo else "applied_at"
            for chunk in chunks(ids):
                await conn.execute(
                    update(_corrections).where(_corrections.c.id.in_(chunk)).values({column: now})
                )

    async def _record(self, conn: AsyncConnection, ledger: list[Entry], fresh: list[Item]) -> None:
        """What each event of the batch booked, in the aggregates' transaction: exact through
        crashes and replays as they are."""
        roster = self._roster
        rows = activity_rows(
            ledger, (event for event, _ in fresh), lambda e: self._kpi.subjects_of(e, roster)
        )
        await self._writer.add_activity(conn, rows)

    async def _apply(
        self,
        conn: AsyncConnection,
        fresh: list[Item],
        corrections: list[CorrectionMessage],
        moved_calls: list[StateKey],
    ) -> tuple[Applied, Applied]:
        """Book the batch, then its corrections and the callbacks of the calls a re-credit
        moved: what each booked (the events' and the history's apart: alerts follow the
        events only). The states they change are locked for the transaction."""
        keys = self._kpi.plan(fresh, self._roster) | self._kpi.plan_corrections(corrections)
        states, new = await self._lock_states(conn, keys | set(moved_calls))
        applied = self._kpi.apply(fresh, states, self._roster)
        recorded = await self._recorded(conn, corrections, applied.ledger) if corrections else {}
        corrected = self._kpi.correct(corrections, states, self._roster, recorded, moved_calls)
        followups = applied.followups | corrected.followups
        if followups:  # known only once the batch is merged: locked second
            more, more_new = await self._lock_states(conn, followups - set(states))
            states.update(more)
            new |= more_new
            _add_all(applied.deltas, self._kpi.settle(applied, states))
            _add_all(corrected.deltas, self._kpi.settle(corrected, states))
        await self._save_states(conn, states, new)
        return applied, corrected

    async def _recorded(
        self, conn: AsyncConnection, corrections: list[CorrectionMessage], pending: list[Entry]
    ) -> dict[bytes, list[Booked]]:
        """What each corrected event books now, from the activity record (and what this batch
        books for it, not written yet): a correction's first step learns it from there."""
        targets = {c.target.key: c.target.id for c in corrections}
        net: dict[bytes, dict[tuple[int, Subjects], dict[str, int]]] = {k: {} for k in targets}
        # found through ``ix_activity_event`` (the event's id); its key tells sources apart
        for chunk in chunks(sorted(targets.items()), params_per_item=2):
            rows = await conn.execute(
                select(
                    _activity.c.event_key,
                    _activity.c.at,
                    _activity.c.scope,
                    _activity.c.subject,
                    _activity.c.team_id,
                    _activity.c.counters,
                )
                .where(
                    _activity.c.event_id.in_({event_id for _, event_id in chunk}),
                    _activity.c.event_key.in_([key for key, _ in chunk]),
                )
                .order_by(_activity.c.id)
            )
            for key, at, scope, subject, team, counters in rows:
                place = subjects_of_row(scope, subject, team)
                _add_counters(net[bytes(key)], (int(at), place), orjson.loads(counters), 1)
        for cause, booked, sign in pending:
            key = event_key(cause.source, cause.id)
            if key in net:
                _add_counters(net[key], (booked.at, booked.subjects), dict(booked.counters), sign)
        return {
            key: [
                Booked(at, place, tuple((n, v) for n, v in sorted(c.items()) if v))
                for (at, place), c in cells.items()
                if any(c.values())
            ]
            for key, cells in net.items()
        }

    async def _lock_states(
        self, conn: AsyncConnection, keys: set[StateKey]
    ) -> tuple[States, set[StateKey]]:
        """Fetch and lock the state rows of ``keys`` that exist, in key order (so no deadlock),
        and start the others afresh: the states, and which of them are new.

        A concurrent instance touching the same deal or call waits for this transaction; one
        that makes the same new state first makes this flush run again (``ConcurrentInsert``)."""
        if not keys:
            return {}, set()
        rows = await self._writer.lock_states(conn, sorted(keys))
        states: States = {
            (kind, key): STATE_TYPES[kind](orjson.loads(state)) for kind, key, state in rows
        }
        new = keys - set(states)
        for key in new:
            states[key] = new_state(key)
        return states, new

    async def _save_states(self, conn: AsyncConnection, states: States, new: set[StateKey]) -> None:
        if not states:
            return
        inserted: list[StateRow] = []
        updated: list[StateRow] = []
        for key, state in sorted(states.items()):
            (inserted if key in new else updated).append(
                (*key, orjson.dumps(state.to_json()).decode())
            )
        await self._writer.save_states(conn, inserted, updated)

    async def _upsert(self, conn: AsyncConnection, deltas: Deltas) -> None:
        rows = [(*key, value) for key, value in deltas.items() if value]
        if rows:
            await self._writer.add_buckets(conn, rows)


def _add_all(into: Deltas, more: Deltas) -> None:
    for key, amount in more.items():
        into[key] += amount


def _business(deltas: Deltas) -> dict[tuple[str, str, str], int]:
    """What the batch booked per rep and team, at day grain, for the business counters."""
    return {
        (scope, subject, metric): v
        for (scope, metric, grain, _, subject), v in deltas.items()
        if grain == "day" and metric in BUSINESS and scope != "unassigned"
    }


def _business_of_live(
    ledger: list[Entry], history: frozenset[tuple[str, str]]
) -> dict[tuple[str, str, str], int]:
    """``_business`` of what the batch's live events booked: an import of past activity is no
    burst of calls on the operator's dashboards."""
    found: dict[tuple[str, str, str], int] = {}
    for cause, booked, sign in ledger:
        if (cause.source, cause.id) in history:
            continue
        for scope, subject in booked.subjects:
            if scope == "unassigned":
                continue
            for metric, amount in booked.counters:
                if metric in BUSINESS:
                    key = (scope, subject, metric)
                    found[key] = found.get(key, 0) + sign * amount
    return {key: v for key, v in found.items() if v}


class _RolledBack(Exception):
    """Leaves a dry-run flush's transaction, which rolls it back."""


def _add_counters(
    into: dict[tuple[int, Subjects], dict[str, int]],
    cell: tuple[int, Subjects],
    counters: dict[str, int],
    sign: int,
) -> None:
    sums = into.setdefault(cell, {})
    for name, value in counters.items():
        sums[name] = sums.get(name, 0) + sign * value
