"""The OpenAPI description: every route of the contract, with response models; and
schemathesis, driven by it, finds no server error anywhere in the API."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings

from services.api.app import create_app
from services.ingest.app import create_app as create_ingest
from shared.bus.memory import MemoryBus
from shared.db.engine import create_engine
from shared.db.migrate import migrate
from shared.settings import Settings
from tests.conftest import ADMIN_KEY, PROVIDER_SECRETS, READ_KEY

API_ROUTES = {
    ("get", "/v1/leaderboards/{metric}"),
    ("get", "/v1/team-leaderboards/{metric}"),
    ("get", "/v1/reps/{rep_id}/kpis"),
    ("get", "/v1/teams/{team_id}/kpis"),
    ("get", "/v1/reps/{rep_id}/timeseries/{metric}"),
    ("get", "/v1/teams/{team_id}/timeseries/{metric}"),
    ("get", "/v1/metrics"),
    ("get", "/v1/stream/leaderboards/{metric}"),
    ("put", "/v1/teams/{team_id}"),
    ("get", "/v1/teams/{team_id}"),
    ("delete", "/v1/teams/{team_id}"),
    ("put", "/v1/reps/{rep_id}"),
    ("get", "/v1/reps/{rep_id}"),
    ("delete", "/v1/reps/{rep_id}"),
    ("put", "/v1/targets/{scope}/{id}/{metric}/{period}"),
    ("get", "/v1/targets/{scope}/{id}/{metric}/{period}"),
    ("get", "/v1/unassigned"),
    ("get", "/metrics"),
    ("get", "/healthz"),
    ("get", "/readyz"),
}
INGEST_ROUTES = {
    ("post", p)
    for p in (
        "/webhooks/events",
        "/webhooks/twilio/voice",
        "/webhooks/aircall",
        "/webhooks/hubspot",
        "/webhooks/pipedrive",
    )
}


def api_app(tmp_path: Path) -> Any:
    url = f"sqlite:///{tmp_path / 'openapi.db'}"

    async def prepare() -> None:
        engine = create_engine(url)
        await migrate(engine)
        await engine.dispose()

    asyncio.run(prepare())
    settings = Settings(api_keys=f"{ADMIN_KEY}:read+admin,{READ_KEY}:read", database_url=url)
    # a bus, so that a correction is made (without one it is a 503, on purpose)
    return create_app(settings, create_engine(url), bus=MemoryBus())


def operations(spec: dict[str, Any]) -> set[tuple[str, str]]:
    return {(method, path) for path, item in spec["paths"].items() for method in item}


def test_every_route_of_the_contract_is_described_with_its_response(tmp_path: Path) -> None:
    spec = api_app(tmp_path).openapi()
    assert operations(spec) >= API_ROUTES
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            ok = operation["responses"].get("200") or operation["responses"].get("202")
            if method == "get" and path.startswith("/v1") and "stream" not in path:
                schema = ok["content"]["application/json"]["schema"]
                assert schema.get("$ref") or schema.get("type") == "array", (method, path)
    ingest = create_ingest(Settings.model_validate(PROVIDER_SECRETS), MemoryBus()).openapi()
    assert operations(ingest) >= INGEST_ROUTES
    assert "Accepted" in ingest["components"]["schemas"]


def test_no_input_makes_the_api_fail(tmp_path: Path) -> None:
    """Schemathesis generates requests from the OpenAPI description, valid and not."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", api_app(tmp_path))
    checked = 0
    for result in schema.exclude(path_regex="stream").get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]  # an Err would raise: wanted

        @given(operation.as_strategy())
        @hypothesis_settings(
            max_examples=20, deadline=None, database=None, suppress_health_check=list(HealthCheck)
        )
        def no_server_error(case: Any) -> None:
            response = case.call(headers={"Authorization": f"Bearer {ADMIN_KEY}"})
            assert response.status_code < 500, (
                case.method,
                case.formatted_path,
                response.text[:300],
            )

        no_server_error()
        checked += 1
    assert checked >= len(API_ROUTES) - 1
