"""Re-crediting unassigned activity once its actor joins the roster. Pure.

Activity of an identity nobody owned was booked to the subject ``("unassigned", "provider:id")``.
When the roster later names the rep behind it, that activity moves to the rep and to the rep's
team at the time of each bucket; and every state that remembers having booked to the unassigned
subject is rewritten, so that a later correction subtracts from where the numbers now are.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

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
