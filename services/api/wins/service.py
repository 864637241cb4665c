"""Which deals were won in a window, read from the deals' own states: each state lists what it
booked (``services/kpi/domain/state.py``), so a won deal is one that booked ``deals_won`` at a
time in the window, to the rep and team it names. A deal reopened since books nothing: it is not
a win.

A deal booked in a window was changed (its state written) no earlier than a day before the
window's start (events may be dated up to a day ahead of the clock), so only the states
changed since then are read.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, NamedTuple

import orjson

from services.api.roster.service import epoch
from services.api.wins.repository import WinsRepository
from shared.windows import Window

AHEAD_S = 86_400  # how far ahead of the clock an event may be dated (shared.events)


class Win(NamedTuple):
    deal_id: str
    at: int
    rep_id: str
    team_id: str | None
    revenue_cents: int


def wins_in(states: Iterable[tuple[str, str]], start: int, end: int) -> list[Win]:
    """The wins booked in [start, end) by these deal states (key, JSON), newest first."""
    found = []
    for key, text in states:
        for at, subjects, counters in orjson.loads(text).get("booked") or []:
            booked = dict(counters)
            if booked.get("deals_won", 0) <= 0 or not start <= at < end:
                continue
            owners = dict(_pairs(subjects))
            if "rep" in owners:
                deal_id = key.split("|", 1)[1]
                found.append(
                    Win(deal_id, int(at), owners["rep"], owners.get("team"),
                        int(booked.get("revenue_cents", 0)))
                )  # fmt: skip
    return sorted(found, key=lambda w: (w.at, w.deal_id), reverse=True)


def _pairs(subjects: list[Any]) -> Iterable[tuple[str, str]]:
    return ((scope, subject) for scope, subject in subjects)


async def won(repo: WinsRepository, window: Window) -> list[Win]:
    """The wins of ``window``, cut to whole minutes as the KPIs' buckets are (``tile``), so a
    ticker and a board of the same window count the same deals."""
    start, end = epoch(window.start), epoch(window.end)
    start, end = start - start % 60, -(-end // 60) * 60
    return wins_in(await repo.deals_changed_since(start - AHEAD_S), start, end)


def at(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, UTC)
