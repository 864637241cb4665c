"""A board ranks only the rows it shows, from one sort of the values: the same rows, order and
ranks as ranking every contender in full (the board as it was computed before, kept here as
the reference)."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from services.api.leaderboards.scores import (
    Scores,
    evaluated,
    minus_sums,
    minus_totals,
    of_total,
    scores,
    shown,
    values_of_totals,
)
from services.api.live.ranking import Entry, Standing, rank, top
from shared.catalogue import BASE_COUNTERS, CATALOGUE, TARGETED, VOLUME, evaluate, volume

Value = float | int | None
values_st = st.one_of(st.none(), st.integers(-3, 12), st.sampled_from([0.5, 1.0, 2.25, 7.0, -0.0]))
names_st = st.sampled_from(["Ann", "Bea", "Cid", "Dan", "ann"])


@st.composite
def boards(draw: Any) -> tuple[list[str], list[str], list[Value]]:
    size = draw(st.integers(0, 40))
    keys = [f"k{i}" for i in draw(st.permutations(range(size)))]
    names = [draw(names_st) for _ in keys]
    values = [draw(values_st) for _ in keys]
    return keys, names, values


@settings(max_examples=300, deadline=None)
@given(board=boards(), limit=st.integers(0, 45))
def test_the_top_rows_are_the_first_rows_of_the_full_ranking(
    board: tuple[list[str], list[str], list[Value]], limit: int
) -> None:
    keys, names, values = board
    full = rank([Entry(*e) for e in zip(keys, names, values, strict=True)])[:limit]
    assert [(keys[i], r) for i, r in top(keys, names, values, limit)] == [
        (r.entry.key, r.rank) for r in full
    ]


@settings(max_examples=200, deadline=None)
@given(board=boards())
def test_a_standing_gives_every_value_its_rank_in_the_full_ranking(
    board: tuple[list[str], list[str], list[Value]],
) -> None:
    keys, names, values = board
    standing = Standing(values)
    for ranked in rank([Entry(*e) for e in zip(keys, names, values, strict=True)]):
        assert standing.rank(ranked.entry.value) == ranked.rank


def test_ties_share_the_rank_and_the_next_skips_as_in_a_competition() -> None:
    keys, names, values = (
        ["d", "b", "a", "c", "e"],
        ["Dan", "Bea", "Ann", "Cid", "Eve"],
        [5, 7, 5, 1, None],
    )
    assert [(names[i], r) for i, r in top(keys, names, values, 10)] == [
        ("Bea", 1),
        ("Ann", 2),
        ("Dan", 2),
        ("Cid", 4),
        ("Eve", None),
    ]
    assert [names[i] for i, _ in top(keys, names, values, 2)] == ["Bea", "Ann"]


counters_st = st.dictionaries(st.sampled_from(BASE_COUNTERS), st.integers(0, 10**9), max_size=8)


@settings(max_examples=200, deadline=None)
@given(sums=counters_st)
def test_a_count_or_sum_is_the_catalogues_value_of_its_counters_total(
    sums: dict[str, int],
) -> None:
    linear = [m for m in CATALOGUE if of_total(m)]
    assert {"calls_total", "revenue", "touches", "talk_seconds"} <= set(linear)
    for metric in linear:
        total = sum(sums.get(c, 0) for c in CATALOGUE[metric].needs)
        assert values_of_totals(metric, ["r"], {"r": total}) == [evaluate(sums, [metric])[metric]]
        assert volume(metric, sums) is None
    assert not any(of_total(m) for m in [*VOLUME, *TARGETED])


# --- the board as it was computed before: every contender evaluated and ranked, twice -------


def reference(
    metric: str,
    by_attainment: bool,
    contenders: list[tuple[str, str]],
    sums: dict[str, dict[str, int]],
    targets: dict[str, dict[str, float]],
    minimum: int,
) -> list[tuple[str, int | None, Value, float | None, int | None]]:
    entries, details = [], {}
    for key, name in contenders:
        own = sums.get(key, {})
        value = evaluate(own, [metric], targets.get(key))[metric]
        facts = volume(metric, own)
        attainment = None
        if by_attainment:
            target = targets.get(key, {}).get(metric)
            attainment = None if not target or value is None else round(value / target, 6)
        key_value = attainment if by_attainment else value
        if facts is not None and facts < minimum:
            key_value = None
        entries.append(Entry(key, name, key_value))
        details[key] = (value, attainment, facts)
    return [(r.entry.key, r.rank, *details[r.entry.key]) for r in rank(entries)]


def board_now(
    metric: str,
    by_attainment: bool,
    ids: list[str],
    sums: dict[str, dict[str, int]],
    targets: dict[str, dict[str, float]],
    minimum: int,
) -> Scores:
    """The board's numbers as the service works them out: from totals for counts and sums."""
    if of_total(metric):
        needs = CATALOGUE[metric].needs
        totals = {s: sum(own.get(c, 0) for c in needs) for s, own in sums.items()}
        values, volumes = values_of_totals(metric, ids, totals), None
    else:
        values, volumes = evaluated(metric, ids, sums, targets)
    return scores(metric, by_attainment, ids, values, volumes, targets, minimum)


small_sums = st.dictionaries(
    st.sampled_from(["calls_placed", "calls_received", "revenue_cents", "deals_won", "deals_lost"]),
    st.integers(0, 6),
    max_size=5,
)


@settings(max_examples=300, deadline=None)
@given(
    metric=st.sampled_from(["calls_total", "revenue", "win_rate", "quota_attainment"]),
    by_attainment=st.booleans(),
    size=st.integers(0, 30),
    data=st.data(),
    minimum=st.integers(0, 4),
    limit=st.integers(1, 35),
)
def test_the_rows_shown_are_those_of_the_full_board_now_and_then(
    metric: str,
    by_attainment: bool,
    size: int,
    data: st.DataObject,
    minimum: int,
    limit: int,
) -> None:
    ids = [f"r{i}" for i in range(size)]
    names = [data.draw(names_st) for _ in ids]
    contenders = list(zip(ids, names, strict=True))
    some = st.lists(st.sampled_from(ids), unique=True) if ids else st.just([])
    now = {s: data.draw(small_sums) for s in data.draw(some)}
    then = {s: data.draw(small_sums) for s in data.draw(some)}
    targets = {s: {"revenue": data.draw(st.sampled_from([0.0, 2.0, 500.0]))} for s in ids[::2]}

    expected_now = reference(metric, by_attainment, contenders, now, targets, minimum)
    expected_then = reference(metric, by_attainment, contenders, then, targets, minimum)
    previous = {key: r for key, r, value, *_ in expected_then if value}
    current = board_now(metric, by_attainment, ids, now, targets, minimum)
    earlier = board_now(metric, by_attainment, ids, then, targets, minimum)
    rows = [
        (
            ids[row.contender],
            row.rank,
            current.values[row.contender],
            current.attainments[row.contender] if current.attainments else None,
            current.volumes[row.contender] if current.volumes else None,
            row.previous_rank,
        )
        for row in shown(ids, names, current, earlier, limit)
    ]
    assert rows == [(*r, previous.get(r[0])) for r in expected_now[:limit]]
    assert [r.previous_rank for r in shown(ids, names, current, None, limit)] == [None] * len(rows)


def test_the_board_then_is_the_board_now_less_the_last_interval() -> None:
    assert minus_totals({"a": 5, "b": 2}, {"a": 3, "c": 9}) == {"a": 2, "b": 2}
    assert minus_sums({"a": {"x": 5, "y": 1}}, {"a": {"x": 3}, "c": {"x": 1}}) == {
        "a": {"x": 2, "y": 1}
    }
