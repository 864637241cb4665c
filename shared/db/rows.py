"""Many rows as one table in a statement, with a parameter per column, not per value.

The drivers cap the parameters of one statement (asyncpg at 32,767): a set-based statement
that names thousands of rows passes them as one array per column on PostgreSQL, or as one JSON
document on SQLite, and reads them back as a table (``unnest`` / ``json_each``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from sqlalchemy import BigInteger, Float, Subquery, Text, cast, func, literal, select
from sqlalchemy.dialects.postgresql import ARRAY

Column = Sequence[str] | Sequence[int] | Sequence[float]


def values_table(postgres: bool, **columns: Column) -> Subquery:
    """The rows zipped from ``columns`` as a table, its columns named after them. A column of
    ints is BIGINT, of floats DOUBLE PRECISION, any other TEXT."""
    if postgres:
        arrays = [
            cast(literal(list(v), ARRAY(_type(v))), ARRAY(_type(v))) for v in columns.values()
        ]
        unnested = func.unnest(*arrays).table_valued(*columns).render_derived()
        return select(*(unnested.c[name] for name in columns)).subquery()
    document = json.dumps([list(row) for row in zip(*columns.values(), strict=True)])
    each = func.json_each(literal(document)).table_valued("value")
    return select(
        *(func.json_extract(each.c.value, f"$[{i}]").label(name) for i, name in enumerate(columns))
    ).subquery()


def _type(values: Column) -> type[BigInteger] | type[Float[float]] | type[Text]:
    if values and isinstance(values[0], bool | str):
        return Text
    if values and isinstance(values[0], int):
        return BigInteger
    if values and isinstance(values[0], float):
        return Float
    return Text
