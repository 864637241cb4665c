"""Languages and formats: French and English, numbers, money and times as the floor reads them.

The organisation's ``LOCALE`` (``fr-FR`` by default) sets the language and the formats of what
the server writes (notification texts, exports, the console); a page may show the other
language (``?lang=fr|en``). Babel formats on the server, ``Intl`` in the browser, from the same
locale names.

- ``language_of``: the language of a locale (``fr`` or ``en``).
- ``locale_for``: the locale a text in a language is formatted in: the organisation's own when
  it speaks that language (``fr-BE`` stays Belgian), else the language's usual one (``fr-FR``,
  ``en-GB``: 24-hour times).
- ``label``: what a metric, a window or a period is called, in either language.
- ``number``, ``money``, ``percent``, ``clock``: Babel's formats of one value.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal, get_args
from zoneinfo import ZoneInfo

from babel import Locale, UnknownLocaleError
from babel.dates import format_time
from babel.numbers import format_currency, format_decimal, format_percent

Language = Literal["fr", "en"]
LANGUAGES: tuple[Language, ...] = get_args(Language)
DEFAULT_LOCALE = {"fr": "fr-FR", "en": "en-GB"}


def parse_locale(value: str) -> Locale:
    """``value`` (``fr-FR``, ``en_US``...) as a Babel locale of a supported language; a
    ``ValueError`` naming the supported languages otherwise."""
    if not re.fullmatch(r"[a-z]{2}(?:[-_][A-Z]{2})?", value):
        raise ValueError(f"unknown locale {value!r}; e.g. fr-FR, en-GB, en-US")
    try:
        found = Locale.parse(value.replace("-", "_"))
    except (UnknownLocaleError, ValueError, TypeError):
        raise ValueError(f"unknown locale {value!r}; e.g. fr-FR, en-GB, en-US") from None
    if found.language not in LANGUAGES:
        raise ValueError(f"{value!r}: SalesPulse speaks French and English (fr-*, en-*)")
    return found


def language_of(locale: str) -> Language:
    language = parse_locale(locale).language
    return "fr" if language == "fr" else "en"


def locale_for(language: Language, organisation: str) -> str:
    """The locale a text in ``language`` is formatted in (see the module)."""
    return organisation if language_of(organisation) == language else DEFAULT_LOCALE[language]


def _babel(locale: str) -> str:
    return locale.replace("-", "_")


def number(value: float | int, locale: str, decimals: int = 0) -> str:
    pattern = "#,##0" + ("." + "0" * decimals if decimals else "")
    return format_decimal(value, format=pattern, locale=_babel(locale))


def money(value: float | int, currency: str, locale: str) -> str:
    """An amount with its currency as the locale writes it (``540 200 €``, ``€540,200``),
    with cents only when there are some."""
    if not float(value).is_integer():
        return format_currency(value, currency, locale=_babel(locale))
    pattern = Locale.parse(_babel(locale)).currency_formats["standard"].pattern
    whole = pattern.replace(".00", "")
    return format_currency(
        value, currency, format=whole, currency_digits=False, locale=_babel(locale)
    )


def percent(ratio: float, locale: str, decimals: int = 0) -> str:
    """A ratio as the locale writes a percentage (``42 %``, ``42%``)."""
    pattern = Locale.parse(_babel(locale)).percent_formats[None].pattern
    if decimals:
        pattern = re.sub(r"0(?=\s*%)", "0." + "0" * decimals, pattern, count=1)
    return format_percent(ratio, format=pattern, locale=_babel(locale))


def clock(moment: datetime, tz: ZoneInfo, locale: str) -> str:
    """The time of day in the organisation's zone, as the locale writes it (``14:05``)."""
    return format_time(moment.astimezone(tz), format="short", locale=_babel(locale))


# --- labels -------------------------------------------------------------------------------

METRICS: dict[str, tuple[str, str]] = {  # name -> (French, English)
    "calls_placed": ("Appels émis", "Calls placed"),
    "calls_connected": ("Appels aboutis", "Calls connected"),
    "calls_received": ("Appels reçus", "Calls received"),
    "calls_missed": ("Appels manqués", "Calls missed"),
    "calls_total": ("Appels", "Calls"),
    "answer_rate": ("Taux de décroché", "Answer rate"),
    "connect_rate": ("Taux de joignabilité", "Connect rate"),
    "talk_seconds": ("Temps de conversation", "Talk time"),
    "avg_call_seconds": ("Durée moyenne d'appel", "Average call time"),
    "missed_callback_rate": ("Appels manqués rappelés sous 1 h", "Missed calls called back"),
    "avg_callback_seconds": ("Délai moyen de rappel", "Average callback time"),
    "leads_created": ("Leads créés", "Leads created"),
    "meetings_booked": ("RDV pris", "Meetings booked"),
    "meetings_held": ("RDV tenus", "Meetings held"),
    "touches": ("Contacts", "Touches"),
    "proposals_sent": ("Devis envoyés", "Proposals sent"),
    "proposals_accepted": ("Devis acceptés", "Proposals accepted"),
    "proposal_acceptance_rate": ("Taux d'acceptation des devis", "Proposal acceptance rate"),
    "deals_won": ("Affaires gagnées", "Deals won"),
    "deals_lost": ("Affaires perdues", "Deals lost"),
    "win_rate": ("Taux de transformation", "Win rate"),
    "revenue": ("Chiffre d'affaires", "Revenue"),
    "avg_deal_size": ("Panier moyen", "Average deal size"),
    "margin": ("Marge", "Margin"),
    "margin_rate": ("Taux de marge", "Margin rate"),
    "avg_discount_rate": ("Remise moyenne", "Average discount"),
    "new_customers": ("Nouveaux clients", "New customers"),
    "new_business_revenue": ("CA nouveaux clients", "New business revenue"),
    "expansion_revenue": ("CA clients existants", "Expansion revenue"),
    "conversion_rate": ("Taux de conversion", "Conversion rate"),
    "sales_cycle_days": ("Cycle de vente (jours)", "Sales cycle (days)"),
    "touches_per_win": ("Contacts par affaire gagnée", "Touches per win"),
    "quota_attainment": ("Atteinte de l'objectif de CA", "Quota attainment"),
    "activity_attainment": ("Atteinte de l'objectif d'appels", "Activity attainment"),
    "churned_customers": ("Clients perdus", "Churned customers"),
    "nps": ("NPS", "NPS"),
    "csat": ("Satisfaction (CSAT)", "Satisfaction (CSAT)"),
    "complaints": ("Réclamations", "Complaints"),
}

