"""Settings from the environment (prefix ``SALESPULSE_``), one typed class for all services.

Secrets are ``SecretStr`` so they never show in logs or reprs. Outside dev mode an unset secret
turns its route off; nothing here ever means "accept unsigned".
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from functools import cached_property
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from shared.alerts import Voice
from shared.i18n import Language, language_of, parse_locale
from shared.pacing import Workdays, parse_workdays


class WeekStart(StrEnum):
    monday = "monday"
    tuesday = "tuesday"
    wednesday = "wednesday"
    thursday = "thursday"
    friday = "friday"
    saturday = "saturday"
    sunday = "sunday"

    @property
    def weekday(self) -> int:
        """Python's weekday number (Monday = 0)."""
        return list(WeekStart).index(self)


class KeyScope(StrEnum):
    """What an API key may do: ``read`` the data, ``admin`` the roster and targets."""

    read = "read"
    admin = "admin"


KEY_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")


@dataclass(frozen=True)
class ApiKey:
    key: SecretStr
    scopes: frozenset[KeyScope]
    # who holds it, as corrections record it (``made_by``): given as ``name@key``, else made
    # from a hash of the key (``key-<8 hex>``), never the key itself
    name: str = ""


def key_name(key: str) -> str:
    """The name of a key given without one: ``key-`` and the first 8 hex digits of its
    SHA-256, which tells keys apart in an audit without revealing any."""
    return f"key-{hashlib.sha256(key.encode()).hexdigest()[:8]}"


def parse_api_keys(spec: str) -> list[ApiKey]:
    """Parse ``[name@]key:scope[+scope],...`` (e.g. ``ops@k1:read+admin,k2:read``).

    A name is letters, digits, ``.``, ``_`` and ``-`` (at most 64), unique; the first ``@``
    ends it, so a key that holds an ``@`` is given with a name in front. Errors never repeat
    a key."""
    keys: list[ApiKey] = []
    for item in filter(None, (part.strip() for part in spec.split(","))):
        named, sep, scopes = item.rpartition(":")
        if not sep or not named:
            raise ValueError("each API key entry must be [name@]key:scope[+scope]")
        name, at, key = named.partition("@")
        if not at:
            name, key = key_name(named), named
        elif not KEY_NAME.fullmatch(name) or not key:
            raise ValueError(
                "an API key's name is 1 to 64 letters, digits, '.', '_' or '-', then '@' "
                "and the key: name@key:scope[+scope]"
            )
        try:
            parsed = frozenset(KeyScope(s) for s in scopes.split("+"))
        except ValueError:
            raise ValueError(f"unknown scope in {scopes!r}; scopes are read and admin") from None
        if any(k.name == name for k in keys):
            raise ValueError(f"two API keys are named {name!r}; give each its own name")
        keys.append(ApiKey(SecretStr(key), parsed, name))
    return keys


def parse_fx_rates(spec: str) -> dict[str, Decimal]:
    """Parse ``USD:0.92,GBP:1.17`` (currency code: value of one unit in the reporting currency)."""
    rates: dict[str, Decimal] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        code, _, rate = item.partition(":")
        try:
            value = Decimal(rate)
        except InvalidOperation:
            raise ValueError(f"FX rate for {code!r} is not a number: {rate!r}") from None
        if len(code) != 3 or not code.isalpha() or not code.isupper() or value <= 0:
            raise ValueError(f"FX rate entry must be like USD:0.92, got {item!r}")
        rates[code] = value
    return rates


