"""The roster's shapes in and out of the API (``interfaces.md``)."""

from __future__ import annotations

from datetime import datetime

from pydantic import AwareDatetime, BaseModel, Field


class TeamIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)


class TeamOut(BaseModel):
    id: str
    name: str
    members: list[str]


class IdentityModel(BaseModel):
    provider: str = Field(min_length=1, max_length=64)
    external_id: str = Field(min_length=1, max_length=256)


class RepIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    team_id: str | None = Field(default=None, max_length=64)
    identities: list[IdentityModel] = Field(default_factory=list, max_length=50)
    effective_from: AwareDatetime | None = None


class Membership(BaseModel):
    team_id: str
    effective_from: datetime


class RepOut(BaseModel):
    id: str
    name: str
    team_id: str | None
    identities: list[IdentityModel]
    teams: list[Membership]
