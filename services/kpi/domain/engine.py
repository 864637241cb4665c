"""The KPI engine: canonical events in, aggregate deltas out. Pure: no I/O, no clock.

Stateless facts (a lead, a meeting, a complaint...) contribute base counters directly: a
dispatch table, one small function per type. Facts that change are state (``state.py``): calls
(one fact per call id), missed calls called back (per team and number), deals (per deal) and
first wins (per account). Everything is credited to the rep and the rep's team at the time of the
fact, or kept as unassigned activity under the actor's identity, in the minute, hour and day
bucket of that time.

The caller (the store) locks the states the batch needs: ``plan`` names them, ``apply`` books
the batch, and ``settle`` books the states that ``apply`` found affected but could not know
beforehand (a deal's account, the callback state a call was registered in before).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, NamedTuple, Protocol
from zoneinfo import ZoneInfo

from services.kpi.domain.accounts import AccountState
from services.kpi.domain.calls import CallbackState, CallState, Report, normalise_number
from services.kpi.domain.corrections import CorrectedEvent
from services.kpi.domain.deals import DealState, won_counters
from services.kpi.domain.roster import Owner, Roster
from services.kpi.domain.state import (
    Booked,
    StateKey,
    Subjects,
    Win,
    in_force,
    override,
    rep_actor_json,
)
from shared import events as ev
from shared.buckets import bucket_starts
from shared.corrections import CorrectionMessage, Target, TargetData
from shared.fx import unrated_currency

CALL_TYPES = {"call.placed", "call.received", "call.missed"}
DEAL_TOUCHES = {"meeting.held", "email.sent", "conversation.logged"}
STATE_TYPES: dict[str, Callable[[dict[str, Any]], Any]] = {
    "event": CorrectedEvent.from_json,
    "deal": DealState.from_json,
    "call": CallState.from_json,
    "callback": CallbackState.from_json,
    "account": AccountState.from_json,
}
States = dict[StateKey, Any]


class BucketKey(NamedTuple):
    """One base counter of one subject in one bucket (a column of a ``kpi_rollups`` row).
    ``scope`` is whose bucket it is: ``rep``, ``team`` or ``unassigned`` (activity of an
    identity nobody owns, under that identity). In the KPI service and its table "scope" means
    only that; an API key's rights are a ``KeyScope``.

    The engine keys its deltas by plain tuples of these fields, in this order (equal to a
    ``BucketKey`` and cheaper to make, once per counter, grain and subject of every event)."""

    scope: str  # rep | team | unassigned
    metric: str
    grain: str
    bucket_start: int
    subject_id: str


Key = tuple[str, str, str, int, str]  # the fields of a BucketKey


class Fact(Protocol):
    """What the engine and the activity record read of an event: an event itself, or the
    target of a correction (``shared.corrections.Target``) as the record knows it."""

    @property
    def id(self) -> str: ...
    @property
    def source(self) -> str: ...
    @property
    def type(self) -> str: ...
    @property
    def epoch(self) -> int: ...
    @property
    def actor(self) -> ev.Actor | None: ...
    @property
    def data(self) -> Any: ...
    @property
    def partition_key(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Corrected:
    """The cause of what a correction books: its target, as the event it is, and its id."""

    target: Target
    correction_id: str

    @property
    def id(self) -> str:
        return self.target.id

    @property
    def source(self) -> str:
        return self.target.source

    @property
    def type(self) -> str:
        return self.target.type

    @property
    def epoch(self) -> int:
        return self.target.epoch

    @property
    def actor(self) -> ev.Actor | None:
        return self.target.actor

    @property
    def data(self) -> Any:
        return self.target.data

    @property
    def partition_key(self) -> str:
        return self.target.partition_key


# A booking of the activity record: the event that caused it, and what it booked (``sign`` -1
# takes back an earlier booking, as a call's next report or a deal's edit does).
Entry = tuple[Fact, Booked, int]
Deltas = dict[Key, int]
Item = tuple[ev.Event, dict[str, int]]  # an event and its stateless counters


class UnusableEvent(ValueError):
    """A valid event the engine cannot book (e.g. an amount in a currency with no rate)."""


@dataclass(slots=True)
class Applied:
    deltas: Deltas
    # account key -> [(deal key, (at, revenue cents, subjects) if won else None)]
    accounts: dict[StateKey, list[tuple[str, tuple[int, int, Subjects] | None]]] = field(
        default_factory=dict
    )
    # callback state key -> calls whose earlier report registered there and no longer holds
    forget: dict[StateKey, list[str]] = field(default_factory=dict)
    # callback state key -> calls a correction registers there: (call id, type, time, subjects)
    register: dict[StateKey, list[tuple[str, str, float, Subjects]]] = field(default_factory=dict)
    wins: list[Win] = field(default_factory=list)  # deals newly won in the batch, for alerts
    # every booking, signed, with the event that caused it: the activity record's rows
    ledger: list[Entry] = field(default_factory=list)
    # the event behind each follow-up state (the last of the batch that touched it)
    causes: dict[StateKey, Fact] = field(default_factory=dict)

    @property
    def followups(self) -> set[StateKey]:
        """States ``settle`` needs, beyond those ``plan`` named."""
        return set(self.accounts) | set(self.forget) | set(self.register)


def new_state(key: StateKey) -> Any:
    return STATE_TYPES[key[0]]({})


class Engine:
    def __init__(
        self,
        tz: ZoneInfo,
        currency: str,
        fx_rates: dict[str, Decimal] | None = None,
        *,
        hold_thin_wins: bool = False,
    ):
        """``hold_thin_wins``: a win known only by its stage (no rep, no amount: a HubSpot
        webhook's) is not announced while HubSpot enrichment will complete it; it is announced
        once it has its rep or its amount."""
        self._tz = tz
        self._hold_thin_wins = hold_thin_wins
        # While ``apply`` or ``settle`` runs: where each booking is recorded, and the event that
        # causes the bookings being made (the engine books one batch at a time).
        self._ledger: list[Entry] | None = None
        self._cause: Fact | None = None
        self._currency = currency
        self._fx = {currency: Decimal(1), **(fx_rates or {})}
        self._contributions: dict[str, Callable[[Any], dict[str, int]]] = {
            "call.placed": _call_placed,
            "call.received": _call_received,
            "call.missed": lambda e: {"calls_missed": 1},
            "lead.created": lambda e: {"leads_created": 1},
            "meeting.booked": lambda e: {"meetings_booked": 1},
            "meeting.held": lambda e: {"meetings_held": 1},
            "email.sent": lambda e: {"emails_sent": 1},
            "conversation.logged": lambda e: {"conversations_logged": 1},
            "proposal.sent": lambda e: {"proposals_sent": 1},
            "proposal.accepted": lambda e: {"proposals_accepted": 1},
            "deal.updated": self._deal_updated,
            "customer.churned": lambda e: {"churned_customers": 1},
            "survey.answered": _survey_answered,
            "complaint.logged": lambda e: {"complaints": 1},
        }

    @property
    def tz(self) -> ZoneInfo:
        return self._tz

    @staticmethod
    def subjects_of(event: ev.Event, roster: Roster) -> Subjects:
        """Whom an event's own actor is credited to at its time (or its identity, unassigned)."""
        return _subjects(roster.owner(event.actor, event.epoch), event.actor, event.partition_key)

    # -- the stateless part --------------------------------------------------------------

    def contributions(self, event: ev.Event) -> dict[str, int]:
        """The non-zero base counters one event adds; raises ``UnusableEvent``."""
        return {k: v for k, v in self._contributions[event.type](event).items() if v}

    # -- planning: which states a batch needs ---------------------------------------------

    def plan(self, items: Iterable[Item], roster: Roster) -> set[StateKey]:
        keys: set[StateKey] = set()
        for event, _ in items:
            if event.type in CALL_TYPES:
                keys.add(_call_key(event))
                callback = _callback_key(event, roster.owner(event.actor, event.epoch))
                if callback:
                    keys.add(callback)
            elif isinstance(event, ev.DealUpdated) or _touches_deal(event):
                keys.add(_deal_key(event))
        return keys

    # -- booking -------------------------------------------------------------------------

    def book(self, items: Iterable[Item], states: States, roster: Roster) -> dict[BucketKey, int]:
        """Every step at once over states held in memory (tests and tools; the store locks)."""
        batch = list(items)
        for key in self.plan(batch, roster):
            states.setdefault(key, new_state(key))
        applied = self.apply(batch, states, roster)
        for key in applied.followups:
            states.setdefault(key, new_state(key))
        for bucket, amount in self.settle(applied, states).items():
            applied.deltas[bucket] += amount
        return {BucketKey(*key): amount for key, amount in applied.deltas.items()}

    def apply(self, items: Iterable[Item], states: States, roster: Roster) -> Applied:
        """Book a batch: stateless counters, calls, callbacks and deals (states in place).
        Every booking is also recorded in ``Applied.ledger`` with the event that caused it."""
        result = Applied(defaultdict(int))
        touched: dict[str, set[StateKey]] = defaultdict(set)
        causes = result.causes  # a state touched by several events: the batch's last books it
        self._ledger = result.ledger
        try:
            for event, counters in items:
                self._cause = event
                if event.type in CALL_TYPES:
                    self._call(event, counters, states, roster, result, touched)
                elif isinstance(event, ev.DealUpdated):
                    states[_deal_key(event)].merge(event)
                    touched["deal"].add(_deal_key(event))
                    causes[_deal_key(event)] = event
                else:
                    if counters:
                        self._credit(event, counters, roster, result.deltas)
                    if _touches_deal(event):
                        states[_deal_key(event)].touch(event)
                        touched["deal"].add(_deal_key(event))
                        causes[_deal_key(event)] = event
            for key in sorted(touched["callback"]):
                self._cause = causes[key]
                self._rebook(result.deltas, states[key], states[key].bookings())
            for key in sorted(touched["deal"]):
                self._cause = causes[key]
                self._book_deal(key, states[key], roster, result)
        finally:
            self._ledger = self._cause = None
        return result

    def settle(self, applied: Applied, states: States) -> Deltas:
        """Book the follow-ups of ``apply`` (their states locked by the caller), recording
        them in ``applied.ledger`` too."""
        deltas: Deltas = defaultdict(int)
        self._ledger = applied.ledger
        try:
            for key in sorted(set(applied.forget) | set(applied.register)):
                self._cause = applied.causes[key]
                callbacks: CallbackState = states[key]
                for call_id in applied.forget.get(key, []):
                    callbacks.forget(call_id)
                for call_id, kind, time, subjects in applied.register.get(key, []):
                    _register(callbacks, call_id, kind, time, subjects)
                self._rebook(deltas, callbacks, callbacks.bookings())
            for key in sorted(applied.accounts):
                self._cause = applied.causes[key]
                account: AccountState = states[key]
                for deal, win in applied.accounts[key]:
                    if win is None:
                        account.drop_win(deal)
                    else:
                        account.set_win(deal, *win)
                self._rebook(deltas, account, account.bookings())
        finally:
            self._ledger = self._cause = None
        return deltas

    # -- corrections -----------------------------------------------------------------------

    def plan_corrections(self, corrections: Iterable[CorrectionMessage]) -> set[StateKey]:
        """The states corrections need: their events' calls or deals, or (an event no state
        holds) a state of the event's own."""
        keys: set[StateKey] = set()
        for correction in corrections:
            target = correction.target
            if target.type in CALL_TYPES:
                keys.add(_call_key(target))
            elif target.type == "deal.updated":
                keys.add(_deal_key(target))
            else:
                keys.add(_corrected_key(target))
                if _touches_deal(target):
                    keys.add(_deal_key(target))
        return keys

    def correct(
        self,
        corrections: Iterable[CorrectionMessage],
        states: States,
        roster: Roster,
        recorded: Mapping[bytes, list[Booked]],
        moved_calls: Iterable[StateKey] = (),
    ) -> Applied:
        """Apply corrections, in order, as if each corrected event had been so from the start
        (its rep another, or not there at all): each books the difference it makes, caused by
        its event (``Corrected``). ``recorded``: what each corrected event books now, from
        the activity record, for events no state holds. ``moved_calls``: calls a re-credit
        moved from unassigned to a rep, now registered where the rep's team's calls meet
        (what they book is moved already). Follow-ups as ``apply``'s."""
        result = Applied(defaultdict(int))
        touched: dict[str, set[StateKey]] = defaultdict(set)
        self._ledger = result.ledger
        try:
            for key in moved_calls:
                call: CallState = states[key]
                self._cause = _report_fact(key, call.outcome())
                if self._cause is not None:
                    self._book_call(call, key[1].split("|", 1)[1], states, roster, result, touched)
            for correction in corrections:
                self._correct(correction, states, roster, recorded, result, touched)
            for key in sorted(touched["callback"]):
                self._cause = result.causes[key]
                self._rebook(result.deltas, states[key], states[key].bookings())
            for key in sorted(touched["deal"]):
                self._cause = result.causes[key]
                self._book_deal(key, states[key], roster, result)
        finally:
            self._ledger = self._cause = None
        return result

    def _correct(
        self,
        correction: CorrectionMessage,
        states: States,
        roster: Roster,
        recorded: Mapping[bytes, list[Booked]],
        result: Applied,
        touched: dict[str, set[StateKey]],
    ) -> None:
        target = correction.target
        self._cause = cause = Corrected(target, correction.id)
        change = (target.id, correction.id, correction.action, correction.rep_id, correction.undo)
        if target.type in CALL_TYPES:
            call: CallState = states[_call_key(target)]
            override(call.overrides, *change)
            self._book_call(call, _call_id(target), states, roster, result, touched)
            return
        if target.type == "deal.updated":
            deal: DealState = states[_deal_key(target)]
            override(deal.overrides, *change)
            deal.refold()
            touched["deal"].add(_deal_key(target))
            result.causes[_deal_key(target)] = cause
            return
        corrected: CorrectedEvent = states[_corrected_key(target)]
        if not corrected.learnt:
            corrected.learn(recorded.get(target.key, []), target.epoch)
        override(corrected.overrides, *change)
        self._rebook(result.deltas, corrected, _corrected_booking(corrected, target, roster))
        if _touches_deal(target):  # an excluded touch no longer counts on its deal's win
            deal = states[_deal_key(target)]
            override(deal.overrides, *change)
            touched["deal"].add(_deal_key(target))
            result.causes[_deal_key(target)] = cause

    def _call(
        self,
        event: ev.Event,
        counters: dict[str, int],
        states: States,
        roster: Roster,
        result: Applied,
        touched: dict[str, set[StateKey]],
    ) -> None:
        call: CallState = states[_call_key(event)]
        if not call.reports and not call.newer((event.instant, event.id)):
            return  # an older report of a call told, before reports were kept, by a later one
        actor = event.actor.model_dump() if event.actor else None
        call.record(
            Report(
                event.instant,
                event.id,
                event.type,
                actor,
                tuple(counters.items()),
                getattr(event.data, "counterpart", None),
                event.partition_key,
            )
        )
        self._book_call(call, _call_id(event), states, roster, result, touched)

    def _book_call(
        self,
        call: CallState,
        call_id: str,
        states: States,
        roster: Roster,
        result: Applied,
        touched: dict[str, set[StateKey]],
    ) -> None:
        """Book the call as its outcome (its latest report, corrections applied) says, and
        register it where it meets the team's other calls to the same number."""
        cause = self._cause
        assert cause is not None, "booked within apply or correct"
        report = call.outcome()
        wanted: list[Booked] = []
        callback: StateKey | None = None
        subjects: Subjects = ()
        if report is not None:
            actor = ev.Actor(**report.actor) if report.actor else None
            owner = roster.owner(actor, int(report.time))
            subjects = _subjects(owner, actor, fallback=report.key)
            wanted = [Booked(int(report.time), subjects, report.counters)]
            callback = _callback_at(report.type, report.counterpart, owner)
        version = [report.time, report.id] if report is not None else None
        registered = callback[1] if callback else None
        if version == call.version and wanted == call.booked and registered == call.callback:
            return  # an older report of a call already told by a later one
        call.version = version
        self._rebook(result.deltas, call, wanted)
        previous = ("callback", call.callback) if call.callback else None
        if previous and previous != callback:
            # What an earlier report registered elsewhere no longer holds. If no event of this
            # batch maps there, that state is not locked yet: ``settle`` undoes it.
            result.causes[previous] = cause
            if previous in states:
                states[previous].forget(call_id)
                touched["callback"].add(previous)
            else:
                result.forget.setdefault(previous, []).append(call_id)
                pending = result.register.get(previous, [])  # registered there earlier in the
                pending[:] = [e for e in pending if e[0] != call_id]  # batch: no longer holds
        call.callback = callback[1] if callback else None
        if callback is None or report is None:
            return
        result.causes[callback] = cause
        if callback in states:
            _register(states[callback], call_id, report.type, report.time, subjects)
            touched["callback"].add(callback)
        else:  # a correction moved the call to a team no event of the batch named
            entry = (call_id, report.type, report.time, subjects)
            result.register.setdefault(callback, []).append(entry)

    def _book_deal(self, key: StateKey, deal: DealState, roster: Roster, result: Applied) -> None:
        decided = deal.decided()
        wanted: list[Booked] = []
        win: tuple[int, int, Subjects] | None = None
        if decided is not None:
            kind, at = decided
            actor_data = deal.value("actor")
            actor = ev.Actor(**actor_data) if actor_data else None
            deal_id = key[1].split("|", 1)[1]  # "|" cannot occur unescaped in a source URI
            owner = roster.owner(actor, int(at))
            subjects = _subjects(owner, actor, fallback=f"deal_id:{deal_id}")
            rate = self._fx.get(deal.value("currency") or self._currency)
            counters = won_counters(deal, at, rate) if kind == "won" else {"deals_lost": 1}
            wanted = [Booked(int(at), subjects, tuple(counters.items()))]
            if kind == "won":
                win = (int(at), counters["revenue_cents"], subjects)
                hold = self._hold_thin_wins
                if not (hold and _thin(wanted[0])) and not _announced(deal.booked, hold):
                    rep = next((i for scope, i in subjects if scope == "rep"), None)
                    result.wins.append(Win(deal_id, int(at), counters["revenue_cents"], rep))
        self._rebook(result.deltas, deal, wanted)
        self._register_account(key, deal, win, result)

    @staticmethod
    def _register_account(
        key: StateKey, deal: DealState, win: tuple[int, int, Subjects] | None, result: Applied
    ) -> None:
        account_id = deal.value("account_id")
        account = ("account", f"{key[1].split('|', 1)[0]}|{account_id}") if account_id else None
        previous = (deal.account[0], deal.account[1]) if deal.account else None
        if previous and previous != account:
            result.accounts.setdefault(previous, []).append((key[1], None))
            result.causes[previous] = result.causes[key]
        if account:
            result.accounts.setdefault(account, []).append((key[1], win))
            result.causes[account] = result.causes[key]
        deal.account = list(account) if account else None

    def _rebook(self, deltas: Deltas, state: Any, wanted: list[Booked]) -> None:
        if wanted == state.booked:
            return
        for old in state.booked:
            self._add(deltas, old, -1)
        for new in wanted:
            self._add(deltas, new, +1)
        state.booked = wanted

    def _credit(
        self, event: ev.Event, counters: dict[str, int], roster: Roster, deltas: Deltas
    ) -> None:
        ts = event.epoch
        subjects = _subjects(roster.owner(event.actor, ts), event.actor, event.partition_key)
        self._add(deltas, Booked(ts, subjects, tuple(counters.items())), +1)

    def _add(self, deltas: Deltas, booked: Booked, sign: int) -> None:
        if self._ledger is not None and self._cause is not None:
            self._ledger.append((self._cause, booked, sign))
        starts = bucket_starts(booked.at, self._tz)
        for scope, subject in booked.subjects:
            for metric, amount in booked.counters:
                if amount:
                    value = sign * amount
                    for grain, start in starts:
                        deltas[(scope, metric, grain, start, subject)] += value

    def _deal_updated(self, event: ev.DealUpdated) -> dict[str, int]:
        """Deals are booked from their state; here only the currency is checked."""
        if (currency := unrated_currency(event, self._fx)) is not None:
            raise UnusableEvent(f"no exchange rate from {currency} to {self._currency}")
        return {}


def _subjects(owner: Owner | None, actor: ev.Actor | None, fallback: str) -> Subjects:
    """The rep and the rep's team (``owner``, at the fact's time); or the actor's identity,
    kept as unassigned."""
    if owner is None:
        return (("unassigned", actor.key if actor else fallback),)
    if owner.team_id is None:
        return (("rep", owner.rep_id),)
    return (("rep", owner.rep_id), ("team", owner.team_id))


def _callback_key(event: ev.Event, owner: Owner | None) -> StateKey | None:
    """Where a missed or placed call meets the others: its owner's team and the number."""
    return _callback_at(event.type, getattr(event.data, "counterpart", None), owner)


def _callback_at(kind: str, counterpart: str | None, owner: Owner | None) -> StateKey | None:
    if kind not in ("call.missed", "call.placed"):
        return None
    number = normalise_number(counterpart)
    if number is None or owner is None or owner.team_id is None:
        return None
    return ("callback", f"{owner.team_id}|{number}")


def _register(
    callbacks: CallbackState, call_id: str, kind: str, time: float, subjects: Subjects
) -> None:
    callbacks.forget(call_id)
    if kind == "call.missed":
        callbacks.add_missed(call_id, time, subjects)
    elif kind == "call.placed":
        callbacks.add_placed(call_id, time)


def _call_id(event: Fact) -> str:
    return str(getattr(event.data, "call_id", event.id))


def _call_key(event: Fact) -> StateKey:
    return ("call", f"{event.source}|{getattr(event.data, 'call_id', event.id)}")


def _deal_key(event: Fact) -> StateKey:
    return ("deal", f"{event.source}|{getattr(event.data, 'deal_id', '')}")


def _touches_deal(event: Fact) -> bool:
    return event.type in DEAL_TOUCHES and bool(getattr(event.data, "deal_id", None))


def _call_placed(event: ev.CallPlaced) -> dict[str, int]:
    connected = event.data.outcome == "connected"
    return {
        "calls_placed": 1,
        "calls_connected": int(connected),
        "talk_seconds": event.data.talk_seconds,
    }


def _call_received(event: ev.CallReceived) -> dict[str, int]:
    return {"calls_received": 1, "talk_seconds": event.data.talk_seconds}


def _survey_answered(event: ev.SurveyAnswered) -> dict[str, int]:
    nps, csat = event.data.nps, event.data.csat
    if nps is not None:
        return {"nps_answers": 1, "nps_promoters": int(nps >= 9), "nps_detractors": int(nps <= 6)}
    return {"csat_answers": 1, "csat_sum": csat or 0}


def _announced(booked: list[Booked], held_thin: bool) -> bool:
    """Whether the deal's win was announced already: then this is an edit of that win (its
    amount, or its time moved by a late earlier report), not a new win. A deal open or lost
    before is won anew; a thin win held back is announced when it is completed."""
    return any(dict(b.counters).get("deals_won") and not (held_thin and _thin(b)) for b in booked)


def _thin(won: Booked) -> bool:
    """A win booked to nobody, for nothing: all its webhook said was its stage."""
    return all(scope != "rep" for scope, _ in won.subjects) and not dict(won.counters).get(
        "revenue_cents"
    )


def _corrected_key(target: Target) -> StateKey:
    return ("event", target.key.hex())


def _corrected_booking(corrected: CorrectedEvent, target: Target, roster: Roster) -> list[Booked]:
    """Where a corrected event (no state of its own besides) books now: nowhere if excluded,
    to its rep if reassigned, to its own actor otherwise."""
    decided = in_force(corrected.overrides, target.id)
    if (decided is not None and decided[0] == "exclude") or not corrected.counters:
        return []
    actor = target.actor
    if decided is not None and decided[1] is not None:
        actor = ev.Actor(**rep_actor_json(decided[1]))
    at = corrected.at if corrected.at is not None else target.epoch
    subjects = _subjects(roster.owner(actor, at), actor, fallback=target.partition_key)
    return [Booked(at, subjects, tuple((n, int(v)) for n, v in corrected.counters))]


def _report_fact(key: StateKey, report: Report | None) -> Target | None:
    """A call's report as the cause of what re-registering the call books."""
    if report is None:
        return None
    source, call_id = key[1].split("|", 1)
    return Target(
        id=report.id,
        source=source,
        type=report.type,
        time=datetime.fromtimestamp(report.time, UTC),
        actor=ev.Actor(**report.actor) if report.actor else None,
        data=TargetData(call_id=call_id),
    )
