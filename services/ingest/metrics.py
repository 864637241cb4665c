"""Prometheus metrics of the ingest service, per provider."""

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
