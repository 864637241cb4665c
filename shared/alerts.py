"""Alerts: what can trigger a notification, and the text it carries. Pure: no I/O.

Shared by the API (which validates definitions on PUT), and by the KPI service and the worker,
which read what the alerts watch, let ``shared.alerting`` decide the crossings and render their
text.

- **Triggers** (``interfaces.md``, section Alerts): ``threshold``, ``target_reached``,
  ``deal_won``, ``new_leader``, ``behind_pace``, ``contest_won``. A threshold or a leader is
  watched over a calendar window that holds now (``today``, ``this_week``, ``this_month``,
  ``this_quarter``, ``this_year``): each occurrence of the window (each day, each month...) is
  a fresh chance to fire, once per alert and subject.
- **Messages** are templates with ``{placeholder}`` fields; an unknown placeholder is refused
  when the alert is saved, never discovered when it fires. A message may span lines (line
  breaks and tabs); no other text of an alert may hold a control character (``ApiModel``).
- **Numbers** are finite and within ``±MAX_NUMBER`` (``shared.api_model``): a threshold, a
  deal's ``min_amount``.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from shared import i18n
from shared.api_model import MAX_NUMBER, MULTILINE, ApiModel
from shared.calendar import Period
from shared.catalogue import CATALOGUE
from shared.windows import CALENDAR_PERIODS

CurrentWindow = Literal["today", "this_week", "this_month", "this_quarter", "this_year"]
# a target's period -> the calendar window of it that holds now
PERIOD_WINDOW: dict[str, str] = {p: n for n, (p, ago) in CALENDAR_PERIODS.items() if ago == 0}
Scope = Literal["rep", "team"]
PLACEHOLDERS: dict[str, str] = {
    "alert": "the alert's name",
    "subject": "the rep's or team's name",
    "subject_id": "the rep's or team's id",
    "metric": "the metric",
    "value": "the value that crossed",
    "window": "the window or period",
    "target": "the target, where there is one",
    "amount": "the deal's amount (deal_won)",
    "contest": "the contest's name (contest_won)",
}
# Each kind's text when the alert has no message of its own: (French, English).
DEFAULT_MESSAGES: dict[str, tuple[str, str]] = {
    "threshold": ("{subject} a atteint {value} ({metric}, {window})",
                  "{subject} reached {value} {metric} ({window})"),
    "target_reached": ("{subject} a atteint son objectif de {target} ({metric}, {window})",
                       "{subject} reached the {window} target of {target} {metric}"),
    "deal_won": ("{subject} a conclu une affaire de {amount}", "{subject} closed {amount}"),
    "new_leader": ("{subject} prend la tête : {metric} ({window})",
                   "{subject} now leads {metric} ({window})"),
    "behind_pace": ("{subject} est en retard sur son rythme : {value} sur {target} "
                    "({metric}, {window})",
                    "{subject} is behind pace on {metric}: {value} of {target} ({window})"),
    "contest_won": ("{subject} remporte {contest}", "{subject} won {contest}"),
}  # fmt: skip


def _known_metric(metric: str) -> str:
    if metric not in CATALOGUE:
        raise ValueError(f"unknown metric {metric!r}; see GET /v1/metrics")
    return metric


class Threshold(ApiModel):
    kind: Literal["threshold"]
    metric: str
    window: CurrentWindow
    scope: Scope = "rep"
    op: Literal[">=", "<="] = ">="
    value: float = Field(ge=-MAX_NUMBER, le=MAX_NUMBER)

    _metric = field_validator("metric")(_known_metric)


class TargetReached(ApiModel):
    kind: Literal["target_reached"]
    metric: str
    period: Period
    scope: Scope = "rep"

    _metric = field_validator("metric")(_known_metric)


class DealWon(ApiModel):
    kind: Literal["deal_won"]
    min_amount: float | None = Field(default=None, ge=0, le=MAX_NUMBER)


class NewLeader(ApiModel):
    kind: Literal["new_leader"]
    metric: str
    window: CurrentWindow
    scope: Scope = "rep"

    _metric = field_validator("metric")(_known_metric)


class BehindPace(ApiModel):
    kind: Literal["behind_pace"]
    metric: str
    period: Period
    scope: Scope = "rep"
    below: float = Field(gt=0, le=1, description="fires when pace drops below this")

    _metric = field_validator("metric")(_known_metric)


class ContestWon(ApiModel):
    kind: Literal["contest_won"]
    contest_id: str | None = Field(default=None, max_length=64)


Trigger = Annotated[
    Threshold | TargetReached | DealWon | NewLeader | BehindPace | ContestWon,
    Field(discriminator="kind"),
]


def placeholders(template: str) -> list[str]:
    """The ``{fields}`` a template names: a ``ValueError`` if it is malformed, or if a field
    has a format spec or a conversion (``{value:>99999999}`` would build a huge text)."""
    fields = []
    for _, field, spec, conversion in string.Formatter().parse(template):
        if field is None:
            continue
        if spec or conversion:
            raise ValueError(f"{{{field}}} takes no format spec or conversion")
        fields.append(field)
    return fields


class AlertIn(ApiModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "Big deal",
                    "channels": ["sales-floor"],
                    "enabled": True,
                    "message": "{subject} won a deal of {amount}!",
                    "trigger": {"kind": "deal_won", "min_amount": 10000},
                },
                {
                    "name": "40 calls today",
                    "channels": ["sales-floor"],
                    "trigger": {
                        "kind": "threshold",
                        "metric": "calls_total",
                        "window": "today",
                        "scope": "rep",
                        "op": ">=",
                        "value": 40,
                    },
                },
                {
                    "name": "Team behind on revenue",
                    "channels": ["managers"],
                    "trigger": {
                        "kind": "behind_pace",
                        "metric": "revenue",
                        "period": "month",
                        "scope": "team",
                        "below": 0.8,
                    },
                },
            ]
        }
    )

    name: str = Field(min_length=1, max_length=200)
    channels: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        default_factory=list, max_length=20
    )
    enabled: bool = True
    message: Annotated[str | None, MULTILINE] = Field(default=None, max_length=2000)
    trigger: Trigger

    @field_validator("message")
    @classmethod
    def _known_placeholders(cls, message: str | None) -> str | None:
        if message is None:
            return message
        try:
            fields = placeholders(message)
        except ValueError as exc:
            raise ValueError(f"template: {exc}") from None
        unknown = [f for f in fields if f not in PLACEHOLDERS]
        if unknown:
            known = ", ".join("{" + p + "}" for p in PLACEHOLDERS)
            raise ValueError(f"unknown placeholder(s) {', '.join(unknown)}; known: {known}")
        return message

    @model_validator(mode="after")
    def _channels_once(self) -> AlertIn:
        self.channels = list(dict.fromkeys(self.channels))
        return self


@dataclass(frozen=True, slots=True)
class Voice:
    """How notification texts speak: in the organisation's language, its numbers, money and
    names as that locale writes them (``LOCALE``, ``CURRENCY``)."""

    locale: str = "fr-FR"
    currency: str = "EUR"

    @property
    def language(self) -> i18n.Language:
        return i18n.language_of(self.locale)

    def render(self, template: str | None, kind: str, values: dict[str, object]) -> str:
        """The notification's text: ``template`` as its author wrote it (or the kind's default
        in this language), its placeholders filled with values written for a reader: ``{metric}``
        and ``{window}`` by their names, ``{value}`` and ``{target}`` in the metric's unit,
        ``{amount}`` as money. A placeholder without a value here reads as empty."""
        french, english = DEFAULT_MESSAGES[kind]
        chosen = template or (french if self.language == "fr" else english)
        shown = {p: self._shown(p, values) for p in PLACEHOLDERS}
        return chosen.format_map(shown)

    def _shown(self, placeholder: str, values: dict[str, object]) -> str:
        value = values.get(placeholder)
        if value is None or value == "":
            return ""
        metric = values.get("metric")
        language = self.language
        if placeholder == "metric" and isinstance(value, str):
            return _inline(i18n.label(i18n.METRICS, value, language))
        if placeholder == "window" and isinstance(value, str):
            return i18n.label(i18n.WINDOWS, value, language)
        if placeholder == "amount" and isinstance(value, int | float):
            return i18n.money(value, self.currency, self.locale)
        if placeholder in ("value", "target") and isinstance(value, int | float):
            return self._quantity(value, metric if isinstance(metric, str) else None)
        return str(value)

    def _quantity(self, value: float, metric: str | None) -> str:
        unit = CATALOGUE[metric].unit if metric in CATALOGUE else None
        if unit == "currency":
            return i18n.money(value, self.currency, self.locale)
        if unit == "ratio":
            return i18n.percent(value, self.locale, 1)
        whole = float(value).is_integer()
        return i18n.number(value, self.locale, 0 if whole else 1)


def _inline(name: str) -> str:
    """A metric's name inside a sentence: "appels", "chiffre d'affaires", but "NPS"."""
    return name[0].lower() + name[1:] if name[1:2].islower() else name
