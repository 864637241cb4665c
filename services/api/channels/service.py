"""Channels: saved by admins, where the SSRF guard allows, secrets shown once.

- **Saving** (PUT) checks the destination with the guard (``https``, and every address the
  host resolves to public, unless ``ALLOW_PRIVATE_CHANNELS``): a 422 naming ``body.url``.
- **Secrets.** A webhook channel always has one. Given, it is stored; absent, the channel keeps
  the one it has (a PUT that changes only the URL does not break the receiver), or, when it has
  none (new, or a Slack/Teams channel turned webhook), one is generated and returned by that
  PUT alone. Which one is kept is decided by the upsert itself (``ChannelRepository.save``
  answers the stored secret): of concurrent first PUTs, only the one whose secret was stored
  shows it. Nothing here logs a secret; reads never return it.
"""

from __future__ import annotations

from services.api.channels.repository import ChannelRepository
from services.api.channels.schemas import ChannelIn, ChannelOut, ChannelSaved
from shared.notify import guard
from shared.notify.messages import Channel, new_secret
from shared.problems import NotFound, refused


async def check_destination(
    url: str, allow_private: bool, resolver: guard.Resolver = guard.resolve
) -> None:
    """A 422 naming ``body.url`` unless the guard lets a channel point at ``url``."""
    if problem := await guard.destination_problem(url, allow_private, resolver):
        raise refused(("url", problem))


def _secret_for(body: ChannelIn) -> tuple[str | None, bool]:
    """(the secret to store, whether a secret the channel has wins over it): a webhook
    without a secret given gets a new one, unless it has one already."""
    if body.kind != "webhook":
        return None, False
    if body.secret is not None:
        return body.secret, False
    return new_secret(), True


async def save(
    channels: ChannelRepository, channel_id: str, body: ChannelIn, allow_private: bool
) -> ChannelSaved:
    """Create or replace the channel; the answer shows a secret only if it generated the one
    stored."""
    await check_destination(body.url, allow_private)
    candidate, keep = _secret_for(body)
    channel = Channel(id=channel_id, kind=body.kind, url=body.url, secret=candidate)
    stored = await channels.save(channel, keep_secret=keep)
    shown = ChannelOut.of(Channel(id=channel_id, kind=body.kind, url=body.url, secret=stored))
    generated = keep and stored is not None and stored == candidate
    return ChannelSaved(**shown.model_dump(), secret=stored if generated else None)


async def existing(channels: ChannelRepository, channel_id: str) -> Channel:
    channel = await channels.get(channel_id)
    if channel is None:
        raise NotFound(f"no channel {channel_id!r}")
    return channel


async def shown(channels: ChannelRepository, channel_id: str) -> ChannelOut:
    return ChannelOut.of(await existing(channels, channel_id))


async def delete(channels: ChannelRepository, channel_id: str) -> None:
    if not await channels.delete(channel_id):
        raise NotFound(f"no channel {channel_id!r}")
