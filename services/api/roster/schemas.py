"""The roster's shapes in and out of the API (``interfaces.md``).

The bulk import (``POST /v1/roster/import``) takes the same fields, with the same bounds, as
``PUT /v1/teams/{id}`` and ``PUT /v1/reps/{id}``: the field types below are shared. What comes
in derives from ``ApiModel``: no control characters in any text (``shared.api_model``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    ValidationInfo,
    field_validator,
    model_serializer,
)

from shared.api_model import ApiModel

# The ids of the paths (``Id`` in services/api/common/params.py): a team or rep created by an
# import must be reachable at /v1/teams/{id} and /v1/reps/{id}.
ID_PATTERN = r"^[A-Za-z0-9._~-]+$"
RosterId = Annotated[str, Field(min_length=1, max_length=64, pattern=ID_PATTERN)]
Name = Annotated[str, Field(min_length=1, max_length=200)]
MAX_IDENTITIES_PER_REP = 50
# Bounds of one import (the body's bytes are bounded by the route).
MAX_TEAMS = 10_000
MAX_REPS = 50_000
MAX_IDENTITIES = 200_000  # in all; a CSV has one row per identity


def _email(value: str) -> str:
    """An email address as kept: trimmed and lower-case (emails match case-insensitively)."""
    value = value.strip().lower()
    local, at, domain = value.rpartition("@")
    if not at or not local or "." not in domain.strip(".") or any(c.isspace() for c in value):
        raise ValueError("not an email address (name@example.com)")
    return value


Email = Annotated[str, Field(max_length=320), AfterValidator(_email)]


class TeamIn(ApiModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"name": "Paris Grands Comptes"}]})
    name: Name


class TeamPatch(ApiModel):
    """``PATCH /v1/teams/{id}`` (JSON Merge Patch): the fields given change."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"name": "Paris Nord"}]})
    name: Name | None = None


class TeamOut(BaseModel):
    id: str
    name: str
    members: list[str] = Field(description="the reps in it now (not those who left)")


class TeamSummary(BaseModel):
    id: str
    name: str
    reps: int = Field(description="how many reps are in it now")


class TeamList(BaseModel):
    items: list[TeamSummary]
    next_cursor: str | None = Field(
        default=None, description="the next page's cursor (?cursor=); null on the last page"
    )


class IdentityModel(ApiModel):
    provider: str = Field(min_length=1, max_length=64)
    external_id: str = Field(min_length=1, max_length=256)


