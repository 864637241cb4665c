"""Bulk statements under the drivers' parameter limit (``shared.db.chunks``), and the guard
the test suite puts on every engine."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import column, literal_column, select, text
from sqlalchemy.types import Integer

from shared.db import chunks
from shared.db.chunks import PARAMETER_LIMIT, RESERVED, TooManyParameters, parameter_count
from shared.db.engine import create_engine


def test_chunks_cover_every_item_once_in_order_each_within_the_limit() -> None:
    items = list(range(10_000))
    sliced = list(chunks.chunks(items, 8))
    assert [i for chunk in sliced for i in chunk] == items
    assert all(len(chunk) * 8 <= PARAMETER_LIMIT - RESERVED for chunk in sliced)
    assert len(sliced) == 3  # 4,000 rows of 8 a statement
    assert list(chunks.chunks([], 3)) == []
    assert [len(c) for c in chunks.chunks(list(range(40_000)))] == [32_000, 8_000]


def test_an_item_wider_than_the_limit_still_goes_one_at_a_time() -> None:
    assert chunks.per_chunk(PARAMETER_LIMIT * 2) == 1
    with pytest.raises(ValueError, match="at least one parameter"):
        chunks.per_chunk(0)


def test_parameters_are_counted_per_statement_the_cursor_runs() -> None:
    assert parameter_count((1, 2, 3), executemany=False) == 3
    assert parameter_count({"a": 1, "b": 2}, executemany=False) == 2
    assert parameter_count([(1, 2), (1, 2, 3)], executemany=True) == 3  # one row a statement
    assert parameter_count((), executemany=False) == 0


@pytest.fixture
def refused() -> Iterator[list[str]]:
    """What the guard refused during the test (cleared after, so the suite's own check of
    every test does not fail this one, which means to provoke it)."""
    yield chunks.violations
    chunks.violations.clear()


async def test_the_suite_guards_every_engine_against_one_statement_over_the_limit(
    tmp_path: Path, refused: list[str]
) -> None:
    db = create_engine(f"sqlite:///{tmp_path / 'guard.db'}")  # as any test makes one
    wide = select(text("1")).where(column("x", Integer).in_(list(range(PARAMETER_LIMIT + 1))))
    try:
        async with db.connect() as conn:
            with pytest.raises(TooManyParameters, match="32767 bound parameters"):
                await conn.execute(wide)
            at_the_limit = select(text("1")).where(
                literal_column("1").in_(list(range(PARAMETER_LIMIT)))
            )  # the limit itself is allowed
            assert (await conn.execute(at_the_limit)).all() == [(1,)]
    finally:
        await db.dispose()
    [problem] = refused
    assert "32767 bound parameters" in problem
