"""The metric catalogue: what the KPI service counts (base counters) and what the API derives.

Base counters are integers summed in buckets (counts, seconds, cents). Every published metric is
a function of summed base counters, so a ratio is always computed from its summed parts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

Kind = Literal["count", "sum", "ratio"]

# Base counters, as stored in kpi_buckets.metric.
BASE_COUNTERS: tuple[str, ...] = (
    "calls_placed",
    "calls_connected",
    "calls_received",
    "calls_missed",
    "talk_seconds",
    "callbacks",
    "callbacks_1h",
    "callback_delay_seconds",
    "leads_created",
    "meetings_booked",
    "meetings_held",
    "emails_sent",
    "conversations_logged",
    "proposals_sent",
    "proposals_accepted",
    "deals_won",
    "deals_lost",
    "revenue_cents",
    "margin_cents",
    "discount_bp_sum",
    "discounted_wins",
    "sales_cycle_seconds",
    "cycled_wins",
    "touches_on_wins",
    "new_customers",
    "new_business_revenue_cents",
    "expansion_revenue_cents",
    "churned_customers",
    "complaints",
    "nps_promoters",
    "nps_detractors",
    "nps_answers",
    "csat_sum",
    "csat_answers",
)

Sums = Mapping[str, int]
Linear = tuple[tuple[str, int], ...]  # (base counter, coefficient): sum of coefficient x counter


@dataclass(frozen=True, slots=True)
class Metric:
    """A metric as a function of summed base counters, declared as linear forms so that its
    parts can be read anywhere (in SQL too; a drill-down tells numerator from denominator):

    - a count or a sum is ``numerator`` (a sum in ``currency`` is kept in cents);
    - a ratio is ``numerator / denominator x scale``, null when the denominator is 0;
    - an attainment (``target_of``) is the value of that metric over its target."""

    name: str
    kind: Kind
    unit: str
    definition: str
    numerator: Linear
    denominator: Linear | None = None
    scale: float = 1.0
    target_of: str | None = None  # attainment metrics: the metric whose target they measure

    @property
    def needs(self) -> tuple[str, ...]:
        """The base counters it is computed from."""
        return tuple(dict.fromkeys(c for c, _ in (*self.numerator, *(self.denominator or ()))))

    def value(self, sums: Sums) -> float | int | None:
        if self.target_of is not None:
            return None  # needs a target: see ``evaluate``
        numerator = _apply(self.numerator, sums)
        if self.denominator is None:
            return _money(numerator) if self.unit == "currency" else numerator
        return _ratio(numerator, _apply(self.denominator, sums), self.scale)


def _apply(form: Linear, sums: Sums) -> int:
    return sum(coefficient * sums.get(counter, 0) for counter, coefficient in form)


def _ratio(numerator: float, denominator: float, scale: float = 1.0) -> float | None:
    return None if denominator == 0 else round(numerator / denominator * scale, 6)


def _money(cents: int) -> float:
    return round(cents / 100, 2)


def _of(*counters: str) -> Linear:
    return tuple((c, 1) for c in counters)


def _count(base: str, definition: str) -> Metric:
    return Metric(base, "count", "count", definition, _of(base))


def _rate(name: str, unit: str, definition: str, num: Linear, den: Linear, scale: float = 1.0) -> (
    Metric
):  # fmt: skip
    return Metric(name, "ratio", unit, definition, num, den, scale)


_METRICS: list[Metric] = [
    _count("calls_placed", "count of call.placed"),
    _count("calls_connected", "placed calls with outcome connected"),
    _count("calls_received", "count of call.received"),
    _count("calls_missed", "count of call.missed"),
    Metric("calls_total", "count", "count", "placed + received",
           _of("calls_placed", "calls_received")),
    _rate("answer_rate", "ratio", "received / (received + missed)",
          _of("calls_received"), _of("calls_received", "calls_missed")),
    _rate("connect_rate", "ratio", "connected / placed",
          _of("calls_connected"), _of("calls_placed")),
    Metric("talk_seconds", "sum", "seconds", "sum of talk time, in and out", _of("talk_seconds")),
    _rate("avg_call_seconds", "seconds", "talk_seconds / (connected + received)",
          _of("talk_seconds"), _of("calls_connected", "calls_received")),
    _rate("missed_callback_rate", "ratio",
          "missed calls whose number the same team called back within 1 h / missed",
          _of("callbacks_1h"), _of("calls_missed")),
    _rate("avg_callback_seconds", "seconds",
          "mean time from a missed call to the first call back to that number",
          _of("callback_delay_seconds"), _of("callbacks")),
    _count("leads_created", "count of lead.created"),
    _count("meetings_booked", "count of meeting.booked"),
    _count("meetings_held", "count of meeting.held"),
    Metric("touches", "count", "count", "calls_total + meetings_held + emails + conversations",
           _of("calls_placed", "calls_received", "meetings_held", "emails_sent",
               "conversations_logged")),
    _count("proposals_sent", "count of proposal.sent"),
    _count("proposals_accepted", "count of proposal.accepted"),
    _rate("proposal_acceptance_rate", "ratio", "accepted / sent",
          _of("proposals_accepted"), _of("proposals_sent")),
    _count("deals_won", "deals entering status won"),
    _count("deals_lost", "deals entering status lost"),
    _rate("win_rate", "ratio", "won / (won + lost)",
          _of("deals_won"), _of("deals_won", "deals_lost")),
    Metric("revenue", "sum", "currency", "sum of amounts of won deals", _of("revenue_cents")),
    _rate("avg_deal_size", "currency", "revenue / deals_won",
          _of("revenue_cents"), _of("deals_won"), 0.01),
    Metric("margin", "sum", "currency", "sum of the margin of won deals", _of("margin_cents")),
    _rate("margin_rate", "ratio", "margin / revenue",
          _of("margin_cents"), _of("revenue_cents")),
    _rate("avg_discount_rate", "ratio", "mean discount of won deals (that have one)",
          _of("discount_bp_sum"), _of("discounted_wins"), 0.0001),
    _count("new_customers", "won deals that are their account's first win"),
    Metric("new_business_revenue", "sum", "currency", "revenue from accounts' first wins",
           _of("new_business_revenue_cents")),
    Metric("expansion_revenue", "sum", "currency", "revenue from existing customers",
           _of("expansion_revenue_cents")),
    _rate("conversion_rate", "ratio", "new_customers / leads_created in the window",
          _of("new_customers"), _of("leads_created")),
    _rate("sales_cycle_days", "days", "mean days from deal creation to win",
          _of("sales_cycle_seconds"), _of("cycled_wins"), 1 / 86400),
    _rate("touches_per_win", "count", "mean touches logged on a deal before its win",
          _of("touches_on_wins"), _of("deals_won")),
    Metric("quota_attainment", "ratio", "ratio",
           "revenue / revenue target of the window's period (pro-rated for rolling windows)",
           _of("revenue_cents"), target_of="revenue"),
    Metric("activity_attainment", "ratio", "ratio",
           "calls_total / calls target of the period (pro-rated for rolling windows)",
           _of("calls_placed", "calls_received"), target_of="calls_total"),
    _count("churned_customers", "count of customer.churned"),
    _rate("nps", "score", "% promoters (9-10) - % detractors (0-6) among answers",
          (("nps_promoters", 1), ("nps_detractors", -1)), _of("nps_answers"), 100),
    _rate("csat", "score", "mean satisfaction score (1-5)", _of("csat_sum"), _of("csat_answers")),
    _count("complaints", "count of complaint.logged"),
]  # fmt: skip

CATALOGUE: dict[str, Metric] = {m.name: m for m in _METRICS}
TARGETED: dict[str, str] = {m.name: m.target_of for m in _METRICS if m.target_of}
# What a report shows unless asked otherwise: a sales manager's week on one line per rep.
HEADLINE: tuple[str, ...] = (
    "calls_total",
    "calls_missed",
    "meetings_held",
    "deals_won",
    "revenue",
    "win_rate",
    "quota_attainment",
)


def evaluate(
    sums: Sums, names: list[str] | None = None, targets: dict[str, float] | None = None
) -> dict[str, float | int | None]:
    """Every (or the listed) metric from one subject's summed base counters; attainment
    metrics also need the window's ``targets`` (metric name -> target), else they are null."""
    return {n: _value(CATALOGUE[n], sums, targets or {}) for n in (names or list(CATALOGUE))}


