"""The bulk target import's reading, pure (no I/O): a JSON or CSV body in, checked items out,
each with where it is in the body (to name its faults)."""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from services.api.common.imports import Error, Errors, csv_table, json_lists, placed, refusal
from services.api.common.imports import validated as checked_items
from services.api.targets.schemas import TargetItem
from shared.catalogue import CATALOGUE

CSV_COLUMNS = ("scope", "id", "metric", "period", "value", "starting")
CSV_REQUIRED = frozenset(CSV_COLUMNS) - {"starting"}
MAX_TARGETS = 100_000


@dataclass(frozen=True, slots=True)
class Placed:
    item: TargetItem
    at: str  # "targets[3]" or "line 4"
    csv: bool

    def field(self, name: str) -> str:
        return f"{self.at}: {name}" if self.csv else f"{self.at}.{name}"


def from_json(body: bytes) -> list[Placed]:
    """``{targets: [{scope, id, metric, period, value, starting?}]}``; a 422 naming the first
    faults (``targets[3].value``)."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise refusal([Error("body", f"not JSON: {exc}")]) from None
    values = json_lists(document, {"targets": MAX_TARGETS})["targets"]
    errors = Errors()
    items = list(checked_items(TargetItem, placed("targets", values), errors))
    errors.refuse_if_any()
    found = [Placed(item, f"targets[{i}]", csv=False) for i, item in enumerate(items)]
    return _known_metrics(found)


def from_csv(body: bytes) -> list[Placed]:
    """A header row naming ``scope,id,metric,period,value[,starting]`` (any order), then one
    target a row, as Excel writes it (``,`` or ``;``, a decimal comma)."""
    errors = Errors()
    table = csv_table(body, CSV_COLUMNS, CSV_REQUIRED, ("value",), MAX_TARGETS, errors)
    errors.refuse_if_any()
    rows = (
        ({k: v for k, v in row.items() if v != "" or k != "starting"}, f"line {n}: ")
        for row, n in zip(table.rows, table.lines, strict=True)
    )
    items = list(checked_items(TargetItem, rows, errors))
    errors.refuse_if_any()
    found = [Placed(i, f"line {n}", csv=True) for i, n in zip(items, table.lines, strict=True)]
    return _known_metrics(found)


def _known_metrics(found: list[Placed]) -> list[Placed]:
    errors = Errors()
    for each in found:
        if each.item.metric not in CATALOGUE:
            message = f"unknown metric {each.item.metric!r}; see GET /v1/metrics"
            errors.add(Error(each.field("metric"), message))
    errors.refuse_if_any()
    return found
