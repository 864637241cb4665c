"""``POST /v1/roster/import`` through the real app, on SQLite and on a real PostgreSQL: what
it writes (what the same PUTs would), all or nothing, the fields its refusals name, 10,000
reps at once, and the KPI service seeing the new roster."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.api.roster.repository import RosterRepository
from services.kpi.domain.engine import Engine
from services.kpi.flush import Booking, KpiStore
from shared import events as ev
from shared.bus import Record
from shared.db.retry import ConcurrentInsert
from shared.settings import Settings
from tests.api_support import ADMIN, READ, assert_problem
from tests.conftest import canonical

IMPORT = "/v1/roster/import"
CSV = {**ADMIN, "content-type": "text/csv"}
SINCE_2020 = "2020-01-01T00:00:00Z"


async def roster_version(db: AsyncEngine) -> int:
    async with db.connect() as conn:
        return int((await conn.execute(text("SELECT version FROM roster_version"))).scalar_one())


async def count(db: AsyncEngine, table: str) -> int:
    async with db.connect() as conn:
        return int((await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one())  # noqa: S608


def identity(text: str) -> dict[str, str]:
    provider, _, external_id = text.partition(":")
    return {"provider": provider, "external_id": external_id}


def rep(
    rep_id: str,
    team_id: str | None,
    *identities: str,
    since: str | None = SINCE_2020,
    name: str | None = None,
) -> dict[str, Any]:
    """A rep of a JSON import (or a PUT body, once ``id`` is popped); identities as ``p:x``."""
    body: dict[str, Any] = {
        "id": rep_id,
        "name": name or rep_id.rpartition("-")[2].title(),
        "team_id": team_id,
        "identities": [identity(i) for i in identities],
    }
    if since is not None:
        body["effective_from"] = since
    return body


async def put_reps(client: httpx.AsyncClient, *reps: dict[str, Any]) -> None:
    for body in reps:
        fields = {k: v for k, v in body.items() if k != "id"}
        response = await client.put(f"/v1/reps/{body['id']}", json=fields, headers=ADMIN)
        assert response.status_code == 200, response.text


async def put_teams(client: httpx.AsyncClient, *teams: tuple[str, str]) -> None:
    for team_id, name in teams:
        response = await client.put(f"/v1/teams/{team_id}", json={"name": name}, headers=ADMIN)
        assert response.status_code == 200, response.text


async def state(client: httpx.AsyncClient, reps: list[str], teams: list[str]) -> list[Any]:
    """What the roster answers about ``reps`` and ``teams``."""
    paths = [f"/v1/reps/{r}" for r in reps] + [f"/v1/teams/{t}" for t in teams]
    return [(await client.get(path, headers=READ)).json() for path in paths]


# --- what an import writes ------------------------------------------------------------------


def floor(p: str) -> tuple[list[tuple[str, str]], list[dict[str, Any]]]:
    """A small roster, every id and identity prefixed by ``p``."""
    teams = [(f"{p}north", "North"), (f"{p}south", "South")]
    reps = [
        rep(f"{p}alice", f"{p}north", f"crm:{p}u-1"),
        rep(f"{p}bob", f"{p}north", f"crm:{p}u-2"),
        rep(f"{p}carol", f"{p}south", f"crm:{p}u-3", f"twilio:{p}c-3"),
    ]
    return teams, reps


def changes(p: str) -> tuple[list[tuple[str, str]], list[dict[str, Any]]]:
    """Changes to ``floor(p)``: a rename, a new team, a move, a rep as it is, an identity that
    moves from carol to dan, a rep without team or identity."""
    teams = [(f"{p}south", "South EMEA"), (f"{p}west", "West")]
    reps = [
        rep(
            f"{p}alice", f"{p}south", f"crm:{p}u-1", f"twilio:{p}client", since="2026-01-01T00:00Z"
        ),
        rep(f"{p}bob", f"{p}north", f"crm:{p}u-2", since="2025-06-01T00:00:00+02:00"),
        rep(f"{p}carol", f"{p}south", f"crm:{p}u-3"),
        rep(f"{p}dan", f"{p}west", f"twilio:{p}c-3", f"crm:{p}u-4", since="2026-02-01T00:00Z"),
        rep(f"{p}erin", None, since=None),
    ]
    return teams, reps


def import_body(teams: list[tuple[str, str]], reps: list[dict[str, Any]]) -> dict[str, Any]:
    return {"teams": [{"id": t, "name": n} for t, n in teams], "reps": reps}


async def test_an_import_leaves_the_roster_as_the_same_puts_would(
    client: httpx.AsyncClient, db: AsyncEngine
) -> None:
    for p in ("put-", "imp-"):
        teams, reps = floor(p)
        await put_teams(client, *teams)
        await put_reps(client, *reps)
    teams, reps = changes("put-")
    await put_teams(client, *teams)
    await put_reps(client, *reps)  # in this order: carol lets go of c-3 before dan takes it
    teams, reps = changes("imp-")
    before = await roster_version(db)
    reps.reverse()  # an import's order does not matter
    response = await client.post(IMPORT, json=import_body(teams, reps), headers=ADMIN)

    assert response.status_code == 200, response.text
    assert response.json() == {
        "dry_run": False,
        "teams": {"created": 1, "updated": 1},
        # bob stays as he was; alice moves (dan and erin are new)
        "reps": {"created": 2, "updated": 3, "unchanged": 1, "moved": 1},
        "identities": 6,
        "team_changes": 2,  # alice's move and dan's first team; bob is in north already
        "errors": [],
        "errors_total": 0,
    }
    assert await roster_version(db) == before + 1
    names = (["alice", "bob", "carol", "dan"], ["north", "south", "west"])
    by_puts = await state(client, *([f"put-{n}" for n in ns] for ns in names))
    by_import = await state(client, *([f"imp-{n}" for n in ns] for ns in names))
    assert orjson.dumps(by_import) == orjson.dumps(by_puts).replace(b"put-", b"imp-")
    erin = (await client.get("/v1/reps/imp-erin", headers=READ)).json()
    assert erin == {
        "id": "imp-erin",
        "name": "Erin",
        "team_id": None,
        "email": None,
        "left_at": None,
        "identities": [],
        "teams": [],
    }


async def test_a_csv_import_creates_the_teams_it_names(
    client: httpx.AsyncClient, db: AsyncEngine
) -> None:
    await put_teams(client, ("north", "North"))
    await put_reps(client, rep("alice", "north", "crm:u-1"))
    body = (
        "\ufeffrep_id,name,team_id,provider,external_id,effective_from\r\n"
        "alice,Alice,west,crm,u-1,2026-01-01T00:00:00Z\r\n"
        "alice,Alice,west,twilio,client:alice,2026-01-01T00:00:00Z\r\n"
        ",,,,,\r\n"  # a blank row, as spreadsheets leave them
        "bob,Bob,north,crm,u-2,\r\n"
        '"dan","Dan, Jr.",,,,\r\n'
    )
    response = await client.post(IMPORT, content=body.encode(), headers=CSV)

    assert response.status_code == 200, response.text
    assert response.json() == {
        "dry_run": False,
        "teams": {"created": 1, "updated": 0},
        "reps": {"created": 2, "updated": 1, "unchanged": 0, "moved": 1},
        "identities": 3,
        "team_changes": 2,
        "errors": [],
        "errors_total": 0,
    }
    assert (await client.get("/v1/teams/west", headers=READ)).json() == {
        "id": "west",
        "name": "west",
        "members": ["alice"],
    }
    alice, bob, dan = await state(client, ["alice", "bob", "dan"], [])
    assert [t["team_id"] for t in alice["teams"]] == ["north", "west"]
    assert len(alice["identities"]) == 2
    assert bob["team_id"] == "north"  # from the import's time on
    assert (dan["name"], dan["team_id"], dan["identities"]) == ("Dan, Jr.", None, [])
    # the columns in any order, effective_from left out
    again = "name,rep_id,provider,external_id,team_id\nDan,dan,crm,u-9,north\n"
    response = await client.post(IMPORT, content=again.encode(), headers=CSV)
    assert response.json()["reps"] == {"created": 0, "updated": 1, "unchanged": 0, "moved": 1}


# --- all or nothing -------------------------------------------------------------------------


async def test_one_invalid_item_and_nothing_is_written(
    client: httpx.AsyncClient, db: AsyncEngine
) -> None:
    await put_teams(client, ("north", "North"))
    before = await roster_version(db)
    reps = [rep(f"r{i}", "north", f"crm:u-{i}") for i in range(30)]
    reps[12]["identities"][0]["external_id"] = "x" * 257
    reps[20]["team_id"] = "mars"
    response = await client.post(IMPORT, json=import_body([], reps), headers=ADMIN)

    assert_problem(response, 422, "reps[12].identities[0].external_id")
    assert [e["field"] for e in response.json()["errors"]] == ["reps[12].identities[0].external_id"]
    reps[12]["identities"][0]["external_id"] = "u-12"
    response = await client.post(IMPORT, json=import_body([], reps), headers=ADMIN)
    assert_problem(response, 422, "reps[20].team_id: no team 'mars'")
    assert await count(db, "reps") == 0
    assert await roster_version(db) == before


async def test_a_failure_while_writing_rolls_back_every_statement(
    client: httpx.AsyncClient, db: AsyncEngine
) -> None:
    def fail_at_the_end(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.startswith("UPDATE roster_version"):
            raise RuntimeError("the disk is full")

    body = import_body([("north", "North")], [rep("alice", "north", "crm:u-1")])
    event.listen(db.sync_engine, "before_cursor_execute", fail_at_the_end)
    try:
        with pytest.raises(RuntimeError, match="the disk is full"):  # a 500, re-raised here
            await client.post(IMPORT, json=body, headers=ADMIN)
    finally:
        event.remove(db.sync_engine, "before_cursor_execute", fail_at_the_end)
    for table in ("teams", "reps", "identities", "rep_teams"):
        assert await count(db, table) == 0, table


class Deadlock(Exception):
    """What asyncpg raises when PostgreSQL picks this transaction as a deadlock's victim."""

    sqlstate = "40P01"


