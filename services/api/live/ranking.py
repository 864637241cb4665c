"""Standard competition ranking (1, 2, 2, 4); ties shown in name order, unranked values last.

``rank`` orders a whole board. A board shows its first rows only, and the rank of a value is
1 + how many values are greater, whatever their order: ``top`` and ``Standing`` rank the rows
shown against all the values from one sort of the values alone, as numbers, which costs a
fraction of ordering every entry by value, name and key (10,000 reps a board, twice).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Sequence
from typing import NamedTuple

Value = float | int | None


class Entry(NamedTuple):  # tuples: a board makes one per rep, 10,000 at a time
    key: str
    name: str
    value: Value


class Ranked(NamedTuple):
    entry: Entry
    rank: int | None


def rank(entries: Sequence[Entry]) -> list[Ranked]:
    ranked = sorted(
        (e for e in entries if e.value is not None), key=lambda e: (-(e.value or 0), e.name, e.key)
    )
    unranked = sorted((e for e in entries if e.value is None), key=lambda e: (e.name, e.key))
    result: list[Ranked] = []
    for position, entry in enumerate(ranked, start=1):
        tied = result and result[-1].entry.value == entry.value
        result.append(Ranked(entry, result[-1].rank if tied else position))
    return result + [Ranked(e, None) for e in unranked]


class Standing:
    """Where any value would rank among ``values`` (None: unranked, not counted)."""

    def __init__(self, values: Iterable[Value]) -> None:
        self._ascending = sorted(v for v in values if v is not None)

    def __len__(self) -> int:
        return len(self._ascending)

    def rank(self, value: Value) -> int | None:
        """1 + how many values are greater: the rank ``rank`` gives an entry of ``value``."""
        if value is None:
            return None
        return len(self._ascending) - bisect_right(self._ascending, value) + 1

    def floor(self, limit: int) -> Value:
        """The least value that a board of ``limit`` rows shows ranked (None: all of them)."""
        ascending = self._ascending
        return ascending[len(ascending) - limit] if 0 < limit < len(ascending) else None


def top(
    keys: Sequence[str], names: Sequence[str], values: Sequence[Value], limit: int
) -> list[tuple[int, int | None]]:
    """``rank(entries)[:limit]`` for the entries ``(keys[i], names[i], values[i])``, as pairs
    (i, rank): the same rows, in the same order, with the same ranks. Only the entries that can
    be shown are ordered in full; the ranks come from one ``Standing`` of all the values."""
    if limit <= 0:
        return []
    standing = Standing(values)
    floor = standing.floor(limit)
    shown = [i for i, v in enumerate(values) if v is not None and (floor is None or v >= floor)]
    shown.sort(key=lambda i: (-(values[i] or 0), names[i], keys[i]))
    rows = [(i, standing.rank(values[i])) for i in shown[:limit]]
    if len(rows) < limit:
        unranked = sorted(
            (i for i, v in enumerate(values) if v is None), key=lambda i: (names[i], keys[i])
        )
        rows += [(i, None) for i in unranked[: limit - len(rows)]]
    return rows
