"""The bulk roster import's pure rules (``services/api/roster/imports.py``): reading JSON and CSV,
naming each fault where it is, and planning the writes against what the database holds."""

from __future__ import annotations

import json
from typing import Any

import pytest

from services.api.roster import imports
from services.api.roster.imports import RepNow, RosterImport, RosterState
from shared.problems import Problem


def refused(body: bytes, *, csv: bool = False) -> tuple[int, list[dict[str, str]], int]:
    """(status, errors, errors_total) of a body that must be refused."""
    with pytest.raises(Problem) as caught:
        (imports.from_csv if csv else imports.from_json)(body)
    extensions: dict[str, Any] = caught.value.extensions
    return caught.value.status, extensions["errors"], extensions["errors_total"]


def fields(body: bytes, *, csv: bool = False) -> list[str]:
    return [e["field"] for e in refused(body, csv=csv)[1]]


def csv_body(*rows: str, header: str = "rep_id,name,team_id,provider,external_id") -> bytes:
    return "\n".join([header, *rows, ""]).encode()


def test_json_faults_are_named_by_their_path_in_the_body() -> None:
    body = {
        "teams": [{"id": "north", "name": ""}],
        "reps": [
            {"id": "alice", "name": "Alice"},
            {"id": "bob", "name": "Bob", "identities": [{"provider": "crm", "external_id": ""}]},
            {"id": "carol", "name": "Carol", "effective_from": "2026-01-01T00:00:00"},
        ],
    }
    assert fields(json.dumps(body).encode()) == [
        "teams[0].name",
        "reps[1].identities[0].external_id",
        "reps[2].effective_from",  # no time zone: when would it be?
    ]
    assert fields(b"[]") == ["body"]
    assert fields(b"{not json") == ["body"]


def test_json_location_paths() -> None:
    assert imports.json_field(("reps", 12, "identities", 0, "external_id")) == (
        "reps[12].identities[0].external_id"
    )
    assert imports.json_field(()) == "body"


def test_csv_faults_are_named_by_line_and_column() -> None:
    body = csv_body(
        "alice,Alice,north,crm,u-1",
        "bob,Bob,north,crm",  # a value short
        "carol,Carol,no team,crm,u-3",
        "dan,,north,,u-4",
        '"erin","Erin',  # a quoted value that spans lines
        'the Second",north,crm,u-5',
        "fred,Fred,north,crm,u-6,extra",
    )
    assert fields(body, csv=True) == ["line 3", "line 8"]
    body = csv_body(
        "carol,Carol,no team,crm,u-3",
        "dan,,north,,u-4",
        '"erin","Erin',
        'the Second",north,crm,x' + "y" * 256,
    )
    assert fields(body, csv=True) == [
        "line 2: team_id",
        "line 3: name",
        "line 3: external_id",  # an external_id without provider
        "line 5: name",  # a name is one line: a line break is a control character
        "line 5: external_id",  # where the row ends
    ]


def test_csv_header_is_required_and_checked() -> None:
    assert fields(b"", csv=True) == ["line 1"]
    assert fields(csv_body(header="rep_id,name,team,provider,provider,external_id"), csv=True) == [
        "line 1: team",
        "line 1: provider",
        "line 1: team_id",
    ]
    # any order, any case, surrounding spaces and a byte order mark: all fine
    header = "\ufeff External_ID ,provider,team_id,NAME,rep_id"
    imported = imports.from_csv(csv_body("u-1,crm,,Alice,alice", header=header))
    assert [(r.id, r.name, r.identities) for r in imported.reps] == [
        ("alice", "Alice", [("crm", "u-1")])
    ]


def test_csv_rows_of_a_rep_are_grouped_and_must_agree() -> None:
    imported = imports.from_csv(
        csv_body(
            "alice,Alice,north,crm,u-1",
            "bob,Bob,,,",
            "alice,Alice,north,twilio,client:alice",
            "alice,Alice,north,crm,u-1",  # the same identity twice: once
        )
    )
    alice, bob = imported.reps
    assert alice.identities == [("crm", "u-1"), ("twilio", "client:alice"), ("crm", "u-1")]
    assert (bob.team_id, bob.identities) == (None, [])
    assert imported.creates_teams
    disagreeing = csv_body(
        "alice,Alice,north,crm,u-1",
        "alice,Alicia,south,crm,u-2",
        header="rep_id,name,team_id,provider,external_id",
    )
    status, errors, _ = refused(disagreeing, csv=True)
    assert status == 422
    assert errors == [
        {"field": "line 3: name", "message": "differs from line 2 of rep 'alice'"},
        {"field": "line 3: team_id", "message": "differs from line 2 of rep 'alice'"},
    ]


