"""The roster's shapes in and out of the API (``interfaces.md``).

The bulk import (``POST /v1/roster/import``) takes the same fields, with the same bounds, as
``PUT /v1/teams/{id}`` and ``PUT /v1/reps/{id}``: the field types below are shared. What comes
in derives from ``ApiModel``: no control characters in any text (``shared.api_model``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    Field,
    ValidationInfo,
    field_validator,
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


class TeamIn(ApiModel):
    name: Name


class TeamOut(BaseModel):
    id: str
    name: str
    members: list[str]


class IdentityModel(ApiModel):
    provider: str = Field(min_length=1, max_length=64)
    external_id: str = Field(min_length=1, max_length=256)


class RepIn(ApiModel):
    name: Name
    team_id: str | None = Field(default=None, max_length=64)
    identities: list[IdentityModel] = Field(default_factory=list, max_length=MAX_IDENTITIES_PER_REP)
    effective_from: AwareDatetime | None = None


class Membership(BaseModel):
    team_id: str
    effective_from: datetime


class RepOut(BaseModel):
    id: str
    name: str
    team_id: str | None
    identities: list[IdentityModel]
    teams: list[Membership]


class TeamImport(TeamIn):
    """A team of an import: what ``PUT /v1/teams/{id}`` takes, with its ``id``."""

    id: RosterId


class RepImport(RepIn):
    """A rep of an import: what ``PUT /v1/reps/{id}`` takes, with its ``id``."""

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

    @field_validator("external_id")
    @classmethod
    def _paired(cls, external_id: str, info: ValidationInfo) -> str:
        provider = info.data.get("provider")
        if provider is not None and bool(provider) != bool(external_id):
            raise ValueError("provider and external_id are both given, or both empty")
        return external_id


CSV_COLUMNS = tuple(CsvRow.model_fields)
CSV_REQUIRED = frozenset(CSV_COLUMNS) - {"effective_from"}


class Counted(BaseModel):
    created: int
    updated: int


class ImportCounts(BaseModel):
    """What an import did: teams and reps created or updated (an update may change nothing),
    the identities the imported reps now hold, and the team changes recorded."""

    teams: Counted
    reps: Counted
    identities: int
    team_changes: int


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
