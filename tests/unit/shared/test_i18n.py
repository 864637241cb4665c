"""Languages and formats (``shared/i18n.py``): what a French and an English floor read."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from shared import i18n
from shared.catalogue import CATALOGUE
from shared.settings import Settings
from shared.windows import CALENDAR_PERIODS

NARROW, NBSP = "\u202f", "\xa0"


def test_money_numbers_and_percentages_as_each_locale_writes_them() -> None:
    assert i18n.money(540200, "EUR", "fr-FR") == f"540{NARROW}200{NBSP}€"
    assert i18n.money(540200, "EUR", "en-GB") == "€540,200"
    assert i18n.money(12.5, "EUR", "fr-FR") == f"12,50{NBSP}€"
    assert i18n.money(99, "USD", "en-US") == "$99"
    assert i18n.number(1234567, "fr-FR") == f"1{NARROW}234{NARROW}567"
    assert i18n.percent(0.4251, "fr-FR", 1) == f"42,5{NBSP}%"
    assert i18n.percent(0.4251, "en-GB") == "43%"


def test_times_are_on_the_24_hour_clock_in_french_and_british_english() -> None:
    moment = datetime(2026, 12, 7, 13, 5, tzinfo=UTC)
    paris = ZoneInfo("Europe/Paris")
    assert i18n.clock(moment, paris, "fr-FR") == "14:05"
    assert i18n.clock(moment, paris, "en-GB") == "14:05"
    assert i18n.clock(moment, paris, "en-US").replace(NARROW, " ") == "2:05 PM"


def test_a_page_in_the_other_language_uses_that_language_s_usual_formats() -> None:
    assert i18n.locale_for("fr", "fr-BE") == "fr-BE"
    assert i18n.locale_for("en", "fr-FR") == "en-GB"
    assert i18n.locale_for("fr", "en-US") == "fr-FR"
    assert i18n.locale_for("en", "en-US") == "en-US"


def test_every_metric_window_and_period_has_both_names() -> None:
    assert set(i18n.METRICS) == set(CATALOGUE)
    assert set(CALENDAR_PERIODS) <= set(i18n.WINDOWS)
    for table in (i18n.METRICS, i18n.WINDOWS, i18n.PERIODS):
        for name in table:
            assert all(i18n.labels(table, name).values()), name
    assert i18n.label(i18n.WINDOWS, "this_month", "fr") == "ce mois-ci"


def test_the_locale_setting_takes_french_and_english_only() -> None:
    assert Settings(locale="en-US").language == "en"
    assert Settings().locale == "fr-FR"
    assert Settings().language == "fr"
    for wrong in ("de-DE", "xx", "fr_FR_bogus!"):
        with pytest.raises(ValidationError, match="locale"):
            Settings(locale=wrong)
