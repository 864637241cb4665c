from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.dev import banner
from shared.settings import KeyScope, Settings, parse_api_keys


def test_defaults_match_the_contract(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SALESPULSE_KAFKA_BOOTSTRAP_SERVERS", "SALESPULSE_WEBHOOK_SECRET"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings()
    assert settings.kafka_bootstrap_servers is None
    assert settings.database_url == "sqlite:///./salespulse.db"
    assert settings.timezone == "Europe/Paris"
    assert settings.week_start.weekday == 0
    assert settings.currency == "EUR"
    assert settings.webhook_secret is None  # route off, never "accept unsigned"
    assert settings.kafka_partitions == 6
    assert settings.activity_topic == "sales.activity.v1"


def test_environment_and_topic_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SALESPULSE_TOPIC_PREFIX", "staging.")
    monkeypatch.setenv("SALESPULSE_WEEK_START", "sunday")
    settings = Settings()
    assert settings.activity_topic == "staging.sales.activity.v1"
    assert settings.deadletter_topic == "staging.sales.deadletter.v1"
    assert settings.kpi_group == "staging.salespulse-kpi"
    assert settings.week_start.weekday == 6


def test_api_keys_parse_with_scopes() -> None:
    keys = parse_api_keys("k1:read+admin, k2:read")
    assert [(k.key.get_secret_value(), k.scopes) for k in keys] == [
        ("k1", frozenset({KeyScope.read, KeyScope.admin})),
        ("k2", frozenset({KeyScope.read})),
    ]


def test_bad_api_keys_are_refused_without_echoing_the_key() -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(api_keys="supersecretvalue:owner")
    assert "supersecretvalue" not in str(caught.value)


def test_unknown_time_zone_is_refused() -> None:
    with pytest.raises(ValidationError, match="unknown IANA time zone"):
        Settings(timezone="Mars/Olympus")


def test_secrets_do_not_show_in_repr() -> None:
    settings = Settings(webhook_secret="whsec_abc", api_keys="k:read")
    assert "whsec_abc" not in repr(settings)
    assert "k:read" not in repr(settings)


def test_the_database_password_never_shows_in_the_repr_or_the_dev_banner() -> None:
    settings = Settings(database_url="postgresql://sales:s3cr3t-pw@db.internal:5432/salespulse")
    assert "s3cr3t-pw" not in repr(settings)
    assert "s3cr3t-pw" not in str(settings)
    assert "db.internal" in repr(settings)  # the rest stays, to tell which database it is
    assert "s3cr3t-pw" not in banner(settings, admin_key=None)
