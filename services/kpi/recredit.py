"""Re-crediting unassigned activity once its actor joins the roster. Pure.

Activity of an identity nobody owned was booked to the subject ``("unassigned", "provider:id")``.
When the roster later names the rep behind it, that activity moves to the rep and to the rep's
team at the time of each bucket; and every state that remembers having booked to the unassigned
subject is rewritten, so that a later correction subtracts from where the numbers now are.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Resolve = Callable[[int], list[list[str]]]  # a time -> the subjects [[scope, id], ...] then


def rewrite_state(state: dict[str, Any], key: str, resolve: Resolve) -> bool:
    """Replace the unassigned subject ``key`` in a state's JSON; True if anything changed."""
    changed = False

    def fix(subjects: list[list[str]], at: float) -> list[list[str]]:
        nonlocal changed
        if ["unassigned", key] not in subjects:
            return subjects
        changed = True
        rest = [s for s in subjects if s != ["unassigned", key]]
        return rest + resolve(int(at))

    for booked in state.get("booked", []):  # [at, subjects, counters]
        booked[1] = fix(booked[1], booked[0])
    for missed in state.get("missed", {}).values():  # callbacks: [time, subjects]
        missed[1] = fix(missed[1], missed[0])
    for win in state.get("wins", {}).values():  # accounts: [at, cents, subjects]
        win[2] = fix(win[2], win[0])
    return changed
