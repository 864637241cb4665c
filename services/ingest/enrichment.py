"""HubSpot enrichment: a thin deal webhook completed from HubSpot's CRM API, in the background.

HubSpot's deal webhooks are thin: a stage change carries neither the amount nor the owner, so a
win would be booked to ``deal_id:...``, unassigned, at 0. With ``HUBSPOT_ACCESS_TOKEN`` set:

1. the webhook is answered as before (its thin events are published first, unchanged);
2. each deal it names is put on a bounded queue of this process (``offer``, never waits): a full
   queue drops the deal, counted and logged (a ``salespulse backfill hubspot`` heals it);
3. a task of the process takes deals off the queue, reads the deal
   (``GET /crm/v3/objects/deals/{id}``) and its owner (``GET /crm/v3/owners/{id}``, cached), and
   publishes a follow-up partial ``deal.updated``: amount, currency, created_at and the owner as
   actor (with the owner's email), at the thin event's time, with an id made from the thin
   event's id. A retried webhook makes the same follow-up, which the KPI service deduplicates.
4. HubSpot's refusals (401/403/404, 429 past the bounded retries, unreachable) become a dead
   letter naming the reason, never the token.

The KPI service keeps each deal field's latest value by event time: the follow-up, at the thin
event's time with a later-sorting id, fills the fields the thin event lacked, and a later webhook
that sets them again still wins.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from services.ingest import metrics
from services.ingest.providers.base import canonical_event
from services.ingest.publisher import EventPublisher
from services.ingest.service import bookable, validate
from services.providers_api.http import ProviderError, Refused
from services.providers_api.hubspot import Deal, HubSpotClient, Owner
from shared import events as ev
from shared.bus import BusUnavailable
from shared.deadletter import dead_letter

log = logging.getLogger(__name__)
PROVIDER = "hubspot"
SUFFIX = "-enriched"
OWNER_TTL_SECONDS = 600.0
OWNER_CACHE_SIZE = 1000


@dataclass(frozen=True, slots=True)
class Thin:
    """A HubSpot deal event that lacks its amount, currency or owner."""

    event: ev.DealUpdated

    @property
    def deal_id(self) -> str:
        return self.event.data.deal_id


def is_thin(event: ev.Event) -> bool:
    if not isinstance(event, ev.DealUpdated) or not event.source.startswith("hubspot://"):
        return False
    data = event.data
    return data.actor is None or data.amount is None or data.currency is None


def thin_deals(events: Sequence[ev.Event]) -> list[Thin]:
    """One entry a deal: its latest thin event of the delivery (by time, then id), so a batch
    of five property changes of one deal costs one read, the same one on a retried batch."""
    latest: dict[tuple[str, str], ev.DealUpdated] = {}
    for event in events:
        if is_thin(event):
            assert isinstance(event, ev.DealUpdated)
            key = (event.source, event.data.deal_id)
            held = latest.get(key)
            if held is None or (held.time, held.id) < (event.time, event.id):
                latest[key] = event
    return [Thin(e) for e in latest.values()]


def follow_up(thin: Thin, deal: Deal, owner: Owner | None) -> dict[str, Any]:
    """The partial ``deal.updated`` that completes ``thin`` (a canonical event body)."""
    data: dict[str, Any] = {"deal_id": thin.deal_id}
    amount = deal.prop("amount")
    if amount is not None:
        with suppress(InvalidOperation):  # not a number: left out, the deal keeps what it had
            data["amount"] = str(Decimal(amount))
    if (currency := deal.prop("deal_currency_code")) is not None:
        data["currency"] = currency.upper()
    if deal.createdAt is not None:
        data["created_at"] = deal.createdAt.isoformat()
    if (owner_id := deal.prop("hubspot_owner_id")) is not None:
        actor: dict[str, Any] = {"provider": PROVIDER, "external_id": owner_id}
        if owner is not None and owner.email:
            actor["email"] = owner.email.lower()
        data["actor"] = actor
    return canonical_event(
        event_id=f"{thin.event.id}{SUFFIX}",
        source=thin.event.source,
        type_="deal.updated",
        time=thin.event.time,
        data=data,
    )


class Owners:
    """Owners by id, kept ``OWNER_TTL_SECONDS`` (a won deal's owner is read once a while, not
    once a deal); a bounded cache."""

    def __init__(self, client: HubSpotClient) -> None:
        self._client = client
        self._cache: dict[str, tuple[float, Owner | None]] = {}

    async def get(self, owner_id: str) -> Owner | None:
        now = time.monotonic()
        held = self._cache.get(owner_id)
        if held is not None and now - held[0] < OWNER_TTL_SECONDS:
            return held[1]
        try:
            owner: Owner | None = await self._client.owner(owner_id)
        except Refused as exc:
            if exc.status != 404:
                raise
            owner = None  # a deactivated owner: the deal keeps the owner id, without email
        if len(self._cache) >= OWNER_CACHE_SIZE:
            self._cache.clear()
        self._cache[owner_id] = (now, owner)
        return owner


class Enricher:
    """The queue and the task that completes thin HubSpot deals (one per ingest process)."""

    def __init__(
        self,
        client: HubSpotClient,
        publisher: EventPublisher,
        rates: Mapping[str, Decimal],
        capacity: int,
        origin: str,
    ) -> None:
        self._client = client
        self._owners = Owners(client)
        self._publisher = publisher
        self._rates = rates
        self._origin = origin.rstrip("/")
        self._queue: asyncio.Queue[Thin] = asyncio.Queue(capacity)

    def offer(self, events: Sequence[ev.Event]) -> None:
        """Queue the thin deals of a delivery; never waits (the webhook is answered as fast)."""
        for thin in thin_deals(events):
            try:
                self._queue.put_nowait(thin)
            except asyncio.QueueFull:
                metrics.ENRICHMENTS.labels(PROVIDER, "dropped").inc()
                log.warning(
                    "enrichment queue full: deal left thin (a backfill completes it)",
                    extra={"deal_id": thin.deal_id, "event_id": thin.event.id},
                )

    async def run(self) -> None:
        """Take deals off the queue until cancelled."""
        while True:
            thin = await self._queue.get()
            try:
                await self.enrich(thin)
            except Exception:  # one deal's surprise must not stop the others' enrichment
                metrics.ENRICHMENTS.labels(PROVIDER, "failed").inc()
                log.exception("enrichment failed", extra={"deal_id": thin.deal_id})
            finally:
                self._queue.task_done()

    async def drained(self) -> None:
        """Return once every queued deal was handled (tests, a graceful stop)."""
        await self._queue.join()

    async def enrich(self, thin: Thin) -> None:
        try:
            deal = await self._client.deal(thin.deal_id)
            owner_id = deal.prop("hubspot_owner_id")
            owner = await self._owners.get(owner_id) if owner_id else None
        except ProviderError as exc:
            await self._dead_letter(thin, f"hubspot_enrichment: {exc.reason}")
            return
        checked = validate(follow_up(thin, deal, owner))
        if isinstance(checked, list):
            fields = ", ".join(".".join(map(str, e["loc"])) for e in checked)
            await self._dead_letter(thin, f"hubspot_enrichment: invalid deal fields: {fields}")
            return
        if (why := bookable(checked, self._rates)) is not None:
            await self._dead_letter(thin, f"hubspot_enrichment: {why}")
            return
        try:
            await self._publisher.publish([checked])
        except BusUnavailable as exc:
            metrics.ENRICHMENTS.labels(PROVIDER, "failed").inc()
            log.warning("enrichment not published", extra={"error": str(exc)})
            return
        metrics.ENRICHMENTS.labels(PROVIDER, "enriched").inc()

    async def _dead_letter(self, thin: Thin, reason: str) -> None:
        record = dead_letter(
            provider=PROVIDER,
            reason=reason,
            body=thin.event.to_json(),
            origin=f"{self._origin}/crm/v3/objects/deals/{thin.deal_id}",
        )
        try:
            await self._publisher.dead_letter([record])
        except BusUnavailable as exc:
            log.warning("enrichment dead letter not published", extra={"error": str(exc)})
            metrics.ENRICHMENTS.labels(PROVIDER, "failed").inc()
            return
        metrics.ENRICHMENTS.labels(PROVIDER, "deadlettered").inc()
        log.warning("deal not enriched", extra={"deal_id": thin.deal_id, "reason": reason})
