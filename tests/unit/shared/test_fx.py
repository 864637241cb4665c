"""One rule for "is there an exchange rate for this event's currency", wherever it is asked."""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from services.ingest.service import bookable
from services.kpi.domain.engine import Engine, UnusableEvent
from shared import events as ev
from shared.fx import unrated_currency
from tests.conftest import canonical

RATES = {"USD": Decimal("0.92"), "EUR": Decimal(1)}


def event(type_: str = "deal.updated", **data: Any) -> ev.Event:
    [parsed] = ev.parse_events(canonical(type_, **data))
    return parsed


@pytest.mark.parametrize(
    ("body", "missing"),
    [
        (event(deal_id="D", amount="5", currency="JPY"), "JPY"),
        (event(deal_id="D", amount="5", currency="USD"), None),
        (event(deal_id="D", amount="5", currency="EUR"), None),
        (event(deal_id="D", amount="5", currency=None), None),  # the reporting currency
        (event("proposal.sent", proposal_id="P", amount="5", currency="GBP"), "GBP"),
        (event("call.placed"), None),  # no amount at all
    ],
)
def test_an_event_lacks_a_rate_only_for_a_currency_not_configured(
    body: ev.Event, missing: str | None
) -> None:
    assert unrated_currency(body, RATES) == missing


def test_ingest_and_the_engine_set_aside_the_same_deals() -> None:
    engine = Engine(ZoneInfo("Europe/Paris"), "EUR", {"USD": RATES["USD"]})
    unrated = event(deal_id="D", amount="5", currency="JPY")
    assert bookable(unrated, RATES) == "currency JPY has no rate (SALESPULSE_FX_RATES)"
    with pytest.raises(UnusableEvent, match="no exchange rate from JPY to EUR"):
        engine.contributions(unrated)
    rated = event(deal_id="D", amount="5", currency="USD")
    assert bookable(rated, RATES) is None
    assert engine.contributions(rated) == {}
