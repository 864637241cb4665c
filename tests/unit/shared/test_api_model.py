"""Every API request body derives from ``ApiModel`` (walked off the app's routes, so a new route
cannot forget it), and what that base refuses: non-finite or oversized numbers, control
characters anywhere in a text, and a score that could overflow."""

from __future__ import annotations

import json
import math
import types
import typing
from collections.abc import Iterator
from typing import Annotated, Any

import pytest
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field, ValidationError
from starlette.routing import BaseRoute

from services.api.app import create_app
from services.api.contests.schemas import MAX_POINTS, ContestIn
from services.api.contests.scoring import Score
from services.api.roster.schemas import CsvRow, RosterImportIn
from services.api.targets.schemas import TargetItem, TargetsImportIn
from shared.api_model import (
    BIGINT,
    MAX_NUMBER,
    MAX_WEIGHT,
    MULTILINE,
    ApiModel,
    number_problem,
    text_problem,
)
from shared.problems import as_sent
from shared.settings import Settings

# Routes that read their body themselves (JSON or CSV), with the models they validate it with.
READS_ITS_OWN_BODY: dict[str, tuple[type[BaseModel], ...]] = {
    "/v1/roster/import": (RosterImportIn, CsvRow),
    "/v1/targets/import": (TargetsImportIn, TargetItem),
}
WRITES = frozenset({"POST", "PUT", "PATCH"})
# The console's forms are HTML forms: each builds the API's own body models from its fields
# (the same services, the same validation: tests/unit/api/console), so it has no body of its own.
CONSOLE = "/console"


def api_routes(routes: typing.Sequence[BaseRoute]) -> Iterator[APIRoute]:
    """Every route of the app, inside included routers too (FastAPI keeps them apart)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        inner = getattr(route, "original_router", None) or getattr(route, "app", None)
        if inner is not None and hasattr(inner, "routes"):
            yield from api_routes(inner.routes)


def models_in(annotation: Any) -> Iterator[type[BaseModel]]:
    """The models an annotation names: itself, inside unions, lists, dicts, Annotated."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
        return
    for argument in typing.get_args(annotation):
        yield from models_in(argument)


def nested(model: type[BaseModel], seen: set[type[BaseModel]]) -> Iterator[type[BaseModel]]:
    """``model`` and every model its fields name, each once."""
    if model in seen:
        return
    seen.add(model)
    yield model
    for field in model.model_fields.values():
        for inner in models_in(field.annotation):
            yield from nested(inner, seen)


def body_models() -> dict[str, set[type[BaseModel]]]:
    """Per write route (``METHOD path``), the models its body is validated with."""
    app = create_app(Settings(database_url="sqlite:///:memory:"))
    found: dict[str, set[type[BaseModel]]] = {}
    for route in api_routes(app.routes):
        methods = (route.methods or set()) & WRITES
        if not methods or route.path.startswith(CONSOLE):
            continue
        key = f"{'/'.join(sorted(methods))} {route.path}"
        roots = [m for p in route.dependant.body_params for m in models_in(p.field_info.annotation)]
        if (route.openapi_extra or {}).get("requestBody") is not None and not roots:
            assert route.path in READS_ITS_OWN_BODY, f"{key} reads its body: list its models here"
            roots += READS_ITS_OWN_BODY[route.path]
        seen: set[type[BaseModel]] = set()
        found[key] = {m for root in roots for m in nested(root, seen)}
    return found


def test_every_request_body_and_every_model_in_it_derives_from_the_base() -> None:
    found = body_models()
    assert {  # the walk sees the routes (an empty walk would prove nothing)
        "PUT /v1/reps/{rep_id}",
        "PUT /v1/teams/{team_id}",
        "POST /v1/roster/import",
        "PUT /v1/targets/{scope}/{id}/{metric}/{period}",
        "PUT /v1/contests/{contest_id}",
        "PUT /v1/channels/{channel_id}",
        "PUT /v1/alerts/{alert_id}",
    } <= set(found)
    assert all(found.values()), {key for key, models in found.items() if not models}
    strays = {
        f"{key}: {model.__module__}.{model.__qualname__}"
        for key, models in found.items()
        for model in models
        if not issubclass(model, ApiModel)
    }
    assert strays == set()


def test_the_walk_would_catch_a_stray_nested_model() -> None:
    class Loose(BaseModel):
        name: str

    class Body(ApiModel):
        items: list[Loose | None]

    assert [m for m in nested(Body, set()) if not issubclass(m, ApiModel)] == [Loose]


class Inner(ApiModel):
    name: str


class Body(ApiModel):
    name: str = "x"
    tags: list[str] = Field(default_factory=list)
    weights: dict[str, float] = Field(default_factory=dict)
    inner: list[Inner] = Field(default_factory=list)
    note: Annotated[str | None, MULTILINE] = None
    count: int = 0


