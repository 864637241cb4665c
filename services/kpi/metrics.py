"""Prometheus metrics of the KPI service (names are part of the contract)."""

from prometheus_client import Counter, Gauge, Histogram

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
