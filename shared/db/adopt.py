"""Adopting a database made before migrations existed (architecture decision 13).

Releases before Alembic created their tables at start (``create_all``, then "add the missing
columns"), so their databases have no ``alembic_version`` table. Such a database is recognised
by its tables, brought to the shape the last of those releases left (the two ``updated_at``
columns an earlier one lacked), checked column by column against the baseline revision, and
stamped with it; the migrations after the baseline then upgrade it in place with its data.
"""

from __future__ import annotations

from sqlalchemy import Connection, inspect, text

BASELINE = "0001"
# The schema of revision 0001, as it was released: table -> columns. Kept here as it was, even
# when the models move on (they describe head, not the baseline).
BASELINE_SHAPE: dict[str, frozenset[str]] = {
    "teams": frozenset({"id", "name"}),
    "reps": frozenset({"id", "name"}),
    "rep_teams": frozenset({"rep_id", "effective_from", "team_id"}),
    "identities": frozenset({"provider", "external_id", "rep_id"}),
    "roster_version": frozenset({"id", "version"}),
    "kpi_buckets": frozenset({"scope", "metric", "grain", "bucket_start", "subject_id", "value"}),
    "applied_events": frozenset({"source", "id", "applied_at"}),
    "targets": frozenset({"scope", "subject_id", "metric", "period", "value"}),
    "kpi_states": frozenset({"kind", "key", "state", "updated_at"}),
    "consumer_offsets": frozenset(
        {"consumer_group", "topic", "partition", "next_offset", "updated_at"}
    ),
}
# Added by a release before the baseline's (with a default): an older database may lack them.
_ADDED_BEFORE_BASELINE = {("kpi_states", "updated_at"), ("consumer_offsets", "updated_at")}


class UnrecognisedSchema(RuntimeError):
    """The database has SalesPulse tables, but not the shape of any release: not touched."""


def adopt_unversioned(connection: Connection) -> bool:
    """Stamp a pre-migrations SalesPulse database with the baseline; True if it did."""
    tables = set(inspect(connection).get_table_names())
    if "alembic_version" in tables or not tables & set(BASELINE_SHAPE):
        return False  # versioned already, or empty: the migrations take it from there
    _add_columns_older_releases_lacked(connection)
    missing = _missing(connection)
    if missing:
        raise UnrecognisedSchema(
            "the database has SalesPulse tables but not the shape of a release; missing: "
            + ", ".join(sorted(missing))
        )
    connection.execute(
        text(
            "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL, "
            "CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))"
        )
    )
    connection.execute(
        text("INSERT INTO alembic_version (version_num) VALUES (:v)"), {"v": BASELINE}
    )
    return True


def _add_columns_older_releases_lacked(connection: Connection) -> None:
    inspector = inspect(connection)
    for table, column in sorted(_ADDED_BEFORE_BASELINE):
        if table not in inspector.get_table_names():
            continue
        if column not in {c["name"] for c in inspector.get_columns(table)}:
            # names from the constant above, not from input
            connection.execute(
                text(f"ALTER TABLE {table} ADD COLUMN {column} BIGINT NOT NULL DEFAULT 0")
            )


def _missing(connection: Connection) -> set[str]:
    inspector = inspect(connection)
    present = set(inspector.get_table_names())
    missing: set[str] = set()
    for table, columns in BASELINE_SHAPE.items():
        if table not in present:
            missing.add(table)
            continue
        have = {c["name"] for c in inspector.get_columns(table)}
        missing.update(f"{table}.{c}" for c in columns - have)
    return missing
