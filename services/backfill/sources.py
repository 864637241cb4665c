"""A provider's REST API paged through, as a ``Source`` of the history loader.

Each source gives one line per canonical event, oldest first, and marks where it got to by the
last object it gave: ``(time, id, events of it given)``. Resuming asks the API again from that
time (the filters are inclusive) and skips what the mark covers, so a resume neither repeats
nor misses an object, whatever the pages were. A provider's search stops after 10,000 results
(HubSpot) or pages (Aircall, ``page * per_page``); the source then asks again from the last
time it reached, the same way.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from services.backfill.translate import deal_events, millis
from services.history.loader import Line
from services.ingest.providers.aircall import call_event
from services.ingest.providers.base import Unusable
from services.ingest.providers.hubspot import HubSpotAdapter
from services.providers_api.aircall import PER_PAGE, AircallClient
from services.providers_api.hubspot import SEARCH_LIMIT, SEARCH_WINDOW, Deal, HubSpotClient
from shared.problems import Problem

AIRCALL_MAX_ITEMS = 10_000  # Aircall pages through at most this many items of one query


@dataclass(frozen=True, slots=True, order=True)
class Mark:
    """The last object given: its time (the provider's unit), its id, how many of its events."""

    time: int
    id: int
    given: int = 0

    def text(self) -> str:
        return orjson.dumps([self.time, self.id, self.given]).decode()

    @classmethod
    def parse(cls, text: str | None) -> Mark | None:
        if not text:
            return None
        try:
            time, id_, given = orjson.loads(text)
            return cls(int(time), int(id_), int(given))
        except (orjson.JSONDecodeError, TypeError, ValueError):
            return None


class _Paged:
    """What both sources share: the mark, the count of lines and the progress."""

    def __init__(self, key: str, label: str) -> None:
        self.key, self.label = key, label
        self._resume: Mark | None = None
        self._last: Mark | None = None
        self._number = 0
        self._total: int | None = None

    async def start(self, mark: str | None) -> bool:
        self._resume = self._last = Mark.parse(mark)
        return mark is None or self._resume is not None

    def mark(self) -> str:
        return self._last.text() if self._last is not None else ""

    def done(self) -> tuple[int, int | None]:
        return self._number, self._total

    def _lines(self, time: int, id_: int, events: list[dict[str, Any] | Unusable]) -> list[Line]:
        """The lines of one object past the resume mark, advancing the mark line by line."""
        skip = 0
        if self._resume is not None and (self._resume.time, self._resume.id) >= (time, id_):
            if (self._resume.time, self._resume.id) > (time, id_):
                return []
            skip = self._resume.given
        lines = []
        for index, event in enumerate(events[skip:], start=skip + 1):
            self._number += 1
            self._last = Mark(time, id_, index)
            if isinstance(event, Unusable):
                lines.append(Line(self._number, None, event.reason))
            else:
                lines.append(Line(self._number, event))
        return lines

    def _since(self, floor: datetime, reached: int | None, unit: int) -> datetime:
        """Where to ask from: the resume mark's time, else the floor."""
        if reached is None:
            return floor
        return datetime.fromtimestamp(reached / unit, UTC)


class AircallCalls(_Paged):
    """Finished calls started since ``since``; a call still going is left to its webhook."""

    def __init__(self, client: AircallClient, since: datetime) -> None:
        super().__init__(f"backfill:aircall:{since.isoformat()}", f"aircall calls since {since}")
        self._client, self._floor = client, since

    async def lines(self) -> AsyncIterator[Line]:
        since = self._since(self._floor, self._resume.time if self._resume else None, 1)
        while True:
            page: int | None = 1
            reached: int | None = None
            while page is not None:
                found = await self._client.calls(since, page)
                if self._total is None:
                    self._total = found.total
                for call in found.calls:
                    reached = int(call.get("started_at") or 0)
                    if call.get("status", "done") != "done":
                        continue
                    for line in self._lines(reached, int(call["id"]), [_call(call)]):
                        yield line
                page = found.next_page
                if page is not None and page * PER_PAGE > AIRCALL_MAX_ITEMS:
                    break
            if page is None or reached is None:
                return
            since = datetime.fromtimestamp(reached, UTC)  # past Aircall's window: ask again
            self._resume = self._last


def _call(call: dict[str, Any]) -> dict[str, Any] | Unusable:
    try:
        return call_event(call)
    except Problem as problem:
        return Unusable(f"invalid_event: {problem.summary()}")


class HubSpotDeals(_Paged):
    """Deals changed since ``since``, each as the webhook events that describe it."""

    def __init__(self, client: HubSpotClient, adapter: HubSpotAdapter, since: datetime) -> None:
        super().__init__(f"backfill:hubspot:{since.isoformat()}", f"hubspot deals since {since}")
        self._client, self._adapter, self._floor = client, adapter, since

    async def lines(self) -> AsyncIterator[Line]:
        portal = await self._client.portal_id()
        emails = {o.id: o.email async for o in self._client.owners() if o.email}
        since = self._since(self._floor, self._resume.time if self._resume else None, 1000)
        while True:
            after: str | None = None
            reached: int | None = None
            while True:
                page = await self._client.search_deals(since, after)
                if self._total is None:
                    self._total = page.total
                for deal in page.deals:
                    reached = _modified(deal)
                    events = deal_events(self._adapter, deal, portal, emails)
                    for line in self._lines(reached, int(deal.id), events):
                        yield line
                after = page.after
                if after is None or (after.isdigit() and int(after) + SEARCH_LIMIT > SEARCH_WINDOW):
                    break
            if after is None or reached is None:
                return
            since = datetime.fromtimestamp(reached / 1000, UTC)  # past HubSpot's window
            self._resume = self._last


def _modified(deal: Deal) -> int:
    return millis(deal.prop("hs_lastmodifieddate")) or millis(deal.updatedAt) or 0
