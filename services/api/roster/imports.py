"""The bulk roster import's rules, pure (no I/O): a JSON or CSV body in, a checked import out;
then, given what the database holds of it, the writes that make the roster say so (``plan``).

An import means what the same ``PUT``s would, one per team and rep, except that it is one
whole: nothing is written unless everything is valid, and the order of its items does not
matter. So an identity may move between two reps of the same import (the PUTs would refuse it
in one of the two orders), while two reps of one import claiming the same identity, or one
item twice, is a 422 naming both places. An import never deletes a team, a rep or a team change.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from pydantic import BaseModel, ValidationError

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
    TeamImport,
)
from shared.problems import (
    MAX_FIELD_CHARS,
    MAX_MESSAGE_CHARS,
    MAX_PROBLEMS,
    Problem,
    Unprocessable,
    clip,
    describe,
)

Pair = tuple[str, str]  # (provider, external_id)
CSV_HEADER = "rep_id,name,team_id,provider,external_id[,effective_from]"
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
class RosterState:
    """What the database holds that an import depends on."""

    teams: set[str]  # every team id
    histories: dict[str, list[Membership]]  # the import's reps that exist: their team history
    owners: dict[Pair, str]  # the import's identities that are held: their rep


@dataclass(frozen=True, slots=True)
class ImportPlan:
    """The writes of an import, each a set (rows sorted by key: concurrent writers lock in one
    order)."""

    teams: list[tuple[str, str]]  # (id, name): created or renamed
    new_teams: list[str]  # created, named by their id, unless they exist by then
    reps: list[tuple[str, str]]  # (id, name): created or renamed
    identities: list[tuple[str, str, str]]  # (provider, external_id, rep_id): the reps' only
    memberships: list[tuple[str, int, str]]  # (rep_id, since, team_id): team changes
    counts: ImportCounts


@dataclass(frozen=True, slots=True)
class Error:
    field: str
    message: str


@dataclass(slots=True)
class Errors:
    """The errors of an import as they are found: the first ``MAX_PROBLEMS`` kept, the others
    only counted. A body of a million bad rows costs a counter, not a million objects."""

    kept: list[Error] = field(default_factory=list)
    total: int = 0

    def add(self, error: Error) -> None:
        self.total += 1
        if len(self.kept) < MAX_PROBLEMS:
            self.kept.append(error)

    def extend(self, errors: Iterable[Error]) -> None:
        for error in errors:
            self.add(error)

    def refuse_if_any(self) -> None:
        if self.total:
            raise refusal(self.kept, total=self.total)


def refusal(errors: list[Error], *, status: int = 422, total: int | None = None) -> Problem:
    """The problem naming ``errors``: the first ``MAX_PROBLEMS``, each clipped, and how many
    there were in all (``total``, when only the first were kept)."""
    listed = [
        {"field": clip(e.field, MAX_FIELD_CHARS), "message": clip(e.message, MAX_MESSAGE_CHARS)}
        for e in errors[:MAX_PROBLEMS]
    ]
    count = len(errors) if total is None else total
    detail = f"nothing imported: {describe(listed)}"
    if status == 409:
        return Problem(detail, status=409, slug="conflict", errors=listed, errors_total=count)
    return Unprocessable(detail, errors=listed, errors_total=count)


def _refuse_if(errors: list[Error]) -> None:
    if errors:
        raise refusal(errors)


def _validated(
    model: type[BaseModel], items: Iterable[tuple[Any, str]], errors: Errors
) -> Iterator[Any]:
    """Each valid item of ``items`` (value, its place's prefix) as ``model``; the errors of the
    others go to ``errors``. One item at a time: a short call each, so a thread parsing a big
    import lets the event loop run between them (a whole list validated at once would hold
    the interpreter for seconds)."""
    for value, prefix in items:
        try:
            yield model.model_validate(value)
        except ValidationError as exc:
            for e in exc.errors(include_url=False, include_input=False, include_context=False):
                nested = not prefix.endswith(" ")  # "reps[3]" + ".name"; "line 4: " + "name"
                path = _path(e["loc"], nested)
                errors.add(Error(prefix + path if path else prefix.rstrip(": "), e["msg"]))


# --- JSON -----------------------------------------------------------------------------------


def from_json(body: bytes) -> RosterImport:
    """The import of a JSON body; a 422 naming the first invalid fields (``reps[3].name``)
    and how many there are. Its shape and sizes are checked before any item is validated."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise refusal([Error("body", f"not JSON: {exc}")]) from None
    lists = _json_lists(document)
    errors = Errors()
    teams = [
        TeamItem(t.id, t.name, Place(f"teams[{i}]"))
        for i, t in enumerate(_validated(TeamImport, _each("teams", lists["teams"]), errors))
    ]
    reps = list(_validated(RepImport, _each("reps", lists["reps"]), errors))
    errors.refuse_if_any()
    imported = RosterImport(teams, [_json_rep(r, i) for i, r in enumerate(reps)], False)
    check(imported)
    return imported


def _json_lists(document: Any) -> dict[str, list[Any]]:
    """The body's ``teams`` and ``reps`` lists, within their bounds (``RosterImportIn``)."""
    if not isinstance(document, dict):
        raise refusal([Error("body", "must be an object {teams: [...], reps: [...]}")])
    errors = [Error(name, "unknown field") for name in document if name not in ("teams", "reps")]
    lists: dict[str, list[Any]] = {}
    for name, limit in (("teams", MAX_TEAMS), ("reps", MAX_REPS)):
        value = document.get(name, [])
        if not isinstance(value, list):
            errors.append(Error(name, "must be a list"))
        elif len(value) > limit:
            errors.append(Error(name, f"more than {limit} {name}; split the import"))
        lists[name] = value if isinstance(value, list) else []
    _refuse_if(errors)
    return lists


def _each(name: str, values: list[Any]) -> Iterator[tuple[Any, str]]:
    return ((value, f"{name}[{i}]") for i, value in enumerate(values))


def _path(loc: Iterable[int | str], nested: bool = False) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path or nested else str(part)
    return path


def json_field(loc: Iterable[int | str]) -> str:
    """A pydantic location as a path into the body: ``reps[12].identities[0].external_id``."""
    return _path(loc) or "body"


def _json_rep(rep: RepImport, index: int) -> RepItem:
    identities = [(i.provider, i.external_id) for i in rep.identities]
    since = _epoch(rep.effective_from)
    return RepItem(rep.id, rep.name, rep.team_id, since, identities, Place(f"reps[{index}]"))


def _epoch(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp())


# --- CSV ------------------------------------------------------------------------------------


def from_csv(body: bytes) -> RosterImport:
    """The import of a CSV body (header row first); a 422 naming the line and the column of
    every invalid value (``line 14: external_id``)."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise refusal([Error("body", f"not UTF-8 text (byte {exc.start})")]) from None
    errors = Errors()
    lines, rows = _csv_table(text, errors)
    errors.refuse_if_any()  # rows of the wrong width first: their values mean nothing
    placed = ((row, f"line {n}: ") for row, n in zip(rows, lines, strict=True))
    validated = list(_validated(CsvRow, placed, errors))
    errors.refuse_if_any()
    imported = RosterImport([], _group(validated, lines), creates_teams=True)
    check(imported)
    return imported


def _csv_table(text: str, errors: Errors) -> tuple[list[int], list[dict[str, str]]]:
    """The line number and the cells (by column) of every row that is not blank; the rows of
    the wrong width go to ``errors``."""
    reader = csv.reader(io.StringIO(text, newline=""))
    lines: list[int] = []
    rows: list[dict[str, str]] = []
    try:
        columns = _header(next(reader, None))
        for cells in reader:
            line = reader.line_num  # where the row ends (a quoted value may span lines)
            if not any(cells):
                continue
            if len(cells) != len(columns):
                errors.add(Error(f"line {line}", _width(columns, cells)))
            elif len(rows) == MAX_CSV_ROWS:
                raise refusal([Error("body", f"more than {MAX_CSV_ROWS} rows; split the import")])
            else:
                lines.append(line)
                rows.append(dict(zip(columns, cells, strict=True)))
    except csv.Error as exc:
        errors.add(Error(f"line {reader.line_num}", f"not CSV: {exc}"))
    return lines, rows


def _width(columns: list[str], cells: list[str]) -> str:
    return f"{len(cells)} values for {len(columns)} columns ({','.join(columns)})"


def _header(cells: list[str] | None) -> list[str]:
    """The columns, by the header row; any order, ``effective_from`` optional."""
    if not cells:
        raise refusal([Error("line 1", f"a header row is required: {CSV_HEADER}")])
    columns = [cell.strip().lower() for cell in cells]
    errors = [
        Error(f"line 1: {c}", f"unknown column; the header is {CSV_HEADER}")
        for c in columns
        if c not in CSV_COLUMNS
    ]
    errors += [
        Error(f"line 1: {c}", "repeated column") for c in set(columns) if columns.count(c) > 1
    ]
    errors += [Error(f"line 1: {c}", "missing column") for c in sorted(CSV_REQUIRED - set(columns))]
    _refuse_if(errors)
    return columns


def _group(rows: list[CsvRow], lines: list[int]) -> list[RepItem]:
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
    _refuse_if(errors)
    return [
        RepItem(
            rep_id,
            first.name,
            first.team_id,
            _epoch(first.effective_from),
            [pair for pair, _ in identities[rep_id]],
            Place(f"line {line}", csv=True),
            tuple(at for _, at in identities[rep_id]),
        )
        for rep_id, (first, line) in firsts.items()
    ]


def _disagreements(row: CsvRow, line: int, first: CsvRow, first_line: int) -> list[Error]:
    return [
        Error(f"line {line}: {name}", f"differs from line {first_line} of rep {row.rep_id!r}")
        for name in ("name", "team_id", "effective_from")
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
    _refuse_if(errors)


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
        _refuse_if(_unknown_teams(imported, new_teams))
    conflicts = _held_elsewhere(imported, state)
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
        counts=_counts(imported, state, new_teams, len(identities), len(memberships)),
    )


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
    imported: RosterImport, state: RosterState, new_teams: set[str], identities: int, moves: int
) -> ImportCounts:
    teams_updated = sum(1 for t in imported.teams if t.id in state.teams)
    reps_updated = sum(1 for r in imported.reps if r.id in state.histories)
    teams_created = len(imported.teams) - teams_updated + len(new_teams)
    return ImportCounts(
        teams=Counted(created=teams_created, updated=teams_updated),
        reps=Counted(created=len(imported.reps) - reps_updated, updated=reps_updated),
        identities=identities,
        team_changes=moves,
    )
