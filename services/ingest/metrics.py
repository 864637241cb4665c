"""Prometheus metrics of the ingest service, per provider."""

from collections.abc import Iterable

from prometheus_client import Counter

ACCEPTED = Counter("salespulse_ingest_accepted_total", "Events published", ["provider"])
DUPLICATES = Counter(
    "salespulse_ingest_duplicates_total", "Events recognised as already published", ["provider"]
)
REFUSED = Counter("salespulse_ingest_refused_total", "Deliveries refused", ["provider", "reason"])
DEADLETTERED = Counter(
    "salespulse_ingest_deadlettered_total", "Deliveries sent to the dead-letter topic", ["provider"]
)
PRODUCE_ERRORS = Counter(
    "salespulse_kafka_produce_errors_total", "Publishes the bus did not acknowledge", ["topic"]
)

# Every slug a refusal of a webhook can carry (the problem types of services/ingest); a test
# checks the code names no other, so that each series exists before its first refusal.
REFUSAL_REASONS = (
    "route-off",
    "payload-too-large",
    "bad-signature",
    "stale-timestamp",
    "bad-token",
    "bad-credentials",
    "malformed-body",
    "validation-error",
)


def initialise(providers: Iterable[str], topics: Iterable[str]) -> None:
    """Create every labelled series at 0, so dashboards show 0 from the start, not "no data"."""
    for provider in providers:
        ACCEPTED.labels(provider)
        DUPLICATES.labels(provider)
        DEADLETTERED.labels(provider)
        for reason in REFUSAL_REASONS:
            REFUSED.labels(provider, reason)
    for topic in topics:
        PRODUCE_ERRORS.labels(topic)