def masked_url(url: str) -> str:
    """``url`` with any password replaced by ``***``: for banners, logs and reprs."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return url.split("@")[-1] if "@" in url else url
    return parsed.render_as_string(hide_password=True)


def _word_set(spec: str) -> frozenset[str]:
    return frozenset(w.strip() for w in spec.split(",") if w.strip())


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SALESPULSE_", extra="ignore", hide_input_in_errors=True
    )

    kafka_bootstrap_servers: str | None = None
    kafka_partitions: int = Field(default=6, ge=1)
    kafka_replication_factor: int = Field(default=1, ge=1)
    # How long a publish (connecting included) may take before ingest answers 503 + Retry-After:
    # under the providers' own 5 s timeouts (HubSpot, Aircall), so they see our answer.
    publish_timeout_seconds: float = Field(default=3.0, gt=0, le=60)
    # how often the ingest writes its deliveries' tallies (``GET /v1/connections``)
    connection_tallies_seconds: float = Field(default=10.0, gt=0, le=3600)
    database_url: str = "sqlite:///./salespulse.db"
    topic_prefix: str = ""
    timezone: str = "Europe/Paris"
    week_start: WeekStart = WeekStart.monday
    currency: str = "EUR"
    # Language and formats of the console, the wallboard, notification texts and exports.
    locale: str = "fr-FR"

    webhook_secret: SecretStr | None = None
    twilio_auth_token: SecretStr | None = None
    public_base_url: str | None = None
    aircall_token: SecretStr | None = None
    hubspot_client_secret: SecretStr | None = None
    pipedrive_user: str | None = None
    pipedrive_password: SecretStr | None = None
    api_keys: SecretStr | None = None
    fx_rates: str = ""  # "USD:0.92,GBP:1.17": one unit of each currency in the reporting one
    hubspot_won_stages: str = "closedwon"
    # HubSpot's CRM API (enrichment of thin deal webhooks, backfill): a private app's token.
    hubspot_access_token: SecretStr | None = None
    hubspot_api_base: str = "https://api.hubapi.com"
    # Aircall's public API (backfill): Basic auth with the API ID and API token.
    aircall_api_base: str = "https://api.aircall.io"
    aircall_api_id: str | None = None
    aircall_api_token: SecretStr | None = None
    # Thin HubSpot deals waiting for enrichment in one ingest process; past it they are dropped
    # (counted and logged: a backfill heals them).
    enrichment_queue_size: int = Field(default=1000, ge=1)
    hubspot_lost_stages: str = "closedlost"

    simulate: bool = True
    dev_mode: bool = False

    ingest_host: str = "127.0.0.1"
    ingest_port: int = 8001
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    kpi_host: str = "127.0.0.1"
    kpi_metrics_port: int = 8002
    worker_host: str = "127.0.0.1"
    worker_port: int = 8003  # the worker's /healthz, /readyz and /metrics
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    kpi_batch_size: int = Field(default=10000, ge=1)
    minute_retention_hours: int = Field(default=48, ge=1)
    hour_retention_days: int = Field(default=400, ge=1)
    dedupe_retention_days: int = Field(default=35, ge=1)  # applied ids and call states kept
    activity_retention_days: int = Field(default=400, ge=1)  # the events behind each number
    # The database log of `serve` (no Kafka): activity kept this long once the KPI service read
    # it (a replay rebuilds from what is kept), dead letters this long whatever happens.
    log_retention_hours: int = Field(default=168, ge=1)
    deadletter_retention_days: int = Field(default=30, ge=1)
    kpi_poll_timeout_ms: int = Field(default=200, ge=1)
    log_level: str = "INFO"
    cors_origins: str = ""  # comma-separated origins allowed to call the API from a browser
    leaderboard_min_volume: int = Field(default=5, ge=0)  # ratios: unranked below this volume
    leaderboard_min_volumes: str = ""  # per-metric overrides, e.g. "win_rate:5,answer_rate:10"
    leaderboard_movement_minutes: int = Field(default=60, ge=1)  # previous_rank: this long ago
    business_metrics_per_rep: bool = False  # Prometheus business counters per rep, not only team
    workdays: str = ""  # the days that count for pacing, e.g. "mon,tue,wed,thu,fri"; empty: all
    # How long after its end a contest waits for late events before its standings are final.
    contest_settle_seconds: int = Field(default=300, ge=0, le=7 * 86400)
    # Let alert channels reach loopback/private addresses and plain http (the dev mode sets it).
    allow_private_channels: bool = False
    # How often the dispatcher looks for due notification deliveries.
    dispatch_poll_seconds: float = Field(default=0.5, gt=0, le=60)
    # Server-Sent Events streams open at once in one API process: in all, and per API key.
    sse_max_streams: int = Field(default=1000, ge=1)
    sse_max_streams_per_key: int = Field(default=100, ge=1)
    # The console's session cookie: signed with this secret (unset: one derived from the API
    # keys, so sessions survive a restart and end when the keys change); it ends after this
    # many hours without a request.
    console_secret: SecretStr | None = None
    console_session_hours: float = Field(default=8.0, gt=0, le=24 * 30)

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        """The database URL's password never shows (the secrets are ``SecretStr`` already)."""
        for name, value in super().__repr_args__():
            yield name, masked_url(value) if name == "database_url" else value

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown IANA time zone {value!r}") from None
        return value

    @field_validator("locale")
    @classmethod
    def _known_locale(cls, value: str) -> str:
        parse_locale(value)
        return value

    @field_validator("workdays")
    @classmethod
    def _known_workdays(cls, value: str) -> str:
        parse_workdays(value)
        return value

    @field_validator("fx_rates")
    @classmethod
    def _valid_fx_rates(cls, value: str) -> str:
        parse_fx_rates(value)
        return value

    @field_validator("api_keys")
    @classmethod
    def _valid_api_keys(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            parse_api_keys(value.get_secret_value())
        return value

    @cached_property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def language(self) -> Language:
        """The organisation's language: what the server writes in."""
        return language_of(self.locale)

    @cached_property
    def working_days(self) -> Workdays:
        """The weekdays pacing counts (Monday 0), or None: every day."""
        return parse_workdays(self.workdays)

    def retention_floors(self, now: float) -> tuple[int, int]:
        """(minute floor, hour floor): buckets of that grain before them may have been pruned."""
        return (
            int(now) - self.minute_retention_hours * 3600,
            int(now) - self.hour_retention_days * 86400,
        )

    @property
    def activity_topic(self) -> str:
        return f"{self.topic_prefix}sales.activity.v1"

    @property
    def deadletter_topic(self) -> str:
        return f"{self.topic_prefix}sales.deadletter.v1"

    @property
    def kpi_group(self) -> str:
        return f"{self.topic_prefix}salespulse-kpi"

    @property
    def rates(self) -> dict[str, Decimal]:
        """Every currency the KPIs can book, with its rate to the reporting currency."""
        return {**parse_fx_rates(self.fx_rates), self.currency: Decimal(1)}

    @property
    def won_stages(self) -> frozenset[str]:
        return _word_set(self.hubspot_won_stages)

    @property
    def lost_stages(self) -> frozenset[str]:
        return _word_set(self.hubspot_lost_stages)

    def min_volume(self, metric: str) -> int:
        for item in filter(None, (p.strip() for p in self.leaderboard_min_volumes.split(","))):
            name, _, value = item.partition(":")
            if name == metric and value.isdigit():
                return int(value)
        return self.leaderboard_min_volume

    @property
    def cors(self) -> list[str]:
        return [o.strip() for o in self.cors_origins.split(",") if o.strip()]

    def parsed_api_keys(self) -> list[ApiKey]:
        return parse_api_keys(self.api_keys.get_secret_value()) if self.api_keys else []


def voice_of(settings: Settings) -> Voice:
    """How the organisation's notification texts speak: its ``LOCALE`` and ``CURRENCY``."""
    return Voice(settings.locale, settings.currency)