async def test_an_import_is_run_again_whole_after_a_deadlock(
    client: httpx.AsyncClient, db: AsyncEngine
) -> None:
    attempts: list[str] = []

    def deadlock_once(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.startswith("UPDATE roster_version"):
            attempts.append(statement)
            if len(attempts) == 1:
                raise Deadlock("deadlock detected")

    before = await roster_version(db)
    body = "rep_id,name,team_id,provider,external_id\nalice,Alice,north,crm,u-1\n"
    event.listen(db.sync_engine, "before_cursor_execute", deadlock_once)
    try:
        response = await client.post(IMPORT, content=body.encode(), headers=CSV)
    finally:
        event.remove(db.sync_engine, "before_cursor_execute", deadlock_once)
    assert response.status_code == 200, response.text
    assert len(attempts) == 2
    # the first run was rolled back: the second creates everything again, counted once
    assert response.json()["reps"] == {"created": 1, "updated": 0, "unchanged": 0, "moved": 0}
    assert response.json()["teams"] == {"created": 1, "updated": 0}
    assert await roster_version(db) == before + 1


# --- refusals name their fields -------------------------------------------------------------


async def test_refusals_name_the_field_and_where_it_is(client: httpx.AsyncClient) -> None:
    bad_team = {"teams": [{"id": "no spaces", "name": "X"}], "reps": []}
    response = await client.post(IMPORT, json=bad_team, headers=ADMIN)
    assert_problem(response, 422, "teams[0].id")
    csv_body = (
        "rep_id,name,team_id,provider,external_id,effective_from\n"
        "alice,Alice,north,crm,u-1,2026-01-01T00:00:00Z\n"
        "bob,,north,crm,u-2,\n"
        "carol,Carol,north,crm,,\n"
        "dan,Dan,north,crm,u-4,2026-01-01\n"
    )
    response = await client.post(IMPORT, content=csv_body.encode(), headers=CSV)
    assert_problem(response, 422, "line 3: name")
    fields = [e["field"] for e in response.json()["errors"]]
    assert fields == ["line 3: name", "line 4: external_id", "line 5: effective_from"]
    twice = [rep("a", None, "crm:u-1"), rep("b", None, "crm:u-1"), rep("a", None)]
    response = await client.post(IMPORT, json=import_body([], twice), headers=ADMIN)
    assert_problem(response, 422, "reps[2].id: 'a' is also at reps[0]")
    assert response.json()["errors"][1] == {
        "field": "reps[1].identities[0].external_id",
        "message": "identity crm:u-1 is also claimed by rep 'a' (reps[0].identities[0])",
    }


async def test_an_identity_of_a_rep_outside_the_import_is_a_conflict(
    client: httpx.AsyncClient, db: AsyncEngine
) -> None:
    await put_reps(client, rep("alice", None, "crm:u-1"))
    body = import_body([], [rep("bob", None, "crm:u-2"), rep("dan", None, "crm:u-1")])
    response = await client.post(IMPORT, json=body, headers=ADMIN)
    assert_problem(response, 409, "reps[1].identities[0].external_id")
    assert "belongs to rep alice" in response.json()["errors"][0]["message"]
    assert await count(db, "reps") == 1
    # alice in the import, letting go of it: it moves
    body["reps"].append(rep("alice", None))
    assert (await client.post(IMPORT, json=body, headers=ADMIN)).status_code == 200
    assert (await client.get("/v1/reps/alice", headers=READ)).json()["identities"] == []


async def test_at_most_twenty_errors_are_listed_and_how_many_there_were(
    client: httpx.AsyncClient,
) -> None:
    reps = [{"id": f"r{i}", "name": ""} for i in range(100)]
    response = await client.post(IMPORT, json={"reps": reps}, headers=ADMIN)
    assert_problem(response, 422, "reps[0].name")
    assert len(response.json()["errors"]) == 20
    assert response.json()["errors_total"] == 100


async def test_bounds_of_an_import(client: httpx.AsyncClient) -> None:
    huge = b"rep_id,name,team_id,provider,external_id\n" + b"a,A,,crm,u\n" * 1_600_000
    assert_problem(await client.post(IMPORT, content=huge, headers=CSV), 413, "split the import")

    async def chunked() -> AsyncIterator[bytes]:  # no Content-Length: counted as it comes
        for start in range(0, len(huge), 1 << 20):
            yield huge[start : start + (1 << 20)]

    response = await client.post(IMPORT, content=chunked(), headers=CSV)
    assert_problem(response, 413, "split the import")
    too_many = "rep_id,name,team_id,provider,external_id\n" + "".join(
        f"r{i},R,,crm,u-{i}\n" for i in range(200_001)
    )
    response = await client.post(IMPORT, content=too_many.encode(), headers=CSV)
    assert_problem(response, 422, "more than 200000 rows")
    plain = {**ADMIN, "content-type": "text/plain"}
    assert_problem(await client.post(IMPORT, content=b"x", headers=plain), 415, "text/csv")
    assert_problem(await client.post(IMPORT, content=b"", headers=CSV), 422, "header row")
    assert_problem(await client.post(IMPORT, content=b"{", headers=ADMIN), 422, "body")
    # the key is checked before the body is read
    assert_problem(await client.post(IMPORT, content=b"{", headers=READ), 403, "'admin' scope")


# --- at scale, and the KPI side -------------------------------------------------------------


async def test_ten_thousand_reps_in_one_import(client: httpx.AsyncClient, db: AsyncEngine) -> None:
    teams = [(f"t{t}", f"Team {t}") for t in range(50)]
    reps = [rep(f"r{i}", f"t{i % 50}", f"crm:u-{i}", f"twilio:client:r{i}") for i in range(10_000)]
    response = await client.post(IMPORT, json=import_body(teams, reps), headers=ADMIN)

    assert response.status_code == 200, response.text
    assert response.json() == {
        "dry_run": False,
        "teams": {"created": 50, "updated": 0},
        "reps": {"created": 10_000, "updated": 0, "unchanged": 0, "moved": 0},
        "identities": 20_000,
        "team_changes": 10_000,
        "errors": [],
        "errors_total": 0,
    }
    counts = [await count(db, t) for t in ("teams", "reps", "identities", "rep_teams")]
    assert counts == [50, 10_000, 20_000, 10_000]
    r4321 = (await client.get("/v1/reps/r4321", headers=READ)).json()
    assert (r4321["team_id"], len(r4321["identities"])) == ("t21", 2)
    assert len((await client.get("/v1/teams/t7", headers=READ)).json()["members"]) == 200
    # the same reps again as CSV, each moving team from 2026 on and keeping one identity
    rows = "".join(
        f"r{i},Rep {i},t{(i + 1) % 50},crm,u-{i},2026-01-01T00:00Z\n" for i in range(10_000)
    )
    csv_body = f"rep_id,name,team_id,provider,external_id,effective_from\n{rows}"
    response = await client.post(IMPORT, content=csv_body.encode(), headers=CSV)
    assert response.status_code == 200, response.text
    assert response.json()["reps"] == {
        "created": 0,
        "updated": 10_000,
        "unchanged": 0,
        "moved": 10_000,
    }
    assert response.json()["team_changes"] == 10_000
    counts = [await count(db, t) for t in ("teams", "reps", "identities", "rep_teams")]
    assert counts == [50, 10_000, 10_000, 20_000]
    r4321 = (await client.get("/v1/reps/r4321", headers=READ)).json()
    assert (r4321["name"], r4321["team_id"], len(r4321["teams"])) == ("Rep 4321", "t22", 2)


class Kpi:
    """The KPI service's store, kept across flushes as the running service keeps it: it reloads
    the roster only when the roster version has moved."""

    def __init__(self, db: AsyncEngine) -> None:
        self.engine = Engine(Settings().tz, "EUR")
        self.store = KpiStore(db, self.engine, "g", "t")
        self.offset = 0

    async def book(self, body: dict[str, Any]) -> None:
        record = Record("t", 0, self.offset, b"k", orjson.dumps(body), 0)
        event = ev.parse_event(record.value)
        await self.store.flush(Booking([record], [(event, self.engine.contributions(event))]))
        self.offset += 1


async def test_the_kpi_service_takes_up_the_imported_roster(
    client: httpx.AsyncClient, db: AsyncEngine
) -> None:
    kpi = Kpi(db)
    await kpi.book(canonical("call.placed", actor="u-new"))  # nobody's yet: unassigned
    unassigned = (await client.get("/v1/unassigned", headers=READ)).json()
    assert len(unassigned["rows"]) == 1
    before = await roster_version(db)
    body = import_body([("north", "North")], [rep("newbie", "north", "crm:u-new")])
    assert (await client.post(IMPORT, json=body, headers=ADMIN)).status_code == 200
    assert await roster_version(db) == before + 1

    await kpi.book(canonical("call.placed", actor="u-new"))  # reloads, re-credits the first
    rep_kpis = await client.get("/v1/reps/newbie/kpis?metrics=calls_placed", headers=READ)
    assert rep_kpis.json()["metrics"] == {"calls_placed": 2}
    team_kpis = await client.get("/v1/teams/north/kpis?metrics=calls_placed", headers=READ)
    assert team_kpis.json()["metrics"] == {"calls_placed": 2}
    assert (await client.get("/v1/unassigned", headers=READ)).json()["rows"] == []


async def test_an_identity_given_to_a_rep_meanwhile_makes_the_import_run_again(
    client: httpx.AsyncClient, db: AsyncEngine
) -> None:
    """Between the import's reading of the owners and its writing, another request gives one of
    its identities to a rep outside it: the write is refused as a conflict (the import then runs
    again, sees the owner and answers 409), never a unique violation answered 500."""
    imported = import_body([("north", "North")], [rep("alice", "north", "crm:u-1")])
    await client.put("/v1/reps/bob", json={"name": "Bob", "identities": []}, headers=ADMIN)
    await client.post(IMPORT, json=imported, headers=ADMIN)
    async with db.begin() as conn:  # the other request, committed first
        await conn.execute(text("UPDATE identities SET rep_id = 'bob'"))
    with pytest.raises(ConcurrentInsert):
        async with db.begin() as conn:  # the import's write, planned before it
            await RosterRepository(conn).reassign_identities(["alice"], [("crm", "u-1", "alice")])
    assert_problem(await client.post(IMPORT, json=imported, headers=ADMIN), 409, "bob")
