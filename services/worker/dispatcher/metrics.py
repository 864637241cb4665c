"""Prometheus metrics of the dispatcher (names are part of the contract), per channel kind.

A delivery whose channel was deleted meanwhile counts under the kind ``deleted``."""

from typing import get_args

from prometheus_client import Counter, Gauge, Histogram

from shared import outbox
from shared.notify.messages import ChannelKind

DELIVERED = Counter(
    "salespulse_notifications_delivered_total", "Notifications delivered to a channel", ["kind"]
)
FAILED = Counter(
    "salespulse_notifications_failed_total",
    "Notification deliveries given up (refused, or still failing after 24 h)",
    ["kind"],
)
RETRIES = Counter(
    "salespulse_notification_retries_total",
    "Delivery attempts that will be tried again (timeouts, 408, 429, 5xx)",
    ["kind"],
)
DELIVERY_SECONDS = Histogram(
    "salespulse_notification_delivery_seconds",
    "From a notification being raised to its delivery to a channel",
    ["kind"],
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 21600, 86400),
)
PENDING = Gauge(
    "salespulse_notification_deliveries_pending",
    "Deliveries not yet delivered nor failed (read from the database now and then)",
)

DELETED = "deleted"
KINDS: tuple[str, ...] = (*get_args(ChannelKind), DELETED)


def initialise() -> None:
    """Every series exists from the start, at 0 (dashboards show 0, not "no data")."""
    outbox.initialise_metrics()  # raised here too: the worker's pace checks and settlements
    for kind in KINDS:
        DELIVERED.labels(kind)
        FAILED.labels(kind)
        RETRIES.labels(kind)
        DELIVERY_SECONDS.labels(kind)
