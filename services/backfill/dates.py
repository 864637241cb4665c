"""``--since``: a date (midnight in the organisation's time zone) or an ISO time."""

from __future__ import annotations

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from shared.events import EARLIEST_EVENT_TIME


def parse_since(text: str, tz: ZoneInfo) -> datetime:
    """The instant ``text`` names; ``ValueError`` saying what is expected."""
    try:
        if len(text) == 10:
            moment = datetime.combine(date.fromisoformat(text), time(), tz)
        else:
            moment = datetime.fromisoformat(text)
            moment = moment if moment.tzinfo else moment.replace(tzinfo=tz)
    except ValueError:
        raise ValueError(f"--since {text[:40]!r}: expected YYYY-MM-DD or an ISO time") from None
    if moment < EARLIEST_EVENT_TIME:
        raise ValueError(f"--since must be after {EARLIEST_EVENT_TIME.date()}")
    return moment
