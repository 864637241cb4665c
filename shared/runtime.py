"""Process-wide settings of the Python runtime for a service that handles batches (the KPI
service's events, the API's boards of thousands of rows); and how its pollers back off.

Python's cyclic garbage collector runs a collection every 700 new container objects by default,
and each one walks every young object still alive. A KPI batch holds tens of thousands of
decoded events and states until it is flushed, so under load the collector ran hundreds of
times a second and walked the same batch again and again: half the engine's time, measured.
Nothing the hot path makes is cyclic (reference counting frees it), so collect far less often,
and keep what start-up made (modules, the roster) out of every collection.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 100_000  # new container objects between two collections of the youngest
OLDER_THRESHOLDS = (50, 100)


def tune_gc_for_batches() -> None:
    """Collect rarely, and never again what exists now. Call once, after start-up."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, *OLDER_THRESHOLDS)


def doubled_pause(base_s: float, cap_s: float, failures: int) -> float:
    """How long a poller waits after ``failures`` failures in a row: ``base_s`` doubled per
    failure, at most ``cap_s`` (the exponent bounded too: days of an outage must not overflow
    a float and end the poller)."""
    return min(cap_s, base_s * 2.0 ** min(failures, 30))
