"""Reports: every rep (or team) of the floor with the chosen metrics over one window.

The values are the KPIs' own (``Kpis.values``: the same sums, the same evaluation, attainments
against the same targets), read for every subject at once: one query of the sums for the whole
scope, not one per rep. Who is in the report is who is on the boards (``Contenders``, cached
per roster version), each rep in its team at the window's end, or now if that is earlier.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from services.api.common.freshness import DataVersion
from services.api.common.params import SubjectKind
from services.api.common.spreadsheets import Column
from services.api.kpis.service import Kpis
from services.api.live.contenders import Contender, Contenders
from services.api.reports.schemas import ReportOut, ReportRow, Scope
from services.api.roster.repository import RosterRepository
from services.api.roster.service import epoch
from shared import i18n
from shared.catalogue import CATALOGUE
from shared.windows import Window

KINDS: dict[Scope, SubjectKind] = {"reps": "rep", "teams": "team"}
NUMBER_FORMATS = {  # a metric's unit -> its cells' format in a workbook
    "count": "#,##0",
    "seconds": "#,##0",
    "currency": "#,##0.00",
    "ratio": "0.0%",
    "days": "0.0",
    "score": "0.0",
}
REP_COLUMNS = ("rep_id", "name", "team_id", "team_name")
TEAM_COLUMNS = ("team_id", "name")
TEAM_NAME_LABELS = ("Équipe", "Team")


class Reports:
    """The reports of one app: the roster as the boards see it, read once per version."""

    def __init__(self) -> None:
        self._contenders = Contenders()

    async def of(
        self,
        scope: Scope,
        window: Window,
        names: list[str],
        team: str | None,
        reads: tuple[Kpis, RosterRepository],
        version: DataVersion,
        now: datetime,
    ) -> ReportOut:
        """The report of ``scope`` over ``window`` with ``names``; of ``team`` only if given."""
        kpis, roster = reads
        kind = KINDS[scope]
        at = min(epoch(now), window.end_ts - 1)
        teams = await self._contenders.of(roster, "team", version.roster, at)
        every = (
            teams
            if kind == "team"
            else await self._contenders.of(roster, kind, version.roster, at, window.start_ts)
        )
        chosen = [c for c in every if team is None or c.team_id == team]
        members = None  # a team without its own target: its reps' summed
        if kind == "team":
            members = await self._contenders.members(roster, version.roster, at)
        ids = [c.id for c in chosen]
        values = await kpis.values(kind, ids, window, names, version, members)
        team_names = {t.id: t.name for t in teams}
        rows = [_row(kind, c, team_names, values[c.id]) for c in chosen]
        rows.sort(key=lambda r: (r.team_name or "", r.name, r.rep_id or r.team_id or ""))
        return ReportOut(
            scope=scope,
            window=window.name,
            from_=window.start,
            to=window.end,
            as_of=version.as_of,
            team=team,
            metrics=names,
            rows=rows,
        )


def _row(
    kind: SubjectKind, who: Contender, teams: dict[str, str], values: dict[str, Any]
) -> ReportRow:
    team_name = teams.get(who.team_id) if who.team_id is not None else None
    rep_id = who.id if kind == "rep" else None
    return ReportRow.model_construct(
        rep_id=rep_id, name=who.name, team_id=who.team_id, team_name=team_name, values=values
    )


def export_rows(report: ReportOut) -> list[dict[str, Any]]:
    """One flat row per rep or team: who, then a column per metric (its machine name)."""
    return [
        {
            "rep_id": row.rep_id,
            "name": row.name,
            "team_id": row.team_id,
            "team_name": row.team_name,
            **row.values,
        }
        for row in report.rows
    ]


def export_columns(scope: Scope, names: Sequence[str], currency: str) -> list[Column]:
    """The columns of a report's export: machine names in CSV; in a workbook, each metric by
    its French or English name (a currency's code after an amount) in its number format."""
    who = REP_COLUMNS if scope == "reps" else TEAM_COLUMNS
    return [
        *(Column(key) for key in who),
        *(_metric_column(name, currency) for name in names),
    ]


def _metric_column(name: str, currency: str) -> Column:
    unit = CATALOGUE[name].unit
    french, english = (i18n.label(i18n.METRICS, name, language) for language in i18n.LANGUAGES)
    if unit == "currency":
        french, english = f"{french} ({currency})", f"{english} ({currency})"
    return Column(name, (french, english), NUMBER_FORMATS.get(unit))
