"""Targets admin (``/v1/targets/{scope}/{id}/{metric}/{period}``) and their SQL."""

from __future__ import annotations

from typing import Annotated, Literal, cast
from zoneinfo import ZoneInfo

from fastapi import Depends, Path, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from services.api.common.auth import require
from services.api.common.database import api_router
from services.api.common.freshness import Fresh, bump_version
from services.api.common.params import Id
from shared.catalogue import CATALOGUE
from shared.db.models import RosterVersion, Target, table
from shared.db.retry import retrying
from shared.problems import NotFound
from shared.settings import KeyScope
from shared.targets import Period, window_target
from shared.windows import Window

router = api_router(prefix="/v1/targets", tags=["targets"])
_targets = table(Target)
ScopeName = Literal["rep", "team"]


class TargetIn(BaseModel):
    value: float = Field(gt=0, description="the target for one whole period")


class TargetOut(TargetIn):
    scope: ScopeName
    id: str
    metric: str
    period: Period


class TargetStore:
    def __init__(self, engine: AsyncEngine, tz: ZoneInfo, week_start: int = 0) -> None:
        self._db = engine
        self._tz, self._week_start = tz, week_start
        self._insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
        self._cached: tuple[int, dict[tuple[str, str, str, str], float]] | None = None

    async def put(self, scope: str, subject: str, metric: str, period: str, value: float) -> None:
        # Run again on a deadlock or serialisation failure: it bumps the shared roster version.
        await retrying(
            lambda: self._put_tx(scope, subject, metric, period, value), what="put target"
        )

    async def _put_tx(
        self, scope: str, subject: str, metric: str, period: str, value: float
    ) -> None:
        statement = self._insert(_targets).values(
            scope=scope, subject_id=subject, metric=metric, period=period, value=value
        )
        statement = statement.on_conflict_do_update(
            index_elements=["scope", "subject_id", "metric", "period"],
            set_={"value": statement.excluded.value},
        )
        async with self._db.begin() as conn:
            await conn.execute(statement)
            await bump_version(conn, table(RosterVersion))

    async def delete(self, scope: str, subject: str, metric: str, period: str) -> bool:
        return await retrying(
            lambda: self._delete_tx(scope, subject, metric, period), what="delete target"
        )

    async def _delete_tx(self, scope: str, subject: str, metric: str, period: str) -> bool:
        async with self._db.begin() as conn:
            result = await conn.execute(
                delete(_targets).where(
                    _targets.c.scope == scope,
                    _targets.c.subject_id == subject,
                    _targets.c.metric == metric,
                    _targets.c.period == period,
                )
            )
            await bump_version(conn, table(RosterVersion))
        return bool(result.rowcount)

    async def of(
        self,
        scope: str,
        metrics: set[str],
        subject: str | None = None,
        version: int | None = None,
    ) -> dict[str, dict[str, dict[Period, float]]]:
        """subject -> metric -> period -> value, for one subject or all of a scope.

        Targets are few and change rarely (each change bumps the roster version): given the
        current ``version``, they are served from memory until it moves."""
        if version is None or self._cached is None or self._cached[0] != version:
            self._cached = (version if version is not None else -1, await self._load())
        found: dict[str, dict[str, dict[Period, float]]] = {}
        for (where, who, metric, period), value in self._cached[1].items():
            if where == scope and metric in metrics and subject in (None, who):
                found.setdefault(who, {}).setdefault(metric, {})[cast(Period, period)] = value
        return found

    async def for_window(
        self,
        scope: str,
        metrics: set[str],
        window: Window,
        subject: str | None = None,
        version: int | None = None,
    ) -> dict[str, dict[str, float]]:
        """subject -> metric -> the target ``window`` is measured against (see shared.targets)."""
        if not metrics:
            return {}
        result: dict[str, dict[str, float]] = {}
        for who, by_metric in (await self.of(scope, metrics, subject, version)).items():
            for name, periods in by_metric.items():
                target = window_target(periods, window, self._tz, self._week_start)
                if target is not None:
                    result.setdefault(who, {})[name] = target
        return result

    async def _load(self) -> dict[tuple[str, str, str, str], float]:
        query = select(
            _targets.c.scope,
            _targets.c.subject_id,
            _targets.c.metric,
            _targets.c.period,
            _targets.c.value,
        )
        async with self._db.connect() as conn:
            return {(s, i, m, p): float(v) for s, i, m, p, v in await conn.execute(query)}


def _store(request: Request) -> TargetStore:
    store: TargetStore = request.app.state.targets
    return store


Store = Annotated[TargetStore, Depends(_store)]
MetricName = Annotated[str, Path(max_length=48)]


def _known(metric: str) -> None:
    if metric not in CATALOGUE:
        raise NotFound(f"unknown metric {metric!r}; see GET /v1/metrics")


@router.put(
    "/{scope}/{id}/{metric}/{period}",
    response_model=TargetOut,
    dependencies=[Depends(require(KeyScope.admin))],
)
async def put_target(
    scope: ScopeName, id: Id, metric: MetricName, period: Period, body: TargetIn, store: Store
) -> TargetOut:
    _known(metric)
    await store.put(scope, id, metric, period, body.value)
    return TargetOut(scope=scope, id=id, metric=metric, period=period, value=body.value)


@router.get(
    "/{scope}/{id}/{metric}/{period}",
    response_model=TargetOut,
    dependencies=[Depends(require(KeyScope.read))],
)
async def get_target(
    scope: ScopeName, id: Id, metric: MetricName, period: Period, store: Store, _: Fresh
) -> TargetOut:
    value = (await store.of(scope, {metric}, id)).get(id, {}).get(metric, {}).get(period)
    if value is None:
        raise NotFound(f"no {period} target of {metric} for {scope} {id!r}")
    return TargetOut(scope=scope, id=id, metric=metric, period=period, value=value)


@router.delete(
    "/{scope}/{id}/{metric}/{period}",
    status_code=204,
    dependencies=[Depends(require(KeyScope.admin))],
)
async def delete_target(
    scope: ScopeName, id: Id, metric: MetricName, period: Period, store: Store
) -> Response:
    if not await store.delete(scope, id, metric, period):
        raise NotFound(f"no {period} target of {metric} for {scope} {id!r}")
    return Response(status_code=204)
