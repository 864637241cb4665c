"""The bulk roster import's rules, pure (no I/O): a JSON or CSV body in, a checked import out;
then, given what the database holds of it, the writes that make the roster say so (``plan``).

An import means what the same ``PUT``s would, one per team and rep, except that it is one
whole: nothing is written unless everything is valid, and the order of its items does not
matter. So an identity may move between two reps of the same import (the PUTs would refuse it
in one of the two orders), while two reps of one import claiming the same identity, or one
item twice, is a 422 naming both places. An import never deletes a team, a rep or a team change.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

import orjson

from services.api.common.imports import (
    Error,
    Errors,
    csv_table,
    json_lists,
    path,
    placed,
    refusal,
    refuse_if,
    validated,
)
from services.api.roster.repository import Membership
from services.api.roster.schemas import (
    CSV_COLUMNS,
    CSV_REQUIRED,
    MAX_IDENTITIES,
    MAX_IDENTITIES_PER_REP,
    MAX_REPS,
    MAX_TEAMS,
    Counted,
    CsvRow,
    ImportCounts,
    RepImport,
    RepsCounted,
    TeamImport,
)

Pair = tuple[str, str]  # (provider, external_id)
CSV_HEADER = "rep_id,name,team_id,provider,external_id[,effective_from][,email]"
MAX_CSV_ROWS = MAX_IDENTITIES  # a rep without identity takes a row too; so does each identity


@dataclass(frozen=True, slots=True)
class Place:
    """Where an item is in the body, to name its fields: ``reps[3].team_id``, ``line 4: name``."""

    at: str
    csv: bool = False

    def field(self, name: str) -> str:
        return f"{self.at}: {name}" if self.csv else f"{self.at}.{name}"


@dataclass(frozen=True, slots=True)
class TeamItem:
    id: str
    name: str
    place: Place


@dataclass(frozen=True, slots=True)
class RepItem:
    id: str
    name: str
    team_id: str | None  # None: the rep's team stays as it is
    since: int | None  # epoch seconds the team counts from; None: the import's time
    identities: list[Pair]  # exactly the rep's identities after the import
    place: Place
    lines: tuple[int, ...] = ()  # CSV: the line of each identity
    email: str | None = None
    email_given: bool = False  # False: the rep's email stays as it is

    def identity_place(self, n: int) -> Place:
        """Where the rep's ``n``-th identity is (worked out only for an error: an import
        of 10,000 reps keeps no object per identity but its pair)."""
        if self.place.csv:
            return Place(f"line {self.lines[n]}", csv=True)
        return Place(f"{self.place.at}.identities[{n}]")


@dataclass(frozen=True, slots=True)
class RosterImport:
    teams: list[TeamItem]
    reps: list[RepItem]
    creates_teams: bool  # CSV: a missing team a rep names is created, named by its id

    def rep_ids(self) -> list[str]:
        return [rep.id for rep in self.reps]

    def pairs(self) -> list[Pair]:
        return [pair for rep in self.reps for pair in rep.identities]


@dataclass(frozen=True, slots=True)
class RepNow:
    """An imported rep as the database holds it before the import."""

    name: str
    email: str | None
    identities: frozenset[Pair]


@dataclass(frozen=True, slots=True)
class RosterState:
    """What the database holds that an import depends on."""

    teams: set[str]  # every team id
    histories: dict[str, list[Membership]]  # the import's reps that exist: their team history
    owners: dict[Pair, str]  # the import's identities that are held: their rep
    reps: dict[str, RepNow] = field(default_factory=dict)  # the import's reps that exist
    email_owners: dict[str, str] = field(default_factory=dict)  # the import's emails held


@dataclass(frozen=True, slots=True)
class ImportPlan:
    """The writes of an import, each a set (rows sorted by key: concurrent writers lock in one
    order)."""

    teams: list[tuple[str, str]]  # (id, name): created or renamed
    new_teams: list[str]  # created, named by their id, unless they exist by then
    reps: list[tuple[str, str]]  # (id, name): created or renamed
    identities: list[tuple[str, str, str]]  # (provider, external_id, rep_id): the reps' only
    memberships: list[tuple[str, int, str]]  # (rep_id, since, team_id): team changes
    emails: list[tuple[str, str | None]]  # (rep_id, email): the reps whose email is given
    counts: ImportCounts


# --- JSON -----------------------------------------------------------------------------------


def from_json(body: bytes) -> RosterImport:
    """The import of a JSON body; a 422 naming the first invalid fields (``reps[3].name``)
    and how many there are. Its shape and sizes are checked before any item is validated."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise refusal([Error("body", f"not JSON: {exc}")]) from None
    lists = json_lists(document, {"teams": MAX_TEAMS, "reps": MAX_REPS})
    errors = Errors()
    teams = [
        TeamItem(t.id, t.name, Place(f"teams[{i}]"))
        for i, t in enumerate(validated(TeamImport, placed("teams", lists["teams"]), errors))
    ]
    reps = list(validated(RepImport, placed("reps", lists["reps"]), errors))
    errors.refuse_if_any()
    imported = RosterImport(teams, [_json_rep(r, i) for i, r in enumerate(reps)], False)
    check(imported)
    return imported