class IdentityOut(BaseModel):
    provider: str
    external_id: str
    learned_from: str | None = Field(
        default=None,
        description="`email` when SalesPulse learnt it: an event of this identity carried the "
        "rep's email; null when given in the roster",
    )
    learned_at: datetime | None = None

    @model_serializer(mode="wrap")
    def _given_ones_plain(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """An identity given in the roster reads as it was given: ``{provider, external_id}``
        (a PUT of what a GET answered is the same rep)."""
        data: dict[str, Any] = handler(self)
        if self.learned_from is None:
            data.pop("learned_from", None)
            data.pop("learned_at", None)
        return data


REP_EXAMPLE: dict[str, Any] = {
    "name": "Chloé Martin",
    "team_id": "paris",
    "email": "chloe.martin@example.com",
    "identities": [{"provider": "hubspot", "external_id": "812"},
                   {"provider": "aircall", "external_id": "100042"}],
    "effective_from": "2027-01-01T00:00:00+01:00",
}  # fmt: skip
EFFECTIVE = "when a team change takes effect (default: now)"
LEFT = "when the rep left: history kept, activity after it unassigned; null: still here"


class RepFields(ApiModel):
    """What a rep is made of, in a PUT and in an import."""

    name: Name
    team_id: str | None = Field(default=None, max_length=64)
    identities: list[IdentityModel] = Field(default_factory=list, max_length=MAX_IDENTITIES_PER_REP)
    effective_from: AwareDatetime | None = Field(default=None, description=EFFECTIVE)
    email: Email | None = None


class RepIn(RepFields):
    """``PUT /v1/reps/{id}``: the whole rep (what is not given is empty: no email, no
    identities, still here; a ``team_id`` left out keeps the current team)."""

    model_config = ConfigDict(json_schema_extra={"examples": [REP_EXAMPLE]})
    left_at: AwareDatetime | None = Field(default=None, description=LEFT)


class RepPatch(ApiModel):
    """``PATCH /v1/reps/{id}`` (JSON Merge Patch, RFC 7396): only the fields given change;
    ``null`` removes an email or a leaving date. A team move with ``effective_from`` keeps the
    rep's identities; ``identities``, when given, become exactly those."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"team_id": "lyon", "effective_from": "2027-02-01T00:00:00+01:00"},
                {"left_at": "2027-03-31T18:00:00+02:00"},
                {"email": "chloe@example.com"},
            ]
        }
    )
    name: Name | None = None
    team_id: str | None = Field(default=None, max_length=64)
    identities: list[IdentityModel] | None = Field(default=None, max_length=MAX_IDENTITIES_PER_REP)
    effective_from: AwareDatetime | None = Field(default=None, description=EFFECTIVE)
    email: Email | None = None
    left_at: AwareDatetime | None = Field(default=None, description=LEFT)


class Membership(BaseModel):
    team_id: str
    effective_from: datetime


class RepOut(BaseModel):
    id: str
    name: str
    team_id: str | None = Field(description="the team now (the last one, after leaving)")
    email: str | None = None
    left_at: datetime | None = None
    identities: list[IdentityOut]
    teams: list[Membership]


class RepList(BaseModel):
    items: list[RepOut]
    next_cursor: str | None = Field(
        default=None, description="the next page's cursor (?cursor=); null on the last page"
    )


class TeamImport(TeamIn):
    """A team of an import: what ``PUT /v1/teams/{id}`` takes, with its ``id``."""

    id: RosterId


class RepImport(RepFields):
    """A rep of an import: what ``PUT /v1/reps/{id}`` takes (its leaving aside: ``PATCH``),
    with its ``id``. An ``email`` left out leaves the rep's as it is."""

    id: RosterId


class RosterImportIn(ApiModel):
    """The JSON body of ``POST /v1/roster/import``."""

    teams: list[TeamImport] = Field(default_factory=list, max_length=MAX_TEAMS)
    reps: list[RepImport] = Field(default_factory=list, max_length=MAX_REPS)


def _blank_is_none(value: Any) -> Any:
    return None if value == "" else value


class CsvRow(ApiModel):
    """One line of a CSV import: a rep and one of its identities (both empty: none).

    A blank ``team_id`` leaves the rep's team as it is, as an absent one does in a PUT; a team
    named here must be a valid id, since the import creates it when it does not exist."""

    rep_id: RosterId
    name: Name
    team_id: Annotated[RosterId | None, BeforeValidator(_blank_is_none)] = None
    provider: str = Field(default="", max_length=64)
    external_id: str = Field(default="", max_length=256)
    effective_from: Annotated[AwareDatetime | None, BeforeValidator(_blank_is_none)] = None
    email: Annotated[Email | None, BeforeValidator(_blank_is_none)] = None

    @field_validator("external_id")
    @classmethod
    def _paired(cls, external_id: str, info: ValidationInfo) -> str:
        provider = info.data.get("provider")
        if provider is not None and bool(provider) != bool(external_id):
            raise ValueError("provider and external_id are both given, or both empty")
        return external_id


CSV_COLUMNS = tuple(CsvRow.model_fields)
CSV_REQUIRED = frozenset(CSV_COLUMNS) - {"effective_from", "email"}


class Counted(BaseModel):
    created: int
    updated: int = Field(description="existed before (some may be left unchanged)")


class RepsCounted(Counted):
    unchanged: int = Field(default=0, description="existed, and nothing about them changes")
    moved: int = Field(default=0, description="existed, and change teams")


class ImportCounts(BaseModel):
    """What an import did, or would do (``dry_run``): teams and reps created or updated, the
    reps left unchanged and those moved to another team, the identities the imported reps
    hold, and the team changes recorded. A dry run of an invalid import lists its
    ``errors`` (what a real one would refuse) instead."""

    dry_run: bool = False
    teams: Counted
    reps: RepsCounted
    identities: int
    team_changes: int
    errors: list[dict[str, str]] = Field(default_factory=list)
    errors_total: int = 0


def inline_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The JSON schema of ``model`` with its definitions in place of each ``$ref``: for a body
    described by hand in OpenAPI (a route that reads JSON and CSV itself)."""
    schema = model.model_json_schema()
    definitions = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return inline(definitions[node["$ref"].rsplit("/", 1)[-1]])
            return {key: inline(value) for key, value in node.items()}
        if isinstance(node, list):
            return [inline(value) for value in node]
        return node

    result: dict[str, Any] = inline(schema)
    return result
