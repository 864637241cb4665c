"""Standard competition ranking (1, 2, 2, 4); ties shown in name order, unranked values last."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple


class Entry(NamedTuple):  # tuples: a board makes one per rep, 10,000 at a time
    key: str
    name: str
    value: float | int | None


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
