"""Deals won, as the API shows them."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class WinOut(BaseModel):
    deal_id: str
    won_at: datetime = Field(description="the event time of its (last) transition into won")
    rep_id: str
    name: str
    team_id: str | None
    team_name: str | None = None
    amount: float = Field(description="in the reporting currency")


class WinsOut(BaseModel):
    window: str
    from_: datetime = Field(serialization_alias="from")
    to: datetime
    as_of: datetime
    wins: list[WinOut] = Field(description="newest first")
