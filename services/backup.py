"""Back up SalesPulse's database while it runs, and restore it while it is stopped.

``backup(database_url, path)`` and ``restore(path, database_url)`` take the same URL as
``SALESPULSE_DATABASE_URL`` (a driver in it, ``+aiosqlite`` or ``+asyncpg``, is ignored).

- **SQLite**: SQLite's online backup API (``sqlite3.Connection.backup``) copies the whole
  database in one step inside a read transaction: a consistent snapshot of what was committed,
  while SalesPulse goes on writing (WAL mode: neither waits for the other). The copy is one
  self-contained file (rollback-journal mode, no ``-wal`` beside it), checked with
  ``PRAGMA integrity_check`` before it replaces ``path``. Restoring checks the file the same way,
  refuses while another process has the database open, and swaps it in atomically, leaving no
  stale ``-wal`` or ``-shm`` of the old database to be replayed onto the new one.
- **PostgreSQL**: ``pg_dump --format=custom`` (one snapshot in a repeatable-read transaction:
  writers carry on). Restoring turns the archive into SQL with ``pg_restore`` and runs it with
  ``psql`` in a single transaction that first drops SalesPulse's tables: the database is either
  wholly the backup's or left as it was. Owners and grants are not restored (the restoring role
  owns everything), so a backup moves between servers and role names. The client tools must be
  at least the server's major version; the newest under ``/usr/lib/postgresql/*/bin`` is used,
  else those on ``PATH``. The password goes to them in the environment, never on a command line.

Both write the backup to a temporary name beside ``path`` and rename it, so ``path`` is always
a whole backup. A restore refuses a backup made by a later release (a schema revision this one
does not know) and, unless ``replace``, a database that already has tables. The restored
database is at the backup's revision; ``salespulse serve`` (or ``salespulse migrate``) brings it
to this release's at start.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy.engine import URL, make_url

from shared.db.migrate import alembic_config

Kind = Literal["sqlite", "postgresql"]
SQLITE_MAGIC = b"SQLite format 3\x00"
PGDUMP_MAGIC = b"PGDMP"
PG_BINDIRS = "/usr/lib/postgresql/*/bin"
# Every table, view and sequence of the schema the archive fills, dropped in the restore's
# transaction (tables of a later revision too, so that ``migrate`` finds what it expects).
_EMPTY_PUBLIC = """
DO $$
DECLARE r record;
BEGIN
  FOR r IN SELECT format('%I.%I', schemaname, viewname) AS name FROM pg_views
           WHERE schemaname = 'public' LOOP
    EXECUTE 'DROP VIEW IF EXISTS ' || r.name || ' CASCADE';
  END LOOP;
  FOR r IN SELECT format('%I.%I', schemaname, tablename) AS name FROM pg_tables
           WHERE schemaname = 'public' LOOP
    EXECUTE 'DROP TABLE IF EXISTS ' || r.name || ' CASCADE';
  END LOOP;
  FOR r IN SELECT format('%I.%I', sequence_schema, sequence_name) AS name
           FROM information_schema.sequences WHERE sequence_schema = 'public' LOOP
    EXECUTE 'DROP SEQUENCE IF EXISTS ' || r.name || ' CASCADE';
  END LOOP;
END $$;
"""


class BackupError(RuntimeError):
    """A backup or a restore that cannot be done; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class Archive:
    """A backup file: where it is, of which database, at which schema revision, how big."""

    path: Path
    kind: Kind
    revision: str | None  # Alembic's; None for a database of a release before migrations
    size: int


def backup(database_url: str, path: str | os.PathLike[str]) -> Archive:
    """Write a consistent backup of the database at ``database_url`` to ``path`` (replaced if
    it exists; its folder must exist; readable by its owner only), safe while SalesPulse
    writes to the database."""
    url, target = _parse(database_url), Path(path)
    if not target.parent.is_dir():
        raise BackupError(f"no folder {target.parent} to write the backup to")
    kind = _kind(url)
    with _partial(target) as partial:
        if kind == "sqlite":
            revision = _backup_sqlite(_sqlite_path(url), partial)
        else:
            revision = _backup_postgres(url, partial)
        partial.chmod(0o600)  # the floor's data and its channels' secrets: the owner's alone
    return Archive(target, kind, revision, target.stat().st_size)