def _value(metric: Metric, sums: Sums, targets: dict[str, float]) -> float | int | None:
    if metric.target_of is None:
        return metric.value(sums)
    target = targets.get(metric.target_of)
    achieved = CATALOGUE[metric.target_of].value(sums)
    return None if not target or achieved is None else _ratio(float(achieved), target)


# The volume behind a ratio: a leaderboard lists a subject unranked below a minimum of it.
VOLUME: dict[str, tuple[str, ...]] = {
    "answer_rate": ("calls_received", "calls_missed"),
    "connect_rate": ("calls_placed",),
    "avg_call_seconds": ("calls_connected", "calls_received"),
    "missed_callback_rate": ("calls_missed",),
    "avg_callback_seconds": ("callbacks",),
    "proposal_acceptance_rate": ("proposals_sent",),
    "win_rate": ("deals_won", "deals_lost"),
    "avg_deal_size": ("deals_won",),
    "margin_rate": ("deals_won",),
    "avg_discount_rate": ("discounted_wins",),
    "conversion_rate": ("leads_created",),
    "sales_cycle_days": ("cycled_wins",),
    "touches_per_win": ("deals_won",),
    "nps": ("nps_answers",),
    "csat": ("csat_answers",),
}


def volume(name: str, sums: Sums) -> int | None:
    """How many facts a ratio metric rests on (None for counts and sums)."""
    counters = VOLUME.get(name)
    return None if counters is None else sum(sums.get(c, 0) for c in counters)


def needed_counters(names: list[str]) -> set[str]:
    return {base for n in names for base in (*CATALOGUE[n].needs, *VOLUME.get(n, ()))}
