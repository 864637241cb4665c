"""The sales-ops manager's roster and targets, on SQLite and PostgreSQL: lists in pages,
partial edits that keep what they do not name, emails, people who leave, targets with a
history, imports as French Excel saves them (with a preview), and one rule for a team's
target: its own, else its reps' summed, for boards, KPIs, contests and alerts alike."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.worker.pace_checks import check_pace
from shared.settings import Settings
from tests.api_support import ADMIN, READ, book, fields, floor
from tests.conftest import canonical

NOW = datetime.now(UTC).replace(microsecond=0)


async def ok(response: httpx.Response) -> Any:
    assert response.status_code in (200, 204), response.text
    return response.json() if response.status_code == 200 else None


async def every_page(client: httpx.AsyncClient, path: str, **params: Any) -> list[dict[str, Any]]:
    found, cursor = [], None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        page = await ok(await client.get(path, params=query, headers=READ))
        found += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return found


# --- lists ------------------------------------------------------------------------------------


async def test_teams_reps_and_targets_are_listed_in_pages(client: httpx.AsyncClient) -> None:
    await floor(client)  # alice, bob (north), carol (south)
    for n in range(7):
        body = {"name": f"Rep {n}", "team_id": "south", "email": f"rep{n}@example.com"}
        await ok(await client.put(f"/v1/reps/r{n}", json=body, headers=ADMIN))
    await ok(await client.patch("/v1/reps/r6", json={"left_at": NOW.isoformat()}, headers=ADMIN))

    teams = await ok(await client.get("/v1/teams", headers=READ))
    assert teams["items"] == [
        {"id": "north", "name": "North", "reps": 2},
        {"id": "south", "name": "South", "reps": 7},  # carol and r0..r5; r6 has left
    ]
    active = await every_page(client, "/v1/reps", limit=3)
    assert [r["id"] for r in active] == ["alice", "bob", "carol", *(f"r{n}" for n in range(6))]
    north = await every_page(client, "/v1/reps", team="north")
    assert [r["id"] for r in north] == ["alice", "bob"]
    assert [r["id"] for r in await every_page(client, "/v1/reps", status="left")] == ["r6"]
    assert len(await every_page(client, "/v1/reps", status="all")) == 10
    by_email = await every_page(client, "/v1/reps", q="REP3@EXAMPLE")
    assert [(r["id"], r["email"]) for r in by_email] == [("r3", "rep3@example.com")]
    assert [r["id"] for r in await every_page(client, "/v1/reps", q="aro")] == ["carol"]
    assert fields(await client.get("/v1/reps?status=gone", headers=READ)) == ["query.status"]

    for rep, value in (("alice", 10), ("bob", 20)):
        path = f"/v1/targets/reps/{rep}/calls_total/day"
        await ok(await client.put(path, json={"value": value}, headers=ADMIN))
    await ok(await client.put("/v1/targets/teams/north/revenue/month", json={"value": 9},
                              headers=ADMIN))  # fmt: skip
    listed = await every_page(client, "/v1/targets", limit=1)
    assert [(t["scope"], t["id"], t["metric"], t["value"]) for t in listed] == [
        ("rep", "alice", "calls_total", 10.0),
        ("rep", "bob", "calls_total", 20.0),
        ("team", "north", "revenue", 9.0),
    ]
    only = await every_page(client, "/v1/targets", scope="teams")
    assert [t["id"] for t in only] == ["north"]


# --- partial edits, emails, leaving ---------------------------------------------------------


async def test_moving_a_rep_from_a_date_keeps_her_identities(
    client: httpx.AsyncClient, db: AsyncEngine
) -> None:
    """The reported bug: a PUT with a new team wiped rep05's HubSpot and Aircall ids, and her
    next call went to unassigned. A PATCH changes only what it names."""
    await floor(client)
    rep05 = {"name": "Rep Five", "team_id": "north", "effective_from": "2020-01-01T00:00:00Z",
             "identities": [{"provider": "hubspot", "external_id": "812"},
                            {"provider": "aircall", "external_id": "100005"}]}  # fmt: skip
    await ok(await client.put("/v1/reps/rep05", json=rep05, headers=ADMIN))
    moved_at = NOW - timedelta(hours=1)
    patch = {"team_id": "south", "effective_from": moved_at.isoformat()}
    moved = await ok(await client.patch("/v1/reps/rep05", json=patch, headers=ADMIN))
    assert sorted(map(str, moved["identities"])) == sorted(map(str, rep05["identities"]))
    assert moved["team_id"] == "south"
    assert [t["team_id"] for t in moved["teams"]] == ["north", "south"]
    await book(db, canonical("call.placed", actor="100005", provider="aircall"))
    kpis = await ok(await client.get("/v1/reps/rep05/kpis?metrics=calls_total", headers=READ))
    assert kpis["metrics"] == {"calls_total": 1}
    unassigned = await ok(await client.get("/v1/unassigned", headers=READ))
    assert unassigned["rows"] == []
    south = await ok(await client.get("/v1/teams/south/kpis?metrics=calls_total", headers=READ))
    assert south["metrics"] == {"calls_total": 1}
    renamed = await client.patch("/v1/teams/south", json={"name": "Sud"}, headers=ADMIN)
    assert (await ok(renamed))["name"] == "Sud"
    assert fields(await client.patch("/v1/reps/rep05", json={"name": None}, headers=ADMIN)) == [
        "body.name"
    ]
    assert (await client.patch("/v1/reps/nobody", json={}, headers=ADMIN)).status_code == 404


async def test_an_email_is_unique_whatever_its_case(client: httpx.AsyncClient) -> None:
    await floor(client)
    body = {"email": "Chloe.Martin@Example.COM"}
    set_ = await ok(await client.patch("/v1/reps/alice", json=body, headers=ADMIN))
    assert set_["email"] == "chloe.martin@example.com"
    taken = await client.patch(
        "/v1/reps/bob", json={"email": "chloe.martin@example.com"}, headers=ADMIN
    )
    assert taken.status_code == 409, taken.text
    assert taken.json()["errors"][0]["field"] == "body.email"
    assert fields(await client.patch("/v1/reps/bob", json={"email": "nope"}, headers=ADMIN)) == [
        "body.email"
    ]
    cleared = await ok(await client.patch("/v1/reps/alice", json={"email": None}, headers=ADMIN))
    assert cleared["email"] is None
    await ok(await client.patch("/v1/reps/bob", json=body, headers=ADMIN))  # free again


async def test_a_rep_who_leaves_keeps_her_history_and_her_later_activity_is_unassigned(
    client: httpx.AsyncClient, db: AsyncEngine
) -> None:
    await floor(client)
    before, left_at, after = NOW - timedelta(hours=3), NOW - timedelta(hours=2), NOW
    await book(db, canonical("call.placed", actor="u-1", time=before))
    gone = await ok(
        await client.patch("/v1/reps/alice", json={"left_at": left_at.isoformat()}, headers=ADMIN)
    )
    assert datetime.fromisoformat(gone["left_at"]) == left_at
    await book(db, canonical("call.placed", actor="u-1", time=after))

    assert (await ok(await client.get("/v1/reps/alice", headers=READ)))["id"] == "alice"
    day = await ok(await client.get("/v1/reps/alice/kpis?metrics=calls_total", headers=READ))
    assert day["metrics"] == {"calls_total": 1}  # the call before she left
    unassigned = await ok(await client.get("/v1/unassigned", headers=READ))
    assert [(r["identity"], r["calls_total"]) for r in unassigned["rows"]] == [("crm:u-1", 1)]
    later = {"from": (left_at + timedelta(minutes=1)).isoformat()}
    board = await ok(await client.get("/v1/leaderboards/calls_total", params=later,
                                      headers=READ))  # fmt: skip
    assert "alice" not in {r["rep_id"] for r in board["rows"]}  # a window after she left
    since = {"from": before.isoformat()}
    board = await ok(await client.get("/v1/leaderboards/calls_total", params=since,
                                      headers=READ))  # fmt: skip
    assert "alice" in {r["rep_id"] for r in board["rows"]}  # a window she was there for
    assert [r["id"] for r in await every_page(client, "/v1/reps", status="left")] == ["alice"]
    back = await ok(await client.patch("/v1/reps/alice", json={"left_at": None}, headers=ADMIN))
    assert back["left_at"] is None
    assert (await client.delete("/v1/reps/alice", headers=ADMIN)).status_code == 204
    assert (await client.get("/v1/reps/alice", headers=READ)).status_code == 404  # erased


# --- targets with a history -----------------------------------------------------------------


async def test_a_new_target_from_next_month_leaves_this_month_and_the_past_as_they_were(
    client: httpx.AsyncClient, db: AsyncEngine, make_settings: Any
) -> None:
    await floor(client)
    tz = make_settings().tz
    local = NOW.astimezone(tz)
    next_month = (local.replace(day=1) + timedelta(days=32)).replace(day=1)
    label = f"{next_month.year}-{next_month.month:02d}"
    path = "/v1/targets/reps/alice/revenue/month"
    first = await ok(await client.put(path, json={"value": 1000}, headers=ADMIN))
    assert first["history"] == [{"starting": None, "starts_at": None, "value": 1000.0}]
    raised = await ok(await client.put(path, json={"value": 4000, "starting": label},
                                       headers=ADMIN))  # fmt: skip
    assert raised["value"] == 1000.0  # in force now
    assert [(h["starting"], h["value"]) for h in raised["history"]] == [
        (None, 1000.0),
        (label, 4000.0),
    ]
    await book(db, canonical("deal.updated", actor="u-1", deal_id="D-1", amount="500"))
    now = await ok(await client.get(
        "/v1/reps/alice/kpis?window=this_month&metrics=quota_attainment", headers=READ
    ))  # fmt: skip
    assert now["metrics"] == {"quota_attainment": 0.5}
    start = next_month.replace(tzinfo=tz) if next_month.tzinfo is None else next_month
    then = {"from": start.isoformat(), "to": (start + timedelta(days=1)).isoformat(),
            "metrics": "quota_attainment"}  # fmt: skip
    ahead = await ok(await client.get("/v1/reps/alice/kpis", params=then, headers=READ))
    assert ahead["metrics"] == {"quota_attainment": 0.0}  # measured against 4000 pro-rated
    listed = await ok(await client.get("/v1/targets", params={"id": "alice"}, headers=READ))
    assert len(listed["items"][0]["history"]) == 2
    one = {"starting": label}
    assert (await client.delete(path, params=one, headers=ADMIN)).status_code == 204
    assert len((await ok(await client.get(path, headers=READ)))["history"]) == 1

    unknown = await client.put("/v1/targets/reps/nobody/revenue/month", json={"value": 1},
                               headers=ADMIN)  # fmt: skip
    assert unknown.status_code == 404
    assert "no rep 'nobody'" in unknown.json()["detail"]
    bad = await client.put(path, json={"value": 1, "starting": "2027-13"}, headers=ADMIN)
    assert fields(bad) == ["body.starting"]


FRENCH_TARGETS = (
    "scope;id;metric;period;value;starting\r\n"
    "reps;alice;revenue;month;12 500,50;2027-01\r\n"
    "teams;south;calls_total;day;40;\r\n"
    "rep;bob;calls_total;week;1,5;2027-W03\r\n"
).encode("cp1252")


async def test_targets_are_imported_from_french_excel_with_a_preview(
    client: httpx.AsyncClient,
) -> None:
    await floor(client)
    csv = {**ADMIN, "content-type": "text/csv"}
    preview = await ok(
        await client.post("/v1/targets/import?dry_run=1", content=FRENCH_TARGETS, headers=csv)
    )
    assert preview == {"dry_run": True, "created": 3, "changed": 0, "unchanged": 0}
    assert (await ok(await client.get("/v1/targets", headers=READ)))["items"] == []
    done = await ok(await client.post("/v1/targets/import", content=FRENCH_TARGETS, headers=csv))
    assert done == {"dry_run": False, "created": 3, "changed": 0, "unchanged": 0}
    alice = await ok(await client.get("/v1/targets/reps/alice/revenue/month", headers=READ))
    assert alice["history"][0]["value"] == 12500.5
    bob = await ok(await client.get("/v1/targets/reps/bob/calls_total/week", headers=READ))
    assert (bob["history"][0]["starting"], bob["history"][0]["value"]) == ("2027-W03", 1.5)
    again = await ok(await client.post("/v1/targets/import", content=FRENCH_TARGETS, headers=csv))
    assert again["unchanged"] == 3

    wrong = "scope,id,metric,period,value\nreps,zoe,revenue,month,1\nreps,alice,calls,day,x\n"
    refused = await client.post("/v1/targets/import", content=wrong.encode(), headers=csv)
    assert refused.status_code == 422
    assert [e["field"] for e in refused.json()["errors"]] == ["line 3: value"]
    unknown = "scope,id,metric,period,value\nreps,zoe,revenue,month,1\n"
    refused = await client.post("/v1/targets/import", content=unknown.encode(), headers=csv)
    assert [e["field"] for e in refused.json()["errors"]] == ["line 2: id"]
    body = {"targets": [{"scope": "teams", "id": "north", "metric": "revenue", "period": "year",
                         "value": 1e6, "starting": "2027"}]}  # fmt: skip
    assert (await ok(await client.post("/v1/targets/import", json=body, headers=ADMIN)))[
        "created"
    ] == 1


FRENCH_ROSTER = (
    "rep_id;name;team_id;provider;external_id;email\r\n"
    "chloe;Chloé Dubois;south;aircall;100042;Chloe.Dubois@Example.com\r\n"
    "chloe;Chloé Dubois;south;hubspot;812;Chloe.Dubois@Example.com\r\n"
    "alice;Alice;south;crm;u-1;\r\n"
    "bob;Bob;north;crm;u-2;\r\n"
).encode("cp1252")


async def test_a_roster_saved_by_french_excel_is_previewed_then_imported(
    client: httpx.AsyncClient,
) -> None:
    await floor(client)
    csv = {**ADMIN, "content-type": "text/csv"}
    preview = await ok(
        await client.post("/v1/roster/import?dry_run=1", content=FRENCH_ROSTER, headers=csv)
    )
    assert preview["dry_run"] is True
    assert preview["reps"] == {"created": 1, "updated": 2, "unchanged": 1, "moved": 1}
    assert preview["errors"] == []
    assert (await client.get("/v1/reps/chloe", headers=READ)).status_code == 404  # not written
    done = await ok(await client.post("/v1/roster/import", content=FRENCH_ROSTER, headers=csv))
    assert done["dry_run"] is False
    chloe = await ok(await client.get("/v1/reps/chloe", headers=READ))
    assert (chloe["name"], chloe["email"], chloe["team_id"]) == (
        "Chloé Dubois",
        "chloe.dubois@example.com",
        "south",
    )
    assert len(chloe["identities"]) == 2
    bad = FRENCH_ROSTER.replace(b"u-2", b"u-1")  # bob claims alice's identity
    shown = await ok(await client.post("/v1/roster/import?dry_run=1", content=bad, headers=csv))
    assert shown["dry_run"] is True
    assert shown["errors_total"] == 1
    assert shown["errors"][0]["field"] == "line 5: external_id"
    assert (await client.post("/v1/roster/import", content=bad, headers=csv)).status_code == 422


# --- a team's target: one rule everywhere ---------------------------------------------------


async def test_a_team_without_its_own_target_is_measured_against_its_reps_everywhere(
    client: httpx.AsyncClient, db: AsyncEngine
) -> None:
    """North has no target of its own; Alice's and Bob's daily calls targets sum to 10. The
    team's KPIs, its board and a contest of teams all measure it against 10."""
    await floor(client)
    for rep, value in (("alice", 4), ("bob", 6)):
        await ok(await client.put(f"/v1/targets/reps/{rep}/calls_total/day", json={"value": value},
                                  headers=ADMIN))  # fmt: skip
    await book(db, *(canonical("call.placed", actor="u-1") for _ in range(5)))
    kpis = await ok(await client.get("/v1/teams/north/kpis?metrics=activity_attainment,calls_total",
                                     headers=READ))  # fmt: skip
    assert kpis["metrics"]["activity_attainment"] == 0.5
    assert kpis["pace"]["calls_total"]["target"] == 10
    board = await ok(await client.get("/v1/team-leaderboards/activity_attainment", headers=READ))
    assert {r["team_id"]: r["value"] for r in board["rows"]}["north"] == 0.5
    minute = NOW.replace(second=0)
    contest = {"name": "Teams", "starts_at": (minute - timedelta(hours=1)).isoformat(),
               "ends_at": (minute + timedelta(hours=1)).isoformat(), "participants": "teams",
               "score": {"metric": "activity_attainment"}}  # fmt: skip
    await ok(await client.put("/v1/contests/teams", json=contest, headers=ADMIN))
    standings = await ok(await client.get("/v1/contests/teams", headers=READ))
    north = next(r for r in standings["rows"] if r["team_id"] == "north")
    assert north["score"] == pytest.approx(5 / (10 * 2 / 24), rel=1e-3)  # two hours of a day


