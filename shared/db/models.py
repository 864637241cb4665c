"""Database tables shared by the KPI service (writer) and the API (reader, roster admin).

Times used in queries are epoch seconds (BIGINT): the same on SQLite and PostgreSQL, cheap to
compare, and free of driver time-zone surprises. Aggregate values are integers in the metric's
storage unit (counts, seconds, cents), so sums are exact.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlmodel import Field, SQLModel

from shared.catalogue import BASE_COUNTERS
from shared.events import event_key as event_key  # the tables' key of an event


class Team(SQLModel, table=True):
    __tablename__ = "teams"
    id: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=200)


class Rep(SQLModel, table=True):
    """A rep. ``email`` is optional and unique, kept lower-case (matched case-insensitively);
    ``left_at``: when the rep left (epoch seconds), history kept, activity after it unassigned."""

    __tablename__ = "reps"
    __table_args__ = (UniqueConstraint("email", name="uq_reps_email"),)
    id: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=200)
    email: str | None = Field(default=None, sa_column=Column(String(320), nullable=True))
    left_at: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))


class RepTeam(SQLModel, table=True):
    """Team membership history: the rep is in ``team_id`` from ``effective_from`` on."""

    __tablename__ = "rep_teams"
    rep_id: str = Field(primary_key=True, max_length=64)
    effective_from: int = Field(sa_column=Column(BigInteger, primary_key=True))
    team_id: str = Field(max_length=64)


class Identity(SQLModel, table=True):
    """A provider's name for a rep (``{provider, external_id}`` of the events' actor)."""

    __tablename__ = "identities"
    provider: str = Field(primary_key=True, max_length=64)
    external_id: str = Field(primary_key=True, max_length=256)
    rep_id: str = Field(index=True, max_length=64)
    # how the KPI service learnt it (``email``: the event's actor carried the rep's email),
    # and when; NULL for an identity given in the roster
    learned_from: str | None = Field(default=None, sa_column=Column(String(16), nullable=True))
    learned_at: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))


class RosterVersion(SQLModel, table=True):
    """One row, bumped with every roster change, so the KPI service reloads only when needed."""

    __tablename__ = "roster_version"
    id: int = Field(default=1, primary_key=True)
    version: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))


class TargetsVersion(SQLModel, table=True):
    """One row, bumped with every target change: the API's caches and ETags move on, while the
    KPI service, which does not read targets, keeps its roster."""

    __tablename__ = "targets_version"
    id: int = Field(default=1, primary_key=True)
    version: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))


GRAINS = ("minute", "hour", "day", "month")

# One row per subject and time bucket holding every base counter (``shared.catalogue``): a
# batch writes one row where it touches a subject's bucket, however many counters it adds.
#
# scope: ``rep`` | ``team`` | ``unassigned``; subject_id: rep id, team id, or the actor key
# ``provider:external_id`` of activity nobody on the roster owns yet. grain: ``minute`` |
# ``hour`` | ``day`` | ``month``; bucket_start: epoch seconds (day and month buckets start at a
# local midnight of the organisation's time zone, so they tile its calendar days and months).
# The key leads with the bucket, for boards (every subject of one bucket); the second index
# leads with the subject, for one rep's or team's figures and series.
kpi_rollups = Table(
    "kpi_rollups",
    SQLModel.metadata,
    Column("scope", String(16), primary_key=True),
    Column("grain", String(8), primary_key=True),
    Column("bucket_start", BigInteger, primary_key=True),
    Column("subject_id", String(330), primary_key=True),
    *(Column(counter, BigInteger, nullable=False, server_default="0") for counter in BASE_COUNTERS),
    Index("ix_kpi_rollups_subject", "scope", "subject_id", "grain", "bucket_start"),
)


class AppliedEvent(SQLModel, table=True):
    """Events already applied, by ``event_key``: the unique key that makes a duplicate a no-op.
    16 bytes a row whatever the length of the event's source and id."""

    __tablename__ = "applied_event_keys"
    key: bytes = Field(sa_column=Column(LargeBinary(16), primary_key=True))
    applied_at: int = Field(sa_column=Column(BigInteger, nullable=False))


