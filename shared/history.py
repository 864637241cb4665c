"""Past activity on the bus: how an imported event is told from a live one.

``salespulse import`` (``services.history``) publishes each historical event with the record
header ``x-salespulse-history: 1``. The KPI service books it like any event (same validation,
same deduplication by key), but decides no alert on it: a deal won two months ago must not ring
the bell today. Settled contests serve their stored standings, so history leaves them alone too.
"""

from __future__ import annotations

from collections.abc import Iterable

HISTORY_HEADER = "x-salespulse-history"
HISTORY = (HISTORY_HEADER, b"1")


def is_history(headers: Iterable[tuple[str, bytes]]) -> bool:
    """Whether a bus record's headers mark it as past activity."""
    return any(name == HISTORY_HEADER and value == b"1" for name, value in headers)
