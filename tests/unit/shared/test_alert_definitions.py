"""Alert definitions (``shared.alerts``): the six triggers, and message templates whose
placeholders are checked when the alert is saved."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from shared.alerts import DEFAULT_MESSAGES, PLACEHOLDERS, AlertIn, Voice, placeholders

TRIGGERS: list[dict[str, Any]] = [
    {"kind": "threshold", "metric": "calls_total", "window": "today", "value": 50},
    {"kind": "target_reached", "metric": "revenue", "period": "month", "scope": "team"},
    {"kind": "deal_won", "min_amount": 15000},
    {"kind": "new_leader", "metric": "revenue", "window": "this_month"},
    {"kind": "behind_pace", "metric": "calls_total", "period": "day", "below": 0.8},
    {"kind": "contest_won", "contest_id": "blitz"},
]


@pytest.mark.parametrize("trigger", TRIGGERS, ids=[t["kind"] for t in TRIGGERS])
def test_each_trigger_is_accepted_and_has_a_default_message(trigger: dict[str, Any]) -> None:
    alert = AlertIn.model_validate({"name": "a", "channels": ["c"], "trigger": trigger})
    assert alert.trigger.kind == trigger["kind"]
    for default in DEFAULT_MESSAGES[trigger["kind"]]:  # French and English
        assert set(placeholders(default)) <= set(PLACEHOLDERS)


def error_fields(body: dict[str, Any]) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        AlertIn.model_validate(body)
    return [".".join(str(p) for p in e["loc"]) for e in caught.value.errors()]


@pytest.mark.parametrize(
    ("message", "why"),
    [
        ("{subject} made {calls}", "unknown placeholder"),
        ("{subject.__class__}", "unknown placeholder"),
        ("{value:>999999999}", "no format spec"),
        ("{subject!r}", "no format spec"),
        ("{subject", "template"),
    ],
)
def test_a_bad_template_is_refused_naming_the_message(message: str, why: str) -> None:
    body = {"name": "a", "message": message, "trigger": {"kind": "deal_won"}}
    assert error_fields(body) == ["message"]
    with pytest.raises(ValidationError, match=why):
        AlertIn.model_validate(body)


def test_a_trigger_on_an_unknown_metric_or_window_is_refused() -> None:
    bad_metric = {"kind": "threshold", "metric": "calls", "window": "today", "value": 1}
    assert error_fields({"name": "a", "trigger": bad_metric}) == ["trigger.threshold.metric"]
    rolling = {**bad_metric, "metric": "calls_total", "window": "last_24h"}
    assert error_fields({"name": "a", "trigger": rolling}) == ["trigger.threshold.window"]
    assert error_fields({"name": "a", "trigger": {"kind": "fireworks"}}) == ["trigger"]


def test_texts_speak_the_organisation_s_language_and_formats() -> None:
    """The default text is in the locale's language, with names for metrics and windows and
    values in the metric's unit; a message written by a user stays as written, its
    placeholders filled the same way."""
    calls = {"subject": "Ana", "value": 50, "metric": "calls_total", "window": "today"}
    french, british = Voice("fr-FR", "EUR"), Voice("en-GB", "EUR")
    assert french.render(None, "threshold", calls) == "Ana a atteint 50 (appels, aujourd'hui)"
    assert british.render(None, "threshold", calls) == "Ana reached 50 calls (today)"
    won = {"subject": "Bob", "amount": 540200.0, "value": 540200.0, "metric": "revenue"}
    assert french.render(None, "deal_won", won) == "Bob a conclu une affaire de 540\u202f200\xa0€"
    assert british.render(None, "deal_won", won) == "Bob closed €540,200"
    rate = {"subject": "Cy", "value": 0.425, "target": 0.5, "metric": "win_rate",
            "window": "this_month"}  # fmt: skip
    assert british.render(None, "behind_pace", rate) == (
        "Cy is behind pace on win rate: 42.5% of 50.0% (this month)"
    )
    assert french.render("{subject} : {amount} !", "deal_won", {"subject": "Bob"}) == "Bob :  !"
    assert Voice("en-US", "USD").render("Go {subject}, {amount}", "deal_won", won) == (
        "Go Bob, $540,200"
    )
