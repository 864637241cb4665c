"""The reference docs in ``docs/`` say what the code does: every metric and window of the
catalogue is in them, named as the API names it."""

from __future__ import annotations

from shared import i18n
from shared.catalogue import CATALOGUE
from shared.windows import CALENDAR, ROLLING
from tests.paths import ROOT

DOCS = ROOT / "docs"


def test_the_metrics_doc_lists_every_metric_with_its_names_and_every_window() -> None:
    text = (DOCS / "metrics.md").read_text()
    for name, metric in CATALOGUE.items():
        french, english = i18n.METRICS[name]
        row = f"| `{name}` | {french} | {english} | {metric.kind} | {metric.unit} |"
        assert row in text, name
    for window in (*CALENDAR, *ROLLING):
        assert f"`{window}`" in text, window
