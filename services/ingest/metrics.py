"""Prometheus metrics of the ingest service, per provider."""

from collections.abc import Iterable
from dataclasses import dataclass

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
ENRICHMENTS = Counter(
    "salespulse_ingest_enrichments_total",
    "Thin deals completed from the provider's API, by outcome",
    ["provider", "outcome"],
)
ENRICHMENT_OUTCOMES = ("enriched", "deadlettered", "dropped", "failed")

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
    for outcome in ENRICHMENT_OUTCOMES:
        ENRICHMENTS.labels("hubspot", outcome)


@dataclass(frozen=True, slots=True)
class Published:
    """One provider's counters of what a delivery became, looked up once (a ``labels`` lookup
    on every request was a visible share of a webhook's time)."""

    accepted: Counter
    duplicates: Counter
    deadlettered: Counter

    def count(self, accepted: int, duplicates: int, deadlettered: int) -> None:
        if accepted:
            self.accepted.inc(accepted)
        if duplicates:
            self.duplicates.inc(duplicates)
        if deadlettered:
            self.deadlettered.inc(deadlettered)


_PUBLISHED: dict[str, Published] = {}


def published(provider: str) -> Published:
    """The counters of ``provider``'s deliveries (each series is made on first use)."""
    counters = _PUBLISHED.get(provider)
    if counters is None:
        counters = _PUBLISHED[provider] = Published(
            ACCEPTED.labels(provider), DUPLICATES.labels(provider), DEADLETTERED.labels(provider)
        )
    return counters
