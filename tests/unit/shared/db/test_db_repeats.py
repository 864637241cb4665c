"""Telling a bug from an outage (``shared.db.repeats``): the same error again and again while
the database answers is logged at ERROR by the pollers; while it does not, it is waited out."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import pytest

from shared.db.engine import create_engine
from shared.db.repeats import REPEATS, Repeats, log_failure

log = logging.getLogger("tests.poller")


async def levels(db_path: Path, errors: Sequence[Exception], caplog: pytest.LogCaptureFixture) -> (
    list[int]
):  # fmt: skip
    db, repeats = create_engine(f"sqlite:///{db_path}"), Repeats()
    caplog.set_level(logging.WARNING, logger=log.name)
    try:
        for error in errors:
            await log_failure(log, "polling", error, repeats, db)
    finally:
        await db.dispose()
    return [record.levelno for record in caplog.records]


async def test_the_same_error_again_on_a_database_that_answers_is_an_error_log(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    same = [OSError("too many arguments") for _ in range(REPEATS + 1)]
    other = OSError("something else")
    found = await levels(tmp_path / "up.db", [*same, other], caplog)
    assert found == [logging.WARNING] * (REPEATS - 1) + [logging.ERROR] * 2 + [logging.WARNING]
    assert "a bug, not an outage" in caplog.records[REPEATS - 1].getMessage()


async def test_the_same_error_while_the_database_does_not_answer_is_waited_out(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    same = [OSError("connection refused") for _ in range(REPEATS + 2)]
    found = await levels(tmp_path / "no such folder" / "down.db", same, caplog)
    assert found == [logging.WARNING] * (REPEATS + 2)


def test_repeats_count_identical_failures_in_a_row() -> None:
    repeats = Repeats()
    assert [repeats.note(OSError("a")) for _ in range(3)] == [1, 2, 3]
    assert repeats.note(OSError("b")) == 1
    assert repeats.note(ValueError("b")) == 1  # another kind of error
    repeats.clear()
    assert repeats.note(ValueError("b")) == 1
