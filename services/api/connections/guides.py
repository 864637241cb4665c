"""What each provider needs, in the provider's own words (pure): the setting that turns its
route on, what to subscribe to, where in the provider the URL goes. The README's setup guides
say the same at length."""

from __future__ import annotations

from dataclasses import dataclass

Text = dict[str, str]  # {fr, en}


@dataclass(frozen=True, slots=True)
class Guide:
    label: str
    kind: str  # crm | telephony | any
    where: Text  # where in the provider the URL is pasted
    subscribe: tuple[Text, ...]  # what to subscribe to, as the provider names it


GUIDES: dict[str, Guide] = {
    "hubspot": Guide(
        "HubSpot",
        "crm",
        {
            "en": "Settings > Integrations > Private Apps (legacy apps) > your app > Webhooks "
            "> Target URL",
            "fr": "Paramètres > Intégrations > Applications privées (anciennes applications) > "
            "votre application > Webhooks > URL cible",
        },
        (
            {"en": "Deal — Created", "fr": "Transaction — Créée"},
            {
                "en": "Deal — Property changed: Deal stage (dealstage)",
                "fr": "Transaction — Propriété modifiée : Phase de la transaction (dealstage)",
            },
            {
                "en": "Deal — Property changed: Amount (amount)",
                "fr": "Transaction — Propriété modifiée : Montant (amount)",
            },
            {
                "en": "Deal — Property changed: Deal owner (hubspot_owner_id)",
                "fr": "Transaction — Propriété modifiée : Propriétaire de la transaction "
                "(hubspot_owner_id)",
            },
            {
                "en": "Deal — Property changed: Currency (deal_currency_code)",
                "fr": "Transaction — Propriété modifiée : Devise (deal_currency_code)",
            },
        ),
    ),
    "aircall": Guide(
        "Aircall",
        "telephony",
        {
            "en": "Aircall Dashboard > Integrations & API > Webhook > Install > URL",
            "fr": "Dashboard Aircall > Intégrations et API > Webhook > Installer > URL",
        },
        ({"en": "call.ended", "fr": "call.ended"},),
    ),
    "twilio": Guide(
        "Twilio Voice",
        "telephony",
        {
            "en": "Console > Phone Numbers > your number > Voice Configuration > Call status "
            "changes (and the statusCallback of your <Dial> and Calls API requests)",
            "fr": "Console > Phone Numbers > votre numéro > Voice Configuration > Call status "
            "changes (et le statusCallback de vos <Dial> et appels à l'API Calls)",
        },
        (
            {
                "en": "statusCallbackEvent: initiated ringing answered completed",
                "fr": "statusCallbackEvent : initiated ringing answered completed",
            },
        ),
    ),
    "pipedrive": Guide(
        "Pipedrive",
        "crm",
        {
            "en": "Tools and apps > Webhooks > Create new webhook > Endpoint URL, with HTTP "
            "Basic auth",
            "fr": "Outils et applications > Webhooks > Créer un webhook > URL du point de "
            "terminaison, avec l'authentification HTTP Basic",
        },
        (
            {
                "en": "Event action: * (all) — Event object: deal",
                "fr": "Action : * (toutes) — Objet : deal",
            },
            {
                "en": "Event action: * (all) — Event object: activity",
                "fr": "Action : * (toutes) — Objet : activity",
            },
        ),
    ),
    "standard": Guide(
        "Standard Webhooks",
        "any",
        {
            "en": "your own integration: POST canonical events, signed with the whsec_ secret",
            "fr": "votre intégration : POST d'événements canoniques, signés avec le secret whsec_",
        },
        ({"en": "any canonical event type", "fr": "tout type d'événement canonique"},),
    ),
}