class Target(SQLModel, table=True):
    """A target: ``value`` of ``metric`` per ``period`` for a rep or a team, from the period
    that starts at ``starting`` on (epoch seconds of its local start; 0: from the beginning),
    until the next row of the same target. Earlier periods keep the value they had."""

    __tablename__ = "targets"
    scope: str = Field(sa_column=Column(String(8), primary_key=True))
    subject_id: str = Field(sa_column=Column(String(64), primary_key=True))
    metric: str = Field(sa_column=Column(String(48), primary_key=True))
    period: str = Field(sa_column=Column(String(8), primary_key=True))
    starting: int = Field(
        default=0, sa_column=Column(BigInteger, primary_key=True, server_default="0")
    )
    value: float = Field(sa_column=Column(Float, nullable=False))


class Contest(SQLModel, table=True):
    """A time-boxed competition: its definition, and once settled its final standings.

    ``score`` and ``team_ids`` are JSON. ``minutes_from``: the minute buckets of the box were
    there from this instant on when the contest was saved (a contest created after its start
    had aged past the minute retention has hours as its finest buckets before it); while the
    contest is unsettled, the KPI service's pruning spares the minutes of its edge hours.
    ``final`` (JSON standings and winners) is written once, at settlement, and never again."""

    __tablename__ = "contests"
    id: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=200)
    starts_at: int = Field(sa_column=Column(BigInteger, nullable=False))
    ends_at: int = Field(sa_column=Column(BigInteger, nullable=False))
    participants: str = Field(sa_column=Column(String(8), nullable=False))
    team_ids: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    score: str = Field(sa_column=Column(Text, nullable=False))
    goal: float | None = Field(default=None, sa_column=Column(Float, nullable=True))
    minutes_from: int = Field(sa_column=Column(BigInteger, nullable=False))
    settled_at: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    final: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class ContestsVersion(SQLModel, table=True):
    """One row, bumped with every contest change: standings caches and ETags move on."""

    __tablename__ = "contests_version"
    id: int = Field(default=1, primary_key=True)
    version: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))


class KpiState(SQLModel, table=True):
    """State the KPI service keeps for facts that change (JSON): a deal, a call, a team's missed
    calls to one number, an account's wins; with what it has booked into the buckets."""

    __tablename__ = "kpi_states"
    __table_args__ = (Index("ix_kpi_states_updated", "kind", "updated_at"),)  # wins, pruning
    kind: str = Field(sa_column=Column(String(16), primary_key=True))
    key: str = Field(sa_column=Column(String(600), primary_key=True))
    state: str = Field(sa_column=Column(Text, nullable=False))
    updated_at: int = Field(
        default=0, sa_column=Column(BigInteger, nullable=False, default=0, server_default="0")
    )


class ConsumerOffset(SQLModel, table=True):
    """The next offset to read per partition, written in the same transaction as the aggregates."""

    __tablename__ = "consumer_offsets"
    consumer_group: str = Field(sa_column=Column(String(200), primary_key=True))
    topic: str = Field(sa_column=Column(String(200), primary_key=True))
    partition: int = Field(sa_column=Column(Integer, primary_key=True))
    next_offset: int = Field(sa_column=Column(BigInteger, nullable=False))
    updated_at: int = Field(
        default=0, sa_column=Column(BigInteger, nullable=False, default=0, server_default="0")
    )


# What each applied event booked, for the drill-down (architecture: "activity behind a
# number"): written by the KPI flush in the transaction of the aggregates, so its rows add up
# to the buckets exactly. One row per event, subject and instant; a later change of the same
# fact (a call's next report, a deal's edit, a correction) adds rows of its own, signed, so the
# sum of an event's rows is what it books now. Rows with no counters record an event that booked
# nothing (a call's report superseded by a later one), so that it can still be corrected.
#
# scope: ``rep`` | ``unassigned``; subject: the rep id, or the actor key of unassigned activity;
# team_id: the rep's team then (the team bucket the row also went to), if any. at: the instant
# booked (epoch seconds: its minute, hour, day and month buckets). counters: JSON of the signed
# base counters; mask: bit i set when counter i of ``BASE_COUNTERS`` is non-zero.
activity = Table(
    "activity",
    SQLModel.metadata,
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True),
    Column("event_key", LargeBinary(16), nullable=False),
    Column("event_id", String(256), nullable=False),
    Column("source", String(1024), nullable=False),
    Column("type", String(48), nullable=False),
    Column("time", BigInteger, nullable=False),
    Column("actor", String(330), nullable=True),
    Column("call_id", String(256), nullable=True),
    Column("deal_id", String(256), nullable=True),
    Column("scope", String(16), nullable=False),
    Column("subject", String(330), nullable=False),
    Column("team_id", String(64), nullable=True),
    Column("at", BigInteger, nullable=False),
    Column("counters", Text, nullable=False),
    Column("mask", BigInteger, nullable=False),
    Column("correction", String(64), nullable=True),
    Index("ix_activity_subject", "scope", "subject", "at"),
    Index("ix_activity_team", "team_id", "at"),
    Index("ix_activity_event", "event_id"),
    # a deal's history (``GET /v1/deals/{id}``); most rows are calls, with no deal
    Index(
        "ix_activity_deal",
        "deal_id",
        sqlite_where=text("deal_id IS NOT NULL"),
        postgresql_where=text("deal_id IS NOT NULL"),
    ),
)


