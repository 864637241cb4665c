"""The canonical event: a CloudEvents 1.0 envelope whose ``data`` is typed by ``type``.

Every source becomes one of these (architecture decision 1). On Kafka it travels in structured
mode: the whole event as JSON in the record value, keyed by the actor's identity.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import cached_property
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from shared.api_model import text_problem

CONTENT_TYPE = "application/cloudevents+json; charset=UTF-8"

# Bounds at the door (architecture decision 11): every string fits the column it ends up in
# (ids and sources: 256; a provider: 64, as in `identities`; keys built from them stay under
# the 330/600 characters of `kpi_buckets.subject_id` and `kpi_states.key`), and every time lies
# where buckets and windows can be computed. No string holds a control character (NUL
# included: PostgreSQL refuses it in text, and a flush would fail on it). An event outside them
# is refused where it enters, never found out by the KPI service later.
EARLIEST_EVENT_TIME = datetime(2000, 1, 1, tzinfo=UTC)
LATEST_EVENT_AHEAD = timedelta(days=1)  # clocks drift; a day ahead is still "now"
MAX_EXTENSIONS = 16
_EXTENSION_NAME = re.compile(r"^[a-z0-9]{1,20}$")  # CloudEvents 1.0 attribute naming


def _in_event_range(value: datetime) -> datetime:
    latest = datetime.now(UTC) + LATEST_EVENT_AHEAD
    if not EARLIEST_EVENT_TIME <= value <= latest:
        raise ValueError(f"must lie between {EARLIEST_EVENT_TIME.date()} and now + 1 day")
    return value


def _no_control(value: str) -> str:
    if (problem := text_problem(value)) is not None:
        raise ValueError(problem)
    return value


Clean = AfterValidator(_no_control)
EventTime = Annotated[AwareDatetime, AfterValidator(_in_event_range)]
NonEmpty = Annotated[str, Field(min_length=1, max_length=256), Clean]
Text = Annotated[str, Field(max_length=256), Clean]
ProviderName = Annotated[str, Field(min_length=1, max_length=64), Clean]
PhoneNumber = Annotated[str, Field(max_length=128), Clean]  # E.164, or client:<identity>
Seconds = Annotated[int, Field(ge=0, le=7 * 24 * 3600)]
Money = Annotated[Decimal, Field(ge=0, max_digits=18, decimal_places=4)]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]


class Actor(BaseModel):
    """Who did it, as the source names them; the KPI service maps it to a rep and team."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    provider: ProviderName
    external_id: NonEmpty
    # The actor's email when the source knows it (lower-cased): a rep is matched by it when no
    # identity matches.
    email: Annotated[str, Field(max_length=256), Clean, AfterValidator(str.lower)] | None = None

    @property
    def key(self) -> str:
        return f"{self.provider}:{self.external_id}"


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CallPlacedData(_Data):
    call_id: NonEmpty
    actor: Actor
    counterpart: PhoneNumber | None = None
    started_at: EventTime | None = None
    outcome: Literal["connected", "no_answer", "busy", "failed", "voicemail"]
    talk_seconds: Seconds = 0


class CallReceivedData(_Data):
    call_id: NonEmpty
    actor: Actor
    counterpart: PhoneNumber | None = None
    talk_seconds: Seconds = 0
    wait_seconds: Seconds = 0


class CallMissedData(_Data):
    call_id: NonEmpty
    actor: Actor | None = None
    queue: Text | None = None
    counterpart: PhoneNumber | None = None
    reason: Literal["no_answer", "busy", "abandoned", "out_of_hours", "voicemail", "other"] = (
        "no_answer"
    )

    @model_validator(mode="after")
    def _actor_or_queue(self) -> CallMissedData:
        if self.actor is None and not self.queue:
            raise ValueError("a missed call names an actor or a queue")
        return self


class LeadCreatedData(_Data):
    lead_id: NonEmpty
    actor: Actor
    source: Text | None = None


class MeetingData(_Data):
    meeting_id: NonEmpty
    actor: Actor
    deal_id: Text | None = None


class TouchData(_Data):
    id: NonEmpty
    actor: Actor
    deal_id: Text | None = None


class ProposalData(_Data):
    proposal_id: NonEmpty
    actor: Actor
    deal_id: Text | None = None
    amount: Money | None = None
    currency: Currency | None = None


class DealUpdatedData(_Data):
    """Any change of a deal; only the fields that changed need be present."""

    deal_id: NonEmpty
    actor: Actor | None = None
    account_id: Text | None = None
    stage: Text | None = None
    status: Literal["open", "won", "lost"] | None = None
    amount: Money | None = None
    currency: Currency | None = None
    margin: Annotated[Decimal, Field(max_digits=18, decimal_places=4)] | None = None
    discount: Annotated[Decimal, Field(ge=0, le=1)] | None = None
    created_at: EventTime | None = None


class AccountData(_Data):
    account_id: NonEmpty
    actor: Actor


class SurveyAnsweredData(_Data):
    account_id: NonEmpty
    actor: Actor
    nps: Annotated[int, Field(ge=0, le=10)] | None = None
    csat: Annotated[int, Field(ge=1, le=5)] | None = None

    @model_validator(mode="after")
    def _one_score(self) -> SurveyAnsweredData:
        if (self.nps is None) == (self.csat is None):
            raise ValueError("a survey answer carries exactly one of nps (0-10) or csat (1-5)")
        return self


