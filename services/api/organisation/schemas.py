"""The organisation's settings in the API."""

from __future__ import annotations

from pydantic import BaseModel, Field

from shared.i18n import Language


class Named(BaseModel):
    name: str
    labels: dict[str, str] = Field(description="what it is called: {fr, en}")


class OrganisationOut(BaseModel):
    timezone: str = Field(description="IANA time zone the calendar windows are cut in")
    week_start: str
    workdays: list[str] = Field(description="the days pacing counts; empty: every day")
    currency: str = Field(description="the reporting currency (ISO 4217)")
    locale: str = Field(description="language and formats: fr-FR, en-GB, en-US...")
    language: Language
    windows: list[Named]
    periods: list[Named]
