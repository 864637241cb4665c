"""Re-crediting unassigned activity once its actor joins the roster. Pure.

Activity of an identity nobody owned was booked to the subject ``("unassigned", "provider:id")``.
When the roster later names the rep behind it, that activity moves to the rep and to the rep's
team at the time of each bucket (``recredit_row``); and every state that remembers having booked
to the unassigned subject is rewritten (``rewrite_state``), so that a later correction subtracts
from where the numbers now are. The flush (``services.kpi.flush``) reads and writes the rows.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import Any
from zoneinfo import ZoneInfo

from services.kpi.domain.engine import Deltas
from services.kpi.domain.roster import Roster
from shared.calendar import local_month_start
from shared.catalogue import BASE_COUNTERS
from shared.events import Actor

# (identity key, a time) -> the subjects [[scope, id], ...] it is credited to then
Resolve = Callable[[str, int], list[list[str]]]
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