def json_field(loc: Iterable[int | str]) -> str:
    """A pydantic location as a path into the body: ``reps[12].identities[0].external_id``."""
    return path(loc) or "body"


def _json_rep(rep: RepImport, index: int) -> RepItem:
    identities = [(i.provider, i.external_id) for i in rep.identities]
    since = _epoch(rep.effective_from)
    place = Place(f"reps[{index}]")
    given = "email" in rep.model_fields_set
    return RepItem(rep.id, rep.name, rep.team_id, since, identities, place, (), rep.email, given)


def _epoch(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp())


# --- CSV ------------------------------------------------------------------------------------


def from_csv(body: bytes) -> RosterImport:
    """The import of a CSV body (header row first), as Excel writes it (``common.imports``); a
    422 naming the line and the column of every invalid value (``line 14: external_id``)."""
    errors = Errors()
    table = csv_table(body, CSV_COLUMNS, CSV_REQUIRED, (), MAX_CSV_ROWS, errors)
    errors.refuse_if_any()  # rows of the wrong width first: their values mean nothing
    rows = ((row, f"line {n}: ") for row, n in zip(table.rows, table.lines, strict=True))
    checked = list(validated(CsvRow, rows, errors))
    errors.refuse_if_any()
    emails = bool(table.rows) and "email" in table.rows[0]  # the column is there
    imported = RosterImport([], _group(checked, table.lines, emails), creates_teams=True)
    check(imported)
    return imported


def _group(rows: list[CsvRow], lines: list[int], emails: bool = False) -> list[RepItem]:
    """One rep per ``rep_id`` (in order of first appearance), with the identities of its rows;
    its rows must agree on its name, team and ``effective_from``."""
    firsts: dict[str, tuple[CsvRow, int]] = {}
    identities: dict[str, list[tuple[Pair, int]]] = {}
    errors: list[Error] = []
    for row, line in zip(rows, lines, strict=True):
        if row.rep_id in firsts:
            errors += _disagreements(row, line, *firsts[row.rep_id])
        else:
            firsts[row.rep_id] = row, line
            identities[row.rep_id] = []
        if row.provider:
            identities[row.rep_id].append(((row.provider, row.external_id), line))
    refuse_if(errors)
    return [
        RepItem(
            rep_id,
            first.name,
            first.team_id,
            _epoch(first.effective_from),
            [pair for pair, _ in identities[rep_id]],
            Place(f"line {line}", csv=True),
            tuple(at for _, at in identities[rep_id]),
            first.email,
            emails,
        )
        for rep_id, (first, line) in firsts.items()
    ]


def _disagreements(row: CsvRow, line: int, first: CsvRow, first_line: int) -> list[Error]:
    return [
        Error(f"line {line}: {name}", f"differs from line {first_line} of rep {row.rep_id!r}")
        for name in ("name", "team_id", "effective_from", "email")
        if getattr(row, name) != getattr(first, name)
    ]


# --- checks and plan ------------------------------------------------------------------------


def check(imported: RosterImport) -> None:
    """What makes an import invalid by itself: an item twice, an identity claimed by two of
    its reps, too many reps or identities. A 422 naming each."""
    errors = _repeated((t.id, t.place) for t in imported.teams)
    errors += _repeated((r.id, r.place) for r in imported.reps)
    if len(imported.reps) > MAX_REPS:
        errors.append(Error("reps", f"more than {MAX_REPS} reps; split the import"))
    identities = sum(len(rep.identities) for rep in imported.reps)
    if identities > MAX_IDENTITIES:
        errors.append(Error("body", f"more than {MAX_IDENTITIES} identities; split the import"))
    errors += _too_many_identities(imported.reps)
    errors += _claimed_twice(imported.reps)
    errors += _email_twice(imported.reps)
    refuse_if(errors)


def _email_twice(reps: list[RepItem]) -> list[Error]:
    """An email given to two reps of the import."""
    claims: dict[str, RepItem] = {}
    errors = []
    for rep in reps:
        if rep.email_given and rep.email is not None:
            owner = claims.setdefault(rep.email, rep)
            if owner is not rep:
                message = f"{rep.email} is also the email of rep {owner.id!r} ({owner.place.at})"
                errors.append(Error(rep.place.field("email"), message))
    return errors


def _repeated(items: Iterable[tuple[str, Place]]) -> list[Error]:
    seen: dict[str, Place] = {}
    errors = []
    for item_id, place in items:
        first = seen.setdefault(item_id, place)
        if first is not place:
            errors.append(Error(place.field("id"), f"{item_id!r} is also at {first.at}"))
    return errors


def _too_many_identities(reps: list[RepItem]) -> list[Error]:
    """A CSV's rep with too many rows (JSON: the schema counts them); named at the first extra."""
    limit = MAX_IDENTITIES_PER_REP
    return [
        Error(
            rep.identity_place(limit).field("external_id"),
            f"rep {rep.id!r} has more than {limit} identities",
        )
        for rep in reps
        if len(rep.identities) > limit
    ]


