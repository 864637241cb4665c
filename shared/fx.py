"""Exchange rates: which currencies the KPIs can book.

One rule, called where an event can be set aside for it: at ingest (dead-lettered at the door),
in the KPI engine (dead-lettered at decode) and by the dead-letter replay (booked once a rate is
configured). ``rates`` is ``Settings.rates``: every configured currency and the reporting one.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from shared import events as ev


def unrated_currency(event: ev.Event, rates: Mapping[str, Decimal]) -> str | None:
    """The currency ``event`` states an amount in, if ``rates`` has no rate for it; else None."""
    # Read from the fields as stored: most kinds (calls, meetings) have no currency, and asking
    # a pydantic model for a field it lacks raises and catches an exception (~5 µs an event).
    currency: str | None = event.data.__dict__.get("currency")
    return currency if currency is not None and currency not in rates else None