class _Envelope(BaseModel):
    """CloudEvents 1.0 context attributes; extension attributes are kept as they come."""

    model_config = ConfigDict(extra="allow", frozen=True)
    specversion: Literal["1.0"]
    id: NonEmpty
    source: NonEmpty
    time: EventTime
    subject: Text | None = None
    datacontenttype: Literal["application/json"] | None = None

    data: _Data

    @model_validator(mode="after")
    def _scalar_extensions(self) -> _Envelope:
        """Extension attributes as CloudEvents defines them: a few short names, scalar values."""
        extra = self.model_extra or {}
        if len(extra) > MAX_EXTENSIONS:
            raise ValueError(f"at most {MAX_EXTENSIONS} extension attributes")
        for name, value in extra.items():
            if not _EXTENSION_NAME.match(name):
                raise ValueError(f"extension attribute {name[:40]!r}: lowercase a-z0-9, 1-20")
            if not isinstance(value, str | int | bool):
                raise ValueError(f"extension attribute {name!r} must be a string, integer or bool")
            if isinstance(value, str) and len(value) > 256:
                raise ValueError(f"extension attribute {name!r} is longer than 256 characters")
            if isinstance(value, str) and (problem := text_problem(value)) is not None:
                raise ValueError(f"extension attribute {name!r} {problem}")
        return self

    @property
    def actor(self) -> Actor | None:
        return getattr(self.data, "actor", None)

    @cached_property
    def instant(self) -> float:
        """The event time in epoch seconds (computed once: the engine needs it often)."""
        return self.time.timestamp()

    @cached_property
    def epoch(self) -> int:
        """The event time in whole epoch seconds, as buckets are cut."""
        return int(self.instant)

    @property
    def partition_key(self) -> str:
        """Kafka key: the actor identity, so one rep's events stay ordered (decision 3).

        Events without an actor (a HubSpot stage change, a queue's missed call) are keyed by
        the thing they describe, so that thing's events stay ordered instead.
        """
        if self.actor is not None:
            return self.actor.key
        for name in ("deal_id", "queue", "call_id"):
            value = getattr(self.data, name, None)
            if value:
                return f"{name}:{value}"
        return self.source

    def to_json(self) -> bytes:
        return self.model_dump_json(exclude_none=True).encode()


class CallPlaced(_Envelope):
    type: Literal["call.placed"]
    data: CallPlacedData


class CallReceived(_Envelope):
    type: Literal["call.received"]
    data: CallReceivedData


class CallMissed(_Envelope):
    type: Literal["call.missed"]
    data: CallMissedData


class LeadCreated(_Envelope):
    type: Literal["lead.created"]
    data: LeadCreatedData


class MeetingBooked(_Envelope):
    type: Literal["meeting.booked"]
    data: MeetingData


class MeetingHeld(_Envelope):
    type: Literal["meeting.held"]
    data: MeetingData


class EmailSent(_Envelope):
    type: Literal["email.sent"]
    data: TouchData


class ConversationLogged(_Envelope):
    type: Literal["conversation.logged"]
    data: TouchData


class ProposalSent(_Envelope):
    type: Literal["proposal.sent"]
    data: ProposalData


class ProposalAccepted(_Envelope):
    type: Literal["proposal.accepted"]
    data: ProposalData


class DealUpdated(_Envelope):
    type: Literal["deal.updated"]
    data: DealUpdatedData


class CustomerChurned(_Envelope):
    type: Literal["customer.churned"]
    data: AccountData


class SurveyAnswered(_Envelope):
    type: Literal["survey.answered"]
    data: SurveyAnsweredData


class ComplaintLogged(_Envelope):
    type: Literal["complaint.logged"]
    data: AccountData


Event = Annotated[
    CallPlaced
    | CallReceived
    | CallMissed
    | LeadCreated
    | MeetingBooked
    | MeetingHeld
    | EmailSent
    | ConversationLogged
    | ProposalSent
    | ProposalAccepted
    | DealUpdated
    | CustomerChurned
    | SurveyAnswered
    | ComplaintLogged,
    Field(discriminator="type"),
]

# Every event type of the catalogue, read off the union above (so the two cannot drift apart).
EVENT_TYPES: tuple[str, ...] = tuple(
    get_args(model.model_fields["type"].annotation)[0] for model in get_args(get_args(Event)[0])
)

_event_adapter: TypeAdapter[Event] = TypeAdapter(Event)
_events_adapter: TypeAdapter[list[Event]] = TypeAdapter(list[Event])


def parse_event(raw: bytes | str) -> Event:
    """Parse one structured-mode CloudEvent; raises ``pydantic.ValidationError``."""
    return _event_adapter.validate_json(raw)


def parse_event_object(payload: Any) -> Event:
    """Validate one already-decoded event object; raises ``pydantic.ValidationError``."""
    return _event_adapter.validate_python(payload)


def parse_events(payload: Any) -> list[Event]:
    """Validate an already-decoded body: one event object or a JSON array of them."""
    if isinstance(payload, list):
        return _events_adapter.validate_python(payload)
    return [_event_adapter.validate_python(payload)]


__all__ = [
    "CONTENT_TYPE",
    "EVENT_TYPES",
    "Actor",
    "Event",
    "ValidationError",
    "parse_event",
    "parse_events",
]


def event_key(source: str, event_id: str) -> bytes:
    """An event's identity (``source`` and ``id``, as CloudEvents defines it) in 16 bytes: the
    MD5 of both, as a hash with no security role (a collision needs about 2^64 events); the
    migration that introduced it computes the same in SQL."""
    return hashlib.md5(f"{source}\x1f{event_id}".encode(), usedforsecurity=False).digest()