class ActivityRecord(SQLModel, table=True):
    """One row: before ``unrecorded_before`` (epoch seconds) the buckets may hold activity booked
    before the activity record existed (an upgraded database), which no drill-down can list;
    NULL when every booking is recorded."""

    __tablename__ = "activity_record"
    id: int = Field(default=1, primary_key=True)
    unrecorded_before: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))


class Correction(SQLModel, table=True):
    """A correction of one event (reassign it to a rep, or exclude it), who made it, when and
    why. The KPI service applies it from the bus (``message``, keyed by ``bus_key``) and marks
    when it did; an undo is recorded on the same row."""

    __tablename__ = "corrections"
    id: str = Field(primary_key=True, max_length=40)
    event_id: str = Field(sa_column=Column(String(256), nullable=False))
    event_key: bytes = Field(sa_column=Column(LargeBinary(16), nullable=False, index=True))
    action: str = Field(sa_column=Column(String(16), nullable=False))
    rep_id: str | None = Field(default=None, sa_column=Column(String(64), nullable=True))
    reason: str = Field(sa_column=Column(Text, nullable=False))
    made_by: str = Field(sa_column=Column(String(200), nullable=False))
    made_at: int = Field(sa_column=Column(BigInteger, nullable=False, index=True))
    applied_at: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    undone_by: str | None = Field(default=None, sa_column=Column(String(200), nullable=True))
    undone_at: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    undo_applied_at: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    bus_key: str = Field(sa_column=Column(String(340), nullable=False))
    # the message's target (``shared.corrections.Target`` as JSON), so that it can be sent
    # again, or undone, whatever the activity record still holds; NULL on rows of 0013
    target: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class ConnectionDeliveries(SQLModel, table=True):
    """What a provider's deliveries became in one hour (``GET /v1/connections``), added up by
    the ingest every few seconds."""

    __tablename__ = "connection_deliveries"
    provider: str = Field(sa_column=Column(String(64), primary_key=True))
    hour_start: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    accepted: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    duplicates: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    deadlettered: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    refused: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))


CONNECTION_COUNTS = ("accepted", "duplicates", "deadlettered", "refused")  # its counters


class ConnectionStatus(SQLModel, table=True):
    """A provider's last delivery and last refusal (its reason: never a secret nor a body)."""

    __tablename__ = "connection_status"
    provider: str = Field(sa_column=Column(String(64), primary_key=True))
    last_delivery_at: int | None = Field(default=None, sa_column=Column(BigInteger))
    last_refusal_at: int | None = Field(default=None, sa_column=Column(BigInteger))
    last_refusal_reason: str | None = Field(default=None, sa_column=Column(Text))


class BusLogRecord(SQLModel, table=True):
    """The bus of one process (``salespulse serve``): a topic's records, numbered gap-free in
    commit order per partition (``shared.bus.log``)."""

    __tablename__ = "bus_log"
    topic: str = Field(sa_column=Column(String(200), primary_key=True))
    partition: int = Field(sa_column=Column(Integer, primary_key=True))
    offset: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    key: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    value: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    headers: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    timestamp_ms: int = Field(sa_column=Column(BigInteger, nullable=False))


class BusLogEnd(SQLModel, table=True):
    """The next offset of each partition of the log: the counter writers take offsets from
    (its row lock orders them), kept when retention empties the partition."""

    __tablename__ = "bus_log_ends"
    topic: str = Field(sa_column=Column(String(200), primary_key=True))
    partition: int = Field(sa_column=Column(Integer, primary_key=True))
    next_offset: int = Field(sa_column=Column(BigInteger, nullable=False))