async def test_a_team_behind_pace_is_found_on_its_reps_summed_target(
    client: httpx.AsyncClient, db: AsyncEngine, make_settings: Any
) -> None:
    """The reported inconsistency: a team with no target of its own showed behind pace on
    the board while ``behind_pace`` could never fire for it."""
    await floor(client)
    for rep, value in (("alice", 40), ("bob", 40)):
        await ok(await client.put(f"/v1/targets/reps/{rep}/calls_total/day", json={"value": value},
                                  headers=ADMIN))  # fmt: skip
    trigger = {"kind": "behind_pace", "metric": "calls_total", "period": "day", "below": 0.5,
               "scope": "team"}  # fmt: skip
    body = {"name": "Team pace", "channels": [], "trigger": trigger}
    await ok(await client.put("/v1/alerts/team-pace", json=body, headers=ADMIN))
    await book(db, canonical("call.placed", actor="u-1"))
    settings: Settings = make_settings()
    evening = datetime.now(UTC).astimezone(settings.tz).replace(hour=18, minute=0)
    assert await check_pace(db, settings, evening) == 1
    async with db.connect() as conn:
        rows = (await conn.execute(text("SELECT subject_id, data FROM notifications"))).all()
    assert [(subject, json.loads(data)["target"]) for subject, data in rows] == [("north", 80.0)]
