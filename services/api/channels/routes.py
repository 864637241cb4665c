"""Channels: ``PUT/GET/DELETE /v1/channels/{id}`` (admin writes, read reads)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Response

from services.api.channels import service
from services.api.channels.repository import ChannelRepository
from services.api.channels.schemas import ChannelIn, ChannelOut, ChannelSaved
from services.api.common.auth import ADMIN_ACCESS, READ_ACCESS
from services.api.common.database import Db, api_router
from services.api.common.params import AppSettings, Id

router = api_router(prefix="/v1", tags=["channels"])


def channel_repository(db: Db) -> ChannelRepository:
    return ChannelRepository(db)


Channels = Annotated[ChannelRepository, Depends(channel_repository)]


@router.put(
    "/channels/{channel_id}",
    response_model=ChannelSaved,
    dependencies=ADMIN_ACCESS,
    summary="Create or replace a channel (webhook, Slack or Teams)",
)
async def put_channel(
    channel_id: Id, body: ChannelIn, channels: Channels, settings: AppSettings
) -> ChannelSaved:
    """Create or replace a channel. A webhook channel's secret, when this PUT generates it, is
    in this answer and never again."""
    return await service.save(channels, channel_id, body, settings.allow_private_channels)


@router.get(
    "/channels/{channel_id}",
    response_model=ChannelOut,
    dependencies=READ_ACCESS,
    summary="A channel: its kind and URL's origin, never its secret",
)
async def get_channel(channel_id: Id, channels: Channels) -> ChannelOut:
    return await service.shown(channels, channel_id)


@router.delete(
    "/channels/{channel_id}",
    status_code=204,
    dependencies=ADMIN_ACCESS,
    summary="Delete a channel",
)
async def delete_channel(channel_id: Id, channels: Channels) -> Response:
    await service.delete(channels, channel_id)
    return Response(status_code=204)