def _claimed_twice(reps: list[RepItem]) -> list[Error]:
    """An identity of two reps of the import (one rep may list it twice: it counts once)."""
    claims: dict[Pair, RepItem] = {}
    errors = []
    for rep in reps:
        for n, pair in enumerate(rep.identities):
            owner = claims.setdefault(pair, rep)
            if owner.id != rep.id:
                first = owner.identity_place(owner.identities.index(pair)).at
                errors.append(
                    Error(
                        rep.identity_place(n).field("external_id"),
                        f"identity {_pair(pair)} is also claimed by rep {owner.id!r} ({first})",
                    )
                )
    return errors


def _pair(pair: Pair) -> str:
    return f"{pair[0]}:{pair[1]}"


def plan(
    imported: RosterImport, state: RosterState, team_changes: Iterable[tuple[str, int, str]]
) -> ImportPlan:
    """The writes that give the roster ``imported``, given ``state`` and the reps' team changes
    (``(rep_id, since, team_id)``, decided by ``service``); the same checks as the PUTs: a 422
    naming a team that does not exist (JSON: neither in the database nor in the import), then
    a 409 naming an identity held by a rep outside the import."""
    new_teams = _missing_teams(imported, state)  # a CSV creates them; JSON names them first
    if not imported.creates_teams:
        refuse_if(_unknown_teams(imported, new_teams))
    conflicts = _held_elsewhere(imported, state) + _emails_elsewhere(imported, state)
    if conflicts:
        raise refusal(conflicts, status=409)
    identities = sorted({(*pair, rep.id) for rep in imported.reps for pair in rep.identities})
    memberships = sorted(team_changes)
    return ImportPlan(
        teams=sorted((t.id, t.name) for t in imported.teams),
        new_teams=sorted(new_teams),
        reps=sorted((r.id, r.name) for r in imported.reps),
        identities=identities,
        memberships=memberships,
        emails=sorted((r.id, r.email) for r in imported.reps if r.email_given),
        counts=_counts(imported, state, new_teams, len(identities), memberships),
    )


def _emails_elsewhere(imported: RosterImport, state: RosterState) -> list[Error]:
    """Emails held by a rep the import leaves alone."""
    importing = set(imported.rep_ids())
    errors = []
    for rep in imported.reps:
        owner = state.email_owners.get(rep.email or "") if rep.email_given else None
        if owner is not None and owner != rep.id and owner not in importing:
            errors.append(
                Error(rep.place.field("email"), f"{rep.email} is the email of rep {owner}")
            )
    return errors


def _missing_teams(imported: RosterImport, state: RosterState) -> set[str]:
    """Teams the reps name that are neither in the database nor in the import."""
    named = {t.id for t in imported.teams}
    return {r.team_id for r in imported.reps if r.team_id is not None} - state.teams - named


def _unknown_teams(imported: RosterImport, missing: set[str]) -> list[Error]:
    return [
        Error(
            rep.place.field("team_id"),
            f"no team {rep.team_id!r}; add it to teams, or PUT /v1/teams/{rep.team_id} first",
        )
        for rep in imported.reps
        if rep.team_id in missing
    ]


def _held_elsewhere(imported: RosterImport, state: RosterState) -> list[Error]:
    """Identities held by a rep the import leaves alone (an imported rep's are replaced)."""
    importing = set(imported.rep_ids())
    errors = []
    for rep in imported.reps:
        for n, pair in enumerate(rep.identities):
            owner = state.owners.get(pair)
            if owner is not None and owner != rep.id and owner not in importing:
                message = f"identity {_pair(pair)} belongs to rep {owner}"
                errors.append(Error(rep.identity_place(n).field("external_id"), message))
    return errors


def _counts(
    imported: RosterImport,
    state: RosterState,
    new_teams: set[str],
    identities: int,
    moves: list[tuple[str, int, str]],
) -> ImportCounts:
    teams_updated = sum(1 for t in imported.teams if t.id in state.teams)
    teams_created = len(imported.teams) - teams_updated + len(new_teams)
    moved = {rep for rep, _, _ in moves}
    existing = [r for r in imported.reps if r.id in state.histories]
    unchanged = sum(1 for r in existing if r.id not in moved and _same(r, state.reps.get(r.id)))
    return ImportCounts(
        teams=Counted(created=teams_created, updated=teams_updated),
        reps=RepsCounted(
            created=len(imported.reps) - len(existing),
            updated=len(existing),
            unchanged=unchanged,
            moved=len(moved & {r.id for r in existing}),
        ),
        identities=identities,
        team_changes=len(moves),
    )


def _same(rep: RepItem, now: RepNow | None) -> bool:
    """Whether the import leaves an existing rep as it is (its team aside)."""
    if now is None:
        return False
    email = now.email if not rep.email_given else rep.email
    return (rep.name, email, frozenset(rep.identities)) == (now.name, now.email, now.identities)
