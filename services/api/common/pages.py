"""Lists in pages: ``?limit=&cursor=``, answered with ``next_cursor`` (null on the last page).

A cursor is opaque to clients: the sort key of the last item of the page, encoded. The next
page starts after it (keyset pagination), so a page costs the same however deep it is, and an
item added or removed meanwhile neither repeats nor skips the others.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any

import orjson
from fastapi import Query

from shared.problems import Unprocessable

DEFAULT_LIMIT, MAX_LIMIT = 100, 1000
PageLimit = Annotated[
    int, Query(ge=1, le=MAX_LIMIT, description=f"items per page (at most {MAX_LIMIT})")
]
PageCursor = Annotated[
    str | None,
    Query(max_length=600, description="next_cursor of the previous page; absent: the first"),
]


def encode_cursor(key: list[Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(key)).decode().rstrip("=")


def decode_cursor(cursor: str | None, shape: tuple[type, ...]) -> list[Any] | None:
    """The sort key a cursor holds (its items of the types ``shape``); a 422 naming
    ``query.cursor`` when it was not made by ``encode_cursor`` for this list."""
    if cursor is None:
        return None
    try:
        key = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError):
        key = None
    if (
        not isinstance(key, list)
        or len(key) != len(shape)
        or not all(
            isinstance(v, t) and not isinstance(v, bool) for v, t in zip(key, shape, strict=True)
        )
    ):
        raise Unprocessable(
            "cursor: not a cursor of this list; use next_cursor as it was given",
            errors=[{"field": "query.cursor", "message": "not a cursor of this list"}],
        )
    return key


def _shaped(key: Any, shape: tuple[type, ...]) -> bool:
    if not isinstance(key, list) or len(key) != len(shape):
        return False
    return all(
        isinstance(v, t) and not isinstance(v, bool) for v, t in zip(key, shape, strict=True)
    )
