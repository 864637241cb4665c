"""The API's contract on the embedded stack: a real SQLite file, the KPI flush, HTTP in-process."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.api_support import ADMIN, READ, assert_problem, book, floor
from tests.conftest import ADMIN_KEY, READ_KEY, canonical


async def test_without_key_401_wrong_scope_403(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/v1/leaderboards/calls_total"), 401, "API key is required")
    assert_problem(
        await client.get("/v1/leaderboards/calls_total", headers={"authorization": "Bearer nope"}),
        401,
        "unknown",
    )
    assert_problem(
        await client.put("/v1/teams/x", json={"name": "X"}, headers=READ), 403, "'admin' scope"
    )
    query_admin = await client.put(f"/v1/teams/x?key={ADMIN_KEY}", json={"name": "X"})
    assert_problem(query_admin, 403, "read-only")
    assert (await client.get(f"/v1/leaderboards/calls_total?key={READ_KEY}")).status_code == 200


async def test_roster_admin_round_trip(client: httpx.AsyncClient) -> None:
    await floor(client)
    team = (await client.get("/v1/teams/north", headers=READ)).json()
    assert team == {"id": "north", "name": "North", "members": ["alice", "bob"]}
    move = {
        "name": "Alice",
        "team_id": "south",
        "effective_from": "2026-01-01T00:00:00Z",
        "identities": [
            {"provider": "crm", "external_id": "u-1"},
            {"provider": "twilio", "external_id": "client:alice"},
        ],
    }
    rep = (await client.put("/v1/reps/alice", json=move, headers=ADMIN)).json()
    assert rep["team_id"] == "south"
    assert [m["team_id"] for m in rep["teams"]] == ["north", "south"]
    assert {"provider": "twilio", "external_id": "client:alice"} in rep["identities"]
    assert (await client.delete("/v1/reps/bob", headers=ADMIN)).status_code == 204
    assert_problem(await client.get("/v1/reps/bob", headers=READ), 404, "no rep 'bob'")


async def test_roster_refusals_are_precise(client: httpx.AsyncClient) -> None:
    await floor(client)
    unknown_team = {"name": "Dan", "team_id": "mars"}
    assert_problem(
        await client.put("/v1/reps/dan", json=unknown_team, headers=ADMIN), 422, "no team 'mars'"
    )
    stolen = {"name": "Dan", "identities": [{"provider": "crm", "external_id": "u-1"}]}
    assert_problem(
        await client.put("/v1/reps/dan", json=stolen, headers=ADMIN), 409, "belongs to rep alice"
    )
    invalid = await client.put("/v1/reps/dan", json={"name": ""}, headers=ADMIN)
    assert_problem(invalid, 422, "body.name")
    assert invalid.json()["errors"][0]["field"] == "body.name"


async def test_rep_and_team_kpis(client: httpx.AsyncClient, db: AsyncEngine) -> None:
    await floor(client)
    await book(
        db,
        canonical("call.placed", actor="u-1", talk_seconds=100),
        canonical("call.received", actor="u-1", talk_seconds=50),
        canonical("call.missed", actor="u-1"),
        canonical("deal.updated", actor="u-2", amount="2500.50"),
        canonical("call.placed", actor="u-3", outcome="busy", talk_seconds=0),
    )
    rep = (await client.get("/v1/reps/alice/kpis?window=today", headers=READ)).json()
    assert rep["rep_id"] == "alice"
    assert rep["team_id"] == "north"
    assert rep["window"] == "today"
    assert {"from", "to", "as_of"} <= set(rep)
    metrics = rep["metrics"]
    assert (metrics["calls_placed"], metrics["calls_received"], metrics["calls_missed"]) == (
        1,
        1,
        1,
    )
    assert metrics["talk_seconds"] == 150
    assert metrics["answer_rate"] == 0.5
    assert metrics["win_rate"] is None  # no decided deal: no denominator
    team = (
        await client.get("/v1/teams/north/kpis?metrics=revenue,deals_won,calls_total", headers=READ)
    ).json()
    assert team["metrics"] == {"revenue": 2500.5, "deals_won": 1, "calls_total": 2}


async def test_leaderboard_ranks_every_rep_and_filters_by_team(
    client: httpx.AsyncClient, db: AsyncEngine
) -> None:
    await floor(client)
    await book(
        db,
        *(canonical("call.placed", actor="u-3") for _ in range(3)),
        canonical("call.placed", actor="u-1"),
    )
    board = (await client.get("/v1/leaderboards/calls_total?window=this_week", headers=READ)).json()
    assert board["metric"] == "calls_total"
    assert [(r["rep_id"], r["rank"], r["value"]) for r in board["rows"]] == [
        ("carol", 1, 3),
        ("alice", 2, 1),
        ("bob", 3, 0),
    ]
    north = (
        await client.get("/v1/leaderboards/calls_total?team=north&limit=1", headers=READ)
    ).json()
    assert [r["rep_id"] for r in north["rows"]] == ["alice"]


async def test_custom_window_excludes_what_happened_outside_it(
    client: httpx.AsyncClient, db: AsyncEngine
) -> None:
    await floor(client)
    long_ago = datetime.now(UTC) - timedelta(days=40)
    await book(
        db,
        canonical("call.placed", actor="u-1", time=long_ago),
        canonical("call.placed", actor="u-1"),
    )
    since = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    board = await client.get(
        "/v1/reps/alice/kpis", params={"from": since, "metrics": "calls_placed"}, headers=READ
    )
    assert board.json()["metrics"] == {"calls_placed": 1}
    month = await client.get(
        "/v1/reps/alice/kpis?window=last_90d&metrics=calls_placed", headers=READ
    )
    assert month.json()["metrics"] == {"calls_placed": 2}


async def test_bad_queries_are_problems(client: httpx.AsyncClient) -> None:
    await floor(client)
    assert_problem(
        await client.get("/v1/leaderboards/happiness", headers=READ), 404, "unknown metric"
    )
    assert_problem(
        await client.get("/v1/reps/alice/kpis?window=fortnight", headers=READ),
        422,
        "unknown window",
    )
    assert_problem(
        await client.get("/v1/reps/alice/kpis?from=yesterday", headers=READ), 422, "from"
    )
    assert_problem(await client.get("/v1/reps/nobody/kpis", headers=READ), 404, "no rep")
    assert_problem(await client.get("/v1/nowhere", headers=READ), 404, "Not Found")


async def test_catalogue_health_and_metrics_are_served(client: httpx.AsyncClient) -> None:
    catalogue = (await client.get("/v1/metrics", headers=READ)).json()
    assert {
        "name": "answer_rate",
        "kind": "ratio",
        "unit": "ratio",
        "definition": "received / (received + missed)",
        "labels": {"fr": "Taux de décroché", "en": "Answer rate"},
    } in catalogue
    assert (await client.get("/readyz")).json() == {"ready": True, "checks": {"database": True}}
    await client.get("/v1/metrics", headers=READ)
    exposition = (await client.get("/metrics")).text
    assert 'salespulse_http_requests_total{method="GET",route="/v1/metrics",service="api"' in (
        exposition
    )
    assert 'route="/healthz"' not in exposition
    await client.get("/wp-admin/setup.php", headers=READ)  # a bot: unmatched, not labelled
    assert "wp-admin" not in (await client.get("/metrics")).text


ROUTE_FAMILIES = (
    "/v1/leaderboards/calls_total",
    "/v1/team-leaderboards/calls_total",
    "/v1/stream/leaderboards/calls_total",
    "/v1/reps/alice/kpis",
    "/v1/teams/north/kpis",
    "/v1/reps/alice/timeseries/calls_total",
    "/v1/teams/north/timeseries/calls_total",
    "/v1/unassigned",
)


async def test_custom_windows_beyond_the_documented_range_are_a_422_naming_the_field(
    client: httpx.AsyncClient,
) -> None:
    await floor(client)
    refused = (
        ({"from": "9999-12-30T00:00:00Z", "to": "9999-12-31T23:59:59Z"}, "from"),
        ({"from": "0001-01-01T00:00:00", "to": "0001-01-02T00:00:00"}, "from"),
        ({"from": "2026-01-01T00:00:00Z", "to": "9999-12-31T23:59:59Z"}, "to"),
    )
    for path in ROUTE_FAMILIES:
        for params, field in refused:
            response = await client.get(path, params=params, headers=READ)
            assert_problem(response, 422, f"'{field}' must lie between 2000-01-01 and 2100-01-01")
            assert response.json()["errors"] == [
                {"field": field, "message": response.json()["detail"]}
            ], path
        if "stream" not in path:  # the last day of the range is still a window
            edge = {"from": "2099-12-31T00:00:00Z", "to": "2100-01-01T00:00:00Z"}
            assert (await client.get(path, params=edge, headers=READ)).status_code == 200, path


class Deadlock(Exception):
    """What asyncpg raises when PostgreSQL picks this transaction as a deadlock's victim."""

    sqlstate = "40P01"


