from __future__ import annotations

from services.api.live.ranking import Entry, rank
from shared.catalogue import CATALOGUE, evaluate, needed_counters


def test_ratios_come_from_summed_parts_and_are_null_without_denominator() -> None:
    values = evaluate(
        {
            "calls_received": 3,
            "calls_missed": 1,
            "revenue_cents": 150000,
            "deals_won": 2,
            "deals_lost": 2,
        }
    )
    assert values["answer_rate"] == 0.75
    assert values["win_rate"] == 0.5
    assert values["revenue"] == 1500.0
    assert values["avg_deal_size"] == 750.0
    assert values["connect_rate"] is None
    assert values["calls_total"] == 3


def test_catalogue_entries_are_described() -> None:
    for metric in CATALOGUE.values():
        assert metric.kind in {"count", "sum", "ratio"}
        assert metric.definition
        assert metric.unit
    assert needed_counters(["touches"]) >= {"calls_placed", "meetings_held"}


def test_standard_competition_ranking_with_stable_display_order() -> None:
    entries = [
        Entry("d", "Dan", 5),
        Entry("b", "Bea", 7),
        Entry("a", "Ann", 5),
        Entry("c", "Cid", 1),
        Entry("e", "Eve", None),
    ]
    ranked = rank(entries)
    assert [(r.entry.name, r.rank) for r in ranked] == [
        ("Bea", 1),
        ("Ann", 2),
        ("Dan", 2),
        ("Cid", 4),
        ("Eve", None),
    ]
