"""The metric catalogue: what the KPI service counts (base counters) and what the API derives.

Base counters are integers summed in buckets (counts, seconds, cents). Every published metric is
a function of summed base counters, so a ratio is always computed from its summed parts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
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


@dataclass(frozen=True, slots=True)
class Metric:
    name: str
    kind: Kind
    unit: str
    definition: str
    needs: tuple[str, ...]
    compute: Callable[[Sums], float | int | None]
    target_of: str | None = None  # attainment metrics: the metric whose target they measure

    def value(self, sums: Sums) -> float | int | None:
        return self.compute(sums)


def _ratio(numerator: float, denominator: float, scale: float = 1.0) -> float | None:
    return None if denominator == 0 else round(numerator / denominator * scale, 6)


def _count(base: str, definition: str, unit: str = "count") -> Metric:
    return Metric(base, "count", unit, definition, (base,), lambda s: s.get(base, 0))


def _money(cents: int) -> float:
    return round(cents / 100, 2)


def _g(s: Sums, *names: str) -> int:
    return sum(s.get(n, 0) for n in names)


_METRICS: list[Metric] = [
    _count("calls_placed", "count of call.placed"),
    _count("calls_connected", "placed calls with outcome connected"),
    _count("calls_received", "count of call.received"),
    _count("calls_missed", "count of call.missed"),
    Metric(
        "calls_total",
        "count",
        "count",
        "placed + received",
        ("calls_placed", "calls_received"),
        lambda s: _g(s, "calls_placed", "calls_received"),
    ),
    Metric(
        "answer_rate",
        "ratio",
        "ratio",
        "received / (received + missed)",
        ("calls_received", "calls_missed"),
        lambda s: _ratio(_g(s, "calls_received"), _g(s, "calls_received", "calls_missed")),
    ),
    Metric(
        "connect_rate",
        "ratio",
        "ratio",
        "connected / placed",
        ("calls_connected", "calls_placed"),
        lambda s: _ratio(_g(s, "calls_connected"), _g(s, "calls_placed")),
    ),
    Metric(
        "talk_seconds",
        "sum",
        "seconds",
        "sum of talk time, in and out",
        ("talk_seconds",),
        lambda s: _g(s, "talk_seconds"),
    ),
    Metric(
        "avg_call_seconds",
        "ratio",
        "seconds",
        "talk_seconds / (connected + received)",
        ("talk_seconds", "calls_connected", "calls_received"),
        lambda s: _ratio(_g(s, "talk_seconds"), _g(s, "calls_connected", "calls_received")),
    ),
    Metric(
        "missed_callback_rate",
        "ratio",
        "ratio",
        "missed calls whose number the same team called back within 1 h / missed",
        ("callbacks_1h", "calls_missed"),
        lambda s: _ratio(_g(s, "callbacks_1h"), _g(s, "calls_missed")),
    ),
    Metric(
        "avg_callback_seconds",
        "ratio",
        "seconds",
        "mean time from a missed call to the first call back to that number",
        ("callback_delay_seconds", "callbacks"),
        lambda s: _ratio(_g(s, "callback_delay_seconds"), _g(s, "callbacks")),
    ),
    _count("leads_created", "count of lead.created"),
    _count("meetings_booked", "count of meeting.booked"),
    _count("meetings_held", "count of meeting.held"),
    Metric(
        "touches",
        "count",
        "count",
        "calls_total + meetings_held + emails + conversations",
        ("calls_placed", "calls_received", "meetings_held", "emails_sent", "conversations_logged"),
        lambda s: _g(
            s,
            "calls_placed",
            "calls_received",
            "meetings_held",
            "emails_sent",
            "conversations_logged",
        ),
    ),
    _count("proposals_sent", "count of proposal.sent"),
    _count("proposals_accepted", "count of proposal.accepted"),
    Metric(
        "proposal_acceptance_rate",
        "ratio",
        "ratio",
        "accepted / sent",
        ("proposals_accepted", "proposals_sent"),
        lambda s: _ratio(_g(s, "proposals_accepted"), _g(s, "proposals_sent")),
    ),
    _count("deals_won", "deals entering status won"),
    _count("deals_lost", "deals entering status lost"),
    Metric(
        "win_rate",
        "ratio",
        "ratio",
        "won / (won + lost)",
        ("deals_won", "deals_lost"),
        lambda s: _ratio(_g(s, "deals_won"), _g(s, "deals_won", "deals_lost")),
    ),
    Metric(
        "revenue",
        "sum",
        "currency",
        "sum of amounts of won deals",
        ("revenue_cents",),
        lambda s: _money(_g(s, "revenue_cents")),
    ),
    Metric(
        "avg_deal_size",
        "ratio",
        "currency",
        "revenue / deals_won",
        ("revenue_cents", "deals_won"),
        lambda s: _ratio(_g(s, "revenue_cents"), _g(s, "deals_won"), 0.01),
    ),
    Metric(
        "margin",
        "sum",
        "currency",
        "sum of the margin of won deals",
        ("margin_cents",),
        lambda s: _money(_g(s, "margin_cents")),
    ),
    Metric(
        "margin_rate",
        "ratio",
        "ratio",
        "margin / revenue",
        ("margin_cents", "revenue_cents"),
        lambda s: _ratio(_g(s, "margin_cents"), _g(s, "revenue_cents")),
    ),
    Metric(
        "avg_discount_rate",
        "ratio",
        "ratio",
        "mean discount of won deals (that have one)",
        ("discount_bp_sum", "discounted_wins"),
        lambda s: _ratio(_g(s, "discount_bp_sum"), _g(s, "discounted_wins"), 0.0001),
    ),
    _count("new_customers", "won deals that are their account's first win"),
    Metric(
        "new_business_revenue",
        "sum",
        "currency",
        "revenue from accounts' first wins",
        ("new_business_revenue_cents",),
        lambda s: _money(_g(s, "new_business_revenue_cents")),
    ),
    Metric(
        "expansion_revenue",
        "sum",
        "currency",
        "revenue from existing customers",
        ("expansion_revenue_cents",),
        lambda s: _money(_g(s, "expansion_revenue_cents")),
    ),
    Metric(
        "conversion_rate",
        "ratio",
        "ratio",
        "new_customers / leads_created in the window",
        ("new_customers", "leads_created"),
        lambda s: _ratio(_g(s, "new_customers"), _g(s, "leads_created")),
    ),
    Metric(
        "sales_cycle_days",
        "ratio",
        "days",
        "mean days from deal creation to win",
        ("sales_cycle_seconds", "cycled_wins"),
        lambda s: _ratio(_g(s, "sales_cycle_seconds"), _g(s, "cycled_wins"), 1 / 86400),
    ),
    Metric(
        "touches_per_win",
        "ratio",
        "count",
        "mean touches logged on a deal before its win",
        ("touches_on_wins", "deals_won"),
        lambda s: _ratio(_g(s, "touches_on_wins"), _g(s, "deals_won")),
    ),
    Metric(
        "quota_attainment",
        "ratio",
        "ratio",
        "revenue / revenue target of the window's period (pro-rated for rolling windows)",
        ("revenue_cents",),
        lambda s: None,
        target_of="revenue",
    ),
    Metric(
        "activity_attainment",
        "ratio",
        "ratio",
        "calls_total / calls target of the period (pro-rated for rolling windows)",
        ("calls_placed", "calls_received"),
        lambda s: None,
        target_of="calls_total",
    ),
    _count("churned_customers", "count of customer.churned"),
    Metric(
        "nps",
        "ratio",
        "score",
        "% promoters (9-10) - % detractors (0-6) among answers",
        ("nps_promoters", "nps_detractors", "nps_answers"),
        lambda s: _ratio(
            _g(s, "nps_promoters") - _g(s, "nps_detractors"), _g(s, "nps_answers"), 100
        ),
    ),
    Metric(
        "csat",
        "ratio",
        "score",
        "mean satisfaction score (1-5)",
        ("csat_sum", "csat_answers"),
        lambda s: _ratio(_g(s, "csat_sum"), _g(s, "csat_answers")),
    ),
    _count("complaints", "count of complaint.logged"),
]

CATALOGUE: dict[str, Metric] = {m.name: m for m in _METRICS}
TARGETED: dict[str, str] = {m.name: m.target_of for m in _METRICS if m.target_of}


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
