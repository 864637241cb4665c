"""Alert decisions: which alerts a reading crosses, for whom, in which occurrence. Pure: no I/O,
no clock.

One evaluator per trigger kind, in one table (``EVALUATORS``); ``decide`` picks the alert's. The
callers do the I/O (what the alerts watch, read in their own transaction) and hand the
evaluators a ``Reading``:

- the KPI flush (``services.kpi.alerts``): ``threshold``, ``target_reached`` and ``new_leader``
  from the values of the window holding now (and the targets), ``deal_won`` from the batch's
  wins;
- the worker's pace checks (``services.worker.pace_checks``): ``behind_pace``;
- a contest's settlement (``services.api.contests.settlement``): ``contest_won``.

The occurrence is what makes a crossing fire once (with the alert and the subject, the outbox's
unique key): the window's start for a threshold or a target; the window's start and the leader
for a new leader; the deal and its win time for a won deal; the local day for a pace; the
contest for its winners.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from shared.alerts import PERIOD_WINDOW, BehindPace, DealWon, NewLeader, TargetReached, Threshold
from shared.pacing import pace

Values = dict[str, float | int | None]  # subject -> a metric's value


@dataclass(frozen=True, slots=True)
class Watched:
    """An enabled alert as the evaluators and the outbox need it."""

    id: str
    name: str
    channels: tuple[str, ...]
    message: str | None
    trigger: Any  # one of shared.alerts' triggers


@dataclass(frozen=True, slots=True)
class Crossing:
    """One alert crossed by one subject in one occurrence (a day, a deal's win, a contest)."""

    alert: Watched
    scope: str
    subject: str
    occurrence: str
    values: dict[str, Any]  # for the text and the payload: metric, value, window, target...


class WonDeal(Protocol):
    """A deal newly won (the KPI engine's ``Win``)."""

    @property
    def deal_id(self) -> str: ...
    @property
    def at(self) -> int: ...
    @property
    def revenue_cents(self) -> int: ...
    @property
    def rep_id(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class ContestWinner:
    subject: str  # the rep's id, or the team's
    score: float | int | None


@dataclass(frozen=True, slots=True)
class Settled:
    """A contest whose final standings were just stored."""

    contest_id: str
    name: str
    scope: str  # rep | team
    metric: str  # the score's metric, or "points"
    winners: tuple[ContestWinner, ...]


@dataclass(frozen=True, slots=True)
class Reading:
    """What a caller read for an alert; each kind uses its own fields:

    - ``threshold``, ``new_leader``: ``window``, ``window_start``, ``values``;
    - ``target_reached``: the same and ``targets``;
    - ``behind_pace``: ``window``, ``values``, ``targets``, ``share`` and ``day``;
    - ``deal_won``: ``wins``;
    - ``contest_won``: ``settled``.
    """

    window: str = ""  # the window's name (today, this_month...)
    window_start: int = 0  # the start of its occurrence holding now, epoch seconds
    values: Mapping[str, float | int | None] = field(default_factory=dict)  # subject -> value
    targets: Mapping[str, float] = field(default_factory=dict)  # subject -> target
    share: float | None = None  # the elapsed (working) share of the window (None: not begun)
    day: str = ""  # the local date, ISO
    wins: Sequence[WonDeal] = ()
    settled: Settled | None = None


Evaluator = Callable[[Watched, Reading], list[Crossing]]


def watched_window(trigger: Threshold | TargetReached | NewLeader | BehindPace) -> str:
    """The window a trigger watches: its own, or the one of its period holding now."""
    if isinstance(trigger, TargetReached | BehindPace):
        return PERIOD_WINDOW[trigger.period]
    return trigger.window


def of_kind(alerts: Iterable[Watched], *kinds: str) -> list[Watched]:
    """The alerts whose trigger is of one of ``kinds``, in their order."""
    return [alert for alert in alerts if alert.trigger.kind in kinds]


def decide(alert: Watched, reading: Reading) -> list[Crossing]:
    """The crossings of ``alert`` in ``reading``, by the evaluator of its kind."""
    return EVALUATORS[alert.trigger.kind](alert, reading)


def threshold(alert: Watched, reading: Reading) -> list[Crossing]:
    """Each subject whose value is at or past the threshold, once per window occurrence."""
    trigger: Threshold = alert.trigger

    def hit(value: float, _: str) -> bool:
        return value >= trigger.value if trigger.op == ">=" else value <= trigger.value

    return _window_crossings(alert, reading, hit, with_target=False)


def target_reached(alert: Watched, reading: Reading) -> list[Crossing]:
    """Each subject whose value reached its own target of the period, once per occurrence."""

    def hit(value: float, subject: str) -> bool:
        target = reading.targets.get(subject)
        return target is not None and value >= target

    return _window_crossings(alert, reading, hit, with_target=True)


def _window_crossings(
    alert: Watched, reading: Reading, hit: Callable[[float, str], bool], *, with_target: bool
) -> list[Crossing]:
    trigger = alert.trigger
    found = []
    for subject in sorted(reading.values):
        value = reading.values[subject]
        if value is None or not hit(value, subject):
            continue
        target = reading.targets.get(subject) if with_target else None
        details = {"metric": trigger.metric, "value": value, "window": reading.window,
                   "target": target}  # fmt: skip
        found.append(Crossing(alert, trigger.scope, subject, str(reading.window_start), details))
    return found


def new_leader(alert: Watched, reading: Reading) -> list[Crossing]:
    """The board's sole leader (no tie, above 0), once per leader and occurrence."""
    trigger: NewLeader = alert.trigger
    values = reading.values
    ranked = sorted(((v, s) for s, v in values.items() if v is not None and v > 0), reverse=True)
    if not ranked or (len(ranked) > 1 and ranked[1][0] == ranked[0][0]):
        return []  # nobody yet, or a tie: no sole leader
    value, leader = ranked[0]
    details = {"metric": trigger.metric, "value": value, "window": trigger.window}
    occurrence = f"{reading.window_start}:{leader}"
    return [Crossing(alert, trigger.scope, leader, occurrence, details)]


def deal_won(alert: Watched, reading: Reading) -> list[Crossing]:
    """Each deal newly won by a rep (at or above ``min_amount``), once per deal and win time."""
    trigger: DealWon = alert.trigger
    found = []
    for win in reading.wins:
        amount = win.revenue_cents / 100
        if win.rep_id is None or (trigger.min_amount is not None and amount < trigger.min_amount):
            continue
        details = {"metric": "revenue", "value": amount, "amount": amount, "deal_id": win.deal_id}
        # The deal by digest: its id may be longer (256) than an occurrence holds (128)
        key = hashlib.sha256(win.deal_id.encode()).hexdigest()[:32]
        occurrence = f"deal:{key}@{win.at}"
        found.append(Crossing(alert, "rep", win.rep_id, occurrence, details))
    return found


def behind_pace(alert: Watched, reading: Reading) -> list[Crossing]:
    """Each subject with a target whose pace (``shared.pacing``) is under ``below``, once per
    local day."""
    trigger: BehindPace = alert.trigger
    found = []
    for subject in sorted(reading.targets):
        value = reading.values.get(subject) or 0
        target = reading.targets[subject]
        where = pace(value, target, reading.share)
        if where.pace is not None and where.pace < trigger.below:
            details = {"metric": trigger.metric, "value": value, "window": reading.window,
                       "target": target, "pace": where.pace,
                       "expected": where.expected}  # fmt: skip
            found.append(Crossing(alert, trigger.scope, subject, reading.day, details))
    return found


def contest_won(alert: Watched, reading: Reading) -> list[Crossing]:
    """One per winner of the contest just settled, if the alert watches it (or every contest)."""
    settled = reading.settled
    if settled is None or alert.trigger.contest_id not in (None, settled.contest_id):
        return []
    occurrence = f"contest:{settled.contest_id}"
    found = []
    for winner in settled.winners:
        details = {"contest": settled.name, "contest_id": settled.contest_id,
                   "value": winner.score, "metric": settled.metric}  # fmt: skip
        found.append(Crossing(alert, settled.scope, winner.subject, occurrence, details))
    return found


EVALUATORS: dict[str, Evaluator] = {
    "threshold": threshold,
    "target_reached": target_reached,
    "new_leader": new_leader,
    "deal_won": deal_won,
    "behind_pace": behind_pace,
    "contest_won": contest_won,
}