def refused(raw: str) -> list[tuple[tuple[int | str, ...], str]]:
    """The (location, message) of each error of ``raw`` parsed as a request body is: by
    ``json.loads`` first, as FastAPI does (it reads ``1e400`` and ``Infinity`` as inf)."""
    with pytest.raises(ValidationError) as caught:
        Body.model_validate(json.loads(raw))
    return [(e["loc"], e["msg"]) for e in caught.value.errors()]


@pytest.mark.parametrize(
    ("raw", "loc"),
    [
        ('{"name": "a\\u0000b"}', ("name",)),
        ('{"name": "tab\\there"}', ("name",)),
        ('{"name": "line\\nbreak"}', ("name",)),
        ('{"name": "del\\u007f"}', ("name",)),
        ('{"name": "lone \\ud800 surrogate"}', ("name",)),
        ('{"tags": ["ok", "bad\\u0001"]}', ("tags", 1)),
        ('{"weights": {"calls\\u0000": 1}}', ("weights", "calls\\x00", "[key]")),
        ('{"inner": [{"name": "ok"}, {"name": "x\\u001b[31m"}]}', ("inner", 1, "name")),
        ('{"note": "two\\nlines\\tand a NUL \\u0000"}', ("note",)),
    ],
)
def test_control_characters_are_refused_where_they_are(raw: str, loc: tuple[Any, ...]) -> None:
    [(where, message)] = refused(raw)
    assert where == loc
    assert "control characters" in message or "not valid Unicode" in message
    assert "\x00" not in message  # the value is never repeated


def test_line_breaks_and_tabs_only_where_a_multiline_text_is_legitimate() -> None:
    assert Body.model_validate({"note": "Bravo {subject}!\r\n\tNext: {metric}"}).note
    assert text_problem("a\nb", multiline=True) is None
    assert text_problem("a\nb") is not None
    assert text_problem("a\x00b", multiline=True) is not None
    assert text_problem("Zoë 😀 — ok") is None
    assert text_problem("\x85 is C1, allowed") is None


@pytest.mark.parametrize(
    ("raw", "loc"),
    [
        ('{"weights": {"calls_total": NaN}}', ("weights", "calls_total")),
        ('{"weights": {"calls_total": Infinity}}', ("weights", "calls_total")),
        ('{"weights": {"calls_total": -Infinity}}', ("weights", "calls_total")),
        ('{"weights": {"calls_total": 1e400}}', ("weights", "calls_total")),
        ('{"weights": {"calls_total": 1e16}}', ("weights", "calls_total")),
        ('{"count": 9223372036854775808}', ("count",)),
        ('{"count": -9223372036854775809}', ("count",)),
    ],
)
def test_numbers_are_finite_and_fit_their_column(raw: str, loc: tuple[Any, ...]) -> None:
    [(where, _)] = refused(raw)
    assert where == loc


def test_the_bounds_themselves_pass() -> None:
    body = Body.model_validate({"weights": {"a": MAX_NUMBER, "b": -MAX_NUMBER}, "count": BIGINT[1]})
    assert body.count == 2**63 - 1
    assert number_problem(BIGINT[0]) is None
    assert number_problem(math.nextafter(MAX_NUMBER, math.inf)) is not None


def test_no_points_score_within_the_bounds_overflows() -> None:
    """The largest weights on the largest counters a BIGINT column holds: still finite."""
    metrics = [f"m{i}" for i in range(MAX_POINTS)]
    score = Score(points=tuple((name, MAX_WEIGHT) for name in metrics))
    value = score.value(dict.fromkeys(metrics, BIGINT[1]))
    assert value is not None
    assert math.isfinite(value)


@pytest.mark.parametrize("weight", [0, -1, MAX_WEIGHT * 2, math.nan, math.inf])
def test_a_weight_is_positive_and_at_most_the_maximum(weight: float) -> None:
    body = {
        "name": "Blitz",
        "starts_at": "2026-11-02T09:00:00Z",
        "ends_at": "2026-11-02T10:00:00Z",
        "score": {"points": {"calls_total": weight}},
    }
    with pytest.raises(ValidationError) as caught:
        ContestIn.model_validate(body)
    assert [e["loc"] for e in caught.value.errors()] == [("score", "points", "calls_total")]


def test_the_walk_looks_inside_unions_of_both_spellings() -> None:
    assert isinstance(Inner | None, types.UnionType)
    assert list(models_in(Inner | None)) == [Inner]
    assert list(models_in(typing.Optional[list[Inner]])) == [Inner]  # noqa: UP045


def test_a_tagged_unions_tag_is_left_out_of_the_field_named() -> None:
    sent = {"body": {"name": "a", "trigger": {"kind": "threshold", "value": None}}}
    assert as_sent(("body", "trigger", "threshold", "value"), sent) == ("body", "trigger", "value")
    assert as_sent(("body", "trigger", "metric"), sent) == ("body", "trigger", "metric")
    assert as_sent(("body", "items", 3, "x"), {"body": {"items": []}}) == ("body", "items", 3, "x")
