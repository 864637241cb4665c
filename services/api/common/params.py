"""What every request resolves once, as ``Annotated`` aliases that routes take as parameters.

- ``Now``: the request's one clock. Every dependency and handler that needs the time takes it,
  so a window, a rep's team and a board are all cut at the same instant.
- ``RequestWindow``: the window asked for (``window``, or ``from``/``to``), resolved at ``Now``
  in the organisation's time zone; a window that cannot be measured is a 422 naming the field.
- ``Metric`` / ``Metrics``: a metric of the path, or a list in ``?metrics=``, each known to the
  catalogue (404 otherwise).
- ``Id``: the id of a rep or a team in a path.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import Depends, Path, Query, Request
from pydantic import BaseModel

from shared.catalogue import CATALOGUE
from shared.problems import NotFound, Unprocessable
from shared.settings import Settings
from shared.windows import CUSTOM_RANGE, Window, WindowError, resolve_window

SubjectKind = Literal["rep", "team"]  # what a KPI, a board or a target is about
ID_PATTERN = r"^[A-Za-z0-9._~-]+$"  # an id of the roster, a contest, a channel, an alert
Id = Annotated[str, Path(min_length=1, max_length=64, pattern=ID_PATTERN)]
FROM_DOC = f"ISO 8601 start of a custom window, {CUSTOM_RANGE}"
TO_DOC = f"ISO 8601 end of a custom window (default now), {CUSTOM_RANGE}"


def app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def request_now() -> datetime:
    return datetime.now(UTC)


AppSettings = Annotated[Settings, Depends(app_settings)]
Now = Annotated[datetime, Depends(request_now)]


def refuse_unknown(names: list[str]) -> None:
    """404 unless the catalogue has every metric of ``names``."""
    unknown = [name for name in names if name not in CATALOGUE]
    if len(names) == 1 and unknown:
        raise NotFound(f"unknown metric {unknown[0]!r}; see GET /v1/metrics")
    if unknown:
        raise NotFound(f"unknown metric(s) {', '.join(unknown)}; see GET /v1/metrics")


def known_metric(metric: Annotated[str, Path(max_length=48)]) -> str:
    refuse_unknown([metric])
    return metric


def known_metrics(
    metrics: Annotated[str | None, Query(description="comma-separated metric names")] = None,
) -> list[str]:
    names = [m.strip() for m in (metrics or "").split(",") if m.strip()] or list(CATALOGUE)
    refuse_unknown(names)
    return names


Metric = Annotated[str, Depends(known_metric)]
Metrics = Annotated[list[str], Depends(known_metrics)]


@dataclass(frozen=True, slots=True)
class WindowQuery:
    """The window as asked for: a name, or a custom range (resolved against a clock)."""

    name: str | None = None
    start: datetime | None = None
    end: datetime | None = None


def window_query(
    window: Annotated[str | None, Query(description="named window, default today")] = None,
    from_: Annotated[datetime | None, Query(alias="from", description=FROM_DOC)] = None,
    to: Annotated[datetime | None, Query(description=TO_DOC)] = None,
) -> WindowQuery:
    return WindowQuery(window, from_, to)


def resolve(query: WindowQuery, now: datetime, settings: Settings) -> Window:
    """The window ``query`` names, at ``now``, in the organisation's zone and week."""
    return resolve_window(
        query.name,
        now=now,
        tz=settings.tz,
        week_start=settings.week_start.weekday,
        start=query.start,
        end=query.end,
    )


AskedWindow = Annotated[WindowQuery, Depends(window_query)]


def window_problem(exc: WindowError) -> Unprocessable:
    """A window that cannot be measured, as a 422 naming the parameter at fault."""
    return Unprocessable(str(exc), errors=[{"field": exc.field, "message": str(exc)}])


def request_window(query: AskedWindow, now: Now, settings: AppSettings) -> Window:
    try:
        return resolve(query, now, settings)
    except WindowError as exc:
        raise window_problem(exc) from None


RequestWindow = Annotated[Window, Depends(request_window)]


DryRun = Annotated[
    bool,
    Query(description="1: answer what would change (or what is wrong), and write nothing"),
]


def merge_patch(model: type[BaseModel]) -> dict[str, Any]:
    """OpenAPI for a JSON Merge Patch body (RFC 7396): ``application/merge-patch+json``, and
    ``application/json`` as most clients send it."""
    schema = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/merge-patch+json": {"schema": schema},
                "application/json": {"schema": schema},
            },
        }
    }
