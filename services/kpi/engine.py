"""The KPI engine: canonical events in, aggregate deltas out. Pure: no I/O, no clock.

Each event type contributes base counters (a dispatch table, one small function per type); the
contributions are credited to the rep and the rep's team at the event's time, or kept as
unassigned activity under the actor's identity, in the minute, hour and day bucket of the event.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from services.kpi.deals import Booked, DealState, counters_of
from services.kpi.roster import Roster
from shared import events as ev
from shared.buckets import bucket_starts


class BucketKey(NamedTuple):
    scope: str  # rep | team | unassigned
    metric: str
    grain: str
    bucket_start: int
    subject_id: str


Deltas = dict[BucketKey, int]
DealKey = tuple[str, str]  # (source, deal id)


def deal_key(event: ev.DealUpdated) -> DealKey:
    return (event.source, event.data.deal_id)


class UnusableEvent(ValueError):
    """A valid event the engine cannot book (e.g. an amount in a currency with no rate)."""


class Engine:
    def __init__(self, tz: ZoneInfo, currency: str, fx_rates: dict[str, Decimal] | None = None):
        self._tz = tz
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

    def contributions(self, event: ev.Event) -> dict[str, int]:
        """The non-zero base counters one event adds; raises ``UnusableEvent``."""
        return {k: v for k, v in self._contributions[event.type](event).items() if v}

    def apply(self, booked: Iterable[tuple[ev.Event, dict[str, int]]], roster: Roster) -> Deltas:
        """Credit each event's contributions (from ``contributions``) to its owner's buckets."""
        deltas: Deltas = defaultdict(int)
        for event, counters in booked:
            if counters:
                self._credit(event, counters, roster, deltas)
        return deltas

    def book_deals(
        self, updates: Iterable[ev.DealUpdated], states: dict[DealKey, DealState], roster: Roster
    ) -> Deltas:
        """Merge the updates into their deals' states (in place) and book the differences."""
        deltas: Deltas = defaultdict(int)
        touched: set[DealKey] = set()
        for update in updates:
            key = deal_key(update)
            states.setdefault(key, DealState()).merge(update)
            touched.add(key)
        for key in sorted(touched):
            state = states[key]
            wanted = self._deal_booking(key, state, roster)
            if wanted != state.booked:
                if state.booked is not None:
                    self._add(
                        deltas, state.booked.at, state.booked.subjects, state.booked.counters, -1
                    )
                if wanted is not None:
                    self._add(deltas, wanted.at, wanted.subjects, wanted.counters, +1)
                state.booked = wanted
        return deltas

    def _deal_booking(self, key: DealKey, state: DealState, roster: Roster) -> Booked | None:
        decided = state.decided()
        if decided is None:
            return None
        kind, at = decided
        actor_data = state.value("actor")
        actor = ev.Actor(**actor_data) if actor_data else None
        subjects = self._subjects(actor, int(at), roster, fallback=f"deal_id:{key[1]}")
        return Booked(int(at), subjects, counters_of(state, kind, self._fx, self._currency))

    def _credit(
        self, event: ev.Event, counters: dict[str, int], roster: Roster, deltas: Deltas
    ) -> None:
        ts = int(event.time.timestamp())
        subjects = self._subjects(event.actor, ts, roster, fallback=event.partition_key)
        self._add(deltas, ts, subjects, tuple(counters.items()), +1)

    @staticmethod
    def _subjects(
        actor: ev.Actor | None, ts: int, roster: Roster, fallback: str
    ) -> tuple[tuple[str, str], ...]:
        """The rep and the rep's team at ``ts``; or the actor's identity, kept as unassigned."""
        owner = roster.owner(actor, ts)
        if owner is None:
            return (("unassigned", actor.key if actor else fallback),)
        if owner.team_id is None:
            return (("rep", owner.rep_id),)
        return (("rep", owner.rep_id), ("team", owner.team_id))

    def _add(
        self,
        deltas: Deltas,
        ts: int,
        subjects: tuple[tuple[str, str], ...],
        counters: tuple[tuple[str, int], ...],
        sign: int,
    ) -> None:
        for grain, start in bucket_starts(ts, self._tz):
            for scope, subject in subjects:
                for metric, amount in counters:
                    deltas[BucketKey(scope, metric, grain, start, subject)] += sign * amount

    def _deal_updated(self, event: ev.DealUpdated) -> dict[str, int]:
        """Deals are booked from their state (``book_deals``); here only the currency is checked."""
        currency = event.data.currency
        if currency is not None and currency not in self._fx:
            raise UnusableEvent(f"no exchange rate from {currency} to {self._currency}")
        return {}


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
