"""A correction as it travels on the activity topic: made by the API, applied by the KPI service.

A correction reassigns one event to a rep, or excludes it; an undo takes one back. It travels
through the bus like any event, keyed like the event it corrects (the actor's identity), so
every KPI instance applies it exactly once (its own id is claimed like an event's) and in order
with that actor's events. It names its target by what the activity record knows of it: enough
for the KPI service to find the state the event lives in (its call, its deal) without the
event's body.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from shared.bus.base import OutgoingRecord
from shared.events import Actor, event_key

CONTENT_TYPE = "application/vnd.salespulse.correction+json"
SOURCE = "salespulse:corrections"  # the source of a correction's own event key (its dedupe)
REP_PROVIDER = "salespulse-rep"  # as services.kpi.domain.state.REP_PROVIDER: a rep herself


class TargetData(BaseModel):
    """What the engine reads of a target's data: its call or its deal."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    call_id: str | None = None
    deal_id: str | None = None


class Target(BaseModel):
    """The event corrected, as the activity record holds it (the attributes the engine and the
    record read of an event: ``id``, ``source``, ``type``, ``time``, ``actor``, ``data``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    id: str
    source: str
    type: str
    time: datetime
    actor: Actor | None = None
    data: TargetData = TargetData()

    @property
    def key(self) -> bytes:
        return event_key(self.source, self.id)

    @property
    def epoch(self) -> int:
        return int(self.time.timestamp())

    @property
    def instant(self) -> float:
        return self.time.timestamp()

    @property
    def partition_key(self) -> str:
        """The bus key of the event (``Event.partition_key``, but for a queue's calls, which the
        record does not keep: those are keyed by their call)."""
        if self.actor is not None:
            return self.actor.key
        for name in ("deal_id", "call_id"):
            value = getattr(self.data, name)
            if value:
                return f"{name}:{value}"
        return self.source


class CorrectionMessage(BaseModel):
    """``reassign`` (to ``rep_id``) or ``exclude``; ``undo``: take correction ``id`` back."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    id: str
    action: Literal["reassign", "exclude"]
    rep_id: str | None = None
    undo: bool = False
    target: Target

    @property
    def key(self) -> bytes:
        """Its own identity, claimed once like an event's (an undo is another message)."""
        return event_key(SOURCE, f"{self.id}:undo" if self.undo else self.id)


def rep_actor(rep_id: str) -> Actor:
    """The actor that stands for a rep itself: an event reassigned to her is hers, as if she
    had been its actor."""
    return Actor(provider=REP_PROVIDER, external_id=rep_id)


HEADERS = (("content-type", CONTENT_TYPE.encode()),)


def outgoing(message: CorrectionMessage) -> OutgoingRecord:
    """The bus record of ``message``: keyed like the event it corrects, typed by its header
    (the KPI consumer tells it from an event by its content type)."""
    return OutgoingRecord(
        message.target.partition_key.encode(), message.model_dump_json().encode(), HEADERS
    )


def message_of(
    correction_id: str, action: str, rep_id: str | None, target_json: str, undo: bool
) -> CorrectionMessage:
    """The message of a ``corrections`` row (its ``target`` as stored), or of its undo."""
    return CorrectionMessage.model_validate(
        {
            "id": correction_id,
            "action": action,
            "rep_id": rep_id,
            "undo": undo,
            "target": Target.model_validate_json(target_json),
        }
    )
