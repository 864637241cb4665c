"""The drill-down as the API answers it (``interfaces.md``: "Activity behind a number")."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from services.api.kpis.schemas import MetricValue

CountsIn = Literal["numerator", "denominator", "both"]
Incompleteness = Literal["expired", "unrecorded"]


class ActivityItem(BaseModel):
    """One event and what it contributes to the value, its bookings in the window netted."""

    event_id: str
    event_key: str = Field(description="the event's key (hex): its id within its source")
    type: str = Field(description="the event's type (call.placed, deal.updated...)")
    time: datetime = Field(description="when the event happened (its event time)")
    booked_at: datetime = Field(
        description="the instant its contribution is booked at: its own time, or for a deal's "
        "edit or reopening the time of the win it changes"
    )
    rep_id: str | None = Field(description="the rep it is credited to; null: unassigned")
    team_id: str | None = Field(description="the rep's team at the time it is booked at")
    contribution: float | int | None = Field(
        description="count or sum: what it adds to the value, in the metric's unit (money in "
        "the reporting currency); the items' contributions add up to the value. Null for a ratio"
    )
    numerator: int | None = Field(
        default=None,
        description="ratio: what it adds to the numerator's total, in the base counters' "
        "units (money in cents, durations in seconds, discounts in basis points)",
    )
    denominator: int | None = Field(
        default=None, description="ratio: what it adds to the denominator's total, likewise"
    )
    counts_in: CountsIn | None = Field(
        default=None, description="ratio: the part(s) of the ratio it counts in"
    )
    source: str = Field(description="the event's source (CloudEvents source)")
    provider: str | None = Field(description="the provider of the event's actor")
    actor: str | None = Field(description="provider:external_id, as the event named its actor")
    call_id: str | None = None
    deal_id: str | None = None
    amount: float | None = Field(
        default=None, description="the revenue it books in the window, in the reporting currency"
    )
    corrected: list[str] = Field(
        default_factory=list,
        description="the corrections in force on it (applied and not undone), oldest first",
    )


class ActivityOut(BaseModel):
    scope: Literal["rep", "team", "unassigned"]
    id: str = Field(description="the rep's or team's id, or the unassigned identity")
    metric: str
    kind: str = Field(description="count, sum or ratio")
    window: str
    from_: datetime = Field(serialization_alias="from")
    to: datetime
    as_of: datetime
    value: MetricValue = Field(description="the metric's value, as its KPI route answers it")
    numerator: int | None = Field(
        default=None,
        description="ratio: the window's total of its numerator (base counters' units)",
    )
    denominator: int | None = Field(
        default=None,
        description="ratio: the window's total of its denominator; null for an attainment, "
        "whose denominator is the target",
    )
    scale: float | None = Field(
        default=None, description="ratio: value = numerator / denominator x scale"
    )
    complete: bool = Field(
        description="whether the items explain the whole value: false when the window reaches "
        "back before detail_from"
    )
    incomplete_reason: Incompleteness | None = Field(
        default=None,
        description="expired: past ACTIVITY_RETENTION_DAYS; unrecorded: booked before the "
        "activity record existed (an upgraded database)",
    )
    detail_from: datetime = Field(description="from this instant on, every booking is listed")
    note: dict[str, str] | None = Field(
        default=None, description="why the list is incomplete, for people: {fr, en}"
    )
    items: list[ActivityItem] = Field(description="newest first")
    next_cursor: str | None = Field(
        default=None, description="the next page's cursor (?cursor=); null on the last page"
    )


class DealChange(BaseModel):
    """One event of the deal and what it booked, for one rep (or unknown identity) and team."""

    event_id: str
    event_key: str
    type: str
    time: datetime
    booked_at: datetime = Field(description="the instant it is booked at (the win it changes)")
    correction: str | None = Field(
        default=None, description="the correction that booked this (a reassignment, exclusion)"
    )
    rep_id: str | None
    identity: str | None = Field(default=None, description="unassigned: the actor's identity")
    team_id: str | None
    what: Literal["won", "lost", "reopened", "amount_edit", "update"]
    deals_won: int = Field(description="signed: +1 a win, -1 a win taken back")
    deals_lost: int
    revenue: float = Field(description="signed revenue it books, in the reporting currency")
    booked: dict[str, int] = Field(description="the deal's base counters it booked, signed")
    corrected: list[str] = Field(default_factory=list)


class DealOut(BaseModel):
    deal_id: str
    status: str | None = Field(description="open, won, lost... as last reported")
    amount: str | None
    currency: str | None
    stage: str | None
    account_id: str | None
    owner: str | None = Field(description="provider:external_id of its latest owner")
    state_from: Literal["kpi_state", "activity_record"] = Field(
        description="where the current state comes from: the KPI service's deal state, or, "
        "once pruned, what the activity record still holds"
    )
    changes: list[DealChange] = Field(description="oldest first")