def restore(path: str | os.PathLike[str], database_url: str, *, replace: bool = False) -> Archive:
    """Bring the database at ``database_url`` back to the backup at ``path``. SalesPulse must
    be stopped: a database in use is refused. So is one that has tables, unless ``replace``."""
    url, source = _parse(database_url), Path(path)
    kind = _kind(url)
    if not source.is_file():
        raise BackupError(f"no backup file at {source}")
    with source.open("rb") as file:
        magic = file.read(len(SQLITE_MAGIC))
    found = (
        "sqlite" if magic == SQLITE_MAGIC else "postgresql" if magic[:5] == PGDUMP_MAGIC else None
    )
    if found != kind:
        what = f"a {found} backup" if found else "not a SalesPulse backup"
        raise BackupError(f"{source} is {what}; the database at the URL is {kind}")
    if kind == "sqlite":
        revision = _restore_sqlite(source, _sqlite_path(url), replace)
    else:
        revision = _restore_postgres(source, url, replace)
    return Archive(source, kind, revision, source.stat().st_size)


# -- SQLite ----------------------------------------------------------------------------------


def _backup_sqlite(database: Path, partial: Path) -> str | None:
    if not database.is_file():
        raise BackupError(f"no SQLite database at {database}")
    with (
        closing(sqlite3.connect(database, timeout=30)) as source,
        closing(sqlite3.connect(partial)) as copy,
    ):
        source.backup(copy)  # one step (pages=-1): one read transaction, one snapshot
        copy.execute("PRAGMA journal_mode=DELETE")  # a single file, no -wal to carry along
        _check_sqlite(copy, partial)
        return _sqlite_revision(copy)


def _restore_sqlite(source: Path, database: Path, replace: bool) -> str | None:
    with closing(sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True)) as archive:
        _check_sqlite(archive, source)
        revision = _sqlite_revision(archive)
    _known(revision)
    if database.exists():
        _take_offline(database, replace)
    with _partial(database) as partial:
        shutil.copyfile(source, partial)
        for stale in ("-wal", "-shm", "-journal"):  # of the database being replaced
            database.with_name(database.name + stale).unlink(missing_ok=True)
    return revision


def _take_offline(database: Path, replace: bool) -> None:
    """Refuse a database that has tables (unless ``replace``) or that a process has open."""
    try:
        with closing(sqlite3.connect(database, timeout=1)) as conn:
            tables = conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'")
            if tables.fetchone()[0] and not replace:
                raise BackupError(
                    f"{database} already has tables: restore with replace "
                    "(`--replace`) to overwrite it"
                )
            # Leaving WAL mode needs the only connection: it fails while SalesPulse runs, and
            # otherwise checkpoints and removes the -wal, so nothing of it outlives the swap.
            mode = conn.execute("PRAGMA journal_mode=DELETE").fetchone()[0]
    except sqlite3.OperationalError as exc:
        if "locked" not in str(exc):
            raise BackupError(f"cannot open {database}: {exc}") from exc
        mode = "locked"
    if mode != "delete":
        raise BackupError(f"{database} is in use: stop SalesPulse before restoring")


def _check_sqlite(conn: sqlite3.Connection, path: Path) -> None:
    try:
        result = conn.execute("PRAGMA integrity_check").fetchall()
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{path} is not a readable SQLite database: {exc}") from exc
    if result != [("ok",)]:
        problems = "; ".join(row[0] for row in result[:5])
        raise BackupError(f"{path} fails SQLite's integrity check: {problems}")


def _sqlite_revision(conn: sqlite3.Connection) -> str | None:
    table = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'"
    ).fetchone()
    if table is None:
        return None
    row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    return str(row[0]) if row else None


# -- PostgreSQL ------------------------------------------------------------------------------


def _backup_postgres(url: URL, partial: Path) -> str | None:
    _run([_pg_tool("pg_dump"), "--format=custom", "--no-password", f"--file={partial}"], url)
    return _archive_revision(partial)


def _restore_postgres(source: Path, url: URL, replace: bool) -> str | None:
    revision = _archive_revision(source)  # reads the archive's table of contents: a check too
    _known(revision)
    tables, others = _psql_values(
        url,
        "SELECT (SELECT count(*) FROM pg_tables WHERE schemaname = 'public'),"
        " (SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        "  AND pid <> pg_backend_pid() AND backend_type = 'client backend')",
    )
    if tables and not replace:
        raise BackupError(
            f"the database {url.database} already has tables: restore with replace "
            "(`--replace`) to overwrite it"
        )
    if others:
        raise BackupError(
            f"the database {url.database} is in use ({others} other connections): stop "
            "SalesPulse before restoring"
        )
    with tempfile.TemporaryDirectory(prefix="salespulse-restore-") as work:
        script = Path(work) / "restore.sql"
        restore_sql = [_pg_tool("pg_restore"), "--no-owner", "--no-privileges", f"--file={script}"]
        _run([*restore_sql, str(source)], None)  # decodes the whole archive before any change
        _run(
            [_pg_tool("psql"), "-X", "-q", "--no-password", "-v", "ON_ERROR_STOP=1",
             "--single-transaction", "-c", _EMPTY_PUBLIC, "-f", str(script)],
            url,
        )  # fmt: skip
    return revision