class HistoryImport(SQLModel, table=True):
    """Where an import of past activity (``salespulse import``) got to, per input: an
    interrupted import resumes after ``line``, from ``mark`` (the input's own resume point, e.g.
    a byte offset and the hash of the bytes before it), once the bus acknowledged them."""

    __tablename__ = "history_imports"
    key: str = Field(sa_column=Column(String(200), primary_key=True))  # the input's identity
    label: str = Field(sa_column=Column(String(1024), nullable=False))  # what it is, for people
    line: int = Field(sa_column=Column(BigInteger, nullable=False))  # last line published
    mark: str = Field(sa_column=Column(Text, nullable=False))
    published: int = Field(sa_column=Column(BigInteger, nullable=False))  # events, all runs
    updated_at: int = Field(sa_column=Column(BigInteger, nullable=False))
    finished_at: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))


def table(model: type[SQLModel]) -> Table:
    """The Core table of a model, for set-based statements (bulk upserts, aggregates)."""
    return model.__table__  # type: ignore[attr-defined,no-any-return]


class Channel(SQLModel, table=True):
    """Where alert notifications go: a webhook (signed with ``secret``), Slack or Teams.

    ``secret`` (``whsec_...``, webhook only) is kept in plain text: the dispatcher signs with it.
    The API shows it once, when it generates it, and never again."""

    __tablename__ = "channels"
    id: str = Field(primary_key=True, max_length=64)
    kind: str = Field(sa_column=Column(String(16), nullable=False))
    url: str = Field(sa_column=Column(String(2048), nullable=False))
    secret: str | None = Field(default=None, sa_column=Column(String(200), nullable=True))


class Alert(SQLModel, table=True):
    """An alert: a trigger (JSON, ``shared.alerts``), the channels it notifies (JSON ids) and an
    optional message template."""

    __tablename__ = "alerts"
    id: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=200)
    channels: str = Field(sa_column=Column(Text, nullable=False))
    enabled: bool = Field(default=True)
    message: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    trigger: str = Field(sa_column=Column(Text, nullable=False))


class AlertsVersion(SQLModel, table=True):
    """One row, bumped with every alert change: the KPI service reloads the alerts it watches."""

    __tablename__ = "alerts_version"
    id: int = Field(default=1, primary_key=True)
    version: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))


class Notification(SQLModel, table=True):
    """The outbox: a notification decided in the transaction of the aggregates that caused it.

    Unique per alert, subject and occurrence (the day of a ``today`` threshold, a deal won...):
    a crossing fires once, whatever is replayed, duplicated or corrected later. ``id`` is the
    stable id a receiver deduplicates on."""

    __tablename__ = "notifications"
    __table_args__ = (
        UniqueConstraint("alert_id", "scope", "subject_id", "occurrence", name="uq_notification"),
        Index("ix_notifications_raised", "raised_at", "id"),  # the stream, the newest first
        Index("ix_notifications_alert", "alert_id", "raised_at"),  # ?alert=
    )
    id: str = Field(primary_key=True, max_length=40)
    alert_id: str = Field(sa_column=Column(String(64), nullable=False))
    kind: str = Field(sa_column=Column(String(16), nullable=False))
    scope: str = Field(sa_column=Column(String(8), nullable=False))
    subject_id: str = Field(sa_column=Column(String(330), nullable=False))
    occurrence: str = Field(sa_column=Column(String(128), nullable=False))
    data: str = Field(sa_column=Column(Text, nullable=False))  # JSON: the payload's data
    raised_at: int = Field(sa_column=Column(BigInteger, nullable=False))  # epoch milliseconds


class Delivery(SQLModel, table=True):
    """One notification to one channel: pending until delivered, or failed for good."""

    __tablename__ = "notification_deliveries"
    __table_args__ = (Index("ix_deliveries_due", "status", "next_attempt_at"),)
    notification_id: str = Field(sa_column=Column(String(40), primary_key=True))
    channel_id: str = Field(sa_column=Column(String(64), primary_key=True))
    status: str = Field(sa_column=Column(String(10), nullable=False))
    attempts: int = Field(default=0, sa_column=Column(Integer, nullable=False, default=0))
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    next_attempt_at: int = Field(sa_column=Column(BigInteger, nullable=False))  # epoch ms
    delivered_at: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
