"""The base of every API request body: ``ApiModel``. Pure: no I/O.

What a body may carry is decided here once, for every field of every model derived from it,
nested models and the values inside lists and dicts (their keys too) included, so a new route
cannot forget it (``tests/unit/shared/test_api_model.py`` walks the app's routes to make sure each
body derives from it):

- **Numbers are finite and fit their column.** ``NaN``, ``Infinity`` and ``1e400`` (which a
  JSON parser reads as infinity) are refused; a float lies within ``±MAX_NUMBER`` (1e15: more
  than any team's revenue in any currency, and far inside a double precision column) and an
  integer fits a BIGINT. Fields narrow this further where a product or a quotient is made of
  them: a points weight is at most ``MAX_WEIGHT``, a target at least ``MIN_TARGET``, so that no
  score, attainment or pace can overflow to infinity or become NaN.
- **Text holds no control character**: none of C0 (U+0000 to U+001F, NUL included) nor DEL
  (U+007F), and no lone surrogate (not Unicode; no driver can encode it). PostgreSQL refuses
  NUL in text, and the others have no business in a name, an id or a URL. A field marked
  ``MULTILINE`` (an alert's ``message`` template: a multi-line text is legitimate there) may
  hold line feeds, carriage returns and tabs, and no other control character.

Each refusal is a 422 naming the field where it is (``body.identities.0.external_id``,
``body.score.points.calls_total``), never repeating the value.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, ValidationInfo, field_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

MAX_NUMBER = 1e15  # any float of a body, in absolute value
MAX_WEIGHT = 1e6  # a contest's points weight: 20 weights x a BIGINT counter stays finite
MIN_TARGET = 1e-3  # a target: value / target (attainment, pace) stays finite
BIGINT = (-(2**63), 2**63 - 1)

# C0 controls and DEL; and lone surrogates (U+D800 to U+DFFF), which json.loads lets through
_CONTROL = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")
_CONTROL_BUT_LINES = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
Loc = tuple[int | str, ...]


@dataclass(frozen=True, slots=True)
class MultiLine:
    """Marks a text field (``Annotated[str, MULTILINE]``) that may hold line breaks and tabs."""


MULTILINE = MultiLine()


def text_problem(text: str, multiline: bool = False) -> str | None:
    """Why ``text`` may not be stored (never repeating it), or None."""
    found = (_CONTROL_BUT_LINES if multiline else _CONTROL).search(text)
    if found is None:
        return None
    code = ord(found.group())
    if 0xD800 <= code <= 0xDFFF:
        return f"is not valid Unicode (a lone surrogate at position {found.start()})"
    allowed = " (line breaks and tabs are allowed here)" if multiline else ""
    return f"must not contain control characters: U+{code:04X} at position {found.start()}{allowed}"


def number_problem(value: float) -> str | None:
    """Why the number ``value`` (int or float, not bool) does not fit, or None."""
    if isinstance(value, int):
        low, high = BIGINT
        return None if low <= value <= high else f"must lie between {low} and {high}"
    if not math.isfinite(value):
        return "must be a finite number"
    if abs(value) > MAX_NUMBER:
        return f"must lie between {-MAX_NUMBER:g} and {MAX_NUMBER:g}"
    return None


def _key_loc(key: Any) -> int | str:
    """A dict key as a location: as it is, unless it is the problem (then escaped)."""
    if isinstance(key, str) and text_problem(key) is not None:
        return key.encode("unicode_escape").decode("ascii")
    return key if isinstance(key, int | str) else repr(key)


def problems(value: Any, multiline: bool = False, at: Loc = ()) -> Iterator[tuple[Loc, str]]:
    """Every ``(location, message)`` of a text or number that does not fit, inside ``value``
    (lists, tuples, sets and dicts walked; models left to their own validation)."""
    if isinstance(value, str):
        if (problem := text_problem(value, multiline)) is not None:
            yield at, problem
    elif isinstance(value, bool) or value is None or isinstance(value, BaseModel):
        return
    elif isinstance(value, int | float):
        if (problem := number_problem(value)) is not None:
            yield at, problem
    elif isinstance(value, Mapping):
        for key, item in value.items():
            key_at = (*at, _key_loc(key), "[key]")
            yield from ((loc, f"key {p}") for loc, p in problems(key, False, key_at))
            yield from problems(item, multiline, (*at, _key_loc(key)))
    elif isinstance(value, list | tuple | set | frozenset):
        for index, item in enumerate(value):
            yield from problems(item, multiline, (*at, index))


class ApiModel(BaseModel):
    """What every API request body (and each model nested in one) derives from: see the
    module. Fields narrow the bounds further with ``Field(ge=..., le=...)`` as usual."""

    model_config = ConfigDict(allow_inf_nan=False)

    @field_validator("*", mode="after")
    @classmethod
    def _fits(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None or (isinstance(value, str) and _CONTROL.search(value) is None):
            return value  # the common cases, quickly: an import validates 100,000s of fields
        field = cls.model_fields.get(info.field_name or "")
        multiline = field is not None and MULTILINE in field.metadata
        errors = [
            InitErrorDetails(
                type=PydanticCustomError("unfit_value", "{problem}", {"problem": problem}),
                loc=loc,
                input="",  # never repeated: it may be a secret
            )
            for loc, problem in problems(value, multiline)
        ]
        if errors:
            raise ValidationError.from_exception_data(cls.__name__, errors)
        return value