WINDOWS: dict[str, tuple[str, str]] = {  # name -> (French, English), as in "Calls · today"
    "today": ("aujourd'hui", "today"),
    "yesterday": ("hier", "yesterday"),
    "this_week": ("cette semaine", "this week"),
    "last_week": ("la semaine dernière", "last week"),
    "this_month": ("ce mois-ci", "this month"),
    "last_month": ("le mois dernier", "last month"),
    "this_quarter": ("ce trimestre", "this quarter"),
    "last_quarter": ("le trimestre dernier", "last quarter"),
    "this_year": ("cette année", "this year"),
    "last_15m": ("15 dernières minutes", "last 15 minutes"),
    "last_1h": ("dernière heure", "last hour"),
    "last_24h": ("dernières 24 heures", "last 24 hours"),
    "last_7d": ("7 derniers jours", "last 7 days"),
    "last_30d": ("30 derniers jours", "last 30 days"),
    "last_90d": ("90 derniers jours", "last 90 days"),
    "custom": ("période choisie", "chosen period"),
}

PERIODS: dict[str, tuple[str, str]] = {
    "day": ("jour", "day"),
    "week": ("semaine", "week"),
    "month": ("mois", "month"),
    "quarter": ("trimestre", "quarter"),
    "year": ("année", "year"),
}


def label(table: dict[str, tuple[str, str]], name: str, language: Language) -> str:
    """What ``name`` is called in ``language`` (its name itself when it has no label)."""
    found = table.get(name)
    if found is None:
        return name
    return found[0] if language == "fr" else found[1]


def labels(table: dict[str, tuple[str, str]], name: str) -> dict[str, str]:
    """``{fr, en}``: both names, for a page that switches language by itself."""
    return {language: label(table, name, language) for language in LANGUAGES}


COLUMNS: dict[str, tuple[str, str]] = {  # a field of an export -> its header in a workbook
    "rank": ("Rang", "Rank"),
    "previous_rank": ("Rang précédent", "Previous rank"),
    "movement": ("Évolution", "Movement"),
    "rep_id": ("Id commercial", "Rep id"),
    "name": ("Nom", "Name"),
    "team_id": ("Id équipe", "Team id"),
    "team_name": ("Équipe", "Team"),
    "value": ("Valeur", "Value"),
    "attainment": ("Atteinte de l'objectif", "Attainment"),
    "volume": ("Volume", "Volume"),
    "pace": ("Rythme", "Pace"),
    "target": ("Objectif", "Target"),
    "expected": ("Attendu à date", "Expected by now"),
    "projected": ("Projection", "Projected"),
    "start": ("Début", "Start"),
    "end": ("Fin", "End"),
    "identity": ("Identité", "Identity"),
    "provider": ("Source", "Provider"),
    "external_id": ("Id chez la source", "External id"),
    "kind": ("Type", "Kind"),
    "unit": ("Unité", "Unit"),
    "definition": ("Définition", "Definition"),
    "labels": ("Libellé", "Label"),
    "label": ("Libellé", "Label"),
    "fr": ("français", "French"),
    "en": ("anglais", "English"),
    "metric": ("Indicateur", "Metric"),
    "score": ("Score", "Score"),
    "parts": ("Détail", "Parts"),
    "goal_reached_at": ("But atteint le", "Goal reached at"),
    "deal_id": ("Affaire", "Deal"),
    "won_at": ("Gagnée le", "Won at"),
    "amount": ("Montant", "Amount"),
    "id": ("Id", "Id"),
    "alert_id": ("Alerte", "Alert"),
    "subject": ("Sujet", "Subject"),
    "scope": ("Portée", "Scope"),
    "raised_at": ("Levée le", "Raised at"),
    "data": ("Données", "Data"),
    "window": ("Période", "Window"),
    "text": ("Texte", "Text"),
    "channels": ("Canaux", "Channels"),
    "pending": ("en attente", "pending"),
    "delivered": ("remis", "delivered"),
    "failed": ("en échec", "failed"),
    "last_error": ("Dernière erreur", "Last error"),
}