async def test_every_write_is_run_again_after_a_deadlock(
    client: httpx.AsyncClient, db: AsyncEngine
) -> None:
    await floor(client)
    victims: list[str] = []

    def deadlock_once(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        # The last write of every API change bumps a version (the roster's or the targets'):
        # failing there shows the whole transaction is rolled back and run again, not half of it
        # kept.
        if not statement.startswith(("UPDATE roster_version", "UPDATE targets_version")):
            return
        if len(victims) % 2 == 0:
            victims.append(statement)
            raise Deadlock("deadlock detected")
        victims.append("retried")

    event.listen(db.sync_engine, "before_cursor_execute", deadlock_once)
    roster_before, targets_before = await versions(db)
    writes: list[tuple[str, str, dict[str, Any] | None]] = [
        ("PUT", "/v1/teams/west", {"name": "West"}),
        ("PUT", "/v1/reps/dan", {"name": "Dan", "team_id": "west"}),
        ("PUT", "/v1/targets/rep/dan/revenue/month", {"value": 9}),
        ("DELETE", "/v1/targets/rep/dan/revenue/month", None),
        ("DELETE", "/v1/reps/dan", None),
        ("DELETE", "/v1/teams/west", None),
    ]
    for method, path, body in writes:
        response = await client.request(method, path, json=body, headers=ADMIN)
        assert response.status_code in (200, 204), (path, response.text)
    event.remove(db.sync_engine, "before_cursor_execute", deadlock_once)
    assert victims[1::2] == ["retried"] * len(writes)
    # each counted once, in its own version: the roster's four, the targets' two
    assert await versions(db) == (roster_before + 4, targets_before + 2)


async def versions(db: AsyncEngine) -> tuple[int, int]:
    """(the roster version, the targets version)."""
    async with db.connect() as conn:
        query = text("SELECT r.version, t.version FROM roster_version r, targets_version t")
        roster, targets = (await conn.execute(query)).one()
    return int(roster), int(targets)


async def test_a_read_takes_one_connection_and_a_write_one_transaction(
    client: httpx.AsyncClient, db: AsyncEngine
) -> None:
    await floor(client)
    await client.put("/v1/targets/reps/alice/revenue/day", json={"value": 5}, headers=ADMIN)
    await book(db, canonical("call.placed", actor="u-1"), canonical("call.placed", actor="x"))
    seen = {"checkout": 0, "commit": 0}

    def count(kind: str) -> Any:
        return lambda *_: seen.__setitem__(kind, seen[kind] + 1)

    event.listen(db.sync_engine.pool, "checkout", count("checkout"))
    event.listen(db.sync_engine, "commit", count("commit"))

    async def cost(method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, int]:
        seen.update(checkout=0, commit=0)
        response = await client.request(method, path, json=body, headers=ADMIN)
        assert response.status_code == 200, (path, response.text)
        return seen["checkout"], seen["commit"]

    for path in (
        "/v1/reps/alice/kpis?metrics=calls_total,quota_attainment",
        "/v1/teams/north/kpis",
        "/v1/reps/alice/timeseries/calls_total",
        "/v1/teams/north/timeseries/calls_total",
        "/v1/unassigned",
        "/v1/reps/alice",
        "/v1/teams/north",
        "/v1/targets/reps/alice/revenue/day",
    ):
        assert await cost("GET", path) == (1, 0), path
    # A board is computed once for everyone, on a connection of its own; then it is served.
    assert await cost("GET", "/v1/leaderboards/calls_total") == (2, 0)
    assert await cost("GET", "/v1/leaderboards/calls_total") == (1, 0)
    assert await cost("PUT", "/v1/teams/west", {"name": "West"}) == (1, 1)
    assert await cost("PUT", "/v1/targets/teams/west/revenue/week", {"value": 3}) == (1, 1)


async def test_a_board_request_never_holds_two_connections_at_once(
    client: httpx.AsyncClient, db: AsyncEngine
) -> None:
    """Requests waiting for a board being computed hold no connection meanwhile, so a burst of
    cold boards cannot drain the pool from under the computation."""
    await floor(client)
    in_use = {"now": 0, "peak": 0}

    def checkout(*_: Any) -> None:
        in_use["now"] += 1
        in_use["peak"] = max(in_use["peak"], in_use["now"])

    def checkin(*_: Any) -> None:
        in_use["now"] -= 1

    event.listen(db.sync_engine.pool, "checkout", checkout)
    event.listen(db.sync_engine.pool, "checkin", checkin)
    response = await client.get("/v1/leaderboards/calls_total", headers=ADMIN)
    assert response.status_code == 200
    assert in_use["peak"] == 1


async def test_the_organisation_s_settings_are_read_with_a_read_key(
    client: httpx.AsyncClient,
) -> None:
    found = await client.get("/v1/organisation", headers=READ)
    assert found.status_code == 200
    body = found.json()
    assert (body["timezone"], body["currency"], body["locale"], body["language"]) == (
        "Europe/Paris",
        "EUR",
        "fr-FR",
        "fr",
    )
    assert {"name": "this_month", "labels": {"fr": "ce mois-ci", "en": "this month"}} in (
        body["windows"]
    )
    assert (await client.get("/v1/organisation")).status_code == 401
