"""Provider adapters, one module each; ``build_adapters`` turns on those with a secret."""

from __future__ import annotations

from services.ingest.providers.aircall import AircallAdapter
from services.ingest.providers.base import Adapter, Delivery, Translation, Unusable
from services.ingest.providers.hubspot import HubSpotAdapter
from services.ingest.providers.pipedrive import PipedriveAdapter
from services.ingest.providers.standard import StandardWebhooksAdapter
from services.ingest.providers.twilio import TwilioAdapter
from shared.settings import Settings

# provider label -> (route, the setting that turns it on)
ROUTES: dict[str, tuple[str, str]] = {
    "standard": ("/webhooks/events", "SALESPULSE_WEBHOOK_SECRET"),
    "twilio": ("/webhooks/twilio/voice", "SALESPULSE_TWILIO_AUTH_TOKEN"),
    "aircall": ("/webhooks/aircall", "SALESPULSE_AIRCALL_TOKEN"),
    "hubspot": ("/webhooks/hubspot", "SALESPULSE_HUBSPOT_CLIENT_SECRET"),
    "pipedrive": ("/webhooks/pipedrive", "SALESPULSE_PIPEDRIVE_USER and _PASSWORD"),
}


def build_adapters(settings: Settings) -> dict[str, Adapter]:
    """The adapters whose secret is configured; a provider without one has its route off."""
    adapters: dict[str, Adapter] = {}
    if settings.webhook_secret:
        adapters["standard"] = StandardWebhooksAdapter(settings.webhook_secret.get_secret_value())
    if settings.twilio_auth_token:
        adapters["twilio"] = TwilioAdapter(settings.twilio_auth_token.get_secret_value())
    if settings.aircall_token:
        adapters["aircall"] = AircallAdapter(settings.aircall_token.get_secret_value())
    if settings.hubspot_client_secret:
        adapters["hubspot"] = HubSpotAdapter(
            settings.hubspot_client_secret.get_secret_value(),
            settings.won_stages,
            settings.lost_stages,
        )
    if settings.pipedrive_user and settings.pipedrive_password:
        adapters["pipedrive"] = PipedriveAdapter(
            settings.pipedrive_user, settings.pipedrive_password.get_secret_value()
        )
    return adapters


__all__ = ["ROUTES", "Adapter", "Delivery", "Translation", "Unusable", "build_adapters"]
