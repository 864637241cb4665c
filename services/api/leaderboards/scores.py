"""A board's numbers, worked out from the window's sums: pure, no I/O.

Most boards rank a count or a sum (calls, revenue): the metric's value is then a function of
one number, the total of its counters, which SQL adds up (``KpiQueries.totals``); a board of
10,000 reps needs no mapping of counters per rep, nor the catalogue's evaluation of each.
Ratios and attainment metrics are evaluated from each contender's sums, as anywhere else.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

from services.api.live.ranking import Standing, top
from shared.catalogue import CATALOGUE, VOLUME, evaluate, volume

Value = float | int | None
Targets = Mapping[str, dict[str, float]]  # subject id -> metric -> target of the window


class Scores(NamedTuple):
    """A board's numbers, one per contender (in the contenders' order)."""

    keys: list[Value]  # what it is ranked by (None: unranked)
    values: list[Value]  # the metric's value
    attainments: list[float | None] | None  # value / target, when ranked by attainment
    volumes: list[int | None] | None  # the facts a ratio rests on (None: a count or a sum)


class Shown(NamedTuple):
    """A row a board shows: which contender, its rank now and on the board then."""

    contender: int  # its index in the contenders
    rank: int | None
    previous_rank: int | None


def shown(
    ids: Sequence[str], names: Sequence[str], now: Scores, then: Scores | None, limit: int
) -> list[Shown]:
    """The first ``limit`` rows of the board ranked by ``now`` (``ranking.rank``'s order), with
    the rank each had on the board ``then``: none if it had nothing then (no position to move
    from), or if there was no board then."""
    before = Standing(then.keys) if then is not None else None
    rows = []
    for i, rank in top(ids, names, now.keys, limit):
        previous = None
        if before is not None and then is not None and then.values[i]:
            previous = before.rank(then.keys[i])
        rows.append(Shown(i, rank, previous))
    return rows


def of_total(metric: str) -> bool:
    """Whether the metric's value is a function of the total of its counters alone (a count
    or a sum: calls_total is calls placed + received; revenue is its cents, in units)."""
    found = CATALOGUE[metric]
    return found.kind in ("count", "sum") and found.target_of is None and metric not in VOLUME


def values_of_totals(metric: str, ids: Sequence[str], totals: Mapping[str, int]) -> list[Value]:
    """The metric's value for each of ``ids`` from its total (none: 0); ``of_total`` metrics
    only. A count is its total; a sum is the catalogue's value of it, once per distinct total."""
    found = CATALOGUE[metric]
    own = [totals.get(i, 0) for i in ids]
    if found.kind == "count":
        return list(own)
    by_total = {t: found.value({found.needs[0]: t}) for t in set(own)}
    return [by_total[t] for t in own]


def evaluated(
    metric: str, ids: Sequence[str], sums: Mapping[str, Mapping[str, int]], targets: Targets
) -> tuple[list[Value], list[int | None]]:
    """The metric's value and volume for each of ``ids``, evaluated from its own sums."""
    values: list[Value] = []
    volumes: list[int | None] = []
    for subject in ids:
        own = sums.get(subject, {})
        values.append(evaluate(own, [metric], targets.get(subject))[metric])
        volumes.append(volume(metric, own))
    return values, volumes


def scores(
    metric: str,
    by_attainment: bool,
    ids: Sequence[str],
    values: list[Value],
    volumes: list[int | None] | None,
    targets: Targets,
    minimum: int,
) -> Scores:
    """What each contender is ranked by: its value, or its attainment (value / its target);
    None, unranked, without one, or for a ratio resting on fewer facts than ``minimum``."""
    attainments = _attainments(metric, ids, values, targets) if by_attainment else None
    keys: list[Value] = list(attainments) if attainments is not None else list(values)
    if volumes is not None:
        few = [f is not None and f < minimum for f in volumes]  # too few facts to compare fairly
        keys = [None if low else k for k, low in zip(keys, few, strict=True)]
    return Scores(keys, values, attainments, volumes)


def _attainments(
    metric: str, ids: Sequence[str], values: Sequence[Value], targets: Targets
) -> list[float | None]:
    result: list[float | None] = []
    for subject, value in zip(ids, values, strict=True):
        target = targets.get(subject, {}).get(metric)
        result.append(None if not target or value is None else round(value / target, 6))
    return result


def minus_totals(whole: Mapping[str, int], part: Mapping[str, int]) -> dict[str, int]:
    """Per subject of ``whole``: what it has beyond ``part`` (totals are additive)."""
    return {subject: total - part.get(subject, 0) for subject, total in whole.items()}


def minus_sums(
    whole: Mapping[str, Mapping[str, int]], part: Mapping[str, Mapping[str, int]]
) -> dict[str, dict[str, int]]:
    """Per subject of ``whole`` and counter: what it has beyond ``part`` (counters are
    additive)."""
    return {
        subject: {c: v - part.get(subject, {}).get(c, 0) for c, v in counters.items()}
        for subject, counters in whole.items()
    }
