"""The answer of ``GET /v1/connections``."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class Deliveries(BaseModel):
    accepted: int = Field(description="events accepted (published) over the last 24 h")
    duplicates: int = Field(description="events recognised as already accepted")
    deadlettered: int = Field(description="items set aside in the dead-letter topic")
    refused: int = Field(description="deliveries refused (signature, token, body...)")


class ConnectionOut(BaseModel):
    provider: str
    label: str
    kind: str = Field(description="crm, telephony or any")
    configured: bool = Field(description="its secret is set: its route is on")
    setting: str = Field(description="the setting that turns its route on")
    url: str = Field(description="the URL to paste into the provider")
    where: dict[str, str] = Field(description="where the URL goes in the provider, {fr, en}")
    subscribe: list[dict[str, str]] = Field(description="what to subscribe to, {fr, en} each")
    last_delivery_at: datetime | None = None
    last_24h: Deliveries
    last_refusal_at: datetime | None = None
    last_refusal_reason: str | None = Field(
        default=None, description="why the last delivery refused was (never a secret nor a body)"
    )


class ConnectionsOut(BaseModel):
    base_url: str = Field(
        description="PUBLIC_BASE_URL, or the ingest's own address when it is unset"
    )
    public_base_url_set: bool
    items: list[ConnectionOut]
