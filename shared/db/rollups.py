"""The statements that sum ``kpi_rollups`` over a window's tiling: shared by the API's reads
(``services/api/kpis/queries.py``) and the alert checks (``shared/alert_reads.py``), which run
them in the KPI flush's own transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, ColumnElement, Select, and_, cast, func, or_, select

from shared.buckets import BucketRange
from shared.db.models import kpi_rollups as _rollups


def per_subject(scope: str, ranges: list[BucketRange], *terms: ColumnElement[Any]) -> Select[Any]:
    """Per subject of ``scope``: its id, and the sum of each term over the buckets of
    ``ranges``. The sums are cast back to BIGINT: PostgreSQL sums BIGINTs as NUMERIC, which
    the driver decodes (10,000 subjects a board) far more slowly than integers."""
    return (
        select(_rollups.c.subject_id, *(summed(term) for term in terms))
        .where(_rollups.c.scope == scope, within(ranges))
        .group_by(_rollups.c.subject_id)
    )


def summed(term: ColumnElement[Any], where: ColumnElement[bool] | None = None) -> Any:
    """SUM(term), of the rows ``where`` holds if given (NULL: none), cast back to BIGINT."""
    total = func.sum(term) if where is None else func.sum(term).filter(where)
    return cast(total, BigInteger)


def within(ranges: list[BucketRange]) -> ColumnElement[bool]:
    """The buckets of a window's tiling."""
    return or_(
        *(
            and_(
                _rollups.c.grain == r.grain,
                _rollups.c.bucket_start >= r.lo,
                _rollups.c.bucket_start < r.hi,
            )
            for r in ranges
        )
    )