def test_a_rep_has_at_most_fifty_identities() -> None:
    rows = [f"alice,Alice,,crm,u-{i}" for i in range(51)]
    assert fields(csv_body(*rows), csv=True) == ["line 52: external_id"]
    identities = [{"provider": "crm", "external_id": f"u-{i}"} for i in range(51)]
    body = {"reps": [{"id": "alice", "name": "Alice", "identities": identities}]}
    assert fields(json.dumps(body).encode()) == ["reps[0].identities"]


def test_an_item_twice_or_an_identity_claimed_twice_is_refused() -> None:
    body = {
        "teams": [{"id": "north", "name": "N"}, {"id": "north", "name": "N2"}],
        "reps": [
            {"id": "a", "name": "A", "identities": [{"provider": "crm", "external_id": "u"}]},
            {"id": "b", "name": "B", "identities": [{"provider": "crm", "external_id": "u"}]},
        ],
    }
    status, errors, total = refused(json.dumps(body).encode())
    assert (status, total) == (422, 2)
    assert errors[0] == {"field": "teams[1].id", "message": "'north' is also at teams[0]"}
    assert errors[1]["field"] == "reps[1].identities[0].external_id"
    rows = csv_body("a,A,,crm,u", "b,B,,crm,u")
    assert refused(rows, csv=True)[1] == [
        {
            "field": "line 3: external_id",
            "message": "identity crm:u is also claimed by rep 'a' (line 2)",
        }
    ]


def test_errors_are_at_most_twenty_with_their_total() -> None:
    rows = [f"r{i},,,," for i in range(50)]
    status, errors, total = refused(csv_body(*rows), csv=True)
    assert (status, len(errors), total) == (422, 20, 50)


def json_import(reps: list[dict[str, Any]], teams: tuple[str, ...] = ()) -> RosterImport:
    body = {"teams": [{"id": t, "name": t.title()} for t in teams], "reps": reps}
    return imports.from_json(json.dumps(body).encode())


def a_rep(rep_id: str, team_id: str | None = None, *external_ids: str) -> dict[str, Any]:
    identities = [{"provider": "crm", "external_id": x} for x in external_ids]
    return {"id": rep_id, "name": rep_id.title(), "team_id": team_id, "identities": identities}


def test_plan_counts_and_sorts_the_writes() -> None:
    imported = json_import(
        [a_rep("bob", "north", "u-2"), a_rep("alice", "west", "u-1", "u-1")], teams=("west",)
    )
    bob = RepNow("Bob", None, frozenset({("crm", "u-2")}))
    state = RosterState(
        teams={"north"}, histories={"bob": [(0, "north")]}, owners={}, reps={"bob": bob}
    )
    plan = imports.plan(imported, state, [("alice", 5, "west")])
    assert plan.teams == [("west", "West")]
    assert plan.new_teams == []
    assert plan.reps == [("alice", "Alice"), ("bob", "Bob")]
    assert plan.identities == [("crm", "u-1", "alice"), ("crm", "u-2", "bob")]
    assert plan.memberships == [("alice", 5, "west")]
    assert plan.counts.model_dump() == {
        "dry_run": False,
        "teams": {"created": 1, "updated": 0},
        "reps": {"created": 1, "updated": 1, "unchanged": 1, "moved": 0},  # Bob stays as he is
        "identities": 2,
        "team_changes": 1,
        "errors": [],
        "errors_total": 0,
    }


def test_plan_refuses_an_unknown_team_in_json_and_creates_it_from_csv() -> None:
    state = RosterState(teams=set(), histories={}, owners={})
    with pytest.raises(Problem) as caught:
        imports.plan(json_import([a_rep("alice", "mars")]), state, [])
    assert caught.value.status == 422
    assert caught.value.extensions["errors"][0]["field"] == "reps[0].team_id"
    from_csv = imports.from_csv(csv_body("alice,Alice,mars,,"))
    plan = imports.plan(from_csv, state, [("alice", 0, "mars")])
    assert plan.new_teams == ["mars"]
    assert plan.counts.teams.model_dump() == {"created": 1, "updated": 0}


def test_an_identity_moves_between_reps_of_the_import_but_not_from_others() -> None:
    held = RosterState(teams=set(), histories={"a": [], "c": []}, owners={("crm", "u"): "a"})
    moving = json_import([a_rep("b", None, "u"), a_rep("a", None)])
    assert imports.plan(moving, held, []).identities == [("crm", "u", "b")]
    taking = json_import([a_rep("b", None, "u"), a_rep("c", None)])
    with pytest.raises(Problem) as caught:
        imports.plan(taking, held, [])
    assert caught.value.status == 409
    assert caught.value.extensions["errors"] == [
        {"field": "reps[0].identities[0].external_id", "message": "identity crm:u belongs to rep a"}
    ]
