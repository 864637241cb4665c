"""Re-crediting unassigned activity once its actor joins the roster. Pure.

Activity of an identity nobody owned was booked to the subject ``("unassigned", "provider:id")``.
When the roster later names the rep behind it, that activity moves to the rep and to the rep's
team at the time of each bucket (``recredit_row``); and every state that remembers having booked
to the unassigned subject is rewritten (``rewrite_state``), so that a later correction subtracts
from where the numbers now are. The flush (``services.kpi.flush``) reads and writes the rows.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any
from zoneinfo import ZoneInfo

from services.kpi.domain.activity import Placed, placed
from services.kpi.domain.engine import Deltas
from services.kpi.domain.roster import Roster
from shared.buckets import bucket_starts
from shared.calendar import local_month_start
from shared.catalogue import BASE_COUNTERS
from shared.events import Actor

# (identity key, a time) -> the subjects [[scope, id], ...] it is credited to then
Resolve = Callable[[str, int], list[list[str]]]
Cell = tuple[str, str, int]  # unassigned subject, grain, bucket start
Recorded = tuple[
    int, str, int, dict[str, int]
]  # activity row: id, unassigned subject, at, counters
MARKER = '["unassigned",'  # how every unassigned subject starts in a state's JSON (orjson)


def rewrite_state(state: dict[str, Any], keys: Collection[str], resolve: Resolve) -> bool:
    """Replace every unassigned subject of ``keys`` in a state's JSON by the subjects it
    resolves to at the time of its booking; True if anything changed."""
    changed = False

    def fix(subjects: list[list[str]], at: float) -> list[list[str]]:
        nonlocal changed
        gone = [s for s in subjects if s[0] == "unassigned" and s[1] in keys]
        if not gone:
            return subjects
        changed = True
        rest = [s for s in subjects if s not in gone]
        return rest + [each for _, key in gone for each in resolve(key, int(at))]

    for booked in state.get("booked", []):  # [at, subjects, counters]
        booked[1] = fix(booked[1], booked[0])
    for missed in state.get("missed", {}).values():  # callbacks: [time, subjects]
        missed[1] = fix(missed[1], missed[0])
    for win in state.get("wins", {}).values():  # accounts: [at, cents, subjects]
        win[2] = fix(win[2], win[0])
    return changed


def resolver(roster: Roster) -> Resolve:
    """Whom an identity's activity is credited to at a time, by ``roster``: its rep and the
    rep's team then, or the identity itself, unassigned, if nobody owned it then."""

    def resolve(actor_key: str, ts: int) -> list[list[str]]:
        provider, _, external_id = actor_key.partition(":")
        owner = roster.owner(Actor(provider=provider, external_id=external_id), ts)
        if owner is None:
            return [["unassigned", actor_key]]
        return [["rep", owner.rep_id]] + ([["team", owner.team_id]] if owner.team_id else [])

    return resolve


def recredit_row(
    deltas: Deltas,
    grain: str,
    start: int,
    actor_key: str,
    values: Sequence[int],
    resolve: Resolve,
    tz: ZoneInfo,
) -> None:
    """Add to ``deltas`` the counters of one unassigned row (``values``, in ``BASE_COUNTERS``
    order) of a minute, hour or day, credited to whom ``resolve`` names at the row's start; a
    day's go to its local month too. (Month rows are not moved: they are made again from the
    days, so a month stays the sum of its days when the rep changed teams within it.)"""
    buckets = [(grain, start)]
    if grain == "day":
        buckets.append(("month", local_month_start(start, tz)))
    for scope, subject_id in resolve(actor_key, start):
        for metric, value in zip(BASE_COUNTERS, values, strict=True):
            for each, at in buckets if value else ():
                key = (scope, metric, each, at, subject_id)
                deltas[key] = deltas.get(key, 0) + int(value)


def recredit_with_record(
    rows: Mapping[Cell, Sequence[int]],
    recorded: Sequence[Recorded],
    resolve: Resolve,
    tz: ZoneInfo,
) -> tuple[Deltas, list[tuple[int, Placed]]]:
    """What re-crediting the unassigned bucket ``rows`` (minute, hour and day rows deleted,
    counters in ``BASE_COUNTERS`` order) adds, and where each ``recorded`` activity row of those
    subjects goes.

    What the activity record explains moves event by event, to the rep and team at the event's
    own instant, into the buckets that still exist; only what it does not hold (activity older
    than its retention, or booked before it existed) moves bucket by bucket as
    ``recredit_row`` does. The buckets thus stay the sum of the record's rows."""
    deltas: Deltas = {}
    explained: dict[Cell, dict[str, int]] = {}
    moves: list[tuple[int, Placed]] = []
    for row_id, subject, at, counters in recorded:
        whom = resolve(subject, at)
        moves.append((row_id, placed(tuple((s, i) for s, i in whom))))
        for grain, start in bucket_starts(at, tz):
            cell = (subject, grain, start)
            if grain == "month" or cell not in rows:
                continue  # months are made from days; a pruned bucket is not made again
            sums = explained.setdefault(cell, {})
            targets = [(grain, start)] + (
                [("month", local_month_start(start, tz))] if grain == "day" else []
            )
            for name, value in counters.items():
                sums[name] = sums.get(name, 0) + value
                for scope, subject_id in whom:
                    for each, bucket in targets:
                        key = (scope, name, each, bucket, subject_id)
                        deltas[key] = deltas.get(key, 0) + value
    for (subject, row_grain, row_start), values in rows.items():
        sums = explained.get((subject, row_grain, row_start), {})
        rest = [int(v) - sums.get(name, 0) for name, v in zip(BASE_COUNTERS, values, strict=True)]
        if any(rest):
            recredit_row(deltas, row_grain, row_start, subject, rest, resolve, tz)
    return deltas, moves
