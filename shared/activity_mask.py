"""The activity record's ``mask`` (``activity.mask``): bit i set when counter i of
``BASE_COUNTERS`` is non-zero in the row. The KPI flush writes it, the drill-down selects the
rows of a metric's counters with it (a bitwise AND, the same on SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from shared.catalogue import BASE_COUNTERS

BIT = {name: 1 << i for i, name in enumerate(BASE_COUNTERS)}


def mask(counters: Mapping[str, int]) -> int:
    """A row's mask: the bits of its non-zero counters."""
    bits = 0
    for name, value in counters.items():
        if value:
            bits |= BIT[name]
    return bits


def bits_of(names: Iterable[str]) -> int:
    """The bits of ``names``: a row books one of them when ``mask & bits_of(names)``."""
    bits = 0
    for name in names:
        bits |= BIT[name]
    return bits