def _archive_revision(archive: Path) -> str | None:
    """The Alembic revision stored in a ``pg_dump`` archive (its ``alembic_version`` data)."""
    listing = _run(
        [
            _pg_tool("pg_restore"),
            "--data-only",
            "--table=alembic_version",
            "--file=-",
            str(archive),
        ],
        None,
    )
    copying = False
    for line in listing.splitlines():
        if line.startswith("COPY ") and "alembic_version" in line:
            copying = True
        elif copying:
            return None if line == "\\." else line.strip()
    return None


def _psql_values(url: URL, query: str) -> list[int]:
    out = _run([_pg_tool("psql"), "-X", "-q", "--no-password", "-tA", "-F,", "-c", query], url)
    return [int(value) for value in out.strip().split(",")]


def _pg_tool(name: str) -> str:
    """The newest ``name`` of Debian's PostgreSQL packages, else the one on PATH."""

    def major(bindir: Path) -> int:
        return int(bindir.parent.name) if bindir.parent.name.isdigit() else 0

    bindirs = sorted(Path("/").glob(PG_BINDIRS.lstrip("/")), key=major, reverse=True)
    for bindir in bindirs:
        if (bindir / name).is_file():
            return str(bindir / name)
    found = shutil.which(name)
    if found is None:
        raise BackupError(
            f"{name} not found: install PostgreSQL's client tools (postgresql-client)"
        )
    return found


def _libpq_env(url: URL) -> dict[str, str]:
    """The connection of ``url`` as libpq's variables (a password never goes on a command
    line, where ``ps`` would show it)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    values = {
        "PGHOST": url.host or url.query.get("host"),
        "PGPORT": str(url.port) if url.port else url.query.get("port"),
        "PGUSER": url.username,
        "PGPASSWORD": url.password,
        "PGDATABASE": url.database,
        "PGSSLMODE": url.query.get("sslmode") or url.query.get("ssl"),
    }
    for key, value in values.items():
        if isinstance(value, str) and value:
            env[key] = value
    env.setdefault("PGCONNECT_TIMEOUT", "10")
    return env


def _run(command: list[str], url: URL | None) -> str:
    env = _libpq_env(url) if url is not None else None
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0:
        tool = Path(command[0]).name
        raise BackupError(f"{tool} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    return done.stdout


# -- both ------------------------------------------------------------------------------------


def _parse(database_url: str) -> URL:
    try:
        return make_url(database_url)
    except Exception as exc:  # sqlalchemy's ArgumentError; the URL itself may hold a password
        raise BackupError("the database URL cannot be parsed") from exc


def _kind(url: URL) -> Kind:
    backend = url.get_backend_name()
    if backend == "sqlite":
        return "sqlite"
    if backend in ("postgresql", "postgres"):
        return "postgresql"
    raise BackupError(f"cannot back up a {backend!r} database: SQLite or PostgreSQL only")


def _sqlite_path(url: URL) -> Path:
    if not url.database or url.database == ":memory:" or url.database.startswith("file:"):
        raise BackupError("a SQLite database to back up or restore is a file: sqlite:///PATH")
    return Path(url.database)


def _known(revision: str | None) -> None:
    """Refuse a backup whose schema this release does not know (made by a later one)."""
    if revision is None:
        return  # a database of a release before migrations: ``migrate`` adopts it
    try:
        found = ScriptDirectory.from_config(alembic_config()).get_revision(revision)
    except CommandError:
        found = None
    if found is None:
        raise BackupError(
            f"the backup is at schema revision {revision}, which this release does not know: "
            "restore it with the release that made it, or a later one"
        )


@contextmanager
def _partial(target: Path) -> Iterator[Path]:
    """A temporary name beside ``target``, renamed to it (durably) when the block succeeds."""
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    partial.unlink(missing_ok=True)
    try:
        yield partial
        with partial.open("rb") as file:
            os.fsync(file.fileno())
        os.replace(partial, target)
        directory = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
    finally:
        partial.unlink(missing_ok=True)
        for suffix in ("-journal", "-wal", "-shm"):
            partial.with_name(partial.name + suffix).unlink(missing_ok=True)
