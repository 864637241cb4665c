"""Prometheus metrics of the KPI service (names are part of the contract)."""

from collections.abc import Iterable

from prometheus_client import Counter, Gauge, Histogram

from shared import outbox

EVENTS_APPLIED = Counter("salespulse_kpi_events_applied_total", "Events applied to aggregates")
DUPLICATES_SKIPPED = Counter(
    "salespulse_kpi_duplicates_skipped_total", "Events skipped because their id was applied before"
)
DEADLETTERED = Counter(
    "salespulse_kpi_deadlettered_total",
    "Records the KPI service sent to the dead-letter topic",
    ["reason"],
)
UNASSIGNED = Counter(
    "salespulse_kpi_unassigned_events_total", "Applied events whose actor is not on the roster"
)
INFRASTRUCTURE_WAITS = Counter(
    "salespulse_kpi_infrastructure_waits_total",
    "Pauses because the database or the broker was unavailable, per step",
    ["step"],
)
STALLED = Gauge(
    "salespulse_kpi_stalled",
    "1 while flushes fail for a reason that is no event's nor an outage (a bug, a broken "
    "schema): nothing is booked until it is fixed; 0 otherwise",
)
SYSTEMIC_FAILURES = Counter(
    "salespulse_kpi_systemic_failures_total",
    "Flush attempts that failed with no event at fault, each followed by a pause and a retry",
)
CONSUMER_LAG = Gauge(
    "salespulse_kpi_consumer_lag", "Records behind the end of the partition", ["partition"]
)
FLUSH_SECONDS = Histogram(
    "salespulse_kpi_flush_seconds",
    "Duration of one flush transaction",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
EVENT_TO_KPI_SECONDS = Histogram(
    "salespulse_kpi_event_latency_seconds",
    "From the record's publish time to the commit of its aggregates",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)

# Business counters: what was booked (a later correction is not subtracted; counters only grow,
# and the API has the exact, corrected numbers). Per team; per rep only when enabled.
_NOTE = " booked (corrections not subtracted)"
CALLS = Counter("salespulse_calls_total", "Calls" + _NOTE, ["team", "direction"])
DEALS_WON = Counter("salespulse_deals_won_total", "Deals won" + _NOTE, ["team"])
REVENUE = Counter(
    "salespulse_revenue_total", "Revenue of won deals, reporting currency" + _NOTE, ["team"]
)
REP_CALLS = Counter("salespulse_rep_calls_total", "Calls per rep" + _NOTE, ["rep", "direction"])
REP_DEALS_WON = Counter("salespulse_rep_deals_won_total", "Deals won per rep" + _NOTE, ["rep"])
REP_REVENUE = Counter("salespulse_rep_revenue_total", "Revenue per rep" + _NOTE, ["rep"])


def count_business(booked: dict[tuple[str, str, str], int], per_rep: bool) -> None:
    for (scope, subject, metric), amount in booked.items():
        if amount <= 0 or (scope == "rep" and not per_rep):
            continue
        team = scope == "team"
        if metric.startswith("calls_"):
            direction = metric.removeprefix("calls_")
            (CALLS if team else REP_CALLS).labels(subject, direction).inc(amount)
        elif metric == "deals_won":
            (DEALS_WON if team else REP_DEALS_WON).labels(subject).inc(amount)
        elif metric == "revenue_cents":
            (REVENUE if team else REP_REVENUE).labels(subject).inc(amount / 100)


DEADLETTER_REASONS = ("invalid_event", "unusable_event", "engine_error")
WAIT_STEPS = ("schema", "topics", "fetch", "flush", "dead-letter", "load offsets")
DIRECTIONS = ("placed", "received", "missed")


def initialise() -> None:
    """Every series whose labels are known in advance exists from the start, at 0, so a
    dashboard shows 0 rather than "No data" on a fresh deployment."""
    for reason in DEADLETTER_REASONS:
        DEADLETTERED.labels(reason)
    for step in WAIT_STEPS:
        INFRASTRUCTURE_WAITS.labels(step)
    outbox.initialise_metrics()


def initialise_teams(teams: Iterable[str]) -> None:
    """The business counters of every team on the roster, at 0 until its first booking."""
    for team in teams:
        for direction in DIRECTIONS:
            CALLS.labels(team, direction)
        DEALS_WON.labels(team)
        REVENUE.labels(team)
