"""``salespulse backfill hubspot|aircall --since DATE``: the composition root of a backfill.

The provider's REST API is paged through (``sources``) and its objects published as the
webhooks' own events by the history loader (``services.history``): the same validation, the
same ids, marked as history (no alert), a checkpoint after every published batch. An
interruption (the provider refusing, a Ctrl-C) keeps the checkpoint: the same command resumes.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import httpx

from services.backfill.sources import AircallCalls, HubSpotDeals
from services.history.command import load_history
from services.history.loader import DEFAULT_BATCH, ProgressCallback, Source, Summary
from services.ingest.providers.hubspot import HubSpotAdapter
from services.providers_api import aircall, hubspot
from services.providers_api.http import Retry
from shared.settings import Settings

# A backfill can wait longer than a webhook's enrichment: Aircall's budget refills each minute.
BACKFILL_RETRY = Retry(attempts=6, max_wait=65.0)


class Provider(StrEnum):
    hubspot = "hubspot"
    aircall = "aircall"


class NotConfigured(RuntimeError):
    """The settings a backfill of this provider needs are missing (named, never shown)."""


def api_client(settings: Settings, provider: Provider) -> httpx.AsyncClient:
    if provider is Provider.hubspot:
        if settings.hubspot_access_token is None:
            raise NotConfigured("set SALESPULSE_HUBSPOT_ACCESS_TOKEN (a private app's token)")
        return hubspot.http_client(settings.hubspot_api_base, settings.hubspot_access_token)
    if settings.aircall_api_id is None or settings.aircall_api_token is None:
        raise NotConfigured("set SALESPULSE_AIRCALL_API_ID and SALESPULSE_AIRCALL_API_TOKEN")
    return aircall.http_client(
        settings.aircall_api_base, settings.aircall_api_id, settings.aircall_api_token
    )


def source(
    settings: Settings,
    provider: Provider,
    client: httpx.AsyncClient,
    since: datetime,
    retry: Retry = BACKFILL_RETRY,
) -> Source:
    if provider is Provider.hubspot:
        assert settings.hubspot_access_token is not None
        adapter = HubSpotAdapter("", settings.won_stages, settings.lost_stages)  # translates only
        api = hubspot.HubSpotClient(client, settings.hubspot_access_token, retry)
        return HubSpotDeals(api, adapter, since)
    assert settings.aircall_api_token is not None
    calls = aircall.AircallClient(client, settings.aircall_api_token, retry)
    return AircallCalls(calls, since)


async def run_backfill(
    settings: Settings,
    provider: Provider,
    since: datetime,
    *,
    restart: bool = False,
    batch_size: int = DEFAULT_BATCH,
    progress: ProgressCallback | None = None,
    retry: Retry = BACKFILL_RETRY,
) -> Summary:
    """Backfill ``provider`` from ``since`` through the bus of ``settings``; raises
    ``NotConfigured``, or the provider's error (``ProviderError``) with the checkpoint kept."""
    client = api_client(settings, provider)
    try:
        return await load_history(
            settings, source(settings, provider, client, since, retry), "salespulse-backfill",
            restart=restart, batch_size=batch_size, progress=progress,
        )  # fmt: skip
    finally:
        await client.aclose()
